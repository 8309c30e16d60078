"""Test-image uncertainty of a comparison, from each run's `predictions.parquet`.

For every side of a comparison (a dataset, or a transfer target pretrained on one dataset) this builds the
per-model intervals (`ModelAccuracy`), the per-pair tests (`PairTest`: exact McNemar, paired bootstrap, Holm),
the partial order the significant differences support, and the smallest difference the validation set can
detect. For the comparison it says, per flipped pair, whether the flip is significant on both datasets, one
or neither (`FlipSupport`), and it bootstraps the agreement statistics three ways, each on its own: over test
images (paired across models), over seeds, and over the models in the zoo (`noise_sources`).

Runs without a predictions file fall back to binomial intervals from their validation size (result.json's
`val_images`) or to none, with a note; runs of one dataset evaluated on different validation sets cannot be
paired and are refused by name.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from imagenot import predictions as predictions_file
from imagenot.analysis import paired, stats
from imagenot.analysis.results import Row
from imagenot.errors import InputError
from imagenot.stats import clopper_pearson

log = logging.getLogger(__name__)

PREDICTION_MODES = ("auto", "off")


@dataclasses.dataclass
class ModelAccuracy:
    """One line of models.csv: a run's (or a model's seed-mean) top-1 with its interval."""

    dataset: str
    model: str
    seed: str  # the run's seed, or "all" for the mean over a model's seeds
    n: int | None  # validation images
    top1: float  # percent (or a ratio for datasets given as ratios)
    ci_low: float
    ci_high: float
    method: str  # how the interval was made ("" when there is none)
    seeds: int
    seed_sd: float
    source: str  # trained or published


@dataclasses.dataclass
class PairTest:
    """One line of pairs.csv: two models on the same validation images."""

    dataset: str
    model_a: str
    model_b: str
    n: int
    acc_a: float
    acc_b: float
    diff: float  # acc_a - acc_b, percentage points
    only_a: int  # images a gets right and b wrong (with seeds: more often)
    only_b: int
    mcnemar_p: float
    p_holm: float
    ci_low: float  # paired-bootstrap interval of diff
    ci_high: float
    significant: bool  # p_holm below the significance level
    flip: bool | None = None  # the pair's order differs on the other side of the comparison (None: untested)


@dataclasses.dataclass
class SideEvidence:
    """Everything the validation images of one side say, plus what could not be said and why."""

    dataset: str
    n: int | None  # validation images (common to the paired runs)
    paired: bool  # per-image predictions were used
    alpha: float
    models: list[ModelAccuracy] = dataclasses.field(default_factory=list)
    pairs: list[PairTest] = dataclasses.field(default_factory=list)
    supported: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # (better, worse), Hasse edges
    mdd: dict[str, float] | None = None
    notes: list[str] = dataclasses.field(default_factory=list)
    files: list[str] = dataclasses.field(default_factory=list)  # the predictions files used

    def accuracy(self, model: str) -> ModelAccuracy | None:
        """The model's 'all' row (its seed mean)."""
        for m in self.models:
            if m.model == model and m.seed == "all":
                return m
        return None

    def pair(self, a: str, b: str) -> PairTest | None:
        for p in self.pairs:
            if {p.model_a, p.model_b} == {a, b}:
                return p
        return None


@dataclasses.dataclass
class FlipSupport:
    """Whether the data support a flipped pair: its difference tested on each side (Holm-adjusted)."""

    better_on_x: str
    better_on_y: str
    diff_x: float  # better_on_x minus better_on_y on x (positive), percentage points
    diff_y: float  # the same difference on y (negative)
    p_x: float | None
    p_y: float | None
    significant_x: bool | None
    significant_y: bool | None
    support: str  # "both" (a real reversal), "one", "neither", or "untested" (no predictions)


@dataclasses.dataclass
class SideDraws:
    """Image-bootstrap draws of one side: (n_boot, models) seed-mean accuracies in percent, and what they were
    drawn from (the images x runs correctness, each column's model, the split's digest)."""

    models: list[str]
    means: np.ndarray
    correct: np.ndarray
    column_models: list[str]
    digest: str

    def column(self, model: str) -> np.ndarray:
        return self.means[:, self.models.index(model)]


