"""Issue 23: the demo's summary leads with the report's verdict, bounded by tau's interval and the budget sweep."""

from __future__ import annotations

import json
from pathlib import Path

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
    monkeypatch.setattr("imagenot.demo.summary.plateau_file", lambda: budget)
    summary = build_summary(DemoConfig(), tmp_path, {})
    md = render({**summary, "models": [], "stages": {}, "total_s": 0.0})
    first = md.splitlines()[2]  # after the begin marker and a blank line
    assert first.startswith(f"**{verdict}**")
    assert "Kendall tau's 95% interval is 0.33 to 1.00" in first
    assert "Trained 4x as long, the models change by 0.5 to 2.0 points on Fashion-MNIST and -1.0 to 3.0 " \
           "points on clipart-not, and Kendall tau between the two rankings is 1.00 there" in first
    assert "| model | Fashion-MNIST | 4x |" in md
