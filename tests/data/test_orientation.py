"""Images are used as they display: the EXIF orientation tag is applied by every decode of an image file
(data readers, the GPU decode path, download's cleaning), checked against PIL's ImageOps.exif_transpose."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from imagenot.data import get_dataset
from imagenot.data.orientation import exif_orientation, orient
from imagenot.data.readers.files import decode_image
from imagenot.data.samples import decode_on_device


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("IMAGENOT_CACHE", str(tmp_path_factory.mktemp("cache")))


def _pixels(h: int = 8, w: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)


def _encoded(arr: np.ndarray, orientation: int, fmt: str = "PNG") -> bytes:
    im = Image.fromarray(arr)
    exif = im.getexif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    im.save(buf, format=fmt, exif=exif.tobytes(), **({"quality": 95} if fmt == "JPEG" else {}))
    return buf.getvalue()


def _as_displayed(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(ImageOps.exif_transpose(im).convert("RGB"))


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_decode_image_applies_every_exif_orientation(orientation: int, fmt: str) -> None:
    data = _encoded(_pixels(), orientation, fmt)
    assert exif_orientation(data) == orientation
    got = decode_image(data, 3).permute(1, 2, 0).numpy()
    want = _as_displayed(data)
    assert got.shape == want.shape
    if orientation in (5, 6, 7, 8):
        assert got.shape[:2] == (16, 8)  # turned by 90 degrees: stored 16 wide, shown 16 tall
    tolerance = 0 if fmt == "PNG" else 3  # libjpeg (torchvision) and PIL may round differently
    assert np.abs(got.astype(int) - want.astype(int)).max() <= tolerance


def test_the_device_decode_path_turns_images_like_the_cpu_one() -> None:
    """decode_on_device (nvjpeg on CUDA cannot apply the tag: `orient` does) on CPU, JPEG and PNG."""
    datas = [_encoded(_pixels(seed=1), 6, "JPEG"), _encoded(_pixels(seed=2), 8, "PNG"),
             _encoded(_pixels(seed=3), 1, "PNG")]
    encoded = [torch.frombuffer(bytearray(d), dtype=torch.uint8) for d in datas]
    out = decode_on_device(encoded[:2], torch.zeros(2, dtype=torch.int64), None, torch.device("cpu"))
    for got, data in zip(out, datas):
        assert torch.equal(got, decode_image(data, 3))
        assert got.shape == (3, 16, 8)


def test_an_imagefolder_dataset_holds_images_as_they_display(tmp_path: Path) -> None:
    """Streamed (files) and in memory (decoded once, cached): the sideways-stored photo is upright in both."""
    arr = _pixels(8, 16, seed=4)
    for cls in ("a", "b"):
        folder = tmp_path / "tree" / "train" / cls
        folder.mkdir(parents=True)
        (folder / "rotated.png").write_bytes(_encoded(arr, 6))
        (folder / "plain.png").write_bytes(_encoded(arr, 1))
    spec = f"imagefolder:{tmp_path / 'tree'}"
    stream = get_dataset(spec, "train", in_memory=False)
    keys = stream.sample_keys()
    rotated = stream.original(keys.index("a/rotated.png")).permute(1, 2, 0).numpy()
    assert np.array_equal(rotated, np.rot90(arr, k=-1))  # orientation 6: turned 90 degrees clockwise
    plain = stream.original(keys.index("a/plain.png")).permute(1, 2, 0).numpy()
    assert np.array_equal(plain, arr)
    memory = get_dataset(spec, "train", image_size=8, in_memory=True)
    keys = memory.sample_keys()
    expect = torch.from_numpy(np.ascontiguousarray(np.rot90(arr, k=-1))).permute(2, 0, 1)
    from imagenot.data.dataset import resize_center_crop

    assert torch.equal(memory.images[keys.index("b/rotated.png")], resize_center_crop(expect[None], 8)[0])


def test_download_stores_images_upright_and_says_so() -> None:
    from imagenot.download.clean import CleanOptions, clean_image

    arr = _pixels(96, 128, seed=5)
    res = clean_image(_encoded(arr, 6), CleanOptions(image_size=32, encode_format="png"))
    assert res.reason is None, res.message
    assert res.conversion == "exif_orientation"
    assert (res.orig_width, res.orig_height) == (96, 128)  # as displayed
    with Image.open(io.BytesIO(res.image)) as im:
        assert im.size == (32, 43) and 0x0112 not in im.getexif()  # no tag left to turn it twice
        stored = np.asarray(im.convert("RGB"))
    plain = clean_image(_encoded(np.ascontiguousarray(np.rot90(arr, k=-1)), 1),
                        CleanOptions(image_size=32, encode_format="png"))
    assert plain.conversion is None
    with Image.open(io.BytesIO(plain.image)) as im:
        assert np.array_equal(stored, np.asarray(im.convert("RGB")))  # the same pixels as an upright file
    assert res.pixel_sha256 == plain.pixel_sha256  # dedup sees the two as the same image


def test_orient_is_exif_transpose_on_tensors() -> None:
    arr = _pixels(3, 5, seed=6)
    for orientation in range(1, 9):
        data = _encoded(arr, orientation)
        got = orient(torch.from_numpy(arr).permute(2, 0, 1), orientation).permute(1, 2, 0).numpy()
        assert np.array_equal(got, _as_displayed(data)), orientation


@pytest.mark.parametrize("orientation", [3, 6])
def test_a_large_jpeg_decoded_as_a_draft_keeps_its_original_size_as_displayed(orientation: int) -> None:
    from imagenot.download.clean import CleanOptions, clean_image

    res = clean_image(_encoded(_pixels(300, 400, seed=7), orientation, "JPEG"),
                      CleanOptions(image_size=32, encode_format="png"))
    assert res.conversion == "exif_orientation"
    assert (res.orig_width, res.orig_height) == ((400, 300) if orientation == 3 else (300, 400))
    assert min(res.width, res.height) == 32 and (res.width > res.height) == (orientation == 3)
