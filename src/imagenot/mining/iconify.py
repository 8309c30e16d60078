"""The npm package @iconify/json as an image-text corpus: named SVG icons from open icon sets.

The package holds one JSON file per icon set (`json/<prefix>.json`): `info` (name, author, `license` with
`title`, `spdx`, `url`, and a `category` such as "Material", "Emoji", "Logos", "UI 24px"), `icons` (name ->
`{body, width?, height?, left?, top?, rotate?, hFlip?, vFlip?}`), `aliases` (other names of the same bodies)
and the set's default `width`/`height`/`left`/`top`. The icon's name is its only caption, so the reader:

- keeps sets whose licence is in `PERMISSIVE_LICENSES` (by SPDX id) and records, per row, the set, its
  licence id, title and url (the provenance a dataset card needs for attribution);
- drops sets that draw logos, brands, flags, maps or programming symbols (`DROPPED_CATEGORIES`, set names
  with `BRAND_WORDS`), and hidden or uncategorised sets (the package hides deprecated sets that duplicate
  newer ones; the few visible uncategorised sets are duplicates or logo sets). Sets of the "UI ..."
  categories are kept: their category names a grid size, not a subject, and they draw most of the package's
  animals, tools and vehicles; their glyph-only names (chevron, cursor) find no WordNet noun or rank low;
- turns names into captions: split on `-`/`_`, style and variant words dropped (`STYLE_WORDS`, sizes and
  numbers, "skin tone" modifiers of emoji), so `home-outline-rounded` and `home-filled` are both "home";
  names with nothing else (`plus`, `check-circle`: UI glyphs) are not read;
- keeps one icon per set and caption (the shortest name, the base form, alphabetically first on ties);
- skips aliases (they repeat bodies already read).

Each row's url is a `file://` path under the mine folder's `corpus/iconify/` where its standalone SVG is
written when it is selected (`materialise_selected`): only the few thousand chosen icons become files, not
the 200,000 read. The download stage renders the SVGs to PNG (`imagenot.download.clean`). The corpus
declares itself local, like the Open Clip Art conversion.
"""

from __future__ import annotations

import json
import logging
import os
import re
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from imagenot import safepath
from imagenot.errors import InputError
from imagenot.fileio import atomic_path
from imagenot.mining.openclipart import LOCAL_KEY, SOURCE_KEY

log = logging.getLogger(__name__)

VERSION = "2.2.535"
"""The pinned @iconify/json release that scripts/setup.sh installs (`npm pack`)."""

PACKAGE_ROOT = Path(os.environ.get("IMAGENOT_ICONIFY", Path(__file__).resolve().parents[3] / ".venv" / "share"
                                   / f"iconify-json-{VERSION}"))
"""Where setup.sh unpacks the package (its `json/` folder holds the sets); IMAGENOT_ICONIFY overrides it."""

PERMISSIVE_LICENSES = frozenset({
    "MIT", "Apache-2.0", "ISC", "BSD-2-Clause", "BSD-3-Clause", "0BSD", "Unlicense", "CC0-1.0",
    "CC-BY-3.0", "CC-BY-4.0", "CC-BY-SA-3.0", "CC-BY-SA-4.0", "OFL-1.1",
})
"""SPDX ids of the licences whose sets are kept: they allow copying, modifying and redistributing the icons,
commercially too, with attribution at most (the rows record set, licence and its url for it). CC-BY-SA and
OFL add share-alike terms on the icons themselves, which a dataset of rendered icons can honour. Sets under
NC (non-commercial) or ND (no derivatives: rendering and resizing are derivatives) terms, GPL/MPL-style
copyleft, or an unknown or missing licence are dropped."""

DROPPED_CATEGORIES = frozenset({"Logos", "Flags / Maps", "Programming"})
"""Set categories (`info.category`) whose icons are brand logos, flags, map symbols or programming-language
and file-type marks: their names are proper names, not the things WordNet nouns denote."""

BRAND_WORDS = ("brand", "logo", "social", "flag")
"""A set whose prefix or name contains one of these draws logos or flags whatever its category (e.g. the
archived Font Awesome 5/6 Brands sets)."""

