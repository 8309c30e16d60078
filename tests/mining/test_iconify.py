"""The @iconify/json reader: licences filtered per set, names cleaned into captions, one icon per set and
caption, logo sets dropped, aliases skipped, and the selected icons' SVG files written where the urls point."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from imagenot.mining.iconify import (
    PACKAGE_ROOT,
    clean_name,
    materialise_selected,
    set_drop_reason,
    svg_document,
    write_iconify_corpus,
)
from imagenot.mining.openclipart import is_local_corpus

SQUARE = '<path fill="currentColor" d="M4 4h8v8H4z"/>'


def icon_set(prefix: str, spdx: str, category: str, icons: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A set in @iconify/json's layout (json/<prefix>.json)."""
    info = {"name": extra.pop("name", prefix.title()), "author": {"name": "A. Author"},
            "license": {"title": spdx, "spdx": spdx, "url": f"https://example.org/{prefix}/LICENSE"},
            "category": category}
    return {"prefix": prefix, "info": info, "icons": {k: {"body": v} if isinstance(v, str) else v
                                                      for k, v in icons.items()},
            "width": 16, "height": 16, **extra}


def write_package(root: Path, sets: list[dict[str, Any]]) -> Path:
    (root / "json").mkdir(parents=True, exist_ok=True)
    for s in sets:
        (root / "json" / f"{s['prefix']}.json").write_text(json.dumps(s), encoding="utf-8")
    return root


def small_package(root: Path) -> Path:
    return write_package(root, [
        icon_set("pets", "MIT", "Thematic", {
            "dog": SQUARE, "dog-outline": SQUARE, "dog-filled-24": SQUARE, "cat_bold": SQUARE,
            "hot-dog-twotone": SQUARE, "sea-16px": {"body": SQUARE, "width": 24}, "24": SQUARE,
        }, aliases={"puppy": {"parent": "dog"}}),
        icon_set("more-pets", "CC-BY-4.0", "UI 24px", {"dog-rounded": SQUARE, "man-medium-skin-tone": SQUARE}),
        icon_set("nc-pets", "CC-BY-NC-4.0", "Thematic", {"dog": SQUARE, "cat": SQUARE}),
        icon_set("gpl-pets", "GPL-3.0-or-later", "Thematic", {"cat": SQUARE}),
        icon_set("logos", "MIT", "Logos", {"dog": SQUARE}),
        icon_set("fa9-brands", "CC-BY-4.0", "Archive / Unmaintained", {"dog": SQUARE}),
        icon_set("old-pets", "MIT", "Thematic", {"dog": SQUARE}, ),
    ])


def test_names_become_captions() -> None:
    assert clean_name("home-outline-rounded") == "home"
    assert clean_name("credit_card_filled_24px") == "credit card"
    assert clean_name("flag-4x3") == "flag"
    assert clean_name("woman-medium-dark-skin-tone") == "woman"
    assert clean_name("heart-o") == "heart"  # Font Awesome's outline suffix
    assert clean_name("hot-dog") == "hot dog"
    assert clean_name("arrow-left-circle") == "arrow" and clean_name("user-plus") == "user"
    assert clean_name("check-circle") == "" and clean_name("plus-24") == "" and clean_name("24") == ""  # glyphs


def test_sets_dropped_by_licence_category_and_name() -> None:
    def info(spdx: str, category: str | None = "Thematic", **kw: Any) -> dict[str, Any]:
        return {"license": {"spdx": spdx}, "category": category, **kw}

    assert set_drop_reason(info("MIT"), "pets") is None
    assert set_drop_reason(info("Apache-2.0", "UI 24px"), "tabler") is None  # UI grids draw objects too
    assert set_drop_reason(info("CC-BY-NC-SA-4.0"), "cbi") == "license"
    assert set_drop_reason(info("CC-BY-ND-4.0"), "x") == "license"
    assert set_drop_reason(info("GPL-2.0-only"), "x") == "license"
    assert set_drop_reason({"category": "Thematic"}, "x") == "license"  # unknown licence
    assert set_drop_reason(info("MIT", "Flags / Maps"), "flagpack") == "category"
    assert set_drop_reason(info("CC-BY-4.0", "Archive / Unmaintained", name="Font Awesome 5 Brands"),
                           "fa-brands") == "brand"
    assert set_drop_reason(info("MIT", None), "x") == "uncategorised"
    assert set_drop_reason(info("MIT", hidden=True), "x") == "hidden"


