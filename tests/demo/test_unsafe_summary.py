"""Issue 25: summary.md is rendered from the demo's outputs; names and notes in it must stay text."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from imagenot.demo.summary import BEGIN, END, render

REPO = Path(__file__).resolve().parents[2]


def _summary() -> dict:
    return {
        "date": "2026-01-01", "machine": "x86_64, 2 CPUs", "config": {"seeds": [0]}, "total_s": 10.0,
        "stages": {"mine": {"summary": "<img src=x onerror=alert(1)> | matched\nsecond line", "seconds": 2.0}},
        "models": [["<b>model</b>", "1.0", "2.0", "3.0", "4.0", "5.0", "a|b"]],
        "flips": ["<script>alert(1)</script> beats x"], "plateau_multiple": 4, "datasets": {
            "fashion-mnist": {"n_val": 100, "epochs": 1, "train_images": 1000},
            "clipart-not": {"n_val": 30, "epochs": 1, "train_images": 90}}, "audit": {}, "text_filter": None,
    }


def test_summary_escapes_names_notes_and_flip_sentences() -> None:
    md = render(_summary())
    assert "<img" not in md and "<b>" not in md and "<script" not in md
    assert "&lt;img src=x onerror=alert(1)> &#124; matched second line" in md
    rows = [line for line in md.splitlines() if line.startswith("| ")]
    assert [line.count(" | ") for line in rows] == [2, 2, 6, 6]  # headers and rows keep their columns
    assert "<!-- demo-summary:begin" in md  # the template's own markup is kept


def test_update_readme_renders_the_summary_again_instead_of_copying_raw_markdown(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("update_readme", REPO / "scripts" / "update_readme.py")
    update_readme = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(update_readme)
    demo = tmp_path / "demo-out"
    (demo / "report" / "plots").mkdir(parents=True)
    (demo / "report" / "plots" / "scatter.png").write_bytes(b"\x89PNG fake")
    (demo / "summary.json").write_text(json.dumps(_summary()))
    (demo / "summary.md").write_text(f"{BEGIN}\n<script>alert('hand-edited')</script>\n{END}\n")
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n\n{BEGIN}\nold\n{END}\n\nafter\n")
    assert update_readme.update(demo, readme, tmp_path / "docs") == 0
    text = readme.read_text()
    assert "<script" not in text and "<b>" not in text and "&lt;b>model&lt;/b>" in text
    assert text == "intro\n\n" + render(_summary()).strip() + "\n\nafter\n"
    (demo / "summary.json").write_text("{not json")
    assert update_readme.update(demo, readme, tmp_path / "docs") == 2  # refused, README untouched
    assert readme.read_text() == text


def test_summary_words_flips_with_the_reports_sentences(tmp_path: Path) -> None:
    """The demo's summary takes its flip sentences from the analysis (one wording), from stats.json."""
    from imagenot.analysis.wording import flip_sentences
    from imagenot.demo.config import DemoConfig
    from imagenot.demo.summary import build_summary

    main = {"x_name": "fashion-mnist", "y_name": "clipart-not", "flip_support": [
        {"better_on_x": "vgg_s", "better_on_y": "resnet_s", "diff_x": 2.5, "diff_y": -4.0, "p_x": 0.01,
         "p_y": 0.2, "significant_x": True, "significant_y": False, "support": "one"}]}
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "stats.json").write_text(json.dumps({"main": main}))
    flips = build_summary(DemoConfig(), tmp_path, {})["flips"]
    assert flips == flip_sentences(main)
    assert flips == ["vgg_s is 2.5 points ahead on fashion-mnist (p = 0.01); resnet_s is 4.0 points ahead on "
                     "clipart-not (p = 0.2): significant on fashion-mnist only; on clipart-not the two cannot be "
                     "told apart, so the flip is not supported."]
