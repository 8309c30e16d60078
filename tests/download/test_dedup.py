"""Exact and near-duplicate removal within a dataset and against reference datasets."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from imagenot.download import DownloadConfig, run_download
from imagenot.download.dedup import Candidate, HammingIndex, dedup

from .conftest import encode, make_image, write_selection


def test_hamming_index_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    base = [int(x) for x in rng.integers(0, 2**63, 1500, dtype=np.int64)]
    # plant neighbours at distances 1..7
    queries = []
    for i in range(300):
        v = base[i]
        for bit in rng.choice(64, size=1 + i % 7, replace=False):
            v ^= 1 << int(bit)
        queries.append(v)
    queries += [int(x) for x in rng.integers(0, 2**63, 200, dtype=np.int64)]
    for d in (0, 3, 4, 6):
        index = HammingIndex(d)
        for i, v in enumerate(base):
            index.add(v, i)
        for q in queries:
            dists = [(v ^ q).bit_count() for v in base]
            best = min(range(len(base)), key=lambda i: (dists[i], i))
            expect = (best, dists[best]) if dists[best] <= d else None
            assert index.nearest(q) == expect


def test_dedup_keeps_the_best_copy_and_reference_wins() -> None:
    from imagenot.download.dedup import Reference

    c = [
        Candidate(0, "a", "0000000000000000", (-0.5, 0)),
        Candidate(1, "a", "0000000000000000", (-0.9, 1)),  # exact copy of 0 with higher similarity: kept
        Candidate(2, "b", "0000000000000007", (-0.1, 2)),  # 3 bits from 0/1: near duplicate
        Candidate(3, "c", "ffffffffffffffff", (-0.1, 3)),  # in the reference
        Candidate(4, "d", "0f0f0f0f0f0f0f0f", (-0.1, 4)),
    ]
    ref = Reference("ref", exact={"c": "ref:train/9"}, near=[(int("0f0f0f0f0f0f0f0e", 16), "ref:train/3")])
    got = {r.row_id: (r.reason, r.duplicate_of, r.distance) for r in dedup(c, 4, [ref])}
    assert got == {0: ("duplicate_exact", "1", 0), 2: ("duplicate_near", "1", 3),
                   3: ("contamination_exact", "ref:train/9", 0), 4: ("contamination_near", "ref:train/3", 1)}
    assert {r.row_id for r in dedup(c, -1, [])} == {0}  # near-dup off: exact only


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory):
    """60 distinct images (4 classes) plus planted copies, and a reference ImageFolder."""
    root = tmp_path_factory.mktemp("dedup")
    files = root / "files"
    files.mkdir()
    urls, labels, sims = [], [], []

    def add(path: Path, label: int, sim: float) -> None:
        urls.append(path.as_uri())
        labels.append(label)
        sims.append(sim)

    for i in range(60):
        p = files / f"img{i}.png"
        p.write_bytes(encode(make_image(100 + i)))
        add(p, i % 4, 0.6)
    for i in range(5):  # the same file listed again
        add(files / f"img{i}.png", i % 4, 0.5)
    for i in range(5, 8):  # same pixels, another format
        p = files / f"img{i}.bmp"
        p.write_bytes(encode(make_image(100 + i), "BMP"))
        add(p, i % 4, 0.5)
    for i in range(8, 12):  # lossy re-encode: near duplicate
        p = files / f"img{i}.jpg"
        p.write_bytes(encode(make_image(100 + i), "JPEG", quality=85))
        add(p, i % 4, 0.5)
    # a copy with HIGHER similarity than its original (row 12): the copy is kept, the original removed
    p = files / "img12-copy.png"
    shutil.copyfile(files / "img12.png", p)
    add(p, 0, 0.99)
    reference = root / "reference"
    for j in range(6):
        (reference / f"n0000000{j % 2}").mkdir(parents=True, exist_ok=True)
        im = make_image(500 + j)
        (reference / f"n0000000{j % 2}" / f"{j}.png").write_bytes(encode(im))
        if j < 3:  # exact copies in the corpus
            p = files / f"ref{j}.png"
            p.write_bytes(encode(im))
        elif j < 5:  # resized and recompressed: near copies
            p = files / f"ref{j}.jpg"
            p.write_bytes(encode(im.resize((256, 192)), "JPEG", quality=90))
        else:
            continue
        add(p, j % 4, 0.7)
    matches = write_selection(root / "mine", urls, labels, similarity=sims, with_split_column=False)
    return root, matches, reference


def test_within_and_against(corpus) -> None:
    root, matches, reference = corpus
    cfg = DownloadConfig(matches=str(matches), out=str(root / "ds"), image_size=32, allow_local=True,
                         against=(str(reference),), min_images_per_class=5, val_fraction=0.2)
    card = run_download(cfg)
    assert card["source"]["fetcher"] == "direct"
    assert card["dedup"]["counts"] == {"duplicate_exact": 9, "duplicate_near": 4, "contamination_exact": 3,
                                       "contamination_near": 2}
    assert card["removed"] == card["dedup"]["counts"]
    assert card["counts"]["train"] + card["counts"]["val"] == 60
    removed = pq.read_table(Path(cfg.out) / "removed.parquet").to_pylist()
    by_row = {r["row_id"]: r for r in removed}
    assert by_row[12]["reason"] == "duplicate_exact" and by_row[12]["duplicate_of"] == "src-72"
    assert {by_row[i]["duplicate_of"] for i in range(60, 65)} == {f"src-{i}" for i in range(5)}
    contaminated = sorted(r["duplicate_of"] for r in removed if r["stage"] == "contamination")
    assert contaminated == ["reference:n00000000/0.png", "reference:n00000000/2.png",
                            "reference:n00000000/4.png", "reference:n00000001/1.png",
                            "reference:n00000001/3.png"]
    # a dataset folder made by download can be the reference: every row whose picture is in it goes,
    # and only the 5 copies of the other reference's images (not in `ds`) remain
    again = DownloadConfig(matches=str(matches), out=str(root / "ds2"), image_size=32, allow_local=True,
                           against=(str(root / "ds"),), min_images_per_class=1, keep_small_classes=True)
    card2 = run_download(again)
    assert card2["dedup"]["counts"] == {"contamination_exact": 69, "contamination_near": 4}
    assert card2["counts"]["train"] + card2["counts"]["val"] == 5
    assert {c["status"] for c in card2["classes"]} == {"kept", "kept_below_minimum"}


def test_near_duplicates_can_be_switched_off(corpus) -> None:
    root, matches, _ = corpus
    cfg = DownloadConfig(matches=str(matches), out=str(root / "ds-exact"), image_size=32, allow_local=True,
                         near_dup_distance=-1, min_images_per_class=5)
    card = run_download(cfg)
    assert card["dedup"]["counts"] == {"duplicate_exact": 9}
    off = DownloadConfig(matches=str(matches), out=str(root / "ds-none"), image_size=32, allow_local=True,
                         dedup=False, min_images_per_class=5)
    assert run_download(off)["removed"] == {}


def test_reference_image_stored_as_grayscale_array_matches(tmp_path: Path) -> None:
    """A registry dataset's uint8 [N, C, H, W] images fingerprint like the same picture saved as PNG."""
    from imagenot.download.against import _array_to_image, image_hashes
    from imagenot.download.clean import CleanOptions, clean_image

    arr = np.asarray(make_image(9).convert("L").resize((28, 28)))[None]  # [1, 28, 28]
    digest, phash = image_hashes(_array_to_image(arr), 64)
    res = clean_image(encode(Image.fromarray(arr[0], "L")), CleanOptions(image_size=64))
    assert (res.pixel_sha256, res.phash) == (digest, phash)


