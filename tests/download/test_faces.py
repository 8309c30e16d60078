"""DataComp's face blurring: rows that carry face boxes (`face_bboxes`, kept by mine as corpus_face_bboxes)
have those boxes blurred by img2dataset's blurrer before resizing; pixels away from a box are untouched."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from imagenot.download import DownloadConfig, run_download
from imagenot.download.clean import CleanOptions, clean_image

from .conftest import encode, read_samples, write_selection

BOX = [0.1, 0.1, 0.4, 0.5]  # x0, y0, x1, y1 as fractions, as in DataComp's face_bboxes
SIZE = (80, 60)


def _noise(seed: int) -> Image.Image:
    """Per-pixel noise: any blur changes it, so a changed pixel shows where the blur reached."""
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (SIZE[1], SIZE[0], 3), dtype=np.uint8))


def _pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(int)


def _changed(before: np.ndarray, after: np.ndarray) -> tuple[float, int]:
    """(share of changed pixels inside the box, changed pixels in the right half, far from the box)."""
    h, w = before.shape[:2]
    diff = np.abs(before - after).sum(-1) > 0
    inside = diff[int(BOX[1] * h): int(BOX[3] * h), int(BOX[0] * w): int(BOX[2] * w)]
    return float(inside.mean()), int(diff[:, w // 2 + 8:].sum())


def test_the_box_is_blurred_and_the_rest_untouched() -> None:
    src = _noise(1)
    opts = CleanOptions(image_size=min(SIZE), encode_format="png")  # no resize, lossless: pixels compare
    plain = clean_image(encode(src), opts)
    blurred = clean_image(encode(src), opts, faces=[BOX])
    assert plain.conversion is None and blurred.conversion == "faces_blurred"
    assert np.array_equal(_pixels(plain.image), np.asarray(src).astype(int))
    inside, far = _changed(_pixels(plain.image), _pixels(blurred.image))
    assert inside > 0.9 and far == 0
    assert clean_image(encode(src), opts, faces=[]).conversion is None  # a row without faces: as before


def test_download_blurs_datacomp_face_boxes_by_default(tmp_path: Path) -> None:
    urls = []
    for i in range(2):
        path = tmp_path / "img" / f"{i}.png"
        path.parent.mkdir(exist_ok=True)
        _noise(10 + i).save(path)
        urls.append(path.as_uri())
    matches = write_selection(tmp_path / "mine", urls, [0, 1], ["train", "train"])
    table = pq.read_table(matches)
    faces = pa.array([[BOX], []], pa.list_(pa.list_(pa.float64())))
    pq.write_table(table.append_column("corpus_face_bboxes", faces), matches)
    cfg = DownloadConfig(matches=str(matches), out=str(tmp_path / "ds"), allow_local=True, image_size=min(SIZE),
                         encode_format="png", min_images_per_class=1, min_val_per_class=0, val_fraction=0.0,
                         dedup=False)
    card = run_download(cfg)
    assert card["counts"]["train"] == 2
    got = {key: _pixels(data) for key, _, data in read_samples(tmp_path / "ds", "train")}
    assert len(got) == 2
    source = [np.asarray(_noise(10 + i)).astype(int) for i in range(2)]
    by_source = {i: next(p for p in got.values() if p.shape == source[i].shape and
                         np.array_equal(p[:, SIZE[0] // 2 + 8:], source[i][:, SIZE[0] // 2 + 8:]))
                 for i in range(2)}
    inside, far = _changed(source[0], by_source[0])
    assert inside > 0.9 and far == 0  # the row with a face box
    assert np.array_equal(by_source[1], source[1])  # the row without one
    off = run_download(replace(cfg, out=str(tmp_path / "ds-off"), blur_faces=False))
    assert off["counts"]["train"] == 2
    assert all(any(np.array_equal(p, s) for s in source)
               for p in (_pixels(d) for _, _, d in read_samples(tmp_path / "ds-off", "train")))


def test_boxes_are_blurred_where_they_were_drawn_before_the_exif_turn() -> None:
    """DataComp's boxes are fractions of the image as stored (img2dataset decodes without EXIF): a photo
    with an EXIF orientation is blurred in stored coordinates, then turned upright."""
    src = _noise(2)
    exif = Image.Exif()
    exif[0x0112] = 3  # orientation 3: displayed turned by 180 degrees
    buf = io.BytesIO()
    src.save(buf, "PNG", exif=exif)
    opts = CleanOptions(image_size=min(SIZE), encode_format="png")
    plain = clean_image(buf.getvalue(), opts)
    blurred = clean_image(buf.getvalue(), opts, faces=[BOX])
    assert plain.conversion == "exif_orientation" and "faces_blurred" in (blurred.conversion or "")
    # undo the 180-degree turn: the changed pixels must sit in the box as drawn on the stored image
    before, after = _pixels(plain.image)[::-1, ::-1], _pixels(blurred.image)[::-1, ::-1]
    inside, far = _changed(before, after)
    assert inside > 0.9 and far == 0