STYLE_WORDS = frozenset({
    # drawing styles
    "outline", "outlined", "fill", "filled", "solid", "bold", "thin", "light", "duotone", "duo", "tone",
    "twotone", "sharp", "round", "rounded", "line", "linear", "regular", "medium", "dark", "flat", "broken",
    "baseline", "remix", "simple", "small", "icon", "o", "px", "dashed", "dotted",
    # variants: alternatives, directions, frames and badges that modify the subject
    "alt", "variant", "left", "right", "up", "down", "top", "bottom", "center", "middle", "horizontal",
    "vertical", "circle", "square", "badge", "plus", "minus", "add", "remove", "check", "x", "slash", "off",
    "on", "open", "one", "two", "three", "four", "five",
})
"""Words of icon names that name a drawing style or a variant, not the subject; chosen from the package's
most common words (its most common last words: regular, filled, bold, outline, thin, rounded, fill, sharp,
tone, duotone, solid, light, line, dark, off, circle, ...; directions and badges such as `arrow-left`,
`user-plus`, `bell-off`), and numbers and sizes (`24`, `24px`, `4x3`). A name made only of such words
(`plus`, `check-circle`, `chevron-left`... `circle`) is a UI glyph: it gets no caption and is not read."""

_NUMBERISH = re.compile(r"^(\d+(px)?|\d+x\d+)$")
_SKIN_TONE = re.compile(r"\b(?:(?:light|medium|dark)\s+)*skin\s+tone\b")

SCHEMA = pa.schema([
    ("SAMPLE_ID", pa.string()), ("URL", pa.string()), ("TEXT", pa.string()), ("icon_set", pa.string()),
    ("icon_name", pa.string()), ("license", pa.string()), ("license_title", pa.string()),
    ("license_url", pa.string()), ("author", pa.string()), ("svg", pa.string()),
])


@dataclass(frozen=True)
class IconSet:
    """One set's identity and licence, as recorded on each of its rows."""

    prefix: str
    name: str
    category: str
    license: str
    license_title: str
    license_url: str
    author: str


def clean_name(name: str) -> str:
    """An icon name as a caption: words split on `-`/`_`, style, variant and size words dropped."""
    words = " ".join(w for w in re.split(r"[-_\s]+", name.lower()) if w)
    return " ".join(w for w in _SKIN_TONE.sub(" ", words).split()
                    if w not in STYLE_WORDS and not _NUMBERISH.match(w))


def set_drop_reason(info: dict[str, Any], prefix: str) -> str | None:
    """Why a set is not used (`license`, `category`, `brand`, `hidden`), or None to keep it."""
    spdx = (info.get("license") or {}).get("spdx") or ""
    if spdx not in PERMISSIVE_LICENSES:
        return "license"
    if info.get("hidden"):
        return "hidden"
    category = info.get("category")
    if not category:
        return "uncategorised"
    if category in DROPPED_CATEGORIES:
        return "category"
    named = f"{prefix} {info.get('name', '')}".lower()
    if any(w in named for w in BRAND_WORDS):
        return "brand"
    return None


def svg_document(icon: dict[str, Any], defaults: dict[str, Any]) -> str:
    """A standalone SVG of an icon body, in its own coordinates, with the set's defaults filled in."""
    left, top = icon.get("left", defaults.get("left", 0)), icon.get("top", defaults.get("top", 0))
    width, height = icon.get("width", defaults.get("width", 16)), icon.get("height", defaults.get("height", 16))
    body = icon["body"]
    transforms = []
    if icon.get("hFlip", defaults.get("hFlip", False)):
        transforms.append(f"translate({2 * left + width} 0) scale(-1 1)")
    if icon.get("vFlip", defaults.get("vFlip", False)):
        transforms.append(f"translate(0 {2 * top + height}) scale(1 -1)")
    rotate = int(icon.get("rotate", defaults.get("rotate", 0))) % 4
    if rotate:
        transforms.append(f"rotate({90 * rotate} {left + width / 2} {top + height / 2})")
    if transforms:
        body = f'<g transform="{" ".join(transforms)}">{body}</g>'
    return (f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
            f'width="{width}" height="{height}" viewBox="{left} {top} {width} {height}" '
            f'style="color:#000">{body}</svg>')


def read_set(path: Path) -> tuple[IconSet, dict[str, Any]] | str:
    """(the set, its JSON) or the reason the set is dropped."""
    data = json.loads(path.read_bytes())
    info = data.get("info") or {}
    prefix = data.get("prefix") or path.stem
    reason = set_drop_reason(info, prefix)
    if reason:
        return reason
    lic = info["license"]
    author = (info.get("author") or {}).get("name", "")
    return IconSet(prefix, info.get("name", prefix), info["category"], lic["spdx"], lic.get("title", ""),
                   lic.get("url", ""), author), data


