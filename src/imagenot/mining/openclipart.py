"""The Open Clip Art Library as an image-text corpus (Debian's openclipart-svg and openclipart-png).

Each SVG carries Dublin Core metadata written by its author: a title, keywords (an `rdf:Bag` under
`dc:subject`) and a description. Those are the captions, as noisy and multilingual as captions on the web;
the image is the PNG twin (same relative path under the png folder, `.png`). The corpus is written as a
LAION-format parquet file (`SAMPLE_ID`, `URL`, `TEXT` plus the parts of the caption), so the rest of the
pipeline treats it like LAION metadata. Its urls are `file://` paths, so the corpus declares itself local
(parquet metadata `imagenot.local`): a corpus from elsewhere is never trusted with local paths.

The XML is parsed with defusedxml (no entity expansion, no external resources). Six of the 8,121 files
declare entities in an internal DTD subset (Adobe Illustrator namespace aliases); that subset is removed
before parsing rather than expanded.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from defusedxml import ElementTree as SafeET
from tqdm import tqdm

from imagenot.errors import InputError
from imagenot.fileio import atomic_path

log = logging.getLogger(__name__)

SVG_ROOT = Path("/usr/share/openclipart/svg")
PNG_ROOT = Path("/usr/share/openclipart/png")
LOCAL_KEY = b"imagenot.local"
SOURCE_KEY = b"imagenot.source"

_DC = "{http://purl.org/dc/elements/1.1/}"
_RDF = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"
_INTERNAL_SUBSET = re.compile(rb"(<!DOCTYPE[^\[>]*)\[.*?\]\s*>", re.S)

SCHEMA = pa.schema([
    ("SAMPLE_ID", pa.string()), ("URL", pa.string()), ("TEXT", pa.string()), ("title", pa.string()),
    ("keywords", pa.list_(pa.string())), ("description", pa.string()), ("category", pa.string()),
])


@dataclass(frozen=True)
class ClipArt:
    sample_id: str
    url: str
    title: str
    keywords: tuple[str, ...]
    description: str
    category: str

    @property
    def caption(self) -> str:
        return make_caption(self.title, self.keywords, self.description)


def make_caption(title: str, keywords: tuple[str, ...] | list[str], description: str) -> str:
    """title + keywords + description, the description only when it adds something to the title."""
    parts = [title.strip()]
    kws = [k.strip() for k in keywords if k.strip()]
    if kws:
        parts.append(", ".join(kws))
    desc = description.strip()
    if desc and desc != title.strip():
        parts.append(desc)
    return ". ".join(p for p in parts if p)


def _text(el: object) -> str:
    text = getattr(el, "text", None) if el is not None else None
    return " ".join(text.split()) if text else ""


def read_svg_metadata(path: str | Path) -> tuple[str, tuple[str, ...], str] | None:
    """(title, keywords, description) of the `cc:Work` in an SVG's metadata, or None if it has none."""
    data = Path(path).read_bytes()
    head = data[:4096]
    if b"<!ENTITY" in head or b"<!DOCTYPE" in head:
        data = _INTERNAL_SUBSET.sub(rb"\1>", data, count=1)
    for _event, el in SafeET.iterparse(io.BytesIO(data), events=("end",)):
        if el.tag.endswith("}Work"):
            title = _text(el.find(f"{_DC}title"))
            desc = _text(el.find(f"{_DC}description"))
            keywords = tuple(t for t in (_text(li) for li in el.iterfind(f"{_DC}subject/{_RDF}Bag/{_RDF}li")) if t)
            return title, keywords, desc
        if el.tag.endswith("}metadata"):
            return None
    return None


def iter_clipart(svg_root: Path = SVG_ROOT, png_root: Path = PNG_ROOT) -> Iterator[ClipArt | str]:
    """Every SVG with metadata and a PNG twin; yields an error string for each that cannot be used."""
    paths = sorted(svg_root.rglob("*.svg"))
    for path in tqdm(paths, desc="openclipart", unit="svg", leave=False, disable=len(paths) < 500):
        rel = path.relative_to(svg_root)
        png = (png_root / rel).with_suffix(".png")
        if not png.is_file():
            yield f"{rel}: no PNG twin at {png}"
            continue
        try:
            meta = read_svg_metadata(path)
        except Exception as exc:  # noqa: BLE001 - ParseError, EntitiesForbidden, DTDForbidden, OSError
            yield f"{rel}: unreadable metadata ({type(exc).__name__}: {exc})"
            continue
        if meta is None:
            yield f"{rel}: no cc:Work metadata"
            continue
        title, keywords, desc = meta
        yield ClipArt(rel.with_suffix("").as_posix(), png.resolve().as_uri(), title, keywords, desc,
                      rel.parts[0] if len(rel.parts) > 1 else "")


def write_openclipart_corpus(out: str | Path, svg_root: str | Path = SVG_ROOT,
                             png_root: str | Path = PNG_ROOT) -> dict[str, int]:
    """Write the library as a LAION-format parquet corpus (atomically); returns counts of kept and skipped."""
    svg_root, png_root = Path(svg_root), Path(png_root)
    if not svg_root.is_dir():
        raise InputError("no Open Clip Art SVG folder (Debian: apt-get install openclipart-svg openclipart-png)",
                         svg_root)
    rows: list[ClipArt] = []
    skipped: list[str] = []
    for item in iter_clipart(svg_root, png_root):
        if isinstance(item, str):
            skipped.append(item)
        else:
            rows.append(item)
    for msg in skipped[:10]:
        log.warning("openclipart: skipped %s", msg)
    table = pa.table({
        "SAMPLE_ID": [r.sample_id for r in rows],
        "URL": [r.url for r in rows],
        "TEXT": [r.caption for r in rows],
        "title": [r.title for r in rows],
        "keywords": [list(r.keywords) for r in rows],
        "description": [r.description for r in rows],
        "category": [r.category for r in rows],
    }, schema=SCHEMA.with_metadata({LOCAL_KEY: b"true", SOURCE_KEY: str(svg_root).encode()}))
    with atomic_path(out) as tmp:
        pq.write_table(table, tmp, compression="zstd")
    log.info("openclipart: %d images with captions, %d skipped -> %s", len(rows), len(skipped), out)
    return {"images": len(rows), "skipped": len(skipped)}


def is_local_corpus(path: str | Path) -> bool:
    """Whether a parquet corpus declares itself local (its urls are file:// paths the user vouches for)."""
    try:
        meta = pq.read_schema(path).metadata or {}
    except (pa.ArrowInvalid, OSError):
        return False
    return meta.get(LOCAL_KEY) == b"true"
