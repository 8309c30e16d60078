"""From result rows to the comparison the study is about: do models keep their order on the contrast dataset?

`analyze` cleans the rows (duplicates, NaN accuracies, impossible values), decides which dataset plays the
reference and which the contrast, puts the models in publication order (those steps are
`imagenot.analysis.cleaning`), and builds one `Comparison` for
reference vs contrast and one per transfer target (fine-tuned accuracy of reference-pretrained vs
contrast-pretrained models). Where runs left per-image predictions, each comparison also carries what the test
images support (`imagenot.analysis.uncertainty`). Everything it leaves out (models on one side only, diverged
runs, statistics that need more models) is recorded in notes, because a report that silently drops data
claims more than it measured.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from imagenot.analysis import paired, stats
from imagenot.analysis.cleaning import (
    check_same_experiment,
    clean_rows,
    find_baseline,
    publication_order,
    read_scales,
    split_roles,
)
from imagenot.analysis.results import Row
from imagenot.analysis.uncertainty import (
    FlipSupport,
    PredictionStore,
    SideEvidence,
    flip_support,
    mark_flips,
    noise_sources,
    side_evidence,
)
from imagenot.errors import InputError

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Comparison:
    """Paired accuracies of the same models on two sides (x, y) and every statistic computed over them."""

    kind: str  # "main" (reference vs contrast) or "transfer"
    x_name: str
    y_name: str
    x_scale: str  # "percent" or "ratio"
    y_scale: str
    target: str | None = None
    models: list[str] = dataclasses.field(default_factory=list)  # paired, publication order
    x: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)  # model -> mean, sd, n, values
    y: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    only_x: list[str] = dataclasses.field(default_factory=list)
    only_y: list[str] = dataclasses.field(default_factory=list)
    rank: dict[str, float] | None = None
    fits: dict[str, dict[str, float] | None] = dataclasses.field(default_factory=dict)
    primary_fit: str = "raw"
    order: dict[str, Any] | None = None
    bootstrap: dict[str, Any] | None = None
    relative: dict[str, Any] | None = None
    notes: list[str] = dataclasses.field(default_factory=list)
    weak: list[str] = dataclasses.field(default_factory=list)  # reasons the evidence is weak
    caveats: list[str] = dataclasses.field(default_factory=list)  # limits short of that (e.g. one seed)
    permutation: dict[str, Any] | None = None  # permutation test of Kendall tau (p, exact, permutations)
    evidence_x: SideEvidence | None = None  # what the validation images of each side support
    evidence_y: SideEvidence | None = None
    flip_support: list[FlipSupport] = dataclasses.field(default_factory=list)
    noise: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)  # images / seeds / models

    @property
    def n(self) -> int:
        return len(self.models)

    def means(self, side: str) -> np.ndarray:
        values = self.x if side == "x" else self.y
        return np.array([values[m]["mean"] for m in self.models], dtype=float)


@dataclasses.dataclass
class DatasetInfo:
    """What one dataset's numbers rest on: validation size, chance level, budget, where they come from."""

    name: str
    role: str | None
    runs: int
    n_val: int | None  # None when unknown or different between runs (see n_val_range)
    n_val_range: tuple[int, int] | None
    chance: float | None  # percent
    epochs: int | None
    train_images: int | None
    source: str  # trained, published or mixed
    weights: list[str]
    specs: list[str]  # dataset_spec values of its runs (e.g. wds:/data/clipart-not)


def _dataset_info(name: str, role: str | None, rows: Sequence[Row]) -> DatasetInfo:
    def common(col: str) -> Any:
        values = {r[col] for r in rows if r.get(col) is not None}
        return values.pop() if len(values) == 1 else None

    sizes = [r["n_val"] for r in rows if r.get("n_val")]
    sources = {r["source"] for r in rows}
    return DatasetInfo(
        name=name, role=role, runs=len(rows), n_val=common("n_val"),
        n_val_range=(min(sizes), max(sizes)) if sizes else None, chance=common("chance"),
        epochs=common("epochs"), train_images=common("train_images"),
        source=sources.pop() if len(sources) == 1 else "mixed",
        weights=sorted({r["weights"] for r in rows if r.get("weights")}),
        specs=sorted({r["dataset_spec"] for r in rows if r.get("dataset_spec")}),
    )