def _model_means(run_acc: np.ndarray, column_models: Sequence[str], models: Sequence[str]) -> np.ndarray:
    """(n_boot, models) means over each model's seed columns of (n_boot, runs) accuracies."""
    return np.column_stack([run_acc[:, [i for i, m in enumerate(column_models) if m == model]].mean(axis=1)
                            for model in models])


@dataclasses.dataclass
class _RunPredictions:
    """One run's per-image correctness, ordered by image key (not by row): runs are joined image by image."""

    run: str
    path: str
    correct: np.ndarray
    digest: str  # which images (keys) under which labels: equal digests mean the same images, joinable
    keys: np.ndarray


def _by_key(table: Any, path: Path) -> tuple[np.ndarray, np.ndarray, str]:
    """(correct, keys) sorted by image key, and a digest of the (key, label) pairs: the join of two runs is
    by image, never by row position, so a file written in another row order pairs the same images."""
    keys = np.asarray(table.column("key").to_pylist(), dtype=object)
    labels = np.asarray(table.column("label").to_numpy(zero_copy_only=False), dtype=np.int64)
    correct = np.asarray(table.column("correct").to_numpy(zero_copy_only=False), dtype=bool)
    order = np.argsort(keys.astype(str), kind="stable")
    keys, labels, correct = keys[order], labels[order], correct[order]
    repeated = keys[1:][keys[1:] == keys[:-1]]
    if repeated.size:
        raise InputError(f"predictions file lists {repeated.size} image key(s) more than once (e.g. "
                         f"{str(repeated[0])!r}): its rows cannot be matched to images", path=path)
    h = hashlib.sha256()
    h.update(labels.tobytes())
    for key in keys:
        h.update(str(key).encode("utf-8", "surrogatepass") + b"\0")
    return correct, keys, h.hexdigest()


def _run_label(row: Row) -> str:
    return str(row.get("run_dir") or row.get("origin") or f"{row['model']} seed {row['seed']}")


class PredictionStore:
    """Reads (once) the predictions.parquet next to each run's result; `mode` 'off' reads none."""

    def __init__(self, mode: str = "auto") -> None:
        if mode not in PREDICTION_MODES:
            raise ValueError(f"unknown predictions mode {mode!r}; known: {', '.join(PREDICTION_MODES)}")
        self.mode = mode
        self._cache: dict[str, _RunPredictions | None] = {}

    def load(self, row: Row) -> _RunPredictions | None:
        if self.mode == "off" or not row.get("run_dir") or row.get("source") == "published":
            return None
        path = Path(row["run_dir"]) / predictions_file.FILENAME
        key = str(path)
        if key in self._cache:
            return self._cache[key]
        if not path.is_file():
            self._cache[key] = None
            return None
        table, _ = predictions_file.read_predictions(path)
        correct, keys, digest = _by_key(table, path)
        n = correct.size
        top1 = row["top1"]
        if n == 0:
            raise InputError("predictions file has no rows", path=path)
        if math.isfinite(top1) and abs(100.0 * correct.mean() - top1) > 100.0 / n + 1e-6:
            raise InputError(f"the predictions give top-1 {100.0 * correct.mean():.3f}% on {n} images but the "
                             f"run's result says {top1:.3f}%: the file belongs to another evaluation. "
                             "Re-evaluate the run, or pass --predictions off", path=path)
        run = _RunPredictions(run=_run_label(row), path=key, correct=correct, digest=digest, keys=keys)
        self._cache[key] = run
        return run


def _check_same_split(name: str, runs: Sequence[_RunPredictions]) -> None:
    digests: dict[str, list[_RunPredictions]] = {}
    for r in runs:
        digests.setdefault(r.digest, []).append(r)
    if len(digests) <= 1:
        return
    groups = "; ".join(
        f"{', '.join(r.run for r in group[:4])}{' ...' if len(group) > 4 else ''} "
        f"({group[0].correct.size} images, split {digest[:10]})"
        for digest, group in digests.items()
    )
    first = [group[0] for group in digests.values()]
    common = set(first[0].keys.tolist()).intersection(*(r.keys.tolist() for r in first[1:]))
    raise InputError(f"runs on {name} were evaluated on different validation sets, so they cannot be compared "
                     f"image by image: {groups}; {len(common)} image key(s) are common to all of them (the same "
                     "key with another label counts as another image). Evaluate them on the same split, or "
                     "pass --predictions off to report without paired statistics.")


