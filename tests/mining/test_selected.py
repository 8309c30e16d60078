"""selected.parquet's owner (`imagenot.mining.selected`): what it writes reads back, and what it refuses."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from imagenot.errors import ImagenotError, InputError
from imagenot.mining.config import MineConfig, SelectConfig, SelectionParams
from imagenot.mining.selected import (
    PROVENANCE_KEY,
    SELECTED_SCHEMA,
    corpus_column,
    corpus_fields,
    read_selected,
    write_selected,
)
from imagenot.wordnet.classes import write_classes

from .mine_helpers import ANIMALS, make_classes


def _rows(n: int, classes: list) -> dict[str, list]:
    return {
        "source_id": [f"s{i}" for i in range(n)], "url": [f"https://example.org/{i}.jpg" for i in range(n)],
        "caption": [f"a {classes[i % 2].name} number {i}" for i in range(n)],
        "wnid": [classes[i % 2].wnid for i in range(n)], "label": [i % 2 for i in range(n)],
        "lemma": [classes[i % 2].lemmas[0] for i in range(n)], "similarity": [0.5 + i / 100 for i in range(n)],
        "split": ["val" if i % 3 == 0 else "train" for i in range(n)],
    }


def test_written_batches_read_back_with_corpus_columns_and_provenance(tmp_path: Path) -> None:
    classes = make_classes(ANIMALS[:2])
    write_classes(tmp_path / "classes.tsv", classes)
    cols = _rows(7, classes)
    extra = pa.field(corpus_column("pwatermark"), pa.float64())
    schema = pa.schema([*SELECTED_SCHEMA, extra])
    table = pa.table({**cols, extra.name: [i / 10 for i in range(7)]}, schema=schema)
    write_selected(tmp_path / "selected.parquet", iter(table.to_batches(max_chunksize=3)), schema,
                   {"corpus": "test", "threshold": 0.4})

    assert [f.name for f in corpus_fields(pq.read_schema(tmp_path / "selected.parquet"))] == ["corpus_pwatermark"]
    got = read_selected(tmp_path / "selected.parquet", tmp_path / "classes.tsv")
    assert got.table.schema == SELECTED_SCHEMA
    assert got.table.to_pydict()["source_id"] == cols["source_id"]
    assert got.table["similarity"].to_pylist() == pytest.approx(cols["similarity"])
    assert list(got.corpus) == ["pwatermark"] and got.corpus["pwatermark"].to_pylist() == pytest.approx(
        [i / 10 for i in range(7)])
    assert got.provenance == {"corpus": "test", "threshold": 0.4}
    assert [c.wnid for c in got.classes] == [c.wnid for c in classes]


def test_optional_columns_read_as_nulls_and_bad_files_are_refused(tmp_path: Path) -> None:
    classes = make_classes(ANIMALS[:2])
    write_classes(tmp_path / "classes.tsv", classes)
    cols = _rows(4, classes)
    for c in ("lemma", "similarity", "split"):
        cols.pop(c)
    pq.write_table(pa.table(cols), tmp_path / "bare.parquet")
    got = read_selected(tmp_path / "bare.parquet", tmp_path / "classes.tsv")
    assert got.table["split"].null_count == 4 and got.table["similarity"].null_count == 4
    assert got.table.schema == SELECTED_SCHEMA and got.provenance is None and got.corpus == {}

    pq.write_table(pa.table({k: v for k, v in cols.items() if k != "url"}), tmp_path / "no_url.parquet")
    with pytest.raises(InputError, match="missing column"):
        read_selected(tmp_path / "no_url.parquet", tmp_path / "classes.tsv")
    pq.write_table(pa.table({**cols, "split": ["test"] * 4}), tmp_path / "bad_split.parquet")
    with pytest.raises(InputError, match="split values"):
        read_selected(tmp_path / "bad_split.parquet", tmp_path / "classes.tsv")
    meta = pa.table(cols).schema.with_metadata({PROVENANCE_KEY: b"[1, 2]"})
    pq.write_table(pa.table(cols, schema=meta), tmp_path / "bad_prov.parquet")
    with pytest.raises(InputError, match="JSON object"):
        read_selected(tmp_path / "bad_prov.parquet", tmp_path / "classes.tsv")


def test_mine_and_select_share_the_selection_options() -> None:
    """The selection group is declared once: both configs take the same options to the same parameters."""
    chosen = {"num_classes": 3, "cap": "random", "seed": 5, "val_per_class": 2, "oversample": 1.5}
    assert MineConfig(**chosen).selection() == SelectConfig(**chosen).selection() == SelectionParams(**chosen)
    with pytest.raises(ImagenotError, match="oversample"):
        SelectConfig(oversample=0.5).check()
