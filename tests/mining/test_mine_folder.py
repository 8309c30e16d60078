"""`mine` into a folder holding another mine (other corpus, other classes, or matches of shards this corpus
does not have) is refused without --force, so no old match is mixed into the new selection; --force removes
the old mine's outputs first; a rerun of the same mine still resumes."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from imagenot.cli import main
from imagenot.fileio import read_json
from imagenot.wordnet.classes import write_classes

from .mine_helpers import ANIMALS, make_classes, write_parquet


def _argv(corpus: Path, classes: Path, out: Path, *extra: str) -> list[str]:
    return ["mine", "--corpus", str(corpus), "--classes", str(classes), "--out", str(out), "--no-embed",
            "--workers", "1", *extra]


def _snapshot(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


@pytest.fixture
def corpora(tmp_path: Path) -> tuple[Path, Path]:
    a = tmp_path / "a"
    write_parquet(a / "laion-0.parquet", ["a dog", "a cat", "the sea"], ids=["a1", "a2", "a3"])
    write_parquet(a / "laion-1.parquet", ["my dog", "New York"], ids=["a4", "a5"])
    b = tmp_path / "b"
    write_parquet(b / "coyo-0.parquet", ["a cat", "frankfurter"], ids=["b1", "b2"])
    return a, b


@pytest.mark.parametrize("same_names", [False, True])
def test_another_corpus_is_refused_and_force_replaces_its_mine(corpora: tuple[Path, Path], tmp_path: Path,
                                                               animal_classes: Path, same_names: bool,
                                                               capsys: pytest.CaptureFixture) -> None:
    a, b = corpora
    if same_names:  # another corpus whose shard files have the same names as the first one's
        (b / "coyo-0.parquet").rename(b / "laion-0.parquet")
    out = tmp_path / "out"
    assert main(_argv(a, animal_classes, out)) == 0
    before = _snapshot(out)
    assert main(_argv(b, animal_classes, out)) == 2
    err = capsys.readouterr().err
    assert f"{out} holds the mine of another corpus ({a / 'laion-0.parquet'}" in err and "--force" in err
    assert _snapshot(out) == before  # nothing changed, nothing mixed
    assert main(_argv(b, animal_classes, out, "--force")) == 0
    ids = sorted(pq.read_table(out / "selected.parquet")["source_id"].to_pylist())
    assert ids == ["b1", "b2"]  # only the new corpus's rows
    assert sorted(p.name for p in (out / "matches").iterdir()) == [next(b.iterdir()).name]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "classes.tsv", "out"]


def test_another_class_list_is_refused(corpora: tuple[Path, Path], tmp_path: Path, animal_classes: Path,
                                       capsys: pytest.CaptureFixture) -> None:
    a, _ = corpora
    out = tmp_path / "out"
    assert main(_argv(a, animal_classes, out)) == 0
    fewer = tmp_path / "fewer.tsv"
    write_classes(fewer, make_classes(ANIMALS[:2]))
    assert main(_argv(a, fewer, out)) == 2
    assert "holds the mine of another class list" in capsys.readouterr().err
    assert main(_argv(a, fewer, out, "--force")) == 0
    assert read_json(out / "mine_stats.json")["classes"] == 2


def test_matches_of_shards_this_corpus_lacks_are_refused(corpora: tuple[Path, Path], tmp_path: Path,
                                                         animal_classes: Path, capsys: pytest.CaptureFixture) -> None:
    """A folder from an older version or an interrupted other mine: no record, but a foreign match file."""
    a, b = corpora
    out = tmp_path / "out"
    assert main(_argv(b, animal_classes, out, "--no-select")) == 0
    (out / "mine_inputs.json").unlink()
    assert main(_argv(a, animal_classes, out)) == 2
    assert "matches of shards this corpus does not have (matches/coyo-0.parquet)" in capsys.readouterr().err
    assert not (out / "selected.parquet").exists()


def test_the_same_mine_resumes_and_a_grown_corpus_is_still_the_same(corpora: tuple[Path, Path], tmp_path: Path,
                                                                     animal_classes: Path) -> None:
    a, _ = corpora
    out = tmp_path / "out"
    assert main(_argv(a, animal_classes, out)) == 0
    (out / "matches" / "laion-1.parquet").unlink()  # as if killed before this shard
    assert main(_argv(a, animal_classes, out)) == 0
    assert read_json(out / "mine_stats.json")["shards"] == {"processed": 1, "skipped_finished": 1, "unreadable": 0}
    assert main(_argv(a, animal_classes, out, "--match", "relaxed")) == 0  # other settings: shards redone
    write_parquet(a / "laion-2.parquet", ["the sea"], ids=["a6"])
    assert main(_argv(a, animal_classes, out)) == 0
    assert "a6" in pq.read_table(out / "selected.parquet")["source_id"].to_pylist()