def _interval_from_n(top1: float, n: int | None, confidence: float) -> tuple[float, float]:
    if not n or not math.isfinite(top1):
        return math.nan, math.nan
    k = int(round(top1 / 100.0 * n))
    low, high = clopper_pearson(min(max(k, 0), n), n, confidence)
    return 100.0 * low, 100.0 * high


def side_evidence(
    name: str,
    rows: Sequence[Row],
    store: PredictionStore,
    *,
    ratio: bool,
    confidence: float,
    n_boot: int,
    rng: np.random.Generator,
    power: float = 0.8,
) -> tuple[SideEvidence, SideDraws | None]:
    """Intervals, pair tests and the supported order for one side; also its image-bootstrap draws."""
    ev = SideEvidence(dataset=name, n=None, paired=False, alpha=1.0 - confidence)
    by_model: dict[str, list[Row]] = {}
    for row in rows:
        by_model.setdefault(row["model"], []).append(row)
    if ratio:
        return _ratio_evidence(ev, by_model), None
    loaded, usable = _load_side(ev, by_model, store)
    draws = _image_draws(ev, loaded, usable, n_boot, rng) if usable else None
    for model, runs in by_model.items():
        _model_accuracies(ev, model, runs, loaded[model] if model in usable else None, draws, confidence)
    if ev.n is None:
        sizes = {m.n for m in ev.models if m.seed == "all" and m.n}
        ev.n = sizes.pop() if len(sizes) == 1 else None
    mean_acc = float(np.mean([r["top1"] for r in rows])) / 100.0 if rows else math.nan
    if draws is not None and len(usable) >= 2:
        discord = _pair_tests(ev, by_model, loaded, usable, draws, confidence)
        ev.mdd = paired.min_detectable_difference(ev.n or 0, mean_acc, discord, alpha=ev.alpha, power=power)
    elif ev.n:
        ev.mdd = paired.min_detectable_difference(ev.n, mean_acc, None, alpha=ev.alpha, power=power)
    return ev, draws


def _ratio_evidence(ev: SideEvidence, by_model: dict[str, list[Row]]) -> SideEvidence:
    """A side given as ratios: each model's mean and seed spread, no intervals or tests."""
    ev.notes.append(f"{ev.dataset} holds ratios, not accuracies: no binomial intervals or paired tests.")
    for model, runs in by_model.items():
        values = np.array([r["top1"] for r in runs])
        ev.models.append(ModelAccuracy(ev.dataset, model, "all", None, float(values.mean()), math.nan, math.nan, "",
                                       len(runs), float(values.std(ddof=1)) if len(runs) > 1 else math.nan,
                                       runs[0]["source"]))
    return ev


def _load_side(ev: SideEvidence, by_model: dict[str, list[Row]], store: PredictionStore
               ) -> tuple[dict[str, list[_RunPredictions | None]], list[str]]:
    """Every run's predictions, and the models whose runs all have them (on one split); what is missing is
    noted."""
    name = ev.dataset
    loaded = {model: [store.load(r) for r in runs] for model, runs in by_model.items()}
    usable = [m for m, preds in loaded.items() if preds and all(p is not None for p in preds)]
    partial = [m for m, preds in loaded.items() if any(p is not None for p in preds) and m not in usable]
    _check_same_split(name, [p for m in usable for p in loaded[m] if p is not None])
    missing = [m for m in by_model if m not in usable]
    if store.mode == "off":
        ev.notes.append(f"{name}: per-image predictions not used (--predictions off).")
    elif missing and usable:
        ev.notes.append(f"{name}: no predictions.parquet for every run of {', '.join(missing)}; those models "
                        "have binomial intervals from their validation size at most, and no paired tests.")
    elif missing and store.mode == "auto":
        ev.notes.append(f"{name}: no run has a predictions.parquet, so the report falls back to seed and model "
                        "resampling: no paired tests, and intervals only from the validation size.")
    if partial:
        ev.notes.append(f"{name}: only some seeds of {', '.join(partial)} have predictions; their paired "
                        "statistics are omitted.")
    return loaded, usable


