"""Decoding rules, one image at a time: each drop reason and each conversion on real encoded files."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from imagenot.download.clean import CleanOptions, clean_image, fetch_reason, resize_shorter

from .conftest import encode, make_image

OPTS = CleanOptions(image_size=32, encode_format="png")


def decoded(res) -> Image.Image:
    return Image.open(io.BytesIO(res.image))


@pytest.mark.parametrize("make,conversion", [
    (lambda im: encode(im, "JPEG"), None),
    (lambda im: encode(im.convert("P", palette=Image.Palette.ADAPTIVE)), "palette"),
    (lambda im: encode(im.convert("CMYK"), "JPEG"), "cmyk"),
    (lambda im: encode(im.convert("L")), "grayscale"),
    (lambda im: encode(im.convert("LA")), "grayscale+alpha"),
    (lambda im: encode(im.convert("RGBA")), "alpha"),
    (lambda im: encode(Image.fromarray(np.asarray(im.convert("L"), np.uint16) * 257)), "high_bit_depth"),
])
def test_kept_images_become_rgb_with_shorter_side_resized(make, conversion) -> None:
    res = clean_image(make(make_image(1)), OPTS)
    assert res.reason is None, res.message
    assert res.conversion == conversion
    im = decoded(res)
    assert im.mode == "RGB" and min(im.size) == 32
    assert (res.orig_width, res.orig_height) == (128, 96) and (res.width, res.height) == (43, 32)
    assert len(res.pixel_sha256) == 64 and len(res.phash) == 16


def test_transparent_pixels_become_white_and_palette_transparency_counts_as_alpha() -> None:
    im = Image.new("RGBA", (40, 40), (200, 0, 0, 255))
    im.paste((0, 0, 255, 0), (0, 0, 40, 20))  # top half fully transparent (blue, invisible)
    res = clean_image(encode(im), OPTS)
    out = decoded(res).convert("RGB")
    assert out.getpixel((16, 2)) == (255, 255, 255)
    assert out.getpixel((16, 30)) == (200, 0, 0)
    pal = Image.new("P", (40, 40), 1)
    pal.putpalette([0, 0, 0, 10, 200, 10] + [0] * 762)
    pal.paste(0, (0, 0, 40, 20))
    res = clean_image(encode(pal, transparency=0), OPTS)
    assert res.conversion == "palette+alpha"
    assert decoded(res).convert("RGB").getpixel((16, 2)) == (255, 255, 255)


def test_drop_reasons(bomb_png: bytes) -> None:
    good = encode(make_image(2), "JPEG")
    png = bytearray(encode(make_image(3)))
    png[len(png) // 2: len(png) // 2 + 20] = bytes(20)
    cases = {
        "empty_file": b"",
        "not_an_image": b"<html>404</html>",
        "truncated": good[: len(good) // 2],
        "corrupt": bytes(png),
        "too_small": encode(make_image(4).resize((9, 30))),
        "extreme_aspect_ratio": encode(make_image(5).resize((330, 30))),
        "decompression_bomb": bomb_png,
    }
    for reason, data in cases.items():
        res = clean_image(data, OPTS)
        assert res.reason == reason, (reason, res.message)
        assert res.image is None
    # exactly at the limit is kept
    assert clean_image(encode(make_image(4).resize((10, 30))), OPTS).reason is None
    # a lower pixel limit refuses images that PIL's default would accept
    res = clean_image(encode(make_image(6)), CleanOptions(image_size=32, max_image_pixels=128 * 96 - 1))
    assert res.reason == "decompression_bomb" and "12288 pixels" in res.message


def test_same_pixels_same_hash_across_formats() -> None:
    im = make_image(7)
    a = clean_image(encode(im), OPTS)
    b = clean_image(encode(im, "BMP"), OPTS)
    c = clean_image(encode(im, "TIFF"), OPTS)
    assert a.pixel_sha256 == b.pixel_sha256 == c.pixel_sha256
    j = clean_image(encode(im, "JPEG", quality=80), OPTS)
    assert j.pixel_sha256 != a.pixel_sha256  # lossy: not exact, but near
    assert (int(j.phash, 16) ^ int(a.phash, 16)).bit_count() <= 4


def test_resize_keeps_aspect_ratio_and_upscales_small_images() -> None:
    assert resize_shorter(Image.new("RGB", (300, 100)), 64).size == (192, 64)
    assert resize_shorter(Image.new("RGB", (20, 50)), 64).size == (64, 160)
    im = Image.new("RGB", (64, 80))
    assert resize_shorter(im, 64) is im


@pytest.mark.parametrize("message,url,reason", [
    ("HTTP Error 404: Not Found", "http://x/a", "http_error"),
    ("HTTP Error 302: The HTTP server returned a redirect error that would lead to an infinite loop.\n"
     "The last 30x error message was:\nFound", "http://x/a", "redirect_loop"),
    # urllib refuses a redirect to file:// itself; http_fetch refuses any other non-http(s) target
    ("HTTP Error 302: Found - Redirection to url 'file:///etc/passwd' is not allowed", "http://x/a",
     "redirect_refused"),
    ("HTTP Error 302: redirect refused: to a ftp:// url (ftp://x/a.png)", "http://x/a", "redirect_refused"),
    ("response too large: more than 50000000 bytes", "http://x/a", "response_too_large"),
    ("timed out: no complete response within the 3 s deadline", "http://x/a", "timeout"),
    ("timed out", "http://x/a", "timeout"),
    ("<urlopen error timed out>", "http://x/a", "timeout"),
    ("<urlopen error [Errno 111] Connection refused>", "http://x/a", "connection_error"),
    ("<urlopen error [Errno 2] No such file or directory: '/x.png'>", "file:///x.png", "file_not_found"),
    ("Use of image disallowed by X-Robots-Tag directive", "http://x/a", "disallowed_by_robots"),
    ("something else", "http://x/a", "download_error"),
    ("unknown url type: ''", None, "missing_url"),
])
def test_fetch_reasons(message: str, url: str | None, reason: str) -> None:
    assert fetch_reason(message, url) == reason
