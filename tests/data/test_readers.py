"""Each dataset reader on files the tests write, plus the real Fashion-MNIST and Animal-MNIST when present."""

from __future__ import annotations

import gzip
import io
import json
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from imagenot.data import ImageDataset, StreamingDataset, count_images, get_dataset, list_datasets, validate
from imagenot.data.readers.idx import FASHION_MNIST_DIR
from imagenot.data.unpickle import restricted_loads
from imagenot.errors import InputError
from imagenot.registry import UnknownNameError


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("IMAGENOT_CACHE", str(tmp_path_factory.mktemp("cache")))


# -- idx (Fashion-MNIST format) ----------------------------------------------------------------------------
def _write_idx(path: Path, arr: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(struct.pack(">i", d) for d in arr.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + arr.astype(np.uint8).tobytes())


@pytest.fixture
def idx_dir(tmp_path):
    rng = np.random.default_rng(1)
    out = {}
    for prefix, n in (("train", 40), ("t10k", 20)):
        x = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        y = np.arange(n) % 10
        _write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", x)
        _write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", y)
        out[prefix] = (x, y)
    return tmp_path, out


def test_idx_reader_roundtrip(idx_dir):
    root, arrays = idx_dir
    train = get_dataset(f"fashion-mnist:{root}", "train")
    val = get_dataset(f"fashion-mnist:{root}", "val")
    assert train.images.shape == (40, 1, 28, 28) and train.images.dtype == torch.uint8
    assert np.array_equal(train.images[:, 0].numpy(), arrays["train"][0])
    assert np.array_equal(val.images[:, 0].numpy(), arrays["t10k"][0])  # test set is the "val" split
    assert val.labels.tolist() == arrays["t10k"][1].tolist()
    assert train.classes[0] == "T-shirt/top" and train.num_classes == 10
    resized = get_dataset(f"fashion-mnist:{root}", "train", image_size=32, channels=3)
    assert resized.images.shape == (40, 3, 32, 32)
    assert torch.equal(resized.images[:, 0], resized.images[:, 2])  # gray expanded to RGB


def test_image_counts_come_from_headers_and_cards_without_loading(idx_dir, tmp_path_factory):
    """What the zoo orders its runs by: the idx header's count, the dataset card's, with limits applied."""
    root, arrays = idx_dir
    assert count_images(f"fashion-mnist:{root}") == 40 and count_images(f"fashion-mnist:{root}", "val") == 20
    assert count_images(f"fashion-mnist:{root}", limit_per_class=3) == 30  # 10 classes x 3
    assert count_images(f"fashion-mnist:{root}", "val", **{"train.limit": 5}) == 20  # a train-only option
    assert count_images(f"fashion-mnist:{root}", **{"train.limit": 5}) == 5
    wds = tmp_path_factory.mktemp("wds")
    assert count_images(f"wds:{wds}") is None  # no card yet: unknown, not zero
    (wds / "dataset.json").write_text(json.dumps({"splits": {"train": {"count": 700, "shards": []},
                                                             "val": {"count": 80, "shards": []}},
                                                  "classes": ["a", "b", "c", "d"]}))
    assert count_images(f"wds:{wds}") == 700 and count_images(f"wds:{wds}", "val", limit_per_class=10) == 40
    assert count_images("synthetic") is None  # an entry that cannot tell cheaply


def test_idx_bad_magic_and_missing(tmp_path):
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"\x01\x02\x03\x04garbage")
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x01\x05")
    with pytest.raises(InputError, match="bad magic"):
        get_dataset(f"fashion-mnist:{tmp_path}", "train")
    with pytest.raises(InputError, match="missing t10k-images"):
        get_dataset(f"fashion-mnist:{tmp_path}", "val")
    with pytest.raises(InputError, match="not found"):
        get_dataset(f"fashion-mnist:{tmp_path / 'nope'}", "train")


# -- CIFAR-10 python format ----------------------------------------------------------------------------------
def _write_cifar(root: Path, n_per_batch: int = 6) -> dict[str, tuple[np.ndarray, list[int]]]:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(2)
    written = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (n_per_batch, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, n_per_batch)]
        # the official files are Python 2 pickles with bytes keys
        with open(folder / name, "wb") as fh:
            pickle.dump({b"batch_label": name.encode(), b"labels": labels, b"data": data,
                         b"filenames": [b"x.png"] * n_per_batch}, fh, protocol=2)
        written[name] = (data, labels)
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]
    with open(folder / "batches.meta", "wb") as fh:
        pickle.dump({b"label_names": names, b"num_cases_per_batch": n_per_batch}, fh, protocol=2)
    return written


