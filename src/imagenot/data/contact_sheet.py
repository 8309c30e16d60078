"""`contact_sheet.png`: a few images per class with their captions, and the likely label errors.

Captions are the only labels a web-mined dataset has, so the sheet puts each image beside the text that
labelled it (cut to a few lines), which is what a reader needs to judge a class at a glance. Drawn with
PIL's ImageDraw in matplotlib's DejaVu Sans (wide Unicode coverage for non-English captions).
"""

from __future__ import annotations

import io
import logging
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont, ImageOps

from imagenot.fileio import atomic_path

log = logging.getLogger(__name__)

TILE = 112  # image side in the sheet (px)
TEXT_LINES = 4
LABEL_WIDTH = 150
PAD = 6


@dataclass
class Tile:
    image: Image.Image
    caption: str
    note: str = ""  # an extra first line, e.g. "given flag -> predicted map (0.91)"


def _font(size: int) -> Any:
    try:
        from matplotlib import font_manager

        return ImageFont.truetype(font_manager.findfont("DejaVu Sans"), size)
    except (ImportError, OSError, ValueError):
        return ImageFont.load_default(size=size)


def decode(data: bytes) -> Image.Image:
    from imagenot.data.orientation import upright

    with Image.open(io.BytesIO(data)) as im:
        return upright(im).convert("RGB")


def truncate(text: str | None, chars: int) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= chars else text[: max(chars - 1, 0)].rstrip() + "\u2026"


def _wrap(text: str, width_chars: int, lines: int) -> list[str]:
    out = textwrap.wrap(text, width=width_chars) or [""]
    if len(out) > lines:
        out = out[:lines]
        out[-1] = out[-1][: max(width_chars - 1, 0)].rstrip() + "\u2026"
    return out


def render(path: Path, rows: Sequence[tuple[str, Sequence[Tile]]], title: str, caption_chars: int,
           issues: Sequence[Tile] = (), issues_title: str = "") -> str:
    """Write the sheet: one row per (label, tiles), then the issue tiles in rows of the same width."""
    font, small, bold = _font(13), _font(10), _font(15)
    per_row = max([len(t) for _, t in rows] + [1])
    cell_w = TILE + PAD
    text_h = 12 * (TEXT_LINES + 1)
    cell_h = TILE + text_h + PAD
    chars = max(8, int(TILE / 6.0))  # about 6 px per character at 10 pt
    issue_rows = [list(issues[i:i + max(per_row, 4)]) for i in range(0, len(issues), max(per_row, 4))]
    width = LABEL_WIDTH + max(per_row, 4 if issues else per_row) * cell_w + PAD
    title_chars = max(20, (width - 2 * PAD) // 9)  # about 9 px per character at 15 pt
    title_lines = _wrap(title, title_chars, 3)
    issue_lines = _wrap(issues_title, title_chars, 3) if issue_rows else []
    top = 12 + 18 * len(title_lines)
    issues_top = 16 + 18 * len(issue_lines)
    height = top + len(rows) * cell_h + (issues_top + len(issue_rows) * cell_h if issue_rows else 0) + PAD
    sheet = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(sheet)
    for k, line in enumerate(title_lines):
        draw.text((PAD, 8 + 18 * k), line, fill="black", font=bold)
    y = top

    def put(tiles: Sequence[Tile], y: int) -> None:
        for j, t in enumerate(tiles):
            x = LABEL_WIDTH + j * cell_w
            sheet.paste(ImageOps.pad(t.image, (TILE, TILE), Image.Resampling.BICUBIC, color="#eeeeee"), (x, y))
            lines = ([t.note] if t.note else []) + _wrap(truncate(t.caption, caption_chars), chars,
                                                          TEXT_LINES - (1 if t.note else 0))
            for k, line in enumerate(lines):
                draw.text((x, y + TILE + 2 + 12 * k), line, fill="#aa2222" if (t.note and k == 0) else "#333333",
                          font=small)

    for label, tiles in rows:
        for k, line in enumerate(_wrap(label, 20, 4)):
            draw.text((PAD, y + 4 + 16 * k), line, fill="black", font=font)
        put(tiles, y)
        y += cell_h
    if issue_rows:
        draw.line([(PAD, y + 4), (width - PAD, y + 4)], fill="#999999")
        for k, line in enumerate(issue_lines):
            draw.text((PAD, y + 10 + 18 * k), line, fill="black", font=bold)
        y += issues_top
        for tiles in issue_rows:
            put(tiles, y)
            y += cell_h
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        sheet.save(tmp, format="PNG")
    return str(path)
