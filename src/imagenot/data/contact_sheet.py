"""Contact sheets: a grid of a dataset's images, one row per class, for judging a dataset at a glance.

One implementation for every sheet the project draws: the dataset folder's `contact_sheet.png` (`imagenot
download`: class names and images) and the audit's (images beside the captions that labelled them, since
captions are the only labels a web-mined dataset has, and the likely label errors). Drawn with PIL's
ImageDraw in matplotlib's DejaVu Sans (wide Unicode coverage for non-English captions); images are
decoded upright (`imagenot.data.orientation`) and padded, never cropped, into their tiles. Here, in the data
stage, because both download and audit may import it.
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
TEXT_LINES = 4  # caption lines under each image (0: images only)
LABEL_WIDTH = 150
PAD = 6


@dataclass
class Tile:
    """One image of the sheet, with the text drawn under it."""

    image: Image.Image
    caption: str = ""
    note: str = ""  # an extra first line, e.g. "given flag -> predicted map (0.91)"


def _font(size: int) -> Any:
    try:
        from matplotlib import font_manager

        return ImageFont.truetype(font_manager.findfont("DejaVu Sans"), size)
    except (ImportError, OSError, ValueError):
        return ImageFont.load_default(size=size)


def decode(data: bytes) -> Image.Image:
    """An encoded image as it displays (EXIF orientation applied), in RGB."""
    from imagenot.data.orientation import upright

    with Image.open(io.BytesIO(data)) as im:
        return upright(im).convert("RGB")


def truncate(text: str | None, chars: int) -> str:
    """`text` on one line, cut to `chars` characters with an ellipsis."""
    text = " ".join((text or "").split())
    return text if len(text) <= chars else text[: max(chars - 1, 0)].rstrip() + "\u2026"


def _wrap(text: str, width_chars: int, lines: int) -> list[str]:
    out = textwrap.wrap(text, width=width_chars) or [""]
    if len(out) > lines:
        out = out[:lines]
        out[-1] = out[-1][: max(width_chars - 1, 0)].rstrip() + "\u2026"
    return out


@dataclass(frozen=True)
class Layout:
    """Sizes of one sheet: image side, caption lines under each image, and the fewest columns drawn."""

    tile: int = TILE
    text_lines: int = TEXT_LINES
    columns: int = 1

    @property
    def cell_w(self) -> int:
        return self.tile + PAD

    @property
    def cell_h(self) -> int:
        return self.tile + (12 * (self.text_lines + 1) if self.text_lines else 0) + PAD


def render(path: Path, rows: Sequence[tuple[str, Sequence[Tile]]], title: str = "", caption_chars: int = 0,
           issues: Sequence[Tile] = (), issues_title: str = "", layout: Layout = Layout()) -> str:
    """Write the sheet: an optional title, one row per (label, tiles), then the issue tiles in rows of the
    same width under their own title."""
    per_row = max([len(t) for _, t in rows] + [layout.columns, 1])
    issue_rows = [list(issues[i:i + max(per_row, 4)]) for i in range(0, len(issues), max(per_row, 4))]
    width = LABEL_WIDTH + max(per_row, 4 if issues else per_row) * layout.cell_w + PAD
    title_chars = max(20, (width - 2 * PAD) // 9)  # about 9 px per character at 15 pt
    title_lines = _wrap(title, title_chars, 3) if title else []
    issue_lines = _wrap(issues_title, title_chars, 3) if issue_rows else []
    top = 12 + 18 * len(title_lines)
    issues_top = 16 + 18 * len(issue_lines)
    height = top + len(rows) * layout.cell_h + (issues_top + len(issue_rows) * layout.cell_h if issue_rows else 0) + PAD
    sheet = Image.new("RGB", (width, height), "white")
    pen = _Pen(sheet, layout, caption_chars)
    for k, line in enumerate(title_lines):
        pen.draw.text((PAD, 8 + 18 * k), line, fill="black", font=pen.bold)
    y = top
    for label, tiles in rows:
        for k, line in enumerate(_wrap(label, 20, 4)):
            pen.draw.text((PAD, y + 4 + 16 * k), line, fill="black", font=pen.font)
        pen.put(tiles, y)
        y += layout.cell_h
    if issue_rows:
        pen.draw.line([(PAD, y + 4), (width - PAD, y + 4)], fill="#999999")
        for k, line in enumerate(issue_lines):
            pen.draw.text((PAD, y + 10 + 18 * k), line, fill="black", font=pen.bold)
        y += issues_top
        for tiles in issue_rows:
            pen.put(tiles, y)
            y += layout.cell_h
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        sheet.save(tmp, format="PNG")
    return str(path)


class _Pen:
    """Draws tiles (image, then its note and caption lines) onto one sheet."""

    def __init__(self, sheet: Image.Image, layout: Layout, caption_chars: int) -> None:
        self.sheet, self.layout, self.caption_chars = sheet, layout, caption_chars
        self.draw = ImageDraw.Draw(sheet)
        self.font, self.small, self.bold = _font(13), _font(10), _font(15)
        self.chars = max(8, int(layout.tile / 6.0))  # about 6 px per character at 10 pt

    def put(self, tiles: Sequence[Tile], y: int) -> None:
        side, lines_max = self.layout.tile, self.layout.text_lines
        for j, t in enumerate(tiles):
            x = LABEL_WIDTH + j * self.layout.cell_w
            self.sheet.paste(ImageOps.pad(t.image, (side, side), Image.Resampling.BICUBIC, color="#eeeeee"), (x, y))
            if not lines_max:
                continue
            lines = ([t.note] if t.note else []) + _wrap(truncate(t.caption, self.caption_chars), self.chars,
                                                          lines_max - (1 if t.note else 0))
            for k, line in enumerate(lines):
                self.draw.text((x, y + side + 2 + 12 * k), line,
                               fill="#aa2222" if (t.note and k == 0) else "#333333", font=self.small)
