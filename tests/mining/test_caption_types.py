"""Captions in every Arrow text layout are text (dictionary-encoded: what pandas categoricals become in
parquet; large_string; string_view; binary): the same matches as a plain string column. A caption column
that holds no text is an error naming it and its type, not a run that matches nothing."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from imagenot.cli import main
from imagenot.fileio import read_json

CAPTIONS = ["a dog on the beach", "my cat", "the sea", "a dog", "nothing here", "a dog"]


def _corpus(path: Path, text: pa.Array, *, categorical_others: bool = False) -> Path:
    n = len(text)
    cols = {"SAMPLE_ID": pa.array([str(i) for i in range(n)]),
            "URL": pa.array([f"https://example.org/{i}.jpg" for i in range(n)]),
            "TEXT": text, "NSFW": pa.array(["UNLIKELY"] * n)}
    if categorical_others:
        cols["URL"] = cols["URL"].dictionary_encode()
        cols["NSFW"] = cols["NSFW"].dictionary_encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(cols), path)
    return path


def _mine(corpus: Path, classes: Path, out: Path) -> int:
    return main(["mine", "--corpus", str(corpus), "--classes", str(classes), "--out", str(out), "--no-embed",
                 "--workers", "1", "--no-select"])


def _matches(out: Path) -> list[tuple[str, str]]:
    rows = pq.read_table(out / "matches").to_pylist()
    return sorted((r["source_id"], r["lemma"]) for r in rows)


@pytest.mark.parametrize("layout", ["dictionary", "pandas_categorical", "large_string", "string_view",
                                    "binary", "dictionary_everywhere"])
def test_every_text_layout_matches_like_a_plain_string_column(layout: str, tmp_path: Path,
                                                              animal_classes: Path) -> None:
    plain = _corpus(tmp_path / "plain" / "p.parquet", pa.array(CAPTIONS))
    assert _mine(plain, animal_classes, tmp_path / "out-plain") == 0
    want = _matches(tmp_path / "out-plain")
    assert len(want) == 5
    corpus = tmp_path / layout / "p.parquet"
    if layout == "pandas_categorical":
        pd = pytest.importorskip("pandas")
        frame = pd.DataFrame({"SAMPLE_ID": [str(i) for i in range(len(CAPTIONS))],
                              "URL": [f"https://example.org/{i}.jpg" for i in range(len(CAPTIONS))],
                              "TEXT": pd.Categorical(CAPTIONS), "NSFW": pd.Categorical(["UNLIKELY"] * len(CAPTIONS))})
        corpus.parent.mkdir(parents=True)
        frame.to_parquet(corpus)
        assert pa.types.is_dictionary(pq.read_schema(corpus).field("TEXT").type)
    else:
        text = {"dictionary": pa.array(CAPTIONS).dictionary_encode(),
                "dictionary_everywhere": pa.array(CAPTIONS).dictionary_encode(),
                "large_string": pa.array(CAPTIONS, pa.large_string()),
                "string_view": pa.array(CAPTIONS, pa.string_view()),
                "binary": pa.array([c.encode() for c in CAPTIONS], pa.binary())}[layout]
        _corpus(corpus, text, categorical_others=layout == "dictionary_everywhere")
    out = tmp_path / f"out-{layout}"
    assert _mine(corpus, animal_classes, out) == 0
    assert _matches(out) == want
    stats = read_json(out / "mine_stats.json")
    assert stats["matched"] == 5 and stats["non_string_captions"] == 0


@pytest.mark.parametrize("text", [pa.array([1, 2, 3]), pa.array([[1], [2], [3]]),
                                  pa.array([0, 1, 2], pa.timestamp("s")),
                                  pa.array([1, 2, 1]).dictionary_encode()])
def test_a_caption_column_without_text_is_an_error_naming_it(text: pa.Array, tmp_path: Path, animal_classes: Path,
                                                             capsys: pytest.CaptureFixture) -> None:
    corpus = _corpus(tmp_path / "c" / "p.parquet", text)
    out = tmp_path / "out"
    assert _mine(corpus, animal_classes, out) == 2
    err = capsys.readouterr().err
    stored = pq.read_schema(corpus).field("TEXT").type  # as parquet gives it back (list item names differ)
    assert f"caption column 'TEXT' holds {stored}, not text" in err and "--text-col" in err
    assert str(corpus) in err and "Traceback" not in err
    assert not out.exists()