def iter_icons(data: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(caption, icon name, SVG document): one icon per caption (the shortest name), aliases skipped."""
    defaults = {k: data[k] for k in ("left", "top", "width", "height", "rotate", "hFlip", "vFlip") if k in data}
    best: dict[str, str] = {}
    icons = data.get("icons") or {}
    for name in icons:
        caption = clean_name(name)
        if caption and (caption not in best or (len(name), name) < (len(best[caption]), best[caption])):
            best[caption] = name
    for caption, name in sorted(best.items()):
        yield caption, name, svg_document(icons[name], defaults)


def svg_path(svg_root: Path, prefix: str, name: str) -> Path:
    """Where a selected icon's SVG is written: set prefix and icon name come from the package's JSON, so
    each becomes one safe path component (plain names unchanged, any other a distinct safe name)."""
    return svg_root / safepath.unique_slug(prefix) / f"{safepath.unique_slug(name, limit=200)}.svg"


def write_iconify_corpus(out: str | Path, root: str | Path = PACKAGE_ROOT,
                         svg_root: str | Path | None = None) -> dict[str, Any]:
    """Write the kept icons as a LAION-format parquet corpus (atomically); returns counts per drop reason.

    `svg_root` (default: `<out's folder>/iconify`) is where selected icons' SVG files will be written; the
    rows' urls point there."""
    out = Path(out)
    json_dir = Path(root) / "json"
    if not json_dir.is_dir():
        raise InputError(f"no @iconify/json package (scripts/setup.sh installs @iconify/json@{VERSION}; or set "
                         "IMAGENOT_ICONIFY to its folder)", json_dir)
    svg_root = Path(svg_root) if svg_root else out.parent / "iconify"
    cols: dict[str, list[str]] = {name: [] for name in SCHEMA.names}
    dropped: dict[str, int] = {}
    sets = icons = 0
    for path in sorted(json_dir.glob("*.json")):
        got = read_set(path)
        if isinstance(got, str):
            dropped[got] = dropped.get(got, 0) + 1
            continue
        s, data = got
        sets += 1
        icons += len(data.get("icons") or {})
        for caption, name, svg in iter_icons(data):
            for key, value in (("SAMPLE_ID", f"{s.prefix}:{name}"),
                               ("URL", svg_path(svg_root, s.prefix, name).resolve().as_uri()), ("TEXT", caption),
                               ("icon_set", s.prefix), ("icon_name", name), ("license", s.license),
                               ("license_title", s.license_title), ("license_url", s.license_url),
                               ("author", s.author), ("svg", svg)):
                cols[key].append(value)
    meta = {LOCAL_KEY: b"true", SOURCE_KEY: str(root).encode()}
    table = pa.table(cols, schema=SCHEMA.with_metadata(meta))
    with atomic_path(out) as tmp:
        pq.write_table(table, tmp, compression="zstd")
    counts = {"sets": sets, "icons_in_sets": icons, "rows": table.num_rows,
              "sets_dropped": dict(sorted(dropped.items()))}
    log.info("iconify: %d icons of %d sets -> %d captions; sets dropped: %s -> %s", icons, sets, table.num_rows,
             counts["sets_dropped"], out)
    return counts


def materialise_selected(corpus: str | Path, source_ids: list[str]) -> int:
    """Write the SVG files of the selected icons (those missing or differing); returns how many were written.

    The files are where the corpus' urls point, so the download stage reads them as any local corpus. Each
    is written atomically but not fsynced (thousands of fsyncs cost a minute on a busy disk): they are copies
    of the corpus' `svg` column, compared with it on every call, so a file a crash left short is rewritten."""
    if not source_ids:
        return 0
    table = pq.read_table(corpus, columns=["SAMPLE_ID", "URL", "svg"],
                          filters=pc.field("SAMPLE_ID").isin(sorted(set(source_ids))))
    written = 0
    svg_root = Path(corpus).parent / "iconify"
    for url, svg in zip(table["URL"].to_pylist(), table["svg"].to_pylist()):
        path = Path(urllib.request.url2pathname(urllib.parse.urlparse(url).path))
        if not safepath.is_within(path, svg_root):  # a corpus file edited (or written) elsewhere: never follow
            raise InputError(f"an iconify corpus url points outside {svg_root}: {url}", corpus)
        data = svg.encode("utf-8")
        if path.is_file() and path.read_bytes() == data:
            continue
        with atomic_path(path, durable=False) as tmp:
            tmp.write_bytes(data)
        written += 1
    log.info("iconify: wrote %d selected SVG file(s) of %d", written, table.num_rows)
    return written
