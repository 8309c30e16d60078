"""Mining's provenance reaches the dataset: `imagenot.provenance` metadata into the card and README, the kept
`corpus_*` columns into each sample's json; selections without them still work."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from imagenot.download import DownloadConfig, run_download

from .conftest import make_image, write_selection

PROVENANCE = {
    "corpus": "laion2B-en/part-00000.parquet", "schema": "laion2b",
    "safety": {"column": "punsafe", "rule": "below", "max": 0.1, "dropped": 3},
    "filters": {"min_width": 64, "max_pwatermark": 0.8}, "kept_columns": ["similarity", "pwatermark"],
    "encoder": "all-MiniLM-L6-v2", "threshold": 0.42,
}


def _selection(folder: Path, with_provenance: bool) -> Path:
    urls = []
    for i in range(8):
        p = folder / "files" / f"{i}.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        make_image(4000 + i).save(p)
        urls.append(p.as_uri())
    matches = write_selection(folder / "mine", urls, [i % 2 for i in range(8)])
    if with_provenance:
        t = pq.read_table(matches)
        t = t.append_column("corpus_similarity", pa.array([0.30 + i / 100 for i in range(7)] + [math.nan]))
        t = t.append_column("corpus_pwatermark", pa.array([0.1 * i for i in range(8)], pa.float32()))
        t = t.replace_schema_metadata({**(t.schema.metadata or {}),
                                       b"imagenot.provenance": json.dumps(PROVENANCE).encode()})
        pq.write_table(t, matches)
    return matches


def _sample_json(out: Path) -> dict[str, dict]:
    import webdataset as wds

    found = {}
    for s in wds.WebDataset([str(p) for p in sorted(out.glob("*.tar"))], shardshuffle=False):
        meta = json.loads(s["json"])
        found[meta["source_id"]] = meta
    return found


@pytest.mark.parametrize("with_provenance", [True, False])
def test_provenance_and_corpus_columns_travel(tmp_path: Path, with_provenance: bool) -> None:
    matches = _selection(tmp_path, with_provenance)
    out = tmp_path / "ds"
    card = run_download(DownloadConfig(matches=str(matches), out=str(out), allow_local=True, image_size=32,
                                       min_images_per_class=2))
    samples = _sample_json(out)
    assert len(samples) == 8
    readme = (out / "README.md").read_text()
    if not with_provenance:  # an older selected.parquet: nothing invented
        assert card["provenance"] is None and card["corpus_columns"] == [] and card["corpus"] is None
        assert all("corpus" not in m for m in samples.values()) and "Provenance" not in readme
        return
    assert card["provenance"] == PROVENANCE
    assert card["corpus"] == PROVENANCE["corpus"] and card["encoder"] == "all-MiniLM-L6-v2"
    assert card["thresholds"]["similarity_threshold"] == 0.42
    assert card["corpus_columns"] == ["similarity", "pwatermark"]
    assert "## Provenance (from mining)" in readme and '"column": "punsafe"' in readme and "laion2b" in readme
    for i in range(8):
        corpus = samples[f"src-{i}"]["corpus"]
        assert set(corpus) == {"similarity", "pwatermark"}
        assert corpus["pwatermark"] == pytest.approx(0.1 * i, abs=1e-6)
        assert corpus["similarity"] == (None if i == 7 else pytest.approx(0.30 + i / 100))  # NaN -> null


def _with_column(matches: Path, name: str, values: pa.Array) -> Path:
    t = pq.read_table(matches)
    pq.write_table(t.append_column(name, values), matches)
    return matches


def test_kept_timestamp_date_decimal_and_text_bytes_columns_become_json(tmp_path: Path) -> None:
    """What pandas and LAION-style corpora hold besides numbers and text reaches each sample's json as JSON
    (ISO dates, floats, UTF-8 text), instead of crashing after every image was fetched."""
    import datetime
    import decimal

    matches = _selection(tmp_path, with_provenance=False)
    when = [datetime.datetime(2021, 3, 4, 5, 6, 7 + i) for i in range(8)]
    _with_column(matches, "corpus_crawled", pa.array(when, pa.timestamp("us")))
    _with_column(matches, "corpus_day", pa.array([w.date() for w in when]))
    _with_column(matches, "corpus_price", pa.array([decimal.Decimal(f"{i}.25") for i in range(8)]))
    _with_column(matches, "corpus_tag", pa.array([f"tag {i}".encode() for i in range(8)], pa.binary()))
    _with_column(matches, "corpus_lang", pa.array(["en", "de"] * 4).dictionary_encode())
    out = tmp_path / "ds"
    run_download(DownloadConfig(matches=str(matches), out=str(out), allow_local=True, image_size=32,
                                min_images_per_class=2))
    samples = _sample_json(out)
    assert len(samples) == 8
    for i in range(8):
        corpus = samples[f"src-{i}"]["corpus"]
        assert corpus == {"crawled": f"2021-03-04 05:06:{7 + i:02d}.000000", "day": "2021-03-04",
                          "price": i + 0.25, "tag": f"tag {i}", "lang": ["en", "de"][i % 2]}
    assert json.loads((out / "dataset.json").read_text())["corpus_columns"] == ["crawled", "day", "price", "tag",
                                                                                 "lang"]


@pytest.mark.parametrize(("values", "shown"), [
    (pa.array([bytes([0xFF, 0xD8, i]) for i in range(8)], pa.binary()), "binary values with no JSON form"),
    (pa.array([i * 1000 for i in range(8)], pa.duration("ms")), "duration[ms], which a sample's json cannot hold"),
])
def test_a_kept_column_with_no_json_form_fails_before_anything_is_fetched(values: pa.Array, shown: str,
                                                                          tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch,
                                                                          capsys: pytest.CaptureFixture) -> None:
    import imagenot.download.clean as clean
    from imagenot.cli import main

    matches = _with_column(_selection(tmp_path, with_provenance=False), "corpus_thumb", values)
    monkeypatch.setattr(clean, "read_local", lambda url: pytest.fail("fetched before the inputs were checked"))
    out = tmp_path / "ds"
    assert main(["download", "--matches", str(matches), "--out", str(out), "--allow-local"]) == 2
    err = capsys.readouterr().err
    assert f"kept corpus column 'corpus_thumb' holds {shown}" in err and str(matches) in err
    assert "--keep-columns" in err and "Traceback" not in err
    assert not out.exists()
