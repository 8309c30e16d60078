"""Issue 23: the demo's summary leads with the report's verdict, bounded by tau's interval and the budget sweep."""

from __future__ import annotations

import json
from pathlib import Path

from imagenot.demo.budget import plateau_file
from imagenot.demo.config import DemoConfig
from imagenot.demo.summary import build_summary, render


def test_summary_leads_with_the_reports_verdict_and_the_gain_from_4x_the_epochs(tmp_path: Path, monkeypatch) -> None:
    main = {"x_name": "fashion-mnist", "y_name": "clipart-not",
            "x": {"a": {"mean": 90.0}, "b": {"mean": 91.0}, "c": {"mean": 92.5}},
            "y": {"a": {"mean": 60.0}, "b": {"mean": 64.0}, "c": {"mean": 70.0}},
            "noise": {"images": {"kendall_tau": {"low": 0.33, "high": 1.0}}}}
    verdict = "The ranking is identical from fashion-mnist to clipart-not: Kendall tau = 1.00 over 3 models."
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "stats.json").write_text(json.dumps({"main": main, "verdict": verdict}))
    budget = tmp_path / "budget.json"
    budget.write_text(json.dumps({"multiples": [1, 2, 4], "kendall_tau": {"1": 0.6, "2": 0.73, "4": 1.0}, "plateau": {
        "reference": {"a": {"top1": 91.0}, "b": {"top1": 93.0}, "c": {"top1": 93.0}},
        "contrast": {"a": {"top1": 62.0}, "b": {"top1": 63.0}, "c": {"top1": 73.0}}}}))
    monkeypatch.setattr("imagenot.demo.summary.plateau_file", lambda cfg=None: budget)
    summary = build_summary(DemoConfig(), tmp_path, {})
    md = render({**summary, "models": [], "stages": {}, "total_s": 0.0})
    first = md.splitlines()[2]  # after the begin marker and a blank line
    assert first.startswith(f"**{verdict}**")
    assert "Kendall tau's 95% interval is 0.33 to 1.00" in first
    assert "Trained 4x as long, the models change by 0.5 to 2.0 points on Fashion-MNIST and -1.0 to 3.0 " \
           "points on clipart-not, and Kendall tau between the two rankings is 1.00 there" in first
    assert "| model | Fashion-MNIST | 4x |" in md


def test_the_shipped_budget_sweep_is_the_default_demos_and_no_other_demo_is_compared_with_it() -> None:
    """budget.json measured the default demo's budget; change the defaults without rerunning the sweep and this
    fails. A demo with other epochs, recipe or batch gets no '4x' column: those epochs were never trained."""
    shipped = plateau_file()
    assert shipped is not None
    assert plateau_file(DemoConfig()) == shipped
    data = json.loads(shipped.read_text())
    assert data["epochs"] == {"reference": DemoConfig().epochs, "contrast": DemoConfig().contrast_epochs}
    assert plateau_file(DemoConfig(epochs=DemoConfig().epochs + 1)) is None
    assert plateau_file(DemoConfig(contrast_epochs=1)) is None
    assert plateau_file(DemoConfig(batch_size=64)) is None
    assert plateau_file(DemoConfig(models=("alexnet_s32",))) is None


def test_without_a_sweep_for_its_budget_the_summary_has_no_4x_columns(tmp_path: Path) -> None:
    main = {"x_name": "fashion-mnist", "y_name": "clipart-not", "models": ["a", "b"],
            "x": {"a": {"mean": 90.0}, "b": {"mean": 91.0}}, "y": {"a": {"mean": 60.0}, "b": {"mean": 64.0}}}
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "stats.json").write_text(json.dumps({"main": main, "datasets": {
        "fashion-mnist": {"n_val": 100, "epochs": 1, "train_images": 1000},
        "clipart-not": {"n_val": 30, "epochs": 3, "train_images": 90}}}))
    summary = build_summary(DemoConfig(epochs=3), tmp_path, {})  # a budget the shipped sweep did not measure
    assert summary["plateau_multiple"] is None
    md = render(summary)
    assert "| 4x |" not in md and "plateau" not in md and "another budget: no 4x figures" in md
    assert "after 1 epoch on 1,000 training images" in md and "after 3 epochs on 90" in md
    table = md[md.index("| model |"):].splitlines()
    assert table[0].count(" | ") == 4 and table[2].count(" | ") == 4  # header and rows: 5 columns
    assert table[1].count("|") == 6
