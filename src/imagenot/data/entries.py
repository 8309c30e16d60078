"""The built-in dataset entries (`imagenot datasets` lists them; `imagenot.data.registry` registers them)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from imagenot.data.loading import DatasetEntry, from_arrays, from_records, path_arg
from imagenot.data.readers.files import RecordSet
from imagenot.errors import InputError

log = logging.getLogger(__name__)


def _fashion_mnist(arg: str | None, split: str, opts: dict[str, Any]):
    from imagenot.data.readers.idx import load_fashion_mnist

    images, labels, classes = load_fashion_mnist(arg, split)
    return from_arrays(images, labels, classes, split, opts, {"source": arg or "/usr/share/datasets/fashion-mnist"})


def _fashion_mnist_count(arg: str | None, split: str, opts: dict[str, Any]) -> tuple[int, int]:
    from imagenot.data.readers.idx import FASHION_MNIST_CLASSES, count_idx_records

    return count_idx_records(arg, "train" if split == "train" else "t10k"), len(FASHION_MNIST_CLASSES)


def _animal_mnist(arg: str | None, split: str, opts: dict[str, Any]):
    from imagenot.data.readers.animal import load_animal_mnist

    images, labels, classes = load_animal_mnist(arg, split, float(opts.get("val_fraction", 1 / 6)))
    return from_arrays(images, labels, classes, split, opts, {"source": "PyPI animal-mnist"})


def _cifar10(arg: str | None, split: str, opts: dict[str, Any]):
    from imagenot.data.readers.cifar import load_cifar10

    images, labels, classes = load_cifar10(path_arg(arg), split, download=bool(opts.get("download", False)))
    return from_arrays(images, labels, classes, split, opts, {"source": str(path_arg(arg))})


def _synthetic(arg: str | None, split: str, opts: dict[str, Any]):
    from imagenot.data.readers.synthetic import make_synthetic

    images, labels, classes = make_synthetic(
        split, num_classes=int(opts.get("num_classes", 10)), size=int(opts.get("size", 32)),
        n=None if opts.get("n") is None else int(opts["n"]), channels=int(opts.get("channels", 3)),
        seed=int(opts.get("seed", 0)), noise=float(opts.get("noise", 0.35)),
    )
    return from_arrays(images, labels, classes, split, opts, {"source": "synthetic"})


def _imagefolder(arg: str | None, split: str, opts: dict[str, Any]):
    from imagenot.data.readers.files import fingerprint_files, imagefolder_files, imagefolder_records

    root = path_arg(arg).resolve()
    val_fraction = float(opts.get("val_fraction", 0.2))
    split_seed = int(opts.get("split_seed", 0))
    paths, labels, classes, meta = imagefolder_files(root, split, val_fraction, split_seed)
    fp = fingerprint_files(paths, {"root": str(root), "classes": classes, "vf": val_fraction, "ss": split_seed})
    records = imagefolder_records(paths, labels, classes, meta)
    default_size = None
    if "image_size" not in opts:
        # the training split's first image decides, so that train and val come out the same size
        train_paths = paths if split == "train" else imagefolder_files(root, "train", val_fraction, split_seed)[0]
        default_size = _shorter_side(train_paths[0]) if train_paths else None
    return from_records(records, split, opts, default_size, fp, "imagefolder")


def _shorter_side(path: Path) -> int:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:  # reads the header only
            return int(min(im.size))
    except (UnidentifiedImageError, OSError) as exc:
        raise InputError(f"cannot read image: {exc}", path=path) from exc


def _wds(arg: str | None, split: str, opts: dict[str, Any]):
    from imagenot.data.readers.files import fingerprint_files, wds_card, wds_classes, wds_records, wds_shards

    root = path_arg(arg).resolve()
    allow = str(opts.get("allow_incomplete", False)).lower() in ("1", "true", "yes", "on")
    verify = str(opts.get("verify", "auto"))
    card = wds_card(root, allow_incomplete=allow)
    shards = wds_shards(root, split, card, allow_incomplete=allow, verify=verify)
    classes = wds_classes(root, card)
    extra = [root / "classes.tsv"] if (root / "classes.tsv").is_file() else []
    fp = fingerprint_files(shards + extra, {"root": str(root)})
    records = wds_records(root, split, shards, classes, card)
    if len(records) and int(records.labels.max()) >= len(classes):
        raise InputError(f"a shard holds label {int(records.labels.max())} but classes.tsv lists only "
                         f"{len(classes)} classes", path=root)
    size = card.get("image_size")
    if not size and "image_size" not in opts and split != "train":
        # no card: the training split's first image decides, so that train and val come out the same size
        train_shards = wds_shards(root, "train", card, allow_incomplete=allow, verify=verify)[:1]
        train = wds_records(root, "train", train_shards, classes, card)
        size = _decoded_side(train) if len(train) else None
    return from_records(records, split, opts, int(size) if size else None, fp, "wds")


def _wds_count(arg: str | None, split: str, opts: dict[str, Any]) -> tuple[int, int] | None:
    from imagenot.data.readers.files import wds_classes
    from imagenot.datacard import read_card_if_any

    root = path_arg(arg)
    card = read_card_if_any(root) or {}
    info = card.get("splits", {}).get(split)
    count = info.get("count") if isinstance(info, dict) else info
    if not isinstance(count, int):
        return None
    try:
        classes = len(wds_classes(root, card))
    except InputError:  # no class list: the count stands, limit_per_class cannot cap it
        classes = 0
    return count, classes


def _decoded_side(records: RecordSet) -> int:
    from imagenot.data.readers.files import decode_image

    return int(min(decode_image(records.read_bytes(0), 3, records.source(0)).shape[-2:]))


ENTRIES: tuple[DatasetEntry, ...] = (
    DatasetEntry(
        "fashion-mnist", "Fashion-MNIST, 70k 28x28 gray clothing images in 10 classes (Debian dataset-fashion-mnist "
        "idx files; ARG: another folder of the idx files); test set = 'val'", "PATH", False, (), _fashion_mnist,
        _fashion_mnist_count),
    DatasetEntry(
        "animal-mnist", "Animal-MNIST, 10k 28x28 animal silhouettes in 10 classes (PyPI animal-mnist, read "
        "without TensorFlow); seeded stratified val split (option val_fraction, default 1/6)", "PATH", False,
        ("val_fraction",), _animal_mnist),
    DatasetEntry(
        "cifar10", "CIFAR-10 in torchvision's python format (PATH holds cifar-10-batches-py/); option download=True "
        "fetches it with torchvision", "PATH", True, ("download",), _cifar10),
    DatasetEntry(
        "imagefolder", "class folders of images: PATH/train/<class>/*, PATH/val/<class>/* or PATH/<class>/* "
        "(seeded split, options val_fraction, split_seed); class names may be wnids", "PATH", True,
        ("val_fraction", "split_seed"), _imagefolder),
    DatasetEntry(
        "wds", "a dataset folder made by `imagenot download`: webdataset shards train-*.tar/val-*.tar, classes.tsv, "
        "dataset.json; loads only when complete (option allow_incomplete=true loads anyway, with a warning; "
        "verify=auto|full|size: when shard hashes are checked)", "PATH", True, ("allow_incomplete", "verify"), _wds,
        _wds_count),
    DatasetEntry(
        "synthetic", "random but learnable class patterns, for tests (options num_classes, size, n, noise)",
        None, False, ("num_classes", "size", "n", "noise"), _synthetic),
)
