"""The bounded-memory selection (DuckDB over the matches folder) returns exactly the rows of the in-memory rule
it replaced (tests/mining/select_reference.py), and the class-choice option draws eligible classes by seed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from imagenot.mining.config import SelectionParams
from imagenot.mining.resolve import MATCH_SCHEMA
from imagenot.mining.selection import select, select_folder
from imagenot.wordnet.classes import ClassRow

from .mine_helpers import make_classes
from .select_reference import read_matches, reference_select

CLASSES = make_classes([(f"c{i}", (f"lemma{i}",), f"thing {i}") for i in range(6)])


def _row(sid: str | None, url: str | None, cls: int, sim: float | None, **extra: Any) -> dict[str, Any]:
    return {"source_id": sid, "url": url, "caption": f"a lemma{cls} {sid}", "wnid": CLASSES[cls].wnid,
            "lemma": f"lemma{cls}", "similarity": sim, **extra}


def _write_shards(folder: Path, shards: list[list[dict[str, Any]]], extra: pa.Schema | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    schema = pa.schema([*MATCH_SCHEMA, *(extra or [])])
    for i, rows in enumerate(shards):
        pq.write_table(pa.Table.from_pylist(rows, schema=schema), folder / f"shard-{i:03d}.parquet")
    return folder


def _both(tmp: Path, matches_dir: Path, params: SelectionParams, threshold: float | None,
          classes: list[ClassRow] = CLASSES) -> tuple[pa.Table, pa.Table, dict[str, Any], dict[str, Any]]:
    """(new rows, reference rows, new report, reference report) for one folder and one set of parameters."""
    matches, dups = read_matches(matches_dir)
    ref_final, ref_rows, ref_report = reference_select(matches, classes, params, threshold)
    ref_report["duplicate_ids"] = dups
    out = tmp / f"sel-{len(list(tmp.iterdir()))}"
    final, report = select_folder(matches_dir, classes, params, threshold, out, memory_mb=128)
    rows = pq.read_table(out / "selected.parquet").replace_schema_metadata(None)
    assert [(c.wnid, c.index, c.lemmas) for c in final] == [(c.wnid, c.index, c.lemmas) for c in ref_final]
    assert not list(out.glob(".select-*"))  # the spill folder is gone
    return rows, ref_rows.replace_schema_metadata(None), report, ref_report


def _assert_same(tmp: Path, matches_dir: Path, params: SelectionParams, threshold: float | None = None) -> pa.Table:
    rows, ref_rows, report, ref_report = _both(tmp, matches_dir, params, threshold)
    assert rows.schema == ref_rows.schema
    assert rows.to_pylist() == ref_rows.to_pylist()
    assert report == ref_report
    return rows


def _ties_and_duplicates() -> list[list[dict[str, Any]]]:
    """Three shards: equal similarities (ties by source_id, then shard order), the same (source_id, url) in
    several shards with different similarities (the best copy wins, ties: the first), a class without any
    similarity, a small class, and null ids."""
    a = [_row(s, f"http://a/{s}", 0, sim) for s, sim in [("e", 0.5), ("b", 0.5), ("d", 0.9), ("a", 0.5),
                                                          ("c", None), ("f", 0.1)]]
    a += [_row(f"z{j:02d}", f"http://z/{j}", 1, None) for j in range(15)]
    a += [_row(f"m{j}", f"http://m/{j}", 2, round(0.2 + 0.05 * (j % 7), 2)) for j in range(20)]
    b = [_row("a", "http://a/a", 0, 0.95), _row("b", "http://a/b", 0, 0.5), _row("m3", "http://m/3", 2, 0.1)]
    b += [_row(f"n{j}", f"http://n/{j}", 3, 0.4) for j in range(3)]
    b += [_row(None, None, 2, 0.7), _row(None, "http://m/none", 2, 0.7), _row("", None, 2, 0.3)]
    c = [_row("d", "http://a/d", 0, 0.9), _row("x1", "http://a/x1", 0, 0.5), _row("m5", "http://m/5", 4, 0.99)]
    c += [_row(f"w{j}", f"http://w/{j}", 5, 0.6 - 0.01 * j) for j in range(9)]
    return [a, b, c]


@pytest.mark.parametrize("params", [
    SelectionParams(),
    SelectionParams(max_per_class=4, cap="top"),
    SelectionParams(max_per_class=4, cap="random", seed=7),
    SelectionParams(max_per_class=5, cap="top", oversample=1.4, val_per_class=2, seed=3),
    SelectionParams(max_per_class=5, cap="random", oversample=1.4, val_per_class=2, seed=3),
    SelectionParams(num_classes=3, min_matches_per_class=6, val_per_class=1, max_val_fraction=0.3),
    SelectionParams(min_matches_per_class=50),  # no class is eligible: an empty selection
], ids=["defaults", "top-cap", "random-cap", "top-oversample-val", "random-oversample-val", "top-n-min-k",
        "nothing-eligible"])
def test_ties_duplicates_across_shards_caps_and_splits_match_the_old_rule(tmp_path: Path, params: SelectionParams
                                                                          ) -> None:
    matches_dir = _write_shards(tmp_path / "matches", _ties_and_duplicates())
    rows = _assert_same(tmp_path, matches_dir, params)
    if params.max_per_class == 4 and params.cap == "top":  # the tie order itself, not only agreement
        c0 = [r["source_id"] for r in rows.to_pylist() if r["wnid"] == CLASSES[0].wnid]
        assert c0 == ["a", "d", "b", "e"]  # a's best copy (0.95, shard 1), d (0.9, once), b and e tie at 0.5


def test_threshold_and_classes_below_the_minimum_match_the_old_rule(tmp_path: Path) -> None:
    matches_dir = _write_shards(tmp_path / "matches", _ties_and_duplicates())
    for threshold in (0.45, 0.0, 0.9):
        _assert_same(tmp_path, matches_dir, SelectionParams(min_matches_per_class=3, max_per_class=6,
                                                            val_per_class=1), threshold)


def test_no_embed_matches_without_similarities_match_the_old_rule(tmp_path: Path) -> None:
    shards = [[{**r, "similarity": None} for r in shard] for shard in _ties_and_duplicates()]
    matches_dir = _write_shards(tmp_path / "matches", shards)
    for params in (SelectionParams(max_per_class=3), SelectionParams(max_per_class=3, cap="random", seed=4,
                                                                     val_per_class=1)):
        rows = _assert_same(tmp_path, matches_dir, params, threshold=0.5)  # a threshold without scores: no-op
        assert rows["similarity"].null_count == rows.num_rows


def test_kept_corpus_columns_travel_and_a_shard_without_them_gives_nulls(tmp_path: Path) -> None:
    extra = pa.schema([("corpus_pwatermark", pa.float64())])
    shards = _ties_and_duplicates()
    shards[0] = [{**r, "corpus_pwatermark": 0.25} for r in shards[0]]
    folder = tmp_path / "matches"
    _write_shards(folder, shards[:1], extra)
    pq.write_table(pa.Table.from_pylist(shards[1], schema=MATCH_SCHEMA), folder / "shard-001.parquet")
    rows = _assert_same(tmp_path, folder, SelectionParams(max_per_class=5, val_per_class=1))
    assert set(rows["corpus_pwatermark"].to_pylist()) == {0.25, None}


def _random_shards(rng: np.random.Generator, n_shards: int) -> list[list[dict[str, Any]]]:
    shards = []
    for _ in range(n_shards):
        rows = []
        for _ in range(int(rng.integers(0, 120))):
            k = int(rng.integers(0, 60))  # a small id space: duplicates within and across shards
            sim = None if rng.random() < 0.1 else round(float(rng.uniform(-0.2, 1.0)), 1)  # ties
            rows.append(_row(f"s{k}", f"http://r/{k % 45}", int(rng.integers(0, 6)), sim))
        shards.append(rows)
    return shards


@pytest.mark.parametrize("seed", range(6))
def test_random_tables_match_the_old_rule(tmp_path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    matches_dir = _write_shards(tmp_path / "matches", _random_shards(rng, int(rng.integers(1, 5))))
    params = SelectionParams(
        num_classes=[None, 2, 4][seed % 3], min_matches_per_class=int(rng.integers(1, 8)),
        max_per_class=[None, 3, 10][int(rng.integers(0, 3))], cap=["top", "random"][seed % 2], seed=seed,
        val_per_class=int(rng.integers(0, 3)), oversample=[1.0, 1.4][int(rng.integers(0, 2))])
    _assert_same(tmp_path, matches_dir, params, threshold=[None, 0.3][int(rng.integers(0, 2))])


def test_in_memory_select_is_the_same_rule(tmp_path: Path) -> None:
    """`select` over a table (tests, small inputs) and `select_folder` over the shards agree."""
    matches_dir = _write_shards(tmp_path / "matches", _ties_and_duplicates())
    matches, _ = read_matches(matches_dir)
    params = SelectionParams(max_per_class=4, cap="random", val_per_class=1, seed=5)
    _, table, report = select(matches, CLASSES, params, None)
    final, folder_report = select_folder(matches_dir, CLASSES, params, None, tmp_path / "out")
    assert table.to_pylist() == pq.read_table(tmp_path / "out" / "selected.parquet").to_pylist()
    assert {k: v for k, v in report.items() if k != "duplicate_ids"} == \
        {k: v for k, v in folder_report.items() if k != "duplicate_ids"}


def _sizes_folder(tmp: Path) -> Path:
    """Six classes of 3, 5, 8, 13, 21 and 34 rows."""
    rows = [_row(f"{c}-{j}", f"http://s/{c}/{j}", c, j / 40) for c, n in enumerate((3, 5, 8, 13, 21, 34))
            for j in range(n)]
    return _write_shards(tmp / "matches", [rows[::2], rows[1::2]])


def _chosen(tmp: Path, **kw: Any) -> list[str]:
    params = SelectionParams(num_classes=3, min_matches_per_class=5, class_choice="random", **kw)
    final, report = select_folder(_sizes_folder(tmp), CLASSES, params, None, tmp / f"out-{kw}")
    assert report["params"]["class_choice"] == "random"
    assert sorted(report["per_class"]) == sorted(c.wnid for c in final)
    return [c.wnid for c in final]


def test_random_class_choice_is_seeded_and_draws_only_eligible_classes(tmp_path: Path) -> None:
    eligible = {c.wnid for c in CLASSES[1:]}  # 5 or more rows
    draws = {seed: _chosen(tmp_path, seed=seed) for seed in range(6)}
    assert _chosen(tmp_path, seed=0) == draws[0]  # same seed, same classes
    assert len({tuple(d) for d in draws.values()}) > 1  # other seeds, other classes
    for d in draws.values():
        assert len(d) == 3 and set(d) <= eligible
    most = select_folder(_sizes_folder(tmp_path), CLASSES, SelectionParams(num_classes=3, min_matches_per_class=5),
                         None, tmp_path / "most")[0]
    assert [c.wnid for c in most] == [c.wnid for c in CLASSES[3:]]  # the default is unchanged: the largest


def test_random_class_choice_keeps_every_eligible_class_when_there_are_at_most_n(tmp_path: Path) -> None:
    params = SelectionParams(num_classes=10, min_matches_per_class=20, class_choice="random", seed=1)
    final, _ = select_folder(_sizes_folder(tmp_path), CLASSES, params, None, tmp_path / "out")
    assert [c.wnid for c in final] == [CLASSES[4].wnid, CLASSES[5].wnid]


def _mine_folder(tmp: Path) -> Path:
    from imagenot.wordnet.classes import write_classes

    mine = tmp / "mine"
    _sizes_folder(mine)
    write_classes(mine / "mined_classes.tsv", CLASSES)
    return mine


def test_select_command_records_the_class_choice_and_streams_into_its_folder(tmp_path: Path) -> None:
    from imagenot.fileio import read_json
    from imagenot.mining.config import SelectConfig
    from imagenot.mining.pipeline import run_select

    mine = _mine_folder(tmp_path)
    cfg = SelectConfig(mine_dir=str(mine), out=str(tmp_path / "out"), num_classes=2, min_matches_per_class=5,
                       class_choice="random", seed=3, max_per_class=4, val_per_class=1, selection_memory_mb=64,
                       selection_temp_dir=str(tmp_path / "spill"))
    final, report = run_select(cfg)
    written = read_json(tmp_path / "out" / "selection.json")
    assert written["params"]["class_choice"] == "random" and written["params"]["seed"] == 3
    rows = pq.read_table(tmp_path / "out" / "selected.parquet")
    assert rows.num_rows == report["rows"] == 8
    assert set(rows["wnid"].to_pylist()) == {c.wnid for c in final} <= {c.wnid for c in CLASSES[1:]}
    assert list((tmp_path / "spill").iterdir()) == []  # the spill folder's contents are removed


def test_select_settings_are_checked(tmp_path: Path) -> None:
    from imagenot.errors import ImagenotError
    from imagenot.mining.config import SelectConfig
    from imagenot.mining.pipeline import run_select

    mine = _mine_folder(tmp_path)
    with pytest.raises(ImagenotError, match="--selection-memory-mb"):
        run_select(SelectConfig(mine_dir=str(mine), selection_memory_mb=16))
    with pytest.raises(ImagenotError, match="--class-choice"):
        run_select(SelectConfig(mine_dir=str(mine), class_choice="largest"))  # type: ignore[arg-type]
