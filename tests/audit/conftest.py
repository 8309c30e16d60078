"""Data the audit tests make themselves: image folders with a known difference, and a small contrast dataset
materialised by `imagenot download` from local PNGs with captions, plus a run trained on it."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from imagenot.wordnet.classes import ClassRow, write_classes

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

# real WordNet 3.0 nouns, none of them a Fashion-MNIST class
CONTRAST_CLASSES = [("n03354903", "flag"), ("n03720163", "map"), ("n02742753", "arrow")]
PER_CLASS = 20
# captions of these (class, image number) pairs also name another class's lemma
ALSO_NAMES = {(0, 1): "map", (0, 2): "map", (1, 3): "arrow"}
COLOURS = [(200, 40, 40), (40, 160, 60), (50, 60, 200)]
# validation images drawn in another class's colour but labelled (and captioned) as their row says: planted
# label errors that a model trained on the colours should contradict
PLANTED = {(0, 4): 2, (1, 8): 0}


def write_imagefolder(root: Path, images: np.ndarray, labels: np.ndarray, classes: list[str]) -> Path:
    """uint8 [N, C, H, W] images as PNGs in root/<class>/<i>.png."""
    for i, (img, lab) in enumerate(zip(images, labels)):
        folder = root / classes[int(lab)]
        folder.mkdir(parents=True, exist_ok=True)
        arr = img.transpose(1, 2, 0)
        Image.fromarray(arr[..., 0] if arr.shape[-1] == 1 else arr).save(folder / f"{i:05d}.png")
    return root


def synthetic_draw(split: str, n: int, seed: int = 0, size: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """Images of the registry's synthetic dataset (the same class patterns for both splits)."""
    from imagenot.data.readers.synthetic import make_synthetic

    images, labels, _ = make_synthetic(split, num_classes=4, size=size, n=n, channels=3, seed=seed)
    return images, labels


def _class_image(label: int, i: int) -> Image.Image:
    rng = np.random.default_rng(100 * label + i)
    base = rng.integers(0, 256, (4, 6, 3)).astype(np.float64)
    tint = np.asarray(COLOURS[PLANTED.get((label, i), label)], dtype=np.float64)
    arr = (0.45 * base + 0.55 * tint).clip(0, 255).astype(np.uint8)
    w, h = 60 + 7 * i, 48 + 3 * label
    return Image.fromarray(arr).resize((w, h), Image.Resampling.BICUBIC)


def caption_of(label: int, i: int) -> str:
    name = CONTRAST_CLASSES[label][1]
    extra = ALSO_NAMES.get((label, i))
    return f"{name}, clip art number {i}" + (f" next to a {extra}" if extra else "")


def similarity_of(label: int, i: int) -> float:
    return round(0.40 + 0.1 * label + 0.01 * i, 4)


@pytest.fixture(scope="session")
def contrast_wds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dataset folder made by `imagenot download`: 3 classes x 20 images (every 4th in val), captions with
    known cross-class mentions, known similarities and original sizes."""
    from imagenot.download import DownloadConfig, run_download

    root = tmp_path_factory.mktemp("contrast")
    files = root / "files"
    files.mkdir()
    rows: dict[str, list] = {k: [] for k in ("source_id", "url", "caption", "wnid", "label", "lemma",
                                             "similarity", "split")}
    for label, (wnid, name) in enumerate(CONTRAST_CLASSES):
        for i in range(PER_CLASS):
            p = files / f"{label}-{i}.png"
            _class_image(label, i).save(p)
            rows["source_id"].append(f"src-{label}-{i}")
            rows["url"].append(p.as_uri())
            rows["caption"].append(caption_of(label, i))
            rows["wnid"].append(wnid)
            rows["label"].append(label)
            rows["lemma"].append(name)
            rows["similarity"].append(similarity_of(label, i))
            rows["split"].append("val" if i % 4 == 0 else "train")
    mine = root / "mine"
    mine.mkdir()
    schema = pa.schema([("source_id", pa.string()), ("url", pa.string()), ("caption", pa.string()),
                        ("wnid", pa.string()), ("label", pa.int32()), ("lemma", pa.string()),
                        ("similarity", pa.float32()), ("split", pa.string())])
    pq.write_table(pa.table(rows, schema=schema), mine / "selected.parquet")
    write_classes(mine / "classes.tsv", [ClassRow(i, w, n, (n,), f"a {n}", f"{n} which is a {n}", "noun.artifact")
                                         for i, (w, n) in enumerate(CONTRAST_CLASSES)])
    out = root / "clipart"
    run_download(DownloadConfig(matches=str(mine / "selected.parquet"), out=str(out), image_size=24,
                                allow_local=True, min_images_per_class=5, near_dup_distance=-1,
                                encode_format="png",
                                max_train_per_class=-1, max_val_per_class=-1))
    return out


@pytest.fixture(scope="session")
def contrast_run(contrast_wds: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished training run on the contrast dataset (resnet_s32 at 16 px, a few steps)."""
    from imagenot.training.trainer import TrainConfig, train

    out = tmp_path_factory.mktemp("runs") / "resnet_s32"
    train(TrainConfig(model="resnet_s32", dataset=f"wds:{contrast_wds}", out=str(out), epochs=7, batch_size=8,
                      recipe_overrides={"lr": 0.07, "warmup_fraction": 0.0},
                      image_size=16, seed=0, threads=1, progress=False,
                      precision="fp32"))  # the planted errors are found from this tiny run's fp32 predictions
    # (at resnet_s32's 16-64 widths, 6 epochs at lr 0.02 left one planted image unflagged; 6-8 epochs at lr 0.05
    # to 0.1 find both, 10 epochs fit the 45 training images too closely for cleanlab's noise estimate)
    return out
