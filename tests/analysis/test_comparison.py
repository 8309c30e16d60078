"""`analyze` on the paper's table, a synthetic zoo with seeds and transfer, and bad or partial input."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps

from imagenot.analysis.comparison import analyze
from imagenot.analysis.results import collect_results, read_wide_csv
from imagenot.errors import InputError

from .conftest import ZOO


def _row(model: str, dataset: str, top1: float, **kw: object) -> dict:
    return {"model": model, "dataset": dataset, "top1": top1, **kw}


def _study(ref: list[float], con: list[float], names: list[str] | None = None) -> list[dict]:
    names = names or [f"m{i}" for i in range(len(ref))]
    rows = [_row(m, "ref", v, role="reference", year=2010 + i) for i, (m, v) in enumerate(zip(names, ref))]
    rows += [_row(m, "con", v, role="contrast", year=2010 + i) for i, (m, v) in enumerate(zip(names, con))]
    return rows


def test_paper_table_must_show(paper_csv: Path) -> None:
    """ImageNet ratio to AlexNet vs the ImageNot ratio column: tau 1, rho 1, R^2 0.977 +- 0.005."""
    rows = read_wide_csv(paper_csv, model_col="model", reference_col="imagenet_top1",
                         contrast_col="imagenot_ratio_to_alexnet")
    a = analyze(rows, n_boot=1000)
    main = a.main
    assert a.baseline == "AlexNet" and a.scales["imagenot_ratio_to_alexnet"]["scale"] == "ratio"
    assert main.n == 9
    assert main.rank is not None
    assert main.rank["kendall_tau"] == pytest.approx(1.0)
    assert main.rank["spearman_rho"] == pytest.approx(1.0)
    assert main.order is not None and main.order["discordant"] == 0 and main.order["pairs"] == 36
    assert main.primary_fit == "ratio"
    ratio_fit = main.fits["ratio"]
    assert ratio_fit is not None and ratio_fit["r2"] == pytest.approx(0.977, abs=0.005)
    # the ratio on the ImageNet side is computed here, from imagenet_top1 / AlexNet's imagenet_top1
    rel = main.relative
    assert rel is not None
    assert rel["x"]["ResNet-152"] == pytest.approx(78.312 / 56.522)
    assert rel["y"]["ResNet-152"] == pytest.approx(1.362)
    x = [rel["x"][m] for m in main.models]
    y = [rel["y"][m] for m in main.models]
    assert ratio_fit["slope"] == pytest.approx(sps.linregress(x, y).slope)
    assert main.fits["logit"] is None and main.fits["probit"] is None  # a ratio is not an accuracy
    boot = main.bootstrap
    assert boot is not None and boot["resample"] == "models" and boot["fit"] == "ratio"
    assert boot["kendall_tau"]["low"] == pytest.approx(1.0)
    assert boot["r2"]["low"] < ratio_fit["r2"] < boot["r2"]["high"] <= 1.0
    assert any("one run per model" in c for c in main.caveats)
    assert a.order[:3] == ["AlexNet", "VGG-19", "Inception V3"]  # publication order, ties in input order


def test_zoo_with_seeds_and_transfer(zoo_dir: Path) -> None:
    a = analyze(collect_results([zoo_dir]), n_boot=500)
    assert (a.reference, a.contrast, a.baseline) == ("fashion", "clipart", "alexnet_s")
    main = a.main
    assert main.models == [m[0] for m in ZOO]
    assert main.x["vgg_s"]["n"] == 3
    assert main.x["vgg_s"]["mean"] == pytest.approx(84.0)
    assert main.x["vgg_s"]["sd"] == pytest.approx(np.std([83.6, 84.1, 84.3], ddof=1))
    # one flip (resnet_s vs densenet_s) among 15 pairs: tau = (14 - 1) / 15
    assert main.rank is not None and main.rank["kendall_tau"] == pytest.approx(13 / 15)
    assert main.order is not None
    assert [(f["better_on_x"], f["better_on_y"]) for f in main.order["flips"]] == [("densenet_s", "resnet_s")]
    assert main.order["flips"][0]["within_noise"] is False  # 1 point apart, seed sd 0.36 each
    ref_means = [m[3] for m in ZOO]
    con_means = [m[4] for m in ZOO]
    fit = main.fits["raw"]
    assert fit is not None and fit["slope"] == pytest.approx(sps.linregress(ref_means, con_means).slope)
    logit = main.fits["logit"]
    lx = np.log(np.array(ref_means) / (100 - np.array(ref_means)))
    ly = np.log(np.array(con_means) / (100 - np.array(con_means)))
    assert logit is not None and logit["slope"] == pytest.approx(sps.linregress(lx, ly).slope)
    probit = main.fits["probit"]
    assert probit is not None
    assert probit["r2"] == pytest.approx(sps.linregress(sps.norm.ppf(np.array(ref_means) / 100),
                                                        sps.norm.ppf(np.array(con_means) / 100)).rvalue ** 2)
    assert main.bootstrap is not None and main.bootstrap["resample"] == "both"
    rel = main.relative
    assert rel is not None
    assert rel["y"]["convnext_s"] == pytest.approx(52.0 / 40.0)
    assert rel["steps"][2] == {"from": "resnet_s", "to": "densenet_s", "x": pytest.approx(89 / 88 - 1),
                               "y": pytest.approx(46 / 47 - 1)}
    assert rel["steps_same_sign"] == 4 and rel["steps_total"] == 5
    assert rel["correlation"]["r"] == pytest.approx(sps.pearsonr(
        np.array(ref_means) / 80.0, np.array(con_means) / 40.0).statistic)
    (t,) = a.transfer
    assert t.target == "animals" and t.n == 6
    assert t.x["vgg_s"]["mean"] == pytest.approx(64.0) and t.y["vgg_s"]["mean"] == pytest.approx(53.0)
    tfit = t.fits["raw"]
    assert tfit is not None
    assert tfit["slope"] == pytest.approx(sps.linregress([m[5] for m in ZOO], [m[6] for m in ZOO]).slope)
    assert t.rank is not None and t.rank["kendall_tau"] == pytest.approx(13 / 15)


def test_model_on_one_side_is_reported_and_left_out() -> None:
    rows = _study([60, 70, 80, 90], [30, 35, 40, 45], ["alexnet", "b", "c", "d"])
    rows.append(_row("e", "ref", 95.0, role="reference", year=2020))
    rows.append(_row("f", "con", 10.0, role="contrast", year=2021))
    a = analyze(rows, n_boot=200)
    assert a.main.models == ["alexnet", "b", "c", "d"]
    assert a.main.only_x == ["e"] and a.main.only_y == ["f"]
    assert any("left out of the paired statistics: e" in n for n in a.main.notes)
    assert a.main.rank is not None and a.main.rank["kendall_tau"] == pytest.approx(1.0)
    assert any("only 4 paired models" in w for w in a.main.weak)


def test_fewer_than_three_paired_models_omit_statistics_without_error() -> None:
    a = analyze(_study([60, 70], [30, 35]), n_boot=200)
    assert a.main.n == 2
    assert a.main.rank is None and a.main.fits["raw"] is None and a.main.bootstrap is None
    assert a.main.order is not None and a.main.order["concordant"] == 1
    assert any("need at least 3" in n for n in a.main.notes)
    one = analyze(_study([60], [30]), n_boot=200)
    assert one.main.n == 1 and one.main.order is None


def test_nan_runs_and_duplicates() -> None:
    rows = _study([60, 70, 80, 90], [30, 35, 40, 45])
    rows.append(_row("m1", "con", float("nan"), role="contrast", seed=9))
    rows.append(dict(rows[0]))  # exact duplicate
    a = analyze(rows, n_boot=200)
    assert any("counted once" in n for n in a.notes)
    assert any("m1 on con seed 9" in n for n in a.notes)
    assert a.main.x["m0"]["n"] == 1 and a.main.y["m1"]["n"] == 1
    conflict = _study([60, 70, 80], [30, 35, 40]) + [_row("m0", "ref", 61.0, role="reference", year=2010)]
    with pytest.raises(InputError, match="conflicting duplicate.*m0 on ref"):
        analyze(conflict)
    first = analyze(conflict, duplicates="first", n_boot=200)
    last = analyze(conflict, duplicates="last", n_boot=200)
    assert first.main.x["m0"]["mean"] == 60.0 and last.main.x["m0"]["mean"] == 61.0
    with pytest.raises(InputError, match="no usable results"):
        analyze([_row("a", "ref", float("nan"), role="reference")])


def test_roles_missing_need_names() -> None:
    rows = [_row(m, d, v) for m, d, v in [("a", "x", 60), ("b", "x", 70), ("c", "x", 80),
                                             ("a", "y", 30), ("b", "y", 40), ("c", "y", 35)]]
    with pytest.raises(InputError, match="no run has role 'reference'.*datasets: x, y"):
        analyze(rows)
    a = analyze(rows, reference="x", contrast="y", n_boot=200)
    assert a.main.rank is not None and a.main.rank["kendall_tau"] == pytest.approx(1 / 3)
    assert any("p = " in w for w in a.main.weak)  # not significant: said so
    with pytest.raises(InputError, match="no reference dataset 'z'"):
        analyze(rows, reference="z", contrast="y")
    with pytest.raises(InputError, match="same dataset"):
        analyze(rows, reference="x", contrast="x")


def test_baseline_choice() -> None:
    rows = _study([60, 70, 80], [30, 35, 40], ["ResNet", "AlexNet-S", "ViT"])
    assert analyze(rows, n_boot=200).baseline == "AlexNet-S"
    assert analyze(rows, baseline="resnet", n_boot=200).baseline == "ResNet"  # case-insensitive
    with pytest.raises(InputError, match="baseline model 'lenet' not found; models: ResNet, AlexNet-S, ViT"):
        analyze(rows, baseline="lenet")
    fallback = analyze(_study([60, 70, 80], [30, 35, 40], ["p", "q", "r"]), n_boot=200)
    assert fallback.baseline == "p" and any("No AlexNet-family" in n for n in fallback.notes)


def test_fractions_are_detected_and_declared_scales_checked() -> None:
    rows = _study([0.6, 0.7, 0.8], [30, 35, 45])
    a = analyze(rows, n_boot=200)
    assert a.scales["ref"]["scale"] == "fraction"
    assert a.main.x["m0"]["mean"] == pytest.approx(60.0)  # shown in percent
    assert any("read as fractions" in n for n in a.notes)
    with pytest.raises(InputError, match="declared as fractions but has values above 1"):
        analyze(rows, scales={"con": "fraction"})
    with pytest.raises(InputError, match="unknown scale"):
        analyze(rows, scales={"con": "permille"})
    with pytest.raises(InputError, match="unknown dataset"):
        analyze(rows, scales={"imagenet": "percent"})


def test_ties_in_accuracy() -> None:
    a = analyze(_study([60, 70, 70, 80, 90], [30, 35, 36, 40, 40]), n_boot=200)
    r = a.main.rank
    assert r is not None
    x, y = [60, 70, 70, 80, 90], [30, 35, 36, 40, 40]
    assert r["kendall_tau"] == pytest.approx(sps.kendalltau(x, y).statistic)
    assert a.main.order is not None and a.main.order["ties"] == 2 and a.main.order["discordant"] == 0


def test_stats_json_ready(zoo_dir: Path) -> None:
    rows = collect_results([zoo_dir])
    rows.append({"model": "lonely", "dataset": "fashion", "role": "reference", "top1": float("nan")})
    data = analyze(rows, n_boot=200).to_dict()
    import json

    text = json.dumps(data, allow_nan=False)  # NaN became null
    assert "origin" not in data["rows"][0] and data["rows"][0]["source"] == "trained"
    assert json.loads(text)["main"]["rank"]["kendall_tau"] == pytest.approx(13 / 15)
    assert math.isclose(data["main"]["x"]["vgg_s"]["mean"], 84.0)


def test_flip_within_seed_noise() -> None:
    rows = []
    # b and c flip; on the reference they differ by 0.2 with seed sd ~0.7: within noise
    for model, ref, con in (("a", [50, 51], [20, 21]), ("b", [60, 61], [35, 36]), ("c", [60.2, 61.2], [30, 31]),
                            ("d", [70, 71], [40, 41])):
        for seed, (r, c) in enumerate(zip(ref, con)):
            rows.append(_row(model, "ref", r, role="reference", seed=seed))
            rows.append(_row(model, "con", c, role="contrast", seed=seed))
    a = analyze(rows, n_boot=200)
    assert a.main.order is not None
    (flip,) = a.main.order["flips"]
    assert (flip["better_on_x"], flip["better_on_y"]) == ("c", "b")
    assert flip["within_noise"] is True  # |60.7 - 60.5| = 0.2 < sqrt(0.707^2 + 0.707^2) = 1
    single = analyze(_study([60, 70, 80], [30, 45, 40]), n_boot=200)
    assert single.main.order is not None and single.main.order["flips"][0]["within_noise"] is None
