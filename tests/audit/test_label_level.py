"""Label level: caption similarities and cross-class mentions per class, and planted label errors found by
confident learning on a trained run's validation predictions."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from imagenot.audit.config import AuditConfig
from imagenot.audit.dataset_meta import read_sample_table
from imagenot.audit.label_issues import find_issues, label_issues, load_contrast_run, predicted_probabilities
from imagenot.audit.label_level import caption_hits, dataset_classes, label_level, mining_threshold
from imagenot.errors import InputError
from imagenot.fileio import read_json
from imagenot.wordnet.classes import ClassRow

from .conftest import ALSO_NAMES, CONTRAST_CLASSES, PER_CLASS, PLANTED, caption_of, similarity_of


def _rows(*names: str) -> list[ClassRow]:
    return [ClassRow(i, f"n0000000{i}", n, (n,), "", "", "noun.artifact") for i, n in enumerate(names)]


def test_caption_hits_follow_the_laionet_rule() -> None:
    classes = _rows("flag", "map", "ice cream")
    caps = ["flag, map!", "flags and maps", "Flag", "an (ice cream) cone", None, "flagpole map"]
    assert caption_hits(caps, classes, "laionet") == [{0, 1}, set(), set(), {2}, set(), {1}]
    assert caption_hits(["Flags", "MAPS"], classes, "relaxed") == [{0}, {1}]


def test_sample_metadata_comes_from_samples_parquet_and_the_shards(contrast_wds: Path, tmp_path: Path) -> None:
    import shutil

    bare = tmp_path / "bare"  # the same folder without samples.parquet: everything from the shards' json
    shutil.copytree(contrast_wds, bare, ignore=shutil.ignore_patterns("samples.parquet", "_work"))
    expected = {caption_of(lab, i) for lab in range(3) for i in range(PER_CLASS)}
    sizes = {(60 + 7 * i, 48 + 3 * lab) for lab in range(3) for i in range(PER_CLASS)}
    tables = [read_sample_table(root, progress_enabled=False) for root in (contrast_wds, bare)]
    for table in tables:
        assert len(table) == 3 * PER_CLASS
        assert set(table.columns["caption"]) == expected
        assert set(zip(table.columns["orig_width"], table.columns["orig_height"])) == sizes
        assert table.columns["split"].count("val") == 15
    a, b = tables[0].columns, tables[1].columns
    assert {k: v for k, v in a.items() if k != "similarity"} == {k: v for k, v in b.items() if k != "similarity"}
    assert a["similarity"] == pytest.approx(b["similarity"], abs=1e-6)  # float32 in parquet, rounded in json


def test_similarity_quantiles_and_captions_naming_another_class(contrast_wds: Path) -> None:
    table = read_sample_table(contrast_wds, progress_enabled=False)
    section = label_level(table, dataset_classes(contrast_wds), "laionet")
    assert section["images"] == 60 and section["with_caption"] == 60
    assert section["names_other_class"] == len(ALSO_NAMES)
    assert section["names_other_class_share"] == pytest.approx(len(ALSO_NAMES) / 60)
    assert section["names_own_class_share"] == 1.0
    for c in section["per_class"]:
        label = c["index"]
        sims = np.array([similarity_of(label, i) for i in range(PER_CLASS)], dtype=np.float32)
        assert c["name"] == CONTRAST_CLASSES[label][1] and c["images"] == PER_CLASS
        assert c["similarity"]["q50"] == pytest.approx(float(np.median(sims)), abs=1e-6)
        assert c["similarity"]["q00"] == pytest.approx(float(sims.min()), abs=1e-6)
        assert c["similarity"]["q100"] == pytest.approx(float(sims.max()), abs=1e-6)
        planted = [extra for (lab, _), extra in ALSO_NAMES.items() if lab == label]
        assert c["names_other_class"] == len(planted)
        assert sorted(o["name"] for o in c["other_classes_named"]) == sorted(set(planted))
    assert mining_threshold(contrast_wds) is None  # the fixture's selection records no threshold


def test_find_issues_returns_the_flipped_labels() -> None:
    rng = np.random.default_rng(0)
    truth = np.repeat(np.arange(3), 30)
    probs = np.full((90, 3), 0.05)
    probs[np.arange(90), truth] = 0.9
    probs += rng.uniform(0, 0.02, probs.shape)
    probs /= probs.sum(1, keepdims=True)
    given = truth.copy()
    flipped = [3, 40, 77]
    given[flipped] = (truth[flipped] + 1) % 3
    assert sorted(find_issues(given, probs, "prune_by_noise_rate").tolist()) == flipped
    assert find_issues(truth, probs, "prune_by_noise_rate").tolist() == []


def test_planted_label_errors_are_found_from_the_runs_predictions(contrast_wds: Path, contrast_run: Path) -> None:
    spec = f"wds:{contrast_wds}"
    run = load_contrast_run(contrast_run, spec, [w for w, _ in CONTRAST_CLASSES])
    probs, labels, keys = predicted_probabilities(run, spec, 64, enabled=False)
    assert probs.shape == (15, 3) and np.allclose(probs.sum(1), 1.0)
    # the same images, weights and normalisation as the trainer's own evaluation
    result = read_json(contrast_run / "result.json")
    assert 100 * float((probs.argmax(1) == labels).mean()) == pytest.approx(result["top1"])
    index = pq.read_table(contrast_wds / "samples.parquet", columns=["key", "source_id"])
    key_of = dict(zip(index["source_id"].to_pylist(), index["key"].to_pylist()))
    planted = {key_of[f"src-{lab}-{i}"] for lab, i in PLANTED}
    cfg = AuditConfig(eval_batch_size=64, progress=False, filter_by="prune_by_noise_rate", issue_examples=5)
    names = [n for _, n in CONTRAST_CLASSES]
    captions = {key_of[f"src-{lab}-{i}"]: caption_of(lab, i) for lab in range(3) for i in range(PER_CLASS)}
    out = label_issues(run, spec, names, cfg, captions)
    found = {e["key"] for e in out["examples"]}
    assert planted <= found, out["examples"]
    assert out["checked"] == 15 and out["count"] == len(out["examples"]) <= 5
    assert sum(p["issues"] for p in out["per_class"]) == out["count"]
    by_key = {e["key"]: e for e in out["examples"]}
    for lab, i in PLANTED:
        e = by_key[key_of[f"src-{lab}-{i}"]]
        assert e["given"] == lab and e["predicted"] == PLANTED[(lab, i)]
        assert e["caption"] == caption_of(lab, i)


def test_a_run_on_another_dataset_is_refused(contrast_wds: Path, contrast_run: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="trained on"):
        load_contrast_run(contrast_run, "synthetic", None)
    with pytest.raises(InputError, match="not finished"):
        (tmp_path / "r").mkdir()
        (tmp_path / "r" / "config.json").write_text("{}")
        load_contrast_run(tmp_path / "r", f"wds:{contrast_wds}", None)
    with pytest.raises(InputError, match="classes"):
        load_contrast_run(contrast_run, f"wds:{contrast_wds}", ["n00000001", "n00000002", "n00000003"])
    diverged = tmp_path / "diverged"
    shutil.copytree(contrast_run, diverged)
    result = read_json(diverged / "result.json")
    result.update(status="diverged", top1=None, diverged={"epoch": 1, "step": 3, "loss": "nan", "which": "train"})
    (diverged / "result.json").write_text(json.dumps(result))
    with pytest.raises(InputError, match="diverged"):  # its predictions would flag every image
        load_contrast_run(diverged, f"wds:{contrast_wds}", None)