def test_corpus_from_a_small_package(tmp_path: Path) -> None:
    root = small_package(tmp_path / "pkg")
    data = json.loads((root / "json" / "old-pets.json").read_text())
    data["info"]["hidden"] = True  # a deprecated set the package hides
    (root / "json" / "old-pets.json").write_text(json.dumps(data))
    out = tmp_path / "mine" / "corpus" / "iconify.parquet"
    counts = write_iconify_corpus(out, root)
    assert counts["sets"] == 2 and counts["icons_in_sets"] == 9
    assert counts["sets_dropped"] == {"brand": 1, "category": 1, "hidden": 1, "license": 2}
    rows = pq.read_table(out).to_pylist()
    got = [(r["SAMPLE_ID"], r["TEXT"], r["license"]) for r in rows]
    # one icon per set and caption (the base name wins), "24" has no caption, the alias "puppy" is skipped
    assert got == [("more-pets:dog-rounded", "dog", "CC-BY-4.0"), ("more-pets:man-medium-skin-tone", "man",
                                                                     "CC-BY-4.0"),
                   ("pets:cat_bold", "cat", "MIT"), ("pets:dog", "dog", "MIT"),
                   ("pets:hot-dog-twotone", "hot dog", "MIT"), ("pets:sea-16px", "sea", "MIT")]
    first = rows[0]
    assert first["icon_set"] == "more-pets" and first["license_url"] == "https://example.org/more-pets/LICENSE"
    assert first["URL"] == (tmp_path / "mine" / "corpus" / "iconify" / "more-pets" / "dog-rounded.svg").as_uri()
    sea = next(r for r in rows if r["icon_name"] == "sea-16px")
    assert 'width="24" height="16" viewBox="0 0 24 16"' in sea["svg"]  # the icon's width over the set's
    assert is_local_corpus(out)
    assert not (tmp_path / "mine" / "corpus" / "iconify").exists()  # nothing written before selection

    assert materialise_selected(out, ["pets:dog", "pets:sea-16px", "elsewhere:x"]) == 2
    dog = tmp_path / "mine" / "corpus" / "iconify" / "pets" / "dog.svg"
    assert dog.read_text() == rows[3]["svg"]
    assert materialise_selected(out, ["pets:dog"]) == 0  # already there
    dog.write_text("<svg")  # as a crash could leave it
    assert materialise_selected(out, ["pets:dog"]) == 1 and dog.read_text() == rows[3]["svg"]


def test_flips_and_rotation_become_a_transform() -> None:
    doc = svg_document({"body": SQUARE, "hFlip": True, "rotate": 1}, {"width": 24, "height": 24})
    assert '<g transform="translate(24 0) scale(-1 1) rotate(90 12.0 12.0)">' in doc


def test_missing_package_says_how_to_install(tmp_path: Path) -> None:
    from imagenot.errors import InputError

    with pytest.raises(InputError, match="setup.sh"):
        write_iconify_corpus(tmp_path / "c.parquet", tmp_path / "nothing")


def test_mine_the_icons_alone_and_beside_openclipart(tmp_path: Path) -> None:
    """`--corpus iconify:DIR` and `openclipart:SVG+iconify:DIR`: declared local, licence columns carried into
    selected.parquet, and the chosen icons' SVG files written for the download stage."""
    from imagenot.mining.config import MineConfig
    from imagenot.mining.pipeline import mine
    from imagenot.wordnet.classes import write_classes

    from .mine_helpers import ANIMALS, make_classes
    from .test_openclipart import _svg

    root = small_package(tmp_path / "pkg")
    write_classes(tmp_path / "classes.tsv", make_classes(ANIMALS))
    res = mine(MineConfig(corpus=f"iconify:{root}", classes=str(tmp_path / "classes.tsv"),
                          out=str(tmp_path / "mine"), embed=False, workers=1, min_matches_per_class=1))
    assert res.stats["schema"] == "iconify" and res.stats["url_refused"] == 0
    sel = pq.read_table(tmp_path / "mine" / "selected.parquet").to_pylist()
    assert {r["source_id"] for r in sel} >= {"pets:dog", "more-pets:dog-rounded", "pets:cat_bold"}
    assert all(r["corpus_license"] in ("MIT", "CC-BY-4.0") and r["corpus_icon_set"] for r in sel)
    for r in sel:
        assert Path(r["url"].removeprefix("file://")).read_text().startswith("<svg")

    from imagenot.mining.config import SelectConfig
    from imagenot.mining.pipeline import run_select

    shutil.rmtree(tmp_path / "mine" / "corpus" / "iconify")  # `imagenot select` writes what it selects
    run_select(SelectConfig(mine_dir=str(tmp_path / "mine"), min_matches_per_class=1))
    again = pq.read_table(tmp_path / "mine" / "selected.parquet")
    assert again.num_rows == len(sel)
    assert all(Path(u.removeprefix("file://")).is_file() for u in again["url"].to_pylist())

    svg, png = tmp_path / "svg", tmp_path / "png"
    _svg(svg / "0.svg", "Sea", ["sea"])
    (png / "0.png").parent.mkdir(parents=True)
    (png / "0.png").write_bytes(b"\x89PNG")
    both = mine(MineConfig(corpus=f"openclipart:{svg}+iconify:{root}", classes=str(tmp_path / "classes.tsv"),
                           out=str(tmp_path / "both"), embed=False, workers=1, min_matches_per_class=1))
    assert both.stats["schema"] == "openclipart+iconify"
    ids = set(pq.read_table(tmp_path / "both" / "selected.parquet")["source_id"].to_pylist())
    assert "0" in ids and "pets:sea-16px" in ids  # the sea from both corpora