@dataclasses.dataclass
class Analysis:
    """The whole study: cleaned rows, roles, model order, the main comparison and the transfer ones."""

    rows: list[Row]
    reference: str
    contrast: str
    scales: dict[str, dict[str, str]]  # dataset -> {"scale", "reason", "declared"}
    baseline: str | None
    order: list[str]  # every model, publication order
    models: dict[str, dict[str, Any]]  # model -> family, year
    main: Comparison
    transfer: list[Comparison]
    notes: list[str]
    settings: dict[str, Any]
    datasets: dict[str, DatasetInfo] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Everything as JSON-ready data (NaN becomes null); what stats.json holds."""
        data = dataclasses.asdict(self)
        for row in data["rows"]:
            row.pop("origin", None)
        return _json_ready(data)

    @property
    def comparisons(self) -> list[Comparison]:
        return [self.main, *self.transfer]


def _json_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return None if math.isnan(value) or math.isinf(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def _group(rows: Iterable[Row]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        entry = out.setdefault(row["model"], {"values": [], "seeds": []})
        entry["values"].append(float(row["top1"]))
        entry["seeds"].append(row["seed"])
    for entry in out.values():
        entry.update(stats.summarize(entry["values"]))
    return out


def _bootstrap_transform(primary: str, base_index: int | None) -> stats.Transform | None:
    """Put resampled means on the scale of the primary fit (ratios use the resampled baseline)."""
    if primary == "ratio" and base_index is not None:
        return lambda xm, ym: (xm / xm[:, [base_index]], ym / ym[:, [base_index]])
    if primary in ("logit", "probit"):
        return lambda xm, ym: (stats.transform(xm / 100.0, primary), stats.transform(ym / 100.0, primary))
    return None


@dataclasses.dataclass
class _Evidence:
    """What `_compare` needs to add the test-image statistics: the side rows and where predictions live."""

    rows_x: list[Row]
    rows_y: list[Row]
    store: PredictionStore
    n_perm: int
    power: float


def _compare(
    comp: Comparison,
    xs: dict[str, dict[str, Any]],
    ys: dict[str, dict[str, Any]],
    order: list[str],
    *,
    baseline: str | None,
    bootstrap: str,
    n_boot: int,
    confidence: float,
    seed: int,
    evidence: _Evidence | None = None,
) -> Comparison:
    """Fill `comp`: the paired models, their order and rank agreement, fits, relative improvement, the
    bootstrap, the test-image evidence and what makes it weak."""
    _pair(comp, xs, ys, order)
    x, y = comp.means("x"), comp.means("y")
    comp.order = stats.pairwise_order(comp.models, x, y) if comp.n >= 2 else None
    for flip in (comp.order or {}).get("flips", []):
        flip["within_noise"] = _within_noise(comp, flip["better_on_x"], flip["better_on_y"])
    comp.rank = stats.rank_correlation(x, y)
    if comp.n >= stats.MIN_POINTS and comp.rank is None:
        comp.notes.append("One side has the same accuracy for every model; rank correlations are undefined.")
    accuracy = comp.x_scale in stats.ACCURACY_SCALES and comp.y_scale in stats.ACCURACY_SCALES
    _fit(comp, accuracy)
    base_index = comp.models.index(baseline) if baseline in comp.models else None
    if comp.kind == "main":
        comp.relative = _relative(comp, baseline, base_index)
        if comp.relative and comp.relative.get("fit"):
            comp.fits["ratio"] = comp.relative["fit"]
    comp.primary_fit = "raw" if accuracy else ("ratio" if comp.fits.get("ratio") else "raw")
    if comp.n >= stats.MIN_POINTS and comp.rank is not None:
        _bootstrap(comp, bootstrap, base_index, n_boot=n_boot, confidence=confidence, seed=seed)
    if evidence is not None:
        _add_evidence(comp, evidence, accuracy=accuracy, base_index=base_index, n_boot=n_boot,
                      confidence=confidence, seed=seed)
    _weakness(comp)
    return comp


def _pair(comp: Comparison, xs: dict[str, dict[str, Any]], ys: dict[str, dict[str, Any]],
          order: list[str]) -> None:
    """The models with results on both sides (publication order); those on one side only are noted."""
    comp.x, comp.y = xs, ys
    comp.models = [m for m in order if m in xs and m in ys]
    comp.only_x = [m for m in order if m in xs and m not in ys]
    comp.only_y = [m for m in order if m in ys and m not in xs]
    for side, missing, other in (("x", comp.only_x, comp.y_name), ("y", comp.only_y, comp.x_name)):
        if missing:
            name = comp.x_name if side == "x" else comp.y_name
            comp.notes.append(f"{len(missing)} model(s) have results on {name} but not on {other} and are left out "
                              f"of the paired statistics: {', '.join(missing)}.")
    n = comp.n
    if n < stats.MIN_POINTS:
        comp.notes.append(f"Only {n} model(s) have results on both sides; rank correlations, fits and "
                          f"bootstrap intervals need at least {stats.MIN_POINTS} and are omitted.")
        comp.weak.append(f"only {n} paired model(s): no statistics")


def _fit(comp: Comparison, accuracy: bool) -> None:
    """The raw straight-line fit, and on accuracies the logit and probit ones (omitted, with a note, when a
    side holds ratios)."""
    x, y = comp.means("x"), comp.means("y")
    comp.fits["raw"] = stats.linear_fit(x, y)
    if accuracy:
        fx, fy = x / 100.0, y / 100.0
        if comp.n and (np.any((fx <= 0) | (fx >= 1)) or np.any((fy <= 0) | (fy >= 1))):
            comp.notes.append(f"Accuracies of 0 or 100% were clipped to [{stats.CLIP}, {1 - stats.CLIP}] "
                              "for the logit and probit fits.")
        for how in ("logit", "probit"):
            comp.fits[how] = stats.linear_fit(stats.transform(fx, how), stats.transform(fy, how))
        return
    comp.fits["logit"] = comp.fits["probit"] = None
    ratio_side = comp.x_name if comp.x_scale == "ratio" else comp.y_name
    comp.notes.append(f"{ratio_side} holds ratios to a baseline, not accuracies: logit and probit fits are "
                      "omitted, and the raw fit mixes units (its R^2 equals the ratio fit's, its slope does "
                      "not)" + (", so the ratio fit is the one reported." if comp.kind == "main" else "."))


def _bootstrap(comp: Comparison, bootstrap: str, base_index: int | None, *, n_boot: int, confidence: float,
               seed: int) -> None:
    """Bootstrap intervals of tau, rho, slope and R^2 on the primary fit's scale (seeds and models when
    models have several seeds, unless told otherwise)."""
    xs, ys = comp.x, comp.y
    multi = any(len(xs[m]["values"]) > 1 or len(ys[m]["values"]) > 1 for m in comp.models)
    mode = bootstrap if bootstrap != "auto" else ("both" if multi else "models")
    comp.bootstrap = stats.bootstrap(
        [xs[m]["values"] for m in comp.models], [ys[m]["values"] for m in comp.models],
        transform=_bootstrap_transform(comp.primary_fit, base_index),
        resample=mode, n_boot=n_boot, confidence=confidence, seed=seed,
    )
    comp.bootstrap["fit"] = comp.primary_fit


def _add_evidence(comp: Comparison, ev: _Evidence, *, accuracy: bool, base_index: int | None, n_boot: int,
                  confidence: float, seed: int) -> None:
    """Permutation p of tau, per-side intervals and pair tests, flip support, and the three noise sources."""
    rng = np.random.default_rng([seed, 13])
    x, y = comp.means("x"), comp.means("y")
    if comp.n >= stats.MIN_POINTS and comp.rank is not None:
        comp.permutation = paired.kendall_permutation_p(x, y, stats.kendall_tau_b_rows, n_perm=ev.n_perm,
                                                        seed=seed)
    common = {"confidence": confidence, "n_boot": n_boot, "rng": rng, "power": ev.power}
    comp.evidence_x, dx = side_evidence(comp.x_name, ev.rows_x, ev.store, ratio=comp.x_scale == "ratio", **common)
    comp.evidence_y, dy = side_evidence(comp.y_name, ev.rows_y, ev.store, ratio=comp.y_scale == "ratio", **common)
    mark_flips(comp.evidence_x, comp.evidence_y)
    for note in comp.evidence_x.notes + comp.evidence_y.notes:
        if note not in comp.notes:
            comp.notes.append(note)
    comp.flip_support = flip_support((comp.order or {}).get("flips", []), comp.evidence_x, comp.evidence_y)
    comp.noise = noise_sources(
        comp.models, [comp.x[m]["values"] for m in comp.models], [comp.y[m]["values"] for m in comp.models],
        dx, dy, accuracy=accuracy, base_index=base_index, n_boot=n_boot, confidence=confidence, rng=rng,
    )
    if comp.n >= stats.MIN_POINTS and "images" not in comp.noise:
        comp.notes.append("Test-image resampling of the agreement statistics needs per-image predictions for "
                          "every paired model on both sides; it is omitted.")


def _within_noise(comp: Comparison, a: str, b: str) -> bool | None:
    """Whether a flipped pair differs by less than its seed spread on either side (None with one seed).

    The spread is the standard deviation of the difference of two independent means' seeds,
    sqrt(sd_a^2 + sd_b^2): a flip smaller than that on either dataset may be noise, not a change of order.
    """
    verdicts = []
    for side in (comp.x, comp.y):
        sa, sb = side[a]["sd"], side[b]["sd"]
        if math.isnan(sa) or math.isnan(sb):
            return None
        verdicts.append(abs(side[a]["mean"] - side[b]["mean"]) < math.hypot(sa, sb))
    return any(verdicts)


def _relative(comp: Comparison, baseline: str | None, base_index: int | None) -> dict[str, Any] | None:
    """Ratios to the baseline on each dataset and step-to-step changes in publication order."""
    if baseline is None:
        comp.notes.append("No baseline model: relative improvements are omitted.")
        return None
    if base_index is None:
        comp.notes.append(f"The baseline {baseline} lacks a result on one side: relative improvements are omitted.")
        return None
    x, y = comp.means("x"), comp.means("y")
    if x[base_index] <= 0 or y[base_index] <= 0:
        comp.notes.append(f"The baseline {baseline} has an accuracy of 0 on one side: relative improvements "
                          "are undefined and omitted.")
        return None
    rx, ry = stats.relative(x, x[base_index]), stats.relative(y, y[base_index])
    sx, sy = stats.steps(x), stats.steps(y)
    same_sign = int(np.sum(np.sign(sx) == np.sign(sy)))
    return {
        "baseline": baseline,
        "x": {m: float(v) for m, v in zip(comp.models, rx)},
        "y": {m: float(v) for m, v in zip(comp.models, ry)},
        "fit": stats.linear_fit(rx, ry),
        "correlation": stats.pearson(rx, ry),
        "steps": [
            {"from": comp.models[i], "to": comp.models[i + 1], "x": float(sx[i]), "y": float(sy[i])}
            for i in range(len(sx))
        ],
        "steps_correlation": stats.pearson(sx, sy),
        "steps_same_sign": same_sign,
        "steps_total": len(sx),
    }


def _weakness(comp: Comparison) -> None:
    """Reasons a reader should not lean hard on this comparison; the report prints them as they are."""
    n = comp.n
    if stats.MIN_POINTS <= n < 5:
        comp.weak.append(f"only {n} paired models (a ranking of fewer than 5 is easily matched by chance)")
    tau_p = comp.permutation["p"] if comp.permutation else (comp.rank["kendall_p"] if comp.rank else None)
    if tau_p is not None and tau_p > 0.05:
        comp.weak.append(f"Kendall tau is not significant at 0.05 (p = {tau_p:.2g})")
    if n and all(comp.x[m]["n"] == 1 and comp.y[m]["n"] == 1 for m in comp.models):
        comp.caveats.append("one run per model and dataset: seed-to-seed variation is not measured, so the "
                            "intervals reflect only which models were chosen")
    boot = comp.bootstrap or {}
    tau_ci = boot.get("kendall_tau")
    level = f"{int(round(boot.get('confidence', 0.95) * 100))}%"
    if tau_ci and not math.isnan(tau_ci["low"]) and tau_ci["low"] <= 0 <= tau_ci["high"]:
        comp.weak.append(f"the {level} interval of tau includes 0")
    elif tau_ci and not math.isnan(tau_ci["low"]) and tau_ci["high"] - tau_ci["low"] > 0.5:
        comp.weak.append(f"the {level} interval of tau is wide ({tau_ci['low']:.2f} to {tau_ci['high']:.2f})")
    if (tau_ci and boot.get("resample") == "models" and comp.rank
            and abs(comp.rank["kendall_tau"]) >= 1.0 - 1e-12):
        comp.caveats.append("resampling models cannot move a tau of +-1 (any subset of a perfectly kept order is "
                            "kept), so its interval adds nothing; only runs with several seeds can test it")
    r2_ci = boot.get("r2")
    if r2_ci and not math.isnan(r2_ci["low"]) and r2_ci["high"] - r2_ci["low"] > 0.3:
        comp.weak.append(f"the {level} interval of R^2 is wide ({r2_ci['low']:.2f} to {r2_ci['high']:.2f})")


def analyze(
    rows: Iterable[Mapping[str, Any]],
    *,
    reference: str | None = None,
    contrast: str | None = None,
    baseline: str | None = None,
    scales: Mapping[str, str] | None = None,
    bootstrap: str = "auto",
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    duplicates: str = "error",
    predictions: str = "auto",
    n_perm: int = 100_000,
    power: float = 0.8,
) -> Analysis:
    """Compare model accuracies on the reference and contrast datasets (and transfer targets).

    `reference` / `contrast` name datasets when the rows carry no roles (or to override them); `scales` maps
    a dataset name to percent, fraction or ratio (default: detected, and declared in the report);
    `bootstrap` is seeds, models, both or auto (both when any model has several seeds). `predictions`
    'auto' reads each run's predictions.parquet (next to its result, via the row's run_dir) for the
    test-image statistics, 'off' ignores them; `n_perm` is the Monte Carlo size of the permutation test of
    tau beyond 9 models; `power` sets the minimum detectable difference.
    """
    store = PredictionStore(predictions)
    notes: list[str] = []
    clean = clean_rows(rows, duplicates, notes)
    if not clean:
        raise InputError("no usable results (every row lacks a top-1 accuracy)")
    check_same_experiment(clean, notes)
    scales = dict(scales or {})
    trained = [r for r in clean if r["role"] != "transfer"]
    ref, con = split_roles(trained, reference, contrast, notes)
    order, models = publication_order(clean, notes)
    scale_info = read_scales(clean, scales, notes)
    base = find_baseline(baseline, order, models, notes)
    common = {"bootstrap": bootstrap, "n_boot": n_boot, "confidence": confidence, "seed": seed}
    setup = _Setup(order=order, baseline=base, scales=scale_info, store=store, n_perm=n_perm, power=power,
                   common=common)
    main = Comparison(kind="main", x_name=ref, y_name=con, x_scale=setup.unit(ref), y_scale=setup.unit(con))
    rows_ref = [r for r in trained if r["dataset"] == ref]
    rows_con = [r for r in trained if r["dataset"] == con]
    setup.compare(main, rows_ref, rows_con)
    datasets = {ref: _dataset_info(ref, "reference", rows_ref), con: _dataset_info(con, "contrast", rows_con)}
    transfers = _transfers(clean, ref, con, setup, datasets)
    log.info("analysed %d models (%d paired), %d transfer target(s)", len(order), main.n, len(transfers))
    return Analysis(
        rows=clean, reference=ref, contrast=con, scales=scale_info, baseline=base, order=order,
        models={m: {"family": models[m]["family"], "year": models[m]["year"]} for m in order},
        main=main, transfer=transfers, notes=notes,
        settings={"reference": reference, "contrast": contrast, "baseline": baseline, "scales": scales,
                  "duplicates": duplicates, "predictions": predictions, "n_perm": n_perm, "power": power,
                  **common},
        datasets=datasets,
    )


@dataclasses.dataclass
class _Setup:
    """What every comparison of one analysis shares: model order, baseline, scales and evidence settings."""

    order: list[str]
    baseline: str | None
    scales: dict[str, dict[str, str]]
    store: PredictionStore
    n_perm: int
    power: float
    common: dict[str, Any]

    def unit(self, dataset: str) -> str:
        return "ratio" if self.scales[dataset]["scale"] == "ratio" else "percent"

    def compare(self, comp: Comparison, rows_x: list[Row], rows_y: list[Row]) -> Comparison:
        return _compare(comp, _group(rows_x), _group(rows_y), self.order, baseline=self.baseline,
                        evidence=_Evidence(rows_x, rows_y, self.store, self.n_perm, self.power), **self.common)


def _transfers(clean: list[Row], ref: str, con: str, setup: _Setup,
               datasets: dict[str, DatasetInfo]) -> list[Comparison]:
    """One comparison per transfer target: fine-tuned from the reference against from the contrast."""
    transfers: list[Comparison] = []
    transfer_rows = [r for r in clean if r["role"] == "transfer"]
    for target in dict.fromkeys(r["dataset"] for r in transfer_rows):
        here = [r for r in transfer_rows if r["dataset"] == target]
        other = sorted({str(r["pretrain_dataset"]) for r in here} - {ref, con})
        comp = Comparison(kind="transfer", x_name=f"{target} from {ref}", y_name=f"{target} from {con}",
                          x_scale=setup.unit(target), y_scale=setup.unit(target), target=target)
        if other:
            comp.notes.append(f"Transfer runs on {target} pretrained on other datasets were not compared: "
                              f"{', '.join(other)}.")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            setup.compare(comp, [r for r in here if r["pretrain_dataset"] == ref],
                          [r for r in here if r["pretrain_dataset"] == con])
        transfers.append(comp)
        datasets[target] = _dataset_info(target, "transfer", here)
    return transfers
