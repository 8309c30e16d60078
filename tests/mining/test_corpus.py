"""Corpus readers: parquet, csv, tsv, jsonl and .gz; files, folders, globs; configurable columns."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from imagenot.errors import InputError
from imagenot.mining.corpus import Columns, check_columns, list_shards, read_batches

from .mine_helpers import write_parquet

TEXTS = ["a dog", "a cat", "New York, at night", 'quoted "sea", with comma']


def _rows(shard, columns=Columns(), batch_rows=3) -> list[dict]:
    out = []
    for b in read_batches(shard, columns, batch_rows):
        out += b.table.to_pylist()
    return out


def _write_all_formats(root: Path) -> None:
    table = pa.table({"SAMPLE_ID": [f"id{i}" for i in range(4)], "URL": [f"http://x/{i}" for i in range(4)],
                      "TEXT": TEXTS, "extra": [1, 2, 3, 4]})
    write_parquet(root / "a.parquet", TEXTS, ids=[f"id{i}" for i in range(4)], urls=[f"http://x/{i}" for i in range(4)])
    pacsv.write_csv(table, root / "b.csv")
    with gzip.open(root / "c.csv.gz", "wb") as fh:
        pacsv.write_csv(table, fh)
    with open(root / "d.tsv", "w") as fh:
        fh.write("SAMPLE_ID\tURL\tTEXT\n")
        for i, t in enumerate(TEXTS):
            fh.write(f"id{i}\thttp://x/{i}\t{t}\n")
    lines = "".join(json.dumps({"SAMPLE_ID": f"id{i}", "URL": f"http://x/{i}", "TEXT": t}) + "\n"
                    for i, t in enumerate(TEXTS))
    (root / "e.jsonl").write_text(lines)
    with gzip.open(root / "f.jsonl.gz", "wt") as fh:
        fh.write(lines)


def test_every_format_reads_the_same_rows(tmp_path: Path) -> None:
    _write_all_formats(tmp_path)
    shards = list_shards(str(tmp_path))
    assert [(s.name, s.format) for s in shards] == [("a", "parquet"), ("b", "csv"), ("c", "csv"), ("d", "tsv"),
                                                   ("e", "jsonl"), ("f", "jsonl")]
    for shard in shards:
        rows = _rows(shard)
        texts = [r["TEXT"].decode() if isinstance(r["TEXT"], bytes) else r["TEXT"] for r in rows]
        assert texts == TEXTS, shard.name
        assert [r["SAMPLE_ID"] for r in rows] == [f"id{i}" for i in range(4)]
        assert "extra" not in rows[0]  # only the mining columns are read


def test_batches_are_bounded_and_carry_their_row_offset(tmp_path: Path) -> None:
    write_parquet(tmp_path / "big.parquet", [f"caption {i}" for i in range(10)])
    batches = list(read_batches(list_shards(str(tmp_path))[0], Columns(), 4))
    assert [b.table.num_rows for b in batches] == [4, 4, 2]
    assert [b.row_start for b in batches] == [0, 4, 8]


def test_glob_and_single_file(tmp_path: Path) -> None:
    _write_all_formats(tmp_path)
    assert [s.name for s in list_shards(str(tmp_path / "*.jsonl*"))] == ["e", "f"]
    assert [s.name for s in list_shards(str(tmp_path / "d.tsv"))] == ["d"]
    assert list_shards(str(tmp_path / "b.csv"), "tsv")[0].format == "tsv"
    with pytest.raises(InputError, match="no such file"):
        list_shards(str(tmp_path / "nothing-*.parquet"))


def test_missing_columns_name_what_is_missing_and_what_was_found(tmp_path: Path) -> None:
    write_parquet(tmp_path / "a.parquet", ["x"])
    shard = list_shards(str(tmp_path))[0]
    with pytest.raises(InputError) as err:
        check_columns(shard, Columns(text="caption", url="URL"))
    msg = str(err.value)
    assert "missing column(s) caption" in msg and "found SAMPLE_ID, URL, TEXT, NSFW" in msg
    assert "a.parquet" in msg
    # optional columns may be absent: reported, not an error
    assert check_columns(shard, Columns(id="key", safety="")) == ["key"]


def test_custom_column_names(tmp_path: Path) -> None:
    (tmp_path / "x.jsonl").write_text(json.dumps({"caption": "a dog", "link": "http://y", "key": 7}) + "\n")
    rows = _rows(list_shards(str(tmp_path))[0], Columns(text="caption", url="link", id="key", safety="unsafe"))
    assert rows == [{"caption": "a dog", "link": "http://y", "key": "7"}]