def _image_draws(ev: SideEvidence, loaded: dict[str, list[_RunPredictions | None]], usable: list[str], n_boot: int,
                 rng: np.random.Generator) -> SideDraws:
    """The images x runs correctness of the usable models and its image-bootstrap draws (seed means)."""
    mats = []
    column_models: list[str] = []
    for m in usable:
        for p in loaded[m]:
            assert p is not None
            column_models.append(m)
            mats.append(p.correct)
            ev.files.append(p.path)
    correct = np.column_stack(mats)
    ev.n = int(correct.shape[0])
    ev.paired = True
    run_acc = paired.bootstrap_accuracies(correct, n_boot, rng) * 100.0
    return SideDraws(models=list(usable), means=_model_means(run_acc, column_models, usable), correct=correct,
                     column_models=column_models, digest=loaded[usable[0]][0].digest)  # type: ignore[union-attr]


def _model_accuracies(ev: SideEvidence, model: str, runs: list[Row], preds: list[_RunPredictions | None] | None,
                      draws: SideDraws | None, confidence: float) -> None:
    """One model's intervals: per run (Clopper-Pearson from its predictions, else from its validation size)
    and for the seed mean (the image bootstrap, else the pooled validation sizes)."""
    name = ev.dataset
    values = np.array([r["top1"] for r in runs], dtype=float)
    source = "published" if any(r["source"] == "published" for r in runs) else "trained"
    sd = float(values.std(ddof=1)) if len(runs) > 1 else math.nan
    for r, p in zip(runs, preds or [None] * len(runs)):
        if p is not None:
            n = int(p.correct.size)
            lo, hi = clopper_pearson(int(p.correct.sum()), n, confidence)
            lo, hi, method = 100.0 * lo, 100.0 * hi, "clopper-pearson"
        else:
            n = r["n_val"]
            lo, hi = _interval_from_n(r["top1"], n, confidence)
            method = "clopper-pearson from n_val" if n else ""
        if len(runs) > 1:
            ev.models.append(ModelAccuracy(name, model, "" if r["seed"] is None else str(r["seed"]), n,
                                           float(r["top1"]), lo, hi, method, 1, math.nan, r["source"]))
    mean = float(values.mean())
    if len(runs) == 1:
        ev.models.append(ModelAccuracy(name, model, "all", n, mean, lo, hi, method, 1, sd, source))
    elif draws is not None and preds is not None:
        lo, hi = paired.percentile_ci(draws.column(model), confidence)
        ev.models.append(ModelAccuracy(name, model, "all", ev.n, mean, lo, hi,
                                       "bootstrap over images (seed mean)", len(runs), sd, source))
    else:
        ns = [r["n_val"] for r in runs]
        if all(ns):
            lo, hi = _interval_from_n(mean, int(sum(ns)), confidence)
            method = "clopper-pearson from n_val (seeds pooled)"
        else:
            lo = hi = math.nan
            method = ""
        ev.models.append(ModelAccuracy(name, model, "all", ns[0] if len(set(ns)) == 1 else None, mean, lo, hi,
                                       method, len(runs), sd, source))


def _pair_tests(ev: SideEvidence, by_model: dict[str, list[Row]], loaded: dict[str, list[_RunPredictions | None]],
                usable: list[str], draws: SideDraws, confidence: float) -> float | None:
    """Every pair of usable models: exact McNemar on the per-image scores, Holm-adjusted, with its
    paired-bootstrap interval; the order those support. Returns the mean share of discordant images."""
    scores = {m: np.column_stack([loaded[m][i].correct for i in range(len(loaded[m]))]).mean(axis=1)  # type: ignore[union-attr]
              for m in usable}
    tests = []
    for i, a in enumerate(usable):
        for b in usable[i + 1:]:
            table = paired.mcnemar_table(scores[a], scores[b])
            lo, hi = paired.percentile_ci(draws.column(a) - draws.column(b), confidence)
            acc_a = float(np.mean([r["top1"] for r in by_model[a]]))
            acc_b = float(np.mean([r["top1"] for r in by_model[b]]))
            tests.append(PairTest(ev.dataset, a, b, ev.n or 0, acc_a, acc_b, acc_a - acc_b, int(table[0, 1]),
                                  int(table[1, 0]), paired.mcnemar_p(table), math.nan, lo, hi, False))
    reject, adjusted = paired.holm([t.mcnemar_p for t in tests], ev.alpha)
    for t, rej, adj in zip(tests, reject, adjusted):
        t.p_holm = float(adj)
        t.significant = bool(rej) and t.diff != 0
    ev.pairs = tests
    better = [(t.model_a, t.model_b) if t.diff > 0 else (t.model_b, t.model_a) for t in tests if t.significant]
    ev.supported = paired.covering_pairs(better)
    return float(np.mean([(t.only_a + t.only_b) / t.n for t in tests])) if tests and ev.n else None


