"""Test-image statistics from predictions.parquet: intervals, pair tests, flip support, noise sources, bad input."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

from imagenot.analysis.comparison import analyze
from imagenot.analysis.results import collect_results
from imagenot.cli import main
from imagenot.errors import InputError

from .conftest import ZOO, correct_vector, write_predictions_file, write_run, write_zoo_with_predictions


def _hits(run: Path) -> np.ndarray:
    return pq.read_table(run / "predictions.parquet").column("correct").to_numpy(zero_copy_only=False)


def _study(root: Path, accs: dict[str, tuple[float, float]], n: int = 1000, spread: float = 0.15,
           seed: int = 0) -> Path:
    """One seed per model; accs maps model -> (reference accuracy, contrast accuracy) as fractions."""
    rng = np.random.default_rng(seed)
    difficulty = {"ref": rng.random(n), "con": rng.random(n)}
    for year, (model, pair) in enumerate(accs.items()):
        for dataset, role, acc in (("ref", "reference", pair[0]), ("con", "contrast", pair[1])):
            hits = correct_vector(difficulty[dataset], acc, rng, spread)
            run = write_run(root, f"{model}-{dataset}", model=model, year=2010 + year, dataset=dataset, role=role,
                            top1=100.0 * hits.mean(), val_images=n, num_classes=10)
            write_predictions_file(run, hits)
    return root


def test_zoo_intervals_and_pair_tests_match_statsmodels(tmp_path: Path) -> None:
    root = write_zoo_with_predictions(tmp_path / "zoo", n_ref=400, n_con=300)
    a = analyze(collect_results([root]), n_boot=400)
    ex, ey = a.main.evidence_x, a.main.evidence_y
    assert ex is not None and ey is not None and ex.paired and ey.paired
    assert (ex.n, ey.n) == (400, 300)
    hits = {m[0]: _hits(root / "train" / f"{m[0]}-fashion-0") for m in ZOO}
    vgg = ex.accuracy("vgg_s")
    assert vgg is not None and vgg.method == "clopper-pearson" and vgg.seed == "all"
    low, high = proportion_confint(int(hits["vgg_s"].sum()), 400, alpha=0.05, method="beta")
    assert (vgg.ci_low, vgg.ci_high) == pytest.approx((100 * low, 100 * high))
    assert vgg.top1 == pytest.approx(100 * hits["vgg_s"].mean())
    assert len(ex.pairs) == 15
    raw = []
    for t in ex.pairs:
        only_a = int(np.sum(hits[t.model_a] & ~hits[t.model_b]))
        only_b = int(np.sum(~hits[t.model_a] & hits[t.model_b]))
        assert (t.only_a, t.only_b) == (only_a, only_b)
        p = sps.binomtest(min(only_a, only_b), only_a + only_b, 0.5).pvalue if only_a + only_b else 1.0
        assert t.mcnemar_p == pytest.approx(p)
        assert t.diff == pytest.approx(100 * (only_a - only_b) / 400)
        assert t.ci_low <= t.diff <= t.ci_high
        raw.append(p)
    holm = multipletests(raw, alpha=0.05, method="holm")[1]
    assert [t.p_holm for t in ex.pairs] == pytest.approx(list(holm))
    assert all(t.significant == (t.p_holm < 0.05) for t in ex.pairs)
    # resnet_s and densenet_s are 1 point apart on 300-400 images: the flip is test-set noise
    (flip,) = a.main.flip_support
    assert (flip.better_on_x, flip.better_on_y, flip.support) == ("densenet_s", "resnet_s", "neither")
    pair = ex.pair("resnet_s", "densenet_s")
    assert pair is not None and pair.flip is True
    assert sum(t.flip is True for t in ex.pairs) == 1
    # the supported order never contradicts the accuracies
    acc = {m.model: m.top1 for m in ex.models}
    assert ex.supported and all(acc[b] > acc[w] for b, w in ex.supported)
    assert ex.mdd is not None and 0 < ex.mdd["paired"] < 0.2 and 0 < ex.mdd["unpaired"] < 0.2
    assert set(a.main.noise) == {"images", "models"}  # one seed: nothing to resample there
    assert a.main.permutation is not None and a.main.permutation["exact"]
    assert a.main.permutation["p"] == pytest.approx(sps.kendalltau(a.main.means("x"), a.main.means("y")).pvalue)


def test_a_flip_supported_on_both_datasets_and_one_on_one(tmp_path: Path) -> None:
    # a and b swap places by 10 points on 1000 images each: real on both sides
    both = analyze(collect_results([_study(tmp_path / "both", {
        "c": (0.60, 0.40), "b": (0.70, 0.60), "a": (0.80, 0.50), "d": (0.90, 0.70)})]), n_boot=300)
    (flip,) = both.main.flip_support
    assert (flip.better_on_x, flip.better_on_y) == ("a", "b")
    assert flip.support == "both" and flip.significant_x and flip.significant_y
    assert flip.diff_x == pytest.approx(10.0) and flip.diff_y == pytest.approx(-10.0)
    assert flip.p_x is not None and flip.p_x < 1e-3
    # 10 points apart on the reference, 0.5 on the contrast: significant on one side only
    one = analyze(collect_results([_study(tmp_path / "one", {
        "c": (0.60, 0.40), "b": (0.70, 0.505), "a": (0.80, 0.50), "d": (0.90, 0.70)})]), n_boot=300)
    (flip,) = one.main.flip_support
    assert flip.support == "one" and flip.significant_x and flip.significant_y is False


def test_images_noise_of_tau_on_well_separated_models_is_zero(tmp_path: Path) -> None:
    # five points apart on 20,000 images: no image resample can reorder them, so tau stays 1
    root = _study(tmp_path / "big", {"a": (0.60, 0.30), "b": (0.65, 0.35), "c": (0.70, 0.40), "d": (0.75, 0.45)},
                  n=20_000)
    a = analyze(collect_results([root]), n_boot=300)
    images = a.main.noise["images"]
    assert images["kendall_tau"]["low"] == 1.0 and images["kendall_tau"]["high"] == 1.0
    assert images["fits"]["raw"]["slope"]["low"] < 1.0 < images["fits"]["raw"]["slope"]["high"]
    assert set(images["fits"]) == {"raw", "logit", "probit", "ratio"}


def test_seeds_with_predictions(tmp_path: Path) -> None:
    root = write_zoo_with_predictions(tmp_path / "zoo", n_ref=300, n_con=200, seeds=(0, 1, 2))
    a = analyze(collect_results([root]), n_boot=300)
    ex = a.main.evidence_x
    assert ex is not None
    rows = [m for m in ex.models if m.model == "vgg_s"]
    assert sorted(m.seed for m in rows) == ["0", "1", "2", "all"]
    per_seed = next(m for m in rows if m.seed == "1")
    hits = _hits(root / "train" / "vgg_s-fashion-1")
    low, high = proportion_confint(int(hits.sum()), 300, method="beta")
    assert per_seed.method == "clopper-pearson" and (per_seed.ci_low, per_seed.ci_high) == pytest.approx(
        (100 * low, 100 * high))
    mean = ex.accuracy("vgg_s")
    assert mean is not None and mean.method.startswith("bootstrap over images") and mean.seeds == 3
    assert mean.ci_low < mean.top1 < mean.ci_high
    assert mean.seed_sd == pytest.approx(np.std([m.top1 for m in rows if m.seed != "all"], ddof=1))
    assert set(a.main.noise) == {"images", "seeds", "models"}


def test_rows_written_in_another_order_pair_the_same(tmp_path: Path) -> None:
    """Two evaluations of one split in different orders (e.g. 1 vs 2 DDP processes) pair image by image."""
    from imagenot.predictions import read_predictions, write_predictions

    root = _study(tmp_path / "s", {"a": (0.6, 0.4), "b": (0.7, 0.5), "c": (0.8, 0.6)}, n=200)
    before = analyze(collect_results([root]), n_boot=200)
    run = root / "b-ref"
    table, _ = read_predictions(run / "predictions.parquet")
    perm = np.random.default_rng(0).permutation(table.num_rows)
    rows = {c: table.column(c).to_pylist() for c in ("index", "key", "label", "top5", "p_label")}
    write_predictions(run / "predictions.parquet", index=np.array(rows["index"])[perm],
                      keys=[rows["key"][i] for i in perm], labels=np.array(rows["label"])[perm],
                      top5=np.array(rows["top5"])[perm], p_label=np.array(rows["p_label"])[perm])
    again, _ = read_predictions(run / "predictions.parquet")
    assert again.equals(table)
    after = analyze(collect_results([root]), n_boot=200)
    assert before.main.evidence_x is not None and after.main.evidence_x is not None
    assert [t.mcnemar_p for t in after.main.evidence_x.pairs] == [t.mcnemar_p for t in before.main.evidence_x.pairs]


def test_different_validation_sets_are_refused_by_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _study(tmp_path / "s", {"a": (0.6, 0.4), "b": (0.7, 0.5), "c": (0.8, 0.6)}, n=200)
    hits = _hits(root / "c-con")
    write_predictions_file(root / "c-con", hits, keys=[f"other{i}" for i in range(200)])
    with pytest.raises(InputError) as err:
        analyze(collect_results([root]), n_boot=200)
    message = str(err.value)
    assert "runs on con were evaluated on different validation sets" in message
    assert str(root / "c-con") in message and str(root / "a-con") in message
    out = tmp_path / "report"
    assert main(["report", "--runs", str(root), "--out", str(out), "--n-boot", "200"]) == 2
    assert "different validation sets" in capsys.readouterr().err
    assert not out.exists() and not list(tmp_path.glob(".report*"))
    # without paired statistics the report is written
    assert main(["report", "--runs", str(root), "--out", str(out), "--n-boot", "200", "--predictions", "off"]) == 0
    assert "not used (--predictions off)" in (out / "report.md").read_text()


def test_predictions_of_another_evaluation_are_refused(tmp_path: Path) -> None:
    root = _study(tmp_path / "s", {"a": (0.6, 0.4), "b": (0.7, 0.5), "c": (0.8, 0.6)}, n=200)
    data = json.loads((root / "b-ref" / "result.json").read_text())
    data["top1"] = 55.0  # 70% in the predictions
    (root / "b-ref" / "result.json").write_text(json.dumps(data))
    with pytest.raises(InputError, match=r"b-ref/predictions.parquet: the predictions give top-1 70.000% on 200 "
                                         r"images but the run's result says 55.000%"):
        analyze(collect_results([root]), n_boot=200)


def test_missing_predictions_fall_back_with_a_note(tmp_path: Path) -> None:
    root = _study(tmp_path / "s", {"a": (0.6, 0.4), "b": (0.7, 0.5), "c": (0.8, 0.6), "d": (0.9, 0.7)}, n=200)
    (root / "d-con" / "predictions.parquet").unlink()
    a = analyze(collect_results([root]), n_boot=200)
    ey = a.main.evidence_y
    assert ey is not None and ey.paired and len(ey.pairs) == 3  # a, b, c still paired
    d = ey.accuracy("d")
    assert d is not None and d.method == "clopper-pearson from n_val"
    low, high = proportion_confint(140, 200, method="beta")
    assert (d.ci_low, d.ci_high) == pytest.approx((100 * low, 100 * high))
    assert any("no predictions.parquet for every run of d" in n for n in a.main.notes)
    assert "images" not in a.main.noise
    assert any("Test-image resampling" in n for n in a.main.notes)
    # no predictions at all: today's statistics, with a note, and binomial intervals from val_images
    for run in root.iterdir():
        (run / "predictions.parquet").unlink(missing_ok=True)
    none = analyze(collect_results([root]), n_boot=200)
    assert none.main.evidence_x is not None and not none.main.evidence_x.paired
    assert none.main.rank is not None and none.main.bootstrap is not None
    assert all(f.support == "untested" for f in none.main.flip_support)
    assert any("no run has a predictions.parquet" in n for n in none.main.notes)


def test_models_and_pairs_csv(tmp_path: Path) -> None:
    root = write_zoo_with_predictions(tmp_path / "zoo", n_ref=300, n_con=200)
    out = tmp_path / "report"
    assert main(["report", "--runs", str(root), "--out", str(out), "--n-boot", "300"]) == 0
    with open(out / "models.csv", newline="") as fh:
        models = list(csv.DictReader(fh))
    assert list(models[0])[:7] == ["dataset", "model", "seed", "n", "top1", "ci_low", "ci_high"]
    assert len(models) == 12 and {m["seed"] for m in models} == {"all"}
    assert all(float(m["ci_low"]) <= float(m["top1"]) <= float(m["ci_high"]) for m in models)
    with open(out / "pairs.csv", newline="") as fh:
        pairs = list(csv.DictReader(fh))
    assert list(pairs[0])[:12] == ["dataset", "model_a", "model_b", "n", "acc_a", "acc_b", "diff", "mcnemar_p",
                                   "p_holm", "ci_low", "ci_high", "flip"]
    assert len(pairs) == 30 and sum(p["flip"] == "yes" for p in pairs) == 2  # the flipped pair, on each side
    stats = json.loads((out / "stats.json").read_text())
    assert stats["main"]["flip_support"][0]["support"] == "neither"
    manifest = json.loads((out / "manifest.json").read_text())
    assert sum(k.endswith("predictions.parquet") for k in manifest["inputs"]) == 12
    md = (out / "report.md").read_text()
    assert "the validation images do not support it (within test-set noise on both datasets)" in md
    assert "densenet_s is 1.0 points ahead on fashion" in md and "so the flip is not supported" in md


def test_transfer_sides_on_the_same_images_are_resampled_together(tmp_path: Path) -> None:
    # fine-tuned from either dataset, each model gets exactly the same images right: every joint resample
    # keeps x == y, so tau stays 1 even though the models are only a point apart on 300 images
    root = _study(tmp_path / "s", {"a": (0.6, 0.4), "b": (0.7, 0.5), "c": (0.8, 0.6), "d": (0.9, 0.7)}, n=300)
    rng = np.random.default_rng(4)
    difficulty = rng.random(300)
    for i, model in enumerate("abcd"):
        hits = correct_vector(difficulty, 0.60 + 0.01 * i, rng)
        for pre in ("ref", "con"):
            run = write_run(root, f"{model}-t-from-{pre}", model=model, dataset="t", role="transfer",
                            pretrain_dataset=pre, top1=100.0 * hits.mean(), val_images=300)
            write_predictions_file(run, hits)
    (t,) = analyze(collect_results([root]), n_boot=300).transfer
    images = t.noise["images"]
    assert "across both sides" in images["what"]
    assert images["kendall_tau"]["low"] == 1.0 and images["kendall_tau"]["high"] == 1.0
    assert images["fits"]["raw"]["slope"]["low"] == pytest.approx(1.0)
    assert t.evidence_x is not None and len(t.evidence_x.pairs) == 6


def _rewrite_rows(run: Path, perm: np.ndarray, index: np.ndarray | None = None) -> None:
    """The run's predictions file with its rows in another order (and, optionally, other index values), as
    another tool or a merge of per-process files may write it: same metadata, same images."""
    table = pq.read_table(run / "predictions.parquet")
    moved = table.take(perm)
    if index is not None:
        import pyarrow as pa

        moved = moved.set_column(0, "index", pa.array(index, type=pa.int64()))
    pq.write_table(moved.replace_schema_metadata(table.schema.metadata), run / "predictions.parquet")


def test_predictions_join_by_image_key_not_row_position(tmp_path: Path) -> None:
    root = _study(tmp_path / "s", {"a": (0.6, 0.4), "b": (0.7, 0.5), "c": (0.8, 0.6), "d": (0.75, 0.55)}, n=300)
    before = analyze(collect_results([root]), n_boot=300)
    rng = np.random.default_rng(3)
    _rewrite_rows(root / "b-con", rng.permutation(300))
    _rewrite_rows(root / "c-ref", rng.permutation(300), index=rng.permutation(300))  # index is not the join
    after = analyze(collect_results([root]), n_boot=300)
    for side in ("evidence_x", "evidence_y"):
        b, a = getattr(before.main, side), getattr(after.main, side)
        assert [(t.model_a, t.model_b, t.only_a, t.only_b) for t in a.pairs] == \
            [(t.model_a, t.model_b, t.only_a, t.only_b) for t in b.pairs]
        assert [t.mcnemar_p for t in a.pairs] == [t.mcnemar_p for t in b.pairs]
        assert [(t.ci_low, t.ci_high) for t in a.pairs] == [(t.ci_low, t.ci_high) for t in b.pairs]


def test_runs_covering_other_images_are_refused_with_the_counts(tmp_path: Path) -> None:
    root = _study(tmp_path / "s", {"a": (0.6, 0.4), "b": (0.7, 0.5), "c": (0.8, 0.6)}, n=200)
    hits = _hits(root / "c-con")
    keys = [f"img{i:05d}" for i in range(150)] + [f"new{i}" for i in range(50)]  # 50 images swapped
    write_predictions_file(root / "c-con", hits, keys=keys)
    with pytest.raises(InputError, match="different validation sets") as err:
        analyze(collect_results([root]), n_boot=200)
    assert "200 images" in str(err.value) and "150 image key(s) are common" in str(err.value)
    dup = [f"img{i:05d}" for i in range(199)] + ["img00000"]
    write_predictions_file(root / "c-con", hits, keys=dup)
    with pytest.raises(InputError, match="more than once"):
        analyze(collect_results([root]), n_boot=200)


def test_flip_sentences_from_stats_json_are_the_reports_bullets(tmp_path: Path) -> None:
    """Readers of a finished report (the demo's summary) word the flips exactly as report.md does."""
    from imagenot import escape
    from imagenot.analysis.config import ReportConfig
    from imagenot.analysis.pipeline import run_report
    from imagenot.analysis.wording import flip_sentences

    runs = _study(tmp_path / "runs", {"c": (0.60, 0.40), "b": (0.70, 0.505), "a": (0.80, 0.50), "d": (0.90, 0.70)})
    paths = run_report(ReportConfig(runs=(str(runs),), out=str(tmp_path / "report"), n_boot=200))
    stats_json = json.loads(Path(paths["stats"]).read_text())
    (sentence,) = flip_sentences(stats_json["main"])
    assert sentence.startswith("a is 10.0 points ahead on ref") and "significant on ref only" in sentence
    assert f"- {escape.md(sentence)}" in Path(paths["report_md"]).read_text()  # report.md escapes its text
    assert flip_sentences({}) == []
