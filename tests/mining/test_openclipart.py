"""The Open Clip Art Library reader: SVG metadata -> captions, PNG twins -> file:// urls, local corpus."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from imagenot.mining.openclipart import (
    SVG_ROOT,
    is_local_corpus,
    make_caption,
    read_svg_metadata,
    write_openclipart_corpus,
)

SVG = """<?xml version="1.0" encoding="UTF-8" standalone="no"?>
{doctype}<svg xmlns="http://www.w3.org/2000/svg" xmlns:cc="http://web.resource.org/cc/"
  xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <metadata><rdf:RDF><cc:Work rdf:about="">
    <dc:title>{title}</dc:title>
    <dc:description>{desc}</dc:description>
    <dc:subject><rdf:Bag>{keywords}</rdf:Bag></dc:subject>
    <dc:publisher><cc:Agent><dc:title>Open Clip Art Library</dc:title></cc:Agent></dc:publisher>
  </cc:Work></rdf:RDF></metadata>
  <rect width="1" height="1"/>
</svg>
"""
ADOBE_DTD = ('<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.0//EN" "http://www.w3.org/TR/2001/REC-SVG-20010904/DTD/svg10.dtd" '
             '[\n <!ENTITY ns_svg "http://www.w3.org/2000/svg">\n <!ENTITY lol "lol">\n]>\n')


def _svg(path: Path, title: str, keywords: list[str], desc: str = "", doctype: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    kws = "".join(f"<rdf:li>{k}</rdf:li>" for k in keywords)
    path.write_text(SVG.format(doctype=doctype, title=title, desc=desc, keywords=kws), encoding="utf-8")
    return path


def test_metadata_of_the_work_not_of_the_agents(tmp_path: Path) -> None:
    p = _svg(tmp_path / "a.svg", "Red  apple", ["fruit", "food"], "A shiny red apple")
    assert read_svg_metadata(p) == ("Red apple", ("fruit", "food"), "A shiny red apple")
    assert make_caption("Red apple", ("fruit", "food"), "A shiny red apple") == \
        "Red apple. fruit, food. A shiny red apple"
    assert make_caption("moon", (), "moon") == "moon"  # a description equal to the title adds nothing


def test_internal_dtd_entities_are_not_expanded(tmp_path: Path) -> None:
    p = _svg(tmp_path / "b.svg", "Frog &amp; toad", ["animal"], doctype=ADOBE_DTD)
    assert read_svg_metadata(p) == ("Frog & toad", ("animal",), "")
    bomb = _svg(tmp_path / "c.svg", "x &lol;", [], doctype=ADOBE_DTD)
    with pytest.raises(Exception):  # noqa: B017 - an undeclared entity after the subset is removed
        read_svg_metadata(bomb)


def test_corpus_from_a_small_library(tmp_path: Path) -> None:
    svg, png = tmp_path / "svg", tmp_path / "png"
    _svg(svg / "animals" / "frog.svg", "Frog", ["animal", "frog"])
    _svg(svg / "food" / "apple.svg", "Apple", ["fruit"], "An apple")
    _svg(svg / "food" / "orphan.svg", "No png", ["x"])
    (svg / "broken").mkdir()
    (svg / "broken" / "bad.svg").write_text("<svg><metadata>")
    for rel in ("animals/frog.png", "food/apple.png", "broken/bad.png"):
        (png / rel).parent.mkdir(parents=True, exist_ok=True)
        (png / rel).write_bytes(b"\x89PNG")
    out = tmp_path / "corpus.parquet"
    counts = write_openclipart_corpus(out, svg, png)
    assert counts == {"images": 2, "skipped": 2}
    rows = pq.read_table(out).to_pylist()
    assert [(r["SAMPLE_ID"], r["TEXT"], r["category"]) for r in rows] == [
        ("animals/frog", "Frog. animal, frog", "animals"), ("food/apple", "Apple. fruit. An apple", "food")]
    assert rows[0]["URL"] == (png / "animals" / "frog.png").resolve().as_uri()
    assert is_local_corpus(out)


@pytest.mark.skipif(not SVG_ROOT.is_dir(), reason="Debian openclipart-svg not installed")
def test_a_real_library_file() -> None:
    path = next(SVG_ROOT.rglob("*.svg"))
    title, keywords, _ = read_svg_metadata(path)
    assert title and all(isinstance(k, str) for k in keywords)


def test_mine_the_library_as_the_demo_does(tmp_path: Path) -> None:
    """`--corpus openclipart:SVG_DIR`: its own schema (file:// urls kept, no safety column needed), the
    provenance says why no safety filter applies."""
    import json

    from imagenot.mining.config import MineConfig
    from imagenot.mining.pipeline import mine
    from imagenot.mining.selected import PROVENANCE_KEY
    from imagenot.wordnet.classes import write_classes

    from .mine_helpers import ANIMALS, make_classes

    svg, png = tmp_path / "svg", tmp_path / "png"
    for i, (title, kws) in enumerate([("Dog", ["dog", "pet"]), ("Sea", ["sea"]), ("Cat", ["cat", "dog"])]):
        _svg(svg / f"{i}.svg", title, kws)
        (png / f"{i}.png").parent.mkdir(parents=True, exist_ok=True)
        (png / f"{i}.png").write_bytes(b"\x89PNG")
    write_classes(tmp_path / "classes.tsv", make_classes(ANIMALS))
    res = mine(MineConfig(corpus=f"openclipart:{svg}", classes=str(tmp_path / "classes.tsv"),
                          out=str(tmp_path / "mine"), embed=False, workers=1, allow_local=False))
    assert res.stats["schema"] == "openclipart" and res.stats["url_refused"] == 0  # declared local
    assert res.stats["matched"] == 2  # "Cat. cat, dog" hits two classes
    prov = json.loads(pq.read_schema(tmp_path / "mine" / "selected.parquet").metadata[PROVENANCE_KEY])
    assert prov["safety"]["column"] is None and "curated" in prov["safety"]["rule"]
