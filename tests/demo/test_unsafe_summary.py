"""Issue 25: summary.md is rendered from the demo's outputs; names and notes in it must stay text."""

from __future__ import annotations

from imagenot.demo.summary import render


def test_summary_escapes_names_notes_and_flip_sentences() -> None:
    summary = {
        "date": "2026-01-01", "machine": "x86_64, 2 CPUs", "config": {"seeds": [0]}, "total_s": 10.0,
        "stages": {"mine": {"summary": "<img src=x onerror=alert(1)> | matched\nsecond line", "seconds": 2.0}},
        "models": [["<b>model</b>", "1.0", "2.0", "3.0", "4.0", "5.0", "a|b"]],
        "flips": ["<script>alert(1)</script> beats x"], "datasets": {
            "fashion-mnist": {"n_val": 100, "epochs": 1, "train_images": 1000},
            "clipart-not": {"n_val": 30, "epochs": 1, "train_images": 90}}, "audit": {}, "text_filter": None,
    }
    md = render(summary)
    assert "<img" not in md and "<b>" not in md and "<script" not in md
    assert "&lt;img src=x onerror=alert(1)> &#124; matched second line" in md
    rows = [line for line in md.splitlines() if line.startswith("| ")]
    assert [line.count(" | ") for line in rows] == [2, 2, 6, 6]  # headers and rows keep their columns
    assert "<!-- demo-summary:begin" in md  # the template's own markup is kept