@pytest.mark.slow
def test_contamination_against_a_registry_dataset(tmp_path: Path) -> None:
    """Fashion-MNIST (the demo's reference) through imagenot.data: a copied val image and an enlarged
    JPEG of another are found among 70,000 (about 2-3 minutes on 2 cores: every image is fingerprinted)."""
    from imagenot.data import get_dataset

    val = np.asarray(get_dataset("fashion-mnist", "val").images)
    files = tmp_path / "files"
    files.mkdir()
    Image.fromarray(val[0, 0], "L").save(files / "copy.png")
    Image.fromarray(val[1, 0], "L").resize((112, 112), Image.Resampling.BICUBIC).save(files / "big.jpg",
                                                                                      quality=92)
    urls = [(files / "copy.png").as_uri(), (files / "big.jpg").as_uri()]
    for i in range(8):
        p = files / f"own{i}.png"
        p.write_bytes(encode(make_image(900 + i)))
        urls.append(p.as_uri())
    matches = write_selection(tmp_path / "m", urls, [0, 1] * 5, with_split_column=False)
    card = run_download(DownloadConfig(matches=str(matches), out=str(tmp_path / "ds"), image_size=32,
                                       allow_local=True, against=("fashion-mnist",), min_images_per_class=1))
    removed = pq.read_table(tmp_path / "ds" / "removed.parquet").to_pylist()
    assert {(r["row_id"], r["reason"], r["duplicate_of"]) for r in removed} == {
        (0, "contamination_exact", "fashion-mnist:val/0"), (1, "contamination_near", "fashion-mnist:val/1")}
    assert card["counts"]["train"] + card["counts"]["val"] == 8
