"""The report's context from other stages' files: an audit's summary, a card's OCR count, a budget sweep."""

import json
from pathlib import Path

from imagenot.analysis.config import ReportConfig
from imagenot.analysis.pipeline import run_report

from .conftest import ZOO, write_zoo

AUDIT = {"summary": {
    "class_level": {"wnid_overlap": 0, "lemma_overlap": 0, "ancestors": 2, "descendants": 1,
                    "mean_path_distance": 4.5},
    "image_level": {"accuracy": 0.985, "ci_low": 0.96, "ci_high": 0.996, "n_test": 400, "model": "resnet_s32",
                    "best_statistic": "saturation", "best_statistic_accuracy": 0.97},
    "label_level": {"median_similarity": 0.52, "multi_lemma_share": 0.031, "label_issues": 7,
                    "label_issues_checked": 200},
}}


def test_audit_ocr_count_and_plateaus_appear_in_the_report(tmp_path: Path):
    runs = write_zoo(tmp_path / "runs", seeds=(0,), transfer=False)
    card_dir = tmp_path / "clipart-folder"
    card_dir.mkdir()
    (card_dir / "dataset.json").write_text(json.dumps({"text_filter": {
        "mode": "count", "fraction": 0.2, "checked": 150, "text_in_image": 6, "removed": 0}}))
    for result in (runs / "train").glob("*-clipart-0/result.json"):
        data = json.loads(result.read_text())
        result.write_text(json.dumps({**data, "dataset_spec": f"wds:{card_dir}"}))
    audit = tmp_path / "audit" / "audit.json"
    audit.parent.mkdir()
    audit.write_text(json.dumps(AUDIT))
    (audit.parent / "audit.md").write_text("# audit\n")
    plateau = tmp_path / "budget.json"
    # the zoo fixture puts seed 0 at 0.4 below each listed accuracy: gaps of 3.4 and 1.4
    plateau.write_text(json.dumps({"source": "a sweep", "date": "2026-12-01", "plateau": {
        "reference": {m: {"top1": ref + 3.0} for m, _, _, ref, _, _, _ in ZOO},
        "contrast": {m: {"top1": con + 1.0} for m, _, _, _, con, _, _ in ZOO}}}))
    paths = run_report(ReportConfig(runs=(str(runs),), out=str(tmp_path / "report"), audit=str(audit),
                                    plateau=str(plateau), n_boot=200))
    text = Path(paths["report_md"]).read_text()
    assert "tells the two datasets apart with 98.5% held-out accuracy (95% CI 96.0% to 99.6%" in text
    assert "2 contrast classes are WordNet ancestors and 1 descendants" in text
    assert "flags 7 of 200 validation images as likely label errors" in text
    assert "would remove 6 of 150 images checked (a seeded 20% sample), 4.0%" in text
    assert "on fashion every model is within 3.4 points of its plateau" in text
    assert "on clipart every model is within 1.4 points of its plateau" in text
    assert "| alexnet_s | 79.6 | 83.0 | +3.4 | 39.6 | 41.0 | +1.4 |" in text
    assert "](../audit/audit.md)" in text


def test_unreadable_context_files_are_notes_not_failures(tmp_path: Path):
    runs = write_zoo(tmp_path / "runs", seeds=(0,), transfer=False)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    paths = run_report(ReportConfig(runs=(str(runs),), out=str(tmp_path / "report"), audit=str(bad), n_boot=200))
    assert "could not be read" in Path(paths["report_md"]).read_text()



def test_a_sweep_of_epoch_multiples_is_stated_as_the_gain_from_more_epochs(tmp_path: Path):
    runs = write_zoo(tmp_path / "runs", seeds=(0,), transfer=False)
    sweep = tmp_path / "budget.json"
    # seed 0 sits 0.4 below each listed accuracy: gains of at most 1.4 and 2.4
    sweep.write_text(json.dumps({"source": "the sweep", "multiples": [1, 2, 4], "plateau": {
        "reference": {m: {"top1": ref + (1.0 if m == "vgg_s" else 0.0)} for m, _, _, ref, _, _, _ in ZOO},
        "contrast": {m: {"top1": con + 2.0} for m, _, _, _, con, _, _ in ZOO}}}))
    paths = run_report(ReportConfig(runs=(str(runs),), out=str(tmp_path / "report"), plateau=str(sweep),
                                    n_boot=200))
    text = Path(paths["report_md"]).read_text()
    assert "what the same model reaches with 4x these epochs" in text
    assert "on fashion every model is within 1.4 points of its 4x-epoch figure" in text
    assert "on clipart every model is within 2.4 points of its 4x-epoch figure" in text
    assert "| model | fashion top-1 | 4x the epochs | gain |" in text