def test_cifar10_reader(tmp_path):
    written = _write_cifar(tmp_path)
    train = get_dataset(f"cifar10:{tmp_path}", "train")
    val = get_dataset(f"cifar10:{tmp_path}", "val")
    assert train.images.shape == (30, 3, 32, 32) and val.images.shape == (6, 3, 32, 32)
    expect = np.concatenate([written[f"data_batch_{i}"][0] for i in range(1, 6)]).reshape(-1, 3, 32, 32)
    assert np.array_equal(train.images.numpy(), expect)
    assert val.labels.tolist() == written["test_batch"][1]
    assert train.classes[:2] == ["airplane", "automobile"]


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_restricted_unpickler_refuses_code(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"data": _Evil(marker)})
    with pytest.raises(InputError, match="refusing to unpickle .*system"):
        restricted_loads(payload)
    assert not marker.exists()
    # numpy arrays (what the data files hold) do load
    arr = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert np.array_equal(restricted_loads(pickle.dumps({"a": arr}))["a"], arr)
    # and a poisoned CIFAR batch is refused through the registry, too
    _write_cifar(tmp_path / "c")
    (tmp_path / "c" / "cifar-10-batches-py" / "data_batch_3").write_bytes(payload)
    with pytest.raises(InputError, match="data_batch_3.*refusing"):
        get_dataset(f"cifar10:{tmp_path / 'c'}", "train")
    assert not marker.exists()


def test_cifar10_missing_folder(tmp_path):
    with pytest.raises(InputError, match="cifar-10-batches-py"):
        get_dataset(f"cifar10:{tmp_path}", "train")


# -- image folders -------------------------------------------------------------------------------------------
COLORS = {"n01440764": (200, 30, 30), "n02084071": (30, 200, 30), "n03000134": (30, 30, 200)}


