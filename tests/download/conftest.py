"""Fixtures for the download stage: generated images and selections with the `imagenot mine` schema."""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image, ImageDraw

from imagenot.wordnet.classes import ClassRow, write_classes

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")

# real WordNet 3.0 nouns (not ImageNet classes)
CLASSES = [("n00015388", "animal"), ("n02913152", "building"), ("n00021265", "food"), ("n00017222", "plant")]

SELECTED_SCHEMA = pa.schema([
    ("source_id", pa.string()), ("url", pa.string()), ("caption", pa.string()), ("wnid", pa.string()),
    ("label", pa.int32()), ("lemma", pa.string()), ("similarity", pa.float32()), ("split", pa.string()),
])


def make_image(seed: int, size: tuple[int, int] = (128, 96)) -> Image.Image:
    """A distinct picture per seed: a smooth random field with a few shapes (distinct perceptual hashes)."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    im = Image.fromarray(base).resize(size, Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(im)
    for _ in range(3):
        x0, y0 = int(rng.integers(0, size[0] - 10)), int(rng.integers(0, size[1] - 10))
        x1, y1 = x0 + int(rng.integers(5, size[0] // 2)), y0 + int(rng.integers(5, size[1] // 2))
        fill = tuple(int(v) for v in rng.integers(0, 256, 3))
        (draw.rectangle if rng.random() < 0.5 else draw.ellipse)([x0, y0, x1, y1], fill=fill)
    return im


def encode(im: Image.Image, fmt: str = "PNG", **kw: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def write_selection(folder: Path, urls: Sequence[str], labels: Sequence[int],
                    splits: Sequence[str | None] | None = None, similarity: Sequence[float] | None = None,
                    with_split_column: bool = True, source_ids: Sequence[str] | None = None) -> Path:
    """selected.parquet + classes.tsv as `imagenot mine` writes them."""
    folder.mkdir(parents=True, exist_ok=True)
    n = len(urls)
    cols = {
        "source_id": list(source_ids) if source_ids is not None else [f"src-{i}" for i in range(n)],
        "url": list(urls),
        "caption": [f"a {CLASSES[lab][1]} picture number {i}" for i, lab in enumerate(labels)],
        "wnid": [CLASSES[lab][0] for lab in labels],
        "label": list(labels),
        "lemma": [CLASSES[lab][1] for lab in labels],
        "similarity": list(similarity) if similarity is not None else [0.5 + (i % 7) / 100 for i in range(n)],
        "split": list(splits) if splits is not None else [None] * n,
    }
    schema = SELECTED_SCHEMA
    if not with_split_column:
        cols.pop("split")
        schema = pa.schema([f for f in SELECTED_SCHEMA if f.name != "split"])
    pq.write_table(pa.table(cols, schema=schema), folder / "selected.parquet")
    write_classes(folder / "classes.tsv", [
        ClassRow(i, w, name, (name,), f"a {name}", f"{name} which is a {name}", "noun.Tops")
        for i, (w, name) in enumerate(CLASSES)])
    return folder / "selected.parquet"


@pytest.fixture(scope="session")
def bomb_png() -> bytes:
    """A 12000x12000 bilevel PNG: 17 kB on disk, 144 megapixels decoded (over PIL's 89.5 MP guard)."""
    return encode(Image.new("1", (12000, 12000)), "PNG")


def read_samples(folder: str | Path, split: str) -> list[tuple[str, int, bytes]]:
    """(key, label, encoded image) per sample of a split, through the one reader of dataset folders."""
    from imagenot.data.readers.files import wds_card, wds_classes, wds_records, wds_shards

    root = Path(folder)
    card = wds_card(root)
    rec = wds_records(root, split, wds_shards(root, split, card), wds_classes(root, card), card)
    return [(rec.keys[i], int(rec.labels[i]), rec.read_bytes(i)) for i in range(len(rec))]
