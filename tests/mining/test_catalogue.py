"""The mining cases of the bad-input catalogue (issue 15), through `imagenot.cli.main` as a user runs them:
each asserts the exit code, the message, and that nothing was written or lost."""

from __future__ import annotations

import logging
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from imagenot.cli import main
from imagenot.errors import ImagenotError
from imagenot.fileio import read_json
from imagenot.mining.matcher import LemmaMatcher

from .mine_helpers import write_parquet


def _argv(corpus: Path, classes: Path, out: Path, *extra: str) -> list[str]:
    return ["mine", "--corpus", str(corpus), "--classes", str(classes), "--out", str(out), "--workers", "1",
            *extra]


def test_csv_unclosed_quote_loses_no_row_and_names_the_line(tmp_path: Path, animal_classes: Path, caplog) -> None:
    lines = ["SAMPLE_ID,URL,TEXT,NSFW"]
    for i in range(200):
        text = f'"a dog {i}' if i == 10 else f"a dog {i}"  # row 10: a quote that is never closed
        lines.append(f"{i},https://x/{i}.jpg,{text},UNLIKELY")
    corpus = tmp_path / "c" / "s.csv"
    corpus.parent.mkdir()
    corpus.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    with caplog.at_level(logging.WARNING):
        assert main(_argv(corpus, animal_classes, out, "--no-embed")) == 0
    stats = read_json(out / "mine_stats.json")
    assert stats["rows_read"] == 200 and stats["malformed_rows"] == 1
    assert stats["matched"] == 199  # the 189 rows after the bad quote are read, not swallowed
    assert f"{corpus}:12: malformed csv row skipped" in caplog.text  # header is line 1, row 10 is line 12


def test_csv_rows_merged_by_a_stray_quote_are_split_again(tmp_path: Path, animal_classes: Path) -> None:
    corpus = tmp_path / "s.csv"
    corpus.write_text('SAMPLE_ID,URL,TEXT,NSFW\n1,https://x/1,"a dog,UNLIKELY\n2,https://x/2,a cat,UNLIKELY\n'
                      '3,https://x/3,"the sea at\nnight",UNLIKELY\n')
    out = tmp_path / "out"
    assert main(_argv(corpus, animal_classes, out, "--no-embed")) == 0
    stats = read_json(out / "mine_stats.json")
    assert stats["malformed_rows"] == 1 and stats["rows_read"] == 3
    rows = pq.read_table(out / "matches").to_pylist()
    assert sorted(r["source_id"] for r in rows) == ["2", "3"]  # row 3's quoted newline is a real value


def test_select_threshold_on_a_no_embed_folder_is_refused(tmp_path: Path, animal_classes: Path, capsys) -> None:
    corpus = write_parquet(tmp_path / "c.parquet", ["a dog", "a cat"])
    out = tmp_path / "out"
    assert main(_argv(corpus, animal_classes, out, "--no-embed", "--no-select")) == 0
    assert main(["select", "--mine-dir", str(out), "--threshold", "0.5"]) == 2
    assert "mined with --no-embed" in capsys.readouterr().err
    assert not (out / "selected.parquet").exists()
    assert main(["select", "--mine-dir", str(out)]) == 0
    assert "threshold none (no similarities)" in capsys.readouterr().out
    assert main(_argv(corpus, animal_classes, tmp_path / "o2", "--no-embed", "--threshold", "0.5")) == 2
    assert "--threshold needs similarities" in capsys.readouterr().err and not (tmp_path / "o2").exists()


@pytest.mark.parametrize("value", ["1.5", "-1.01", "nan", "inf"])
def test_threshold_outside_cosine_range_is_refused(tmp_path: Path, animal_classes: Path, capsys, value) -> None:
    corpus = write_parquet(tmp_path / "c.parquet", ["a dog"])
    out = tmp_path / "out"
    assert main(_argv(corpus, animal_classes, out, "--threshold", value)) == 2
    assert "--threshold must be a cosine similarity in [-1, 1]" in capsys.readouterr().err
    assert not out.exists()
    assert main(["select", "--mine-dir", str(out), "--threshold", value]) == 2


def test_skipped_corpus_files_are_logged(tmp_path: Path, animal_classes: Path, caplog) -> None:
    write_parquet(tmp_path / "c" / "a.parquet", ["a dog"])
    write_parquet(tmp_path / "c" / "..parquet", ["a cat"])
    (tmp_path / "c" / "notes.txt").write_text("not a shard")
    out = tmp_path / "out"
    with caplog.at_level(logging.WARNING):
        assert main(_argv(tmp_path / "c", animal_classes, out, "--no-embed")) == 0
    assert "skipped 2 file(s) that are not corpus shards" in caplog.text
    assert "..parquet (hidden)" in caplog.text and "notes.txt" in caplog.text
    assert read_json(out / "mine_stats.json")["rows_read"] == 1


def test_whitespace_lemma_gets_no_automaton_entry() -> None:
    m = LemmaMatcher([("  ", "dog"), ("cat",)])
    assert m.num_patterns == 2 and sorted(m.lemma_text) == ["cat", "dog"]
    import pyarrow as pa

    hits = m.match(pa.array(["a  b", "my dog", "a cat"]))
    assert hits.row.tolist() == [1, 2]  # "  " would otherwise match every double space
    with pytest.raises(ImagenotError, match="no lemmas"):
        LemmaMatcher([(" ",)])


def test_missing_column_or_unreadable_corpus_writes_nothing(tmp_path: Path, animal_classes: Path, capsys) -> None:
    corpus = write_parquet(tmp_path / "c.parquet", ["a dog"])
    out = tmp_path / "out"
    assert main(_argv(corpus, animal_classes, out, "--text-col", "caption", "--no-embed")) == 2
    assert "missing column(s) caption" in capsys.readouterr().err
    assert not out.exists()
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.parquet").write_bytes(b"PAR1 not parquet")
    (bad / "b.jsonl.gz").write_bytes(b"\x1f\x8b\x08 truncated")
    assert main(_argv(bad, animal_classes, out, "--no-embed")) == 2
    assert "no shard could be read" in capsys.readouterr().err
    assert not out.exists()
    assert main(_argv(corpus, tmp_path / "missing.tsv", out, "--no-embed")) == 2
    assert "missing.tsv: no such file" in capsys.readouterr().err
    assert not out.exists()