def _write_png(path: Path, color: tuple[int, int, int], size: tuple[int, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)


@pytest.fixture
def folder_tree(tmp_path):
    root = tmp_path / "folder"
    for split, n, extra in (("train", 5, 0), ("val", 2, 8)):
        for wnid, color in COLORS.items():
            for i in range(n):
                _write_png(root / split / wnid / f"{i}.png", color, (20 + 4 * i + extra, 16 + 2 * i + extra))
    return root


def test_imagefolder_reader(folder_tree):
    train = get_dataset(f"imagefolder:{folder_tree}", "train", image_size=12)
    val = get_dataset(f"imagefolder:{folder_tree}", "val", image_size=12)
    assert isinstance(train, ImageDataset)
    assert train.classes == sorted(COLORS) and len(train) == 15 and len(val) == 6
    assert train.images.shape == (15, 3, 12, 12)
    for img, label in zip(train.images, train.labels):
        expect = torch.tensor(COLORS[train.classes[int(label)]], dtype=torch.uint8)
        assert torch.equal(img[:, 6, 6], expect)  # solid colour survives decode + resize + crop
    assert train.class_counts() == [5, 5, 5]
    # without image_size, the first training image's shorter side (16 px) sets both splits' size
    native_val = get_dataset(f"imagefolder:{folder_tree}", "val")
    assert native_val.images.shape == (6, 3, 16, 16)


def test_imagefolder_cache_and_streaming(folder_tree, monkeypatch):
    import imagenot.data.loading as reg

    first = get_dataset(f"imagefolder:{folder_tree}", "train", image_size=12)

    def boom(*a, **k):
        raise AssertionError("decoded again instead of reading the cache")

    monkeypatch.setattr(reg, "decode_all", boom)
    again = get_dataset(f"imagefolder:{folder_tree}", "train", image_size=12)
    assert torch.equal(first.images, again.images) and torch.equal(first.labels, again.labels)
    monkeypatch.undo()
    stream = get_dataset(f"imagefolder:{folder_tree}", "train", image_size=12, in_memory=False)
    assert isinstance(stream, StreamingDataset) and len(stream) == 15
    xb, yb = stream.get_batch(torch.arange(15))
    assert torch.equal(xb, first.images) and torch.equal(yb, first.labels)


def test_imagefolder_without_split_folders(tmp_path):
    root = tmp_path / "flat"
    for wnid, color in COLORS.items():
        for i in range(10):
            _write_png(root / wnid / f"{i}.png", color, (16, 16))
    train = get_dataset(f"imagefolder:{root}", "train", val_fraction=0.2)
    val = get_dataset(f"imagefolder:{root}", "val", val_fraction=0.2)
    assert len(train) == 24 and len(val) == 6 and val.class_counts() == [2, 2, 2]
    tr = get_dataset(f"imagefolder:{root}", "train", val_fraction=0.2, in_memory=False).records.keys
    va = get_dataset(f"imagefolder:{root}", "val", val_fraction=0.2, in_memory=False).records.keys
    assert not set(tr) & set(va) and len(set(tr) | set(va)) == 30


@pytest.mark.parametrize("layout", ["train/", "val/", ""])
def test_an_empty_class_folder_is_refused_like_torchvision_does(layout: str, tmp_path: Path) -> None:
    """A class folder with no image file (torchvision's ImageFolder raises for it) would become a class no
    image has: refused, naming the folder, for either split, whichever split is loaded."""
    root = tmp_path / "tree"
    for split in ("train/", "val/") if layout else ("",):
        for wnid, color in COLORS.items():
            for i in range(2):
                _write_png(root / f"{split}{wnid}" / f"{i}.png", color, (8, 8))
    (root / f"{layout}n99999999").mkdir(parents=True)
    (root / f"{layout}n99999999" / "notes.txt").write_text("not an image")
    for split in ("train", "val"):
        if layout == "val/" and split == "train":
            assert len(get_dataset(f"imagefolder:{root}", split)) == 6  # the training split is whole
            continue
        with pytest.raises(InputError, match=r"class folder\(s\) 'n99999999' hold no image file"):
            get_dataset(f"imagefolder:{root}", split)


def test_imagefolder_bad_input(tmp_path, folder_tree):
    with pytest.raises(InputError, match="not found"):
        get_dataset(f"imagefolder:{tmp_path / 'missing'}", "train")
    (tmp_path / "noclasses").mkdir()
    with pytest.raises(InputError, match="no class folders"):
        get_dataset(f"imagefolder:{tmp_path / 'noclasses'}", "train")
    # an empty split: no class folder holds an image
    empty = tmp_path / "empty"
    (empty / "train" / "a").mkdir(parents=True)
    (empty / "val").mkdir(parents=True)
    _write_png(empty / "train" / "a" / "0.png", (0, 0, 0), (8, 8))
    ds = get_dataset(f"imagefolder:{empty}", "val")
    assert len(ds) == 0
    with pytest.raises(InputError, match="empty"):
        validate(ds)
    # a one-class dataset
    with pytest.raises(InputError, match="only 1 class"):
        validate(get_dataset(f"imagefolder:{empty}", "train"))
    with pytest.raises(InputError, match="needs an argument"):
        get_dataset("imagefolder", "train")


# -- webdataset shards (the download stage's format) ---------------------------------------------------------
def _png_bytes(color, size=(24, 18)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def wds_dir(tmp_path):
    import webdataset as wds

    from imagenot.wordnet.classes import ClassRow, write_classes

    root = tmp_path / "ds"
    root.mkdir()
    wnids = sorted(COLORS)
    write_classes(root / "classes.tsv", [
        ClassRow(i, w, f"class {i}", (f"lemma{i}",), "a thing", f"class {i} which is a thing", "noun.artifact")
        for i, w in enumerate(wnids)
    ])
    card = {"name": "toy", "image_size": 18, "splits": {}}
    expected = {}
    for split, n in (("train", 9), ("val", 3)):
        labels = []
        with wds.ShardWriter(str(root / f"{split}-%06d.tar"), maxcount=4, verbose=0) as sink:
            for i in range(n):
                label = i % 3
                labels.append(label)
                sink.write({"__key__": f"{split}{i:04d}", "png": _png_bytes(COLORS[wnids[label]]),
                            "cls": str(label).encode(),
                            "json": json.dumps({"wnid": wnids[label], "caption": "c", "url": "http://x",
                                                "similarity": 0.9, "source_id": str(i)}).encode()})
        shards = sorted(p.name for p in root.glob(f"{split}-*.tar"))
        card["splits"][split] = {"count": n, "shards": [{"file": s} for s in shards]}
        expected[split] = labels
    (root / "dataset.json").write_text(json.dumps(card))
    return root, wnids, expected


def test_wds_reader(wds_dir):
    root, wnids, expected = wds_dir
    train = get_dataset(f"wds:{root}", "train")
    val = get_dataset(f"wds:{root}", "val")
    assert train.classes == wnids
    assert train.labels.tolist() == expected["train"] and val.labels.tolist() == expected["val"]
    assert train.images.shape == (9, 3, 18, 18)  # the card's image_size: centre crop of the shorter side
    for img, label in zip(train.images, train.labels):
        assert torch.equal(img[:, 9, 9], torch.tensor(COLORS[wnids[int(label)]], dtype=torch.uint8))
    assert len(list(root.glob("train-*.tar"))) == 3  # several shards, read in order


def test_wds_without_card_and_bad_shards(wds_dir, tmp_path):
    root, wnids, expected = wds_dir
    (root / "dataset.json").unlink()
    with pytest.raises(InputError, match="no dataset.json"):  # an unfinished download is refused...
        get_dataset(f"wds:{root}", "train", image_size=10)
    # ...unless asked for
    train = get_dataset(f"wds:{root}", "train", image_size=10, allow_incomplete=True)
    assert train.labels.tolist() == expected["train"] and train.images.shape[-1] == 10
    val = get_dataset(f"wds:{root}", "val", allow_incomplete=True)
    assert val.images.shape == (3, 3, 18, 18)  # shorter side of the 24x18 PNGs
    (root / "train-000000.tar").write_bytes(b"not a tar file at all" * 40)
    with pytest.raises(InputError, match="train-000000.tar"):
        get_dataset(f"wds:{root}", "train", cache=False, allow_incomplete=True)
    (tmp_path / "nothing").mkdir()
    with pytest.raises(InputError, match="no webdataset shards"):
        get_dataset(f"wds:{tmp_path / 'nothing'}", "train", allow_incomplete=True)


# -- synthetic, options, registry errors ----------------------------------------------------------------------
def test_synthetic_is_learnable():
    train = get_dataset("synthetic", "train", num_classes=4, n=200, size=16)
    val = get_dataset("synthetic", "val", num_classes=4, n=80, size=16)
    validate(train)
    x = train.images.float().flatten(1)
    means = torch.stack([x[train.labels == c].mean(0) for c in range(4)])
    pred = torch.cdist(val.images.float().flatten(1), means).argmin(1)
    assert (pred == val.labels).float().mean() > 0.6  # chance is 0.25
    again = get_dataset("synthetic", "val", num_classes=4, n=80, size=16)
    assert torch.equal(again.images, val.images)


def test_limits_are_stratified_and_seeded():
    base = dict(num_classes=5, n=500, size=8)
    a = get_dataset("synthetic", "train", limit=100, **base)
    b = get_dataset("synthetic", "train", limit=100, **base)
    c = get_dataset("synthetic", "train", limit=100, seed=1, **base)
    assert a.class_counts() == [20] * 5 and torch.equal(a.images, b.images)
    assert not torch.equal(a.labels, c.labels) or not torch.equal(a.images, c.images)
    d = get_dataset("synthetic", "train", limit_per_class=7, **base)
    assert d.class_counts() == [7] * 5


def test_registry_errors():
    names = [n for n, _ in list_datasets()]
    assert {"fashion-mnist[:PATH]", "animal-mnist[:PATH]", "cifar10:PATH", "imagefolder:PATH", "wds:PATH",
            "synthetic"} <= set(names)
    with pytest.raises(UnknownNameError, match="known: .*fashion-mnist"):
        get_dataset("imagenet-1k", "train")
    with pytest.raises(InputError, match="unknown split"):
        get_dataset("synthetic", "test")
    with pytest.raises(InputError, match="unknown option.*colour"):
        get_dataset("synthetic", "train", colour=True)


# -- the real data, when installed ---------------------------------------------------------------------------
@pytest.mark.skipif(not (FASHION_MNIST_DIR / "train-images-idx3-ubyte.gz").exists(),
                    reason="Debian dataset-fashion-mnist not installed")
def test_real_fashion_mnist():
    val = get_dataset("fashion-mnist", "val")
    assert val.images.shape == (10000, 1, 28, 28) and val.class_counts() == [1000] * 10
    small = get_dataset("fashion-mnist", "train", limit=3000, image_size=32)
    assert small.images.shape == (3000, 1, 32, 32) and small.class_counts() == [300] * 10
    assert 50 < float(val.images.float().mean()) < 90  # Fashion-MNIST's mean pixel is about 73


def test_real_animal_mnist():
    import importlib.util

    if importlib.util.find_spec("animal_mnist") is None:
        pytest.skip("PyPI animal-mnist not installed")
    train = get_dataset("animal-mnist", "train")
    val = get_dataset("animal-mnist", "val")
    assert len(train) + len(val) == 10000 and train.num_classes == 10
    assert val.class_counts() == [167] * 10
    assert train.classes[0] == "bear" and train.classes[-1] == "zebra"
    assert train.images.dtype == torch.uint8 and int(train.images.max()) == 255


def test_split_prefixed_options_apply_to_their_split_only():
    from imagenot.data import get_dataset

    opts = {"num_classes": 3, "train.limit_per_class": 10, "val.limit": 12}
    train = get_dataset("synthetic", "train", **opts)
    val = get_dataset("synthetic", "val", **opts)
    assert train.class_counts() == [10, 10, 10] and len(val) == 12
    with pytest.raises(InputError, match="a prefix must be a split"):
        get_dataset("synthetic", "train", **{"test.limit": 3})