def mark_flips(ex: SideEvidence, ey: SideEvidence) -> None:
    """Set `flip` on every pair tested on both sides (the two sides order it differently)."""
    for side, other in ((ex, ey), (ey, ex)):
        for t in side.pairs:
            o = other.pair(t.model_a, t.model_b)
            if o is None:
                continue
            d_other = o.diff if o.model_a == t.model_a else -o.diff
            t.flip = None if t.diff == 0 or d_other == 0 else bool(np.sign(t.diff) != np.sign(d_other))


def flip_support(flips: Sequence[dict[str, Any]], ex: SideEvidence | None, ey: SideEvidence | None
                 ) -> list[FlipSupport]:
    """For each flipped pair, whether the difference is significant on x, on y, both or neither."""
    out = []
    for f in flips:
        a, b = f["better_on_x"], f["better_on_y"]
        tx = ex.pair(a, b) if ex else None
        ty = ey.pair(a, b) if ey else None
        sx = tx.significant if tx else None
        sy = ty.significant if ty else None
        if sx is None or sy is None:
            support = "untested"
        else:
            support = "both" if sx and sy else ("one" if sx or sy else "neither")
        out.append(FlipSupport(
            better_on_x=a, better_on_y=b,
            diff_x=float(f["x"][0] - f["x"][1]), diff_y=float(f["y"][0] - f["y"][1]),
            p_x=tx.p_holm if tx else None, p_y=ty.p_holm if ty else None,
            significant_x=sx, significant_y=sy, support=support,
        ))
    return out


def noise_sources(
    models: Sequence[str],
    x_seeds: Sequence[Sequence[float]],
    y_seeds: Sequence[Sequence[float]],
    dx: SideDraws | None,
    dy: SideDraws | None,
    *,
    accuracy: bool,
    base_index: int | None,
    n_boot: int,
    confidence: float,
    rng: np.random.Generator,
) -> dict[str, dict[str, Any]]:
    """The agreement statistics' intervals under each source of noise alone: images, seeds, models.

    'images' needs predictions for every paired model on both sides; 'seeds' needs several seeds for some
    model; 'models' needs nothing but the means. A source that cannot be resampled is absent.
    """
    out: dict[str, dict[str, Any]] = {}
    n = len(models)
    if n < stats.MIN_POINTS:
        return out
    if dx is not None and dy is not None and all(m in dx.models and m in dy.models for m in models):
        if dx.digest == dy.digest:
            # both sides were evaluated on the same images (a transfer target): resample them together
            run_acc = paired.bootstrap_accuracies(np.column_stack([dx.correct, dy.correct]), n_boot, rng) * 100.0
            k = dx.correct.shape[1]
            xm = _model_means(run_acc[:, :k], dx.column_models, models)
            ym = _model_means(run_acc[:, k:], dy.column_models, models)
            what = "test images, paired across models and across both sides (the same images)"
        else:
            xm = np.column_stack([dx.column(m) for m in models])
            ym = np.column_stack([dy.column(m) for m in models])
            what = "test images, paired across models within each dataset"
        out["images"] = {"what": what,
                         **stats.agreement_intervals(xm, ym, accuracy=accuracy, base_index=base_index,
                                                     confidence=confidence)}
    if any(len(v) > 1 for v in list(x_seeds) + list(y_seeds)):
        xm = stats.resample_means(x_seeds, n_boot, rng, within=True)
        ym = stats.resample_means(y_seeds, n_boot, rng, within=True)
        out["seeds"] = {"what": "seeds within each model",
                        **stats.agreement_intervals(xm, ym, accuracy=accuracy, base_index=base_index,
                                                    confidence=confidence)}
    xm = np.broadcast_to([float(np.mean(v)) for v in x_seeds], (n_boot, n))
    ym = np.broadcast_to([float(np.mean(v)) for v in y_seeds], (n_boot, n))
    idx = rng.integers(0, n, size=(n_boot, n))
    out["models"] = {"what": "the models in the zoo",
                     **stats.agreement_intervals(xm, ym, accuracy=accuracy, base_index=base_index,
                                                 model_idx=idx, confidence=confidence)}
    return out
