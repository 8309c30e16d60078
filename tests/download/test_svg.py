"""SVG images (the iconify corpus): rendered offline at the dataset's image size on white, and the path
`imagenot mine --corpus iconify` -> `imagenot download` on a small package the test writes."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from imagenot.download.clean import CleanOptions, clean_image, is_svg

from .conftest import read_samples


def _cairo() -> bool:
    try:
        import cairosvg  # noqa: F401
    except (ImportError, OSError):
        return False
    return True


needs_cairo = pytest.mark.skipif(not _cairo(), reason="cairosvg or libcairo2 missing (scripts/setup.sh "
                                 "installs both)")

# a 20x10 canvas whose left half is a black square (currentColor, as iconify bodies draw)
LEFT_SQUARE = ('<svg xmlns="http://www.w3.org/2000/svg" width="20" height="10" viewBox="0 0 20 10">'
               '<path fill="currentColor" d="M0 0h10v10H0z"/></svg>')


def test_svg_is_recognised() -> None:
    assert is_svg(LEFT_SQUARE.encode()) and is_svg(b'<?xml version="1.0"?>\n<svg/>')
    assert not is_svg(b"\x89PNG\r\n") and not is_svg(b"<html><body>svg</body></html>")


@needs_cairo
def test_svg_rendered_at_the_image_size_on_white() -> None:
    res = clean_image(LEFT_SQUARE.encode(), CleanOptions(image_size=32, encode_format="png"))
    assert res.reason is None and res.conversion == "svg"
    im = Image.open(io.BytesIO(res.image))
    assert im.format == "PNG" and im.mode == "RGB" and im.size == (64, 32)  # shorter side 32, 2:1 kept
    px = np.asarray(im).astype(int)
    assert px[:, :30].max() < 30  # the square: black (currentColor defaults to black)
    assert px[:, 34:].min() > 225  # the rest: the white background, not transparent black
    tall = LEFT_SQUARE.replace('width="20" height="10" viewBox="0 0 20 10"',
                               'width="10" height="20" viewBox="0 0 10 20"')
    assert Image.open(io.BytesIO(clean_image(tall.encode(), CleanOptions(image_size=24,
                                                                          encode_format="png")).image)).size == (24, 48)


@pytest.mark.parametrize("dims", ['width="1" height="100000"', 'viewBox="0 0 100000 1"',
                                  'width="1px" height="100000px" viewBox="0 0 1 100000"'])
def test_an_extreme_svg_is_refused_before_cairo_allocates_its_canvas(dims: str, monkeypatch) -> None:
    """A 1:100000 document rendered with its shorter side at the image size would need billions of pixels:
    refused from its declared size, and cairo is never called."""
    import sys

    monkeypatch.setitem(sys.modules, "cairosvg", None)  # an import of cairosvg would now fail loudly
    doc = f'<svg xmlns="http://www.w3.org/2000/svg" {dims}><path d="M0 0h1v1H0z"/></svg>'.encode()
    res = clean_image(doc, CleanOptions(image_size=256))
    assert res.reason == "extreme_aspect_ratio" and "100000" in res.message
    wide = CleanOptions(image_size=256, max_aspect_ratio=1e9)  # aspect allowed: the pixel budget still holds
    assert clean_image(doc, wide).reason == "decompression_bomb"


@needs_cairo
def test_a_broken_svg_gets_one_reason() -> None:
    res = clean_image(b"<svg xmlns='http://www.w3.org/2000/svg'><path d=", CleanOptions())
    assert res.reason == "corrupt" and res.message.startswith("svg:")


@needs_cairo
def test_mine_then_download_the_icons(tmp_path: Path) -> None:
    from imagenot.download import DownloadConfig, run_download
    from imagenot.mining.config import MineConfig
    from imagenot.mining.pipeline import mine
    from imagenot.wordnet.classes import write_classes
    from tests.mining.mine_helpers import ANIMALS, make_classes
    from tests.mining.test_iconify import icon_set, write_package

    sets = []
    for k in range(6):  # a different shape per set, so that dedup keeps them all
        sets.append(icon_set(f"set{k}", "MIT", "Thematic", {
            "dog-outline": f'<path fill="currentColor" d="M{k} 0h{4 + k}v{16 - 2 * k}H{k}z"/>',
            "cat": f'<circle cx="8" cy="{4 + k}" r="{2 + k % 3}" fill="#c00"/>'}))
    sets.append(icon_set("nc", "CC-BY-NC-4.0", "Thematic", {"dog": '<path d="M0 0h16v16H0z"/>'}))
    root = write_package(tmp_path / "pkg", sets)
    write_classes(tmp_path / "classes.tsv", make_classes(ANIMALS))
    mine(MineConfig(corpus=f"iconify:{root}", classes=str(tmp_path / "classes.tsv"), out=str(tmp_path / "mine"),
                    embed=False, workers=1, min_matches_per_class=3, val_per_class=2))
    assert pq.read_table(tmp_path / "mine" / "selected.parquet").num_rows == 12  # the NC set is not there

    card = run_download(DownloadConfig(matches=str(tmp_path / "mine" / "selected.parquet"),
                                       out=str(tmp_path / "ds"), image_size=24, encode_format="png",
                                       allow_local=True, min_images_per_class=3))
    assert card["conversions"] == {"svg": 12} and card["removed"] == {}
    assert card["counts"]["train"] + card["counts"]["val"] == 12
    samples = read_samples(tmp_path / "ds", "train") + read_samples(tmp_path / "ds", "val")
    names = {c["index"]: c["name"] for c in card["classes"]}
    for _key, label, data in samples:
        px = np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(int)
        assert min(px.shape[:2]) == 24 and px.max() > 225  # rendered at the size, white background
        if names[label] == "cat":
            red = (px[..., 0] > 150) & (px[..., 1] < 80)
            assert red.any() and not red[:, :3].any()  # the red circle, centred, not at the edge
    kept = pq.read_table(tmp_path / "ds" / "samples.parquet").to_pylist()
    assert len(kept) == 12 and all(r["url"].endswith(".svg") for r in kept)


def test_svg_without_cairo_gets_a_reason(monkeypatch) -> None:
    import builtins

    real = builtins.__import__

    def no_cairo(name: str, *a, **kw):
        if name == "cairosvg":
            raise ImportError("no cairosvg")
        return real(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", no_cairo)
    res = clean_image(LEFT_SQUARE.encode(), CleanOptions())
    assert res.reason == "svg_unsupported" and "setup.sh" in res.message