@pytest.mark.skipif(not (PACKAGE_ROOT / "json").is_dir(), reason="@iconify/json not installed (scripts/setup.sh)")
def test_the_installed_package_has_the_layout_the_reader_expects() -> None:
    data = json.loads((PACKAGE_ROOT / "json" / "mdi.json").read_bytes())
    assert data["info"]["license"]["spdx"] and data["info"]["category"] and data["icons"]


def test_names_from_the_package_never_leave_the_svg_folder(tmp_path: Path) -> None:
    """Set prefixes and icon names come from the package's JSON: a `..` or `/` in them becomes a safe file
    name inside mine/corpus/iconify, and a corpus whose urls were edited to point elsewhere is refused."""
    import pyarrow as pa

    from imagenot.errors import InputError

    root = write_package(tmp_path / "pkg", [icon_set("pets", "MIT", "Thematic", {"../../../escaped-dog": SQUARE,
                                                                                 "cat/../../x": SQUARE})])
    data = json.loads((root / "json" / "pets.json").read_text())
    data["prefix"] = "../../evil"
    (root / "json" / "pets.json").write_text(json.dumps(data))
    out = tmp_path / "mine" / "corpus" / "iconify.parquet"
    write_iconify_corpus(out, root)
    rows = pq.read_table(out).to_pylist()
    assert materialise_selected(out, [r["SAMPLE_ID"] for r in rows]) == 2
    written = sorted(p for p in tmp_path.rglob("*.svg"))
    assert len(written) == 2 and all(p.is_relative_to(tmp_path / "mine" / "corpus" / "iconify") for p in written)
    table = pq.read_table(out)
    urls = [(tmp_path / "outside.svg").as_uri()] * table.num_rows
    edited = table.set_column(table.schema.get_field_index("URL"), "URL", pa.array(urls))
    pq.write_table(edited, out)
    with pytest.raises(InputError, match="points outside"):
        materialise_selected(out, [r["SAMPLE_ID"] for r in rows])
    assert not (tmp_path / "outside.svg").exists()


def test_a_converted_corpus_is_reused_only_for_the_folder_it_came_from(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from imagenot.mining.plan import prepare_corpus

    one = small_package(tmp_path / "one")
    two = write_package(tmp_path / "two", [icon_set("birds", "MIT", "Thematic", {"owl": SQUARE})])
    out = tmp_path / "mine"
    spec, local, _ = prepare_corpus(SimpleNamespace(corpus=f"iconify:{one}", allow_local=False), out)
    assert local and {r["icon_set"] for r in pq.read_table(spec).to_pylist()} == {"pets", "more-pets", "old-pets"}
    before = Path(spec).stat().st_mtime_ns
    prepare_corpus(SimpleNamespace(corpus=f"iconify:{one}", allow_local=False), out)
    assert Path(spec).stat().st_mtime_ns == before  # the same folder: reused
    spec, _, _ = prepare_corpus(SimpleNamespace(corpus=f"iconify:{two}", allow_local=False), out)
    assert {r["icon_set"] for r in pq.read_table(spec).to_pylist()} == {"birds"}  # another folder: converted
