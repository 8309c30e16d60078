"""The one contact sheet (`imagenot.data.contact_sheet`): download's images-only grid and the audit's
captioned sheet with label errors are the same renderer with different layouts."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from imagenot.data.contact_sheet import LABEL_WIDTH, PAD, Layout, Tile, decode, render, truncate


def _png(colour: tuple[int, int, int], size: tuple[int, int] = (40, 20)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="PNG")
    return buf.getvalue()


def test_images_only_layout_puts_each_image_in_its_cell(tmp_path: Path) -> None:
    red, blue = decode(_png((255, 0, 0))), decode(_png((0, 0, 255)))
    layout = Layout(tile=32, text_lines=0, columns=5)
    path = tmp_path / "sheet.png"
    render(path, [("0 cat", [Tile(red)]), ("1 dog", [Tile(blue), Tile(red)])], layout=layout)
    with Image.open(path) as sheet:
        sheet = sheet.convert("RGB")
        assert sheet.width == LABEL_WIDTH + 5 * layout.cell_w + PAD  # the columns asked for, not the images
        assert sheet.height == 12 + 2 * layout.cell_h + PAD  # no title, no caption lines
        # a 40x20 image padded (never cropped) into a 32 px tile: its centre keeps the colour
        assert sheet.getpixel((LABEL_WIDTH + 16, 12 + 16)) == (255, 0, 0)
        assert sheet.getpixel((LABEL_WIDTH + 16, 12 + layout.cell_h + 16)) == (0, 0, 255)
        assert sheet.getpixel((LABEL_WIDTH + layout.cell_w + 16, 12 + layout.cell_h + 16)) == (255, 0, 0)
        assert sheet.getpixel((LABEL_WIDTH + 16, 12 + 1)) != (255, 0, 0)  # padding above the letterboxed image


def test_captions_title_and_issues_make_the_sheet_taller(tmp_path: Path) -> None:
    img = decode(_png((0, 128, 0)))
    plain = tmp_path / "plain.png"
    full = tmp_path / "full.png"
    render(plain, [("0 cat", [Tile(img)])], layout=Layout(text_lines=0))
    render(full, [("0 cat", [Tile(img, "a green square " * 10)])], "a title", 40,
           issues=[Tile(img, "cap", "cat -> dog (0.90)")], issues_title="likely label errors")
    with Image.open(plain) as a, Image.open(full) as b:
        assert b.height > a.height + Layout().cell_h  # caption lines, a title and an issue row
        assert b.width >= LABEL_WIDTH + 4 * Layout().cell_w  # issue rows are at least four wide


def test_truncate_keeps_one_line_within_the_limit() -> None:
    assert truncate("a  b\nc", 10) == "a b c"
    cut = truncate("word " * 20, 12)
    assert len(cut) <= 12 and cut.endswith("\u2026")
