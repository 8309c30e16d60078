"""Images the way they display: the EXIF orientation tag applied wherever an image file is decoded.

A phone photo is stored sideways with an EXIF tag saying how to turn it; viewers apply it, decoders
(PIL, torchvision) do not unless asked, so a dataset would hold and train on sideways images. Every decode of an image file for storing,
training or auditing goes through `upright` (PIL) or torchvision's `apply_exif_orientation=True` (CPU), and
the CUDA JPEG decoder, which cannot apply it, is followed by `orient` with the tag read here.

Imports only PIL at call time: download's cleaning workers use it without loading torch.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from PIL import Image

ORIENTATION_TAG = 0x0112


def upright(im: Image.Image) -> Image.Image:
    """`im` turned as its EXIF orientation says (PIL's ImageOps.exif_transpose), or `im` itself when it has
    no such tag (no copy of an already upright image)."""
    from PIL import ImageOps

    if _orientation_of(im) in (0, 1):
        return im
    return ImageOps.exif_transpose(im)


def displayed_size(im: Image.Image) -> tuple[int, int]:
    """(width, height) as the image displays, from the header: swapped for the four EXIF orientations that
    turn it by 90 degrees."""
    w, h = im.size
    return (h, w) if _orientation_of(im) in (5, 6, 7, 8) else (w, h)


def _orientation_of(im: Any) -> int:
    try:
        value = im.getexif().get(ORIENTATION_TAG, 1)
        return int(value) if isinstance(value, int) and 1 <= value <= 8 else 1
    except Exception:  # noqa: BLE001 - a broken EXIF block is an image without orientation
        return 1


def exif_orientation(data: bytes) -> int:
    """The EXIF orientation (1..8; 1 = as stored) of encoded image bytes, read from the header only."""
    head = bytes(data[:65536])
    if b"Exif" not in head and b"eXIf" not in head and b"EXIF" not in head:  # JPEG APP1, PNG, WebP
        return 1  # most files answer here, without parsing
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            return _orientation_of(im)
    except Exception:  # noqa: BLE001 - an undecodable file is the decoder's error to report
        return 1


def orient(image: torch.Tensor, orientation: int) -> torch.Tensor:
    """A decoded [..., H, W] tensor turned as EXIF `orientation` says (the same result as PIL's
    exif_transpose), for decoders that cannot do it themselves (nvjpeg)."""
    if orientation == 2:
        return image.flip(-1)
    if orientation == 3:
        return image.flip(-1).flip(-2)
    if orientation == 4:
        return image.flip(-2)
    if orientation == 5:
        return image.transpose(-1, -2)
    if orientation == 6:
        return image.transpose(-1, -2).flip(-1)
    if orientation == 7:
        return image.transpose(-1, -2).flip(-1).flip(-2)
    if orientation == 8:
        return image.transpose(-1, -2).flip(-2)
    return image
