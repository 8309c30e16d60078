"""Bad rows are counted and skipped; a bad shard is reported and the others go on; nothing half-written."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from imagenot.fileio import read_json

from .mine_helpers import run_cli, write_parquet


def _mine(tmp_path: Path, corpus: Path, classes: Path, *extra: str) -> dict:
    out = tmp_path / "out"
    run_cli(["mine", "--corpus", str(corpus), "--classes", str(classes), "--out", str(out), "--no-embed",
             "--workers", "1", "--no-select", *extra])
    return read_json(out / "mine_stats.json")


def test_parquet_bad_captions_are_counted(tmp_path: Path, animal_classes: Path) -> None:
    texts = [b"a dog", None, b"", b"   ", b"\xff\xfe a dog", b"a dog " + b"x" * 2_000_000, b"a sea", b"a cat"]
    corpus = write_parquet(tmp_path / "c" / "p.parquet", texts, text_type=pa.binary(),
                           ids=["1", "2", "3", "4", "5", "6", "1", None],
                           urls=[f"https://x/{i}.jpg" for i in range(6)] + ["https://x/0.jpg", "https://x/7.jpg"])
    stats = _mine(tmp_path, corpus, animal_classes)
    assert stats["rows_read"] == 8
    assert stats["null_captions"] == 1
    assert stats["empty_captions"] == 2
    assert stats["invalid_utf8"] == 1
    assert stats["oversized_captions"] == 1
    assert stats["duplicate_ids"] == 1  # ("1", https://x/0.jpg) twice: one image, counted once
    rows = pq.read_table(tmp_path / "out" / "matches" / "p.parquet").to_pylist()
    assert [(r["source_id"], r["caption"]) for r in rows] == [("1", "a dog"), ("1", "a sea"), ("p:7", "a cat")]
    assert stats["matched"] == 2  # null id -> shard:row; the duplicate is resolved after scoring


def test_non_string_captions_and_bad_lines_in_jsonl(tmp_path: Path, animal_classes: Path) -> None:
    ok = {"NSFW": "UNLIKELY"}
    lines = [json.dumps({"TEXT": "a dog", "URL": "http://x/1", "SAMPLE_ID": "a", **ok}).encode(),
             json.dumps({"TEXT": 42, "URL": "http://x/2", "SAMPLE_ID": "b", **ok}).encode(),
             json.dumps({"TEXT": ["dog"], "URL": "http://x/3", "SAMPLE_ID": "c", **ok}).encode(),
             b'{"TEXT": "a dog", "URL": "http://x/4", "SAMP',  # truncated line
             b'{"TEXT": "a dog \xff", "URL": "http://x/5"}',  # not UTF-8
             json.dumps({"TEXT": None, "URL": "http://x/6", "SAMPLE_ID": "f", **ok}).encode(),
             json.dumps({"TEXT": "the sea", "URL": None, "SAMPLE_ID": "g", **ok}).encode(),
             json.dumps({"TEXT": "the sea", "URL": "file:///etc/passwd", "SAMPLE_ID": "h", **ok}).encode(),
             json.dumps({"TEXT": "the sea", "URL": "https://x/9", "SAMPLE_ID": "i", "NSFW": "NSFW"}).encode(),
             json.dumps({"TEXT": "the sea", "URL": "https://x/10", "SAMPLE_ID": "j"}).encode()]
    path = tmp_path / "c" / "s.jsonl.gz"
    path.parent.mkdir()
    with gzip.open(path, "wb") as fh:
        fh.write(b"\n".join(lines) + b"\n")
    stats = _mine(tmp_path, path, animal_classes)
    assert stats["rows_read"] == 10
    assert stats["non_string_captions"] == 2
    assert stats["malformed_rows"] == 1
    assert stats["invalid_utf8"] == 1
    assert stats["null_captions"] == 1
    assert stats["null_urls"] == 1
    assert stats["url_refused"] == 1  # file:// in a corpus not declared local
    assert stats["safety_dropped"] == 2  # an NSFW value, and a row without one (not UNLIKELY)
    rows = pq.read_table(tmp_path / "out" / "matches" / "s.parquet").to_pylist()
    assert [r["source_id"] for r in rows] == ["a"]


def test_local_corpus_keeps_file_urls_and_keep_nsfw(tmp_path: Path, animal_classes: Path) -> None:
    corpus = write_parquet(tmp_path / "c" / "p.parquet", ["a dog", "a cat", "the sea"],
                           urls=["file:///data/1.png", "ftp://x/2", "HTTPS://x/3"], nsfw=["NSFW", None, "UNSURE"])
    stats = _mine(tmp_path, corpus, animal_classes, "--allow-local", "--keep-nsfw")
    assert stats["url_refused"] == 1 and stats["safety_dropped"] == 0 and stats["matched"] == 2


def test_csv_with_bad_rows_and_megabyte_caption(tmp_path: Path, animal_classes: Path) -> None:
    path = tmp_path / "c" / "s.csv"
    path.parent.mkdir()
    big = "dog " * 300_000
    path.write_bytes(b"SAMPLE_ID,URL,TEXT,NSFW\n"
                     b"1,http://x/1,a dog,UNLIKELY\n"
                     b"2,http://x/2,a dog,UNLIKELY,extra,fields\n"  # wrong field count
                     b"3,http://x/3,\"caf\xe9 dog\",UNLIKELY\n"  # latin-1 byte: not UTF-8
                     + f"4,http://x/4,\"{big}\",UNLIKELY\n".encode()
                     + b"5,http://x/5,\"multi\nline dog\",UNLIKELY\n")
    stats = _mine(tmp_path, path, animal_classes)
    assert stats["rows_read"] == 5
    assert stats["malformed_rows"] == 1
    assert stats["invalid_utf8"] == 1
    assert stats["oversized_captions"] == 1
    assert stats["matched"] == 2


def test_truncated_shard_is_reported_and_the_others_go_on(tmp_path: Path, animal_classes: Path) -> None:
    good = write_parquet(tmp_path / "c" / "a.parquet", ["a dog", "a cat"])
    bad = write_parquet(tmp_path / "c" / "b.parquet", ["a sea"] * 1000)
    bad.write_bytes(bad.read_bytes()[: bad.stat().st_size // 2])
    gz = tmp_path / "c" / "d.jsonl.gz"
    gz.write_bytes(gzip.compress(b'{"TEXT": "a dog", "URL": "http://x"}\n' * 5000)[:300])
    stats = _mine(tmp_path, tmp_path / "c", animal_classes)
    assert stats["shards"]["unreadable"] == 2
    assert sorted(u["shard"] for u in stats["unreadable_shards"]) == ["b", "d"]
    assert stats["matched"] == 2 and good.exists()
    assert sorted(p.name for p in (tmp_path / "out" / "matches").iterdir()) == ["a.parquet"]  # no half shard


def test_every_shard_unreadable_is_an_error_not_an_empty_result(tmp_path: Path, animal_classes: Path) -> None:
    bad = tmp_path / "c" / "b.parquet"
    bad.parent.mkdir()
    bad.write_bytes(b"PAR1 truncated")
    with pytest.raises(SystemExit, match="no shard could be read: .*b.parquet"):
        _mine(tmp_path, tmp_path / "c", animal_classes)
    assert not (tmp_path / "out" / "mine_stats.json").exists()
