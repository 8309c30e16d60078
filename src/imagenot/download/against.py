"""Fingerprints of reference datasets for the contamination check (`--against`).

A reference can be a dataset folder made by `imagenot download` (its `samples.parquet` already holds the
fingerprints), an ImageFolder tree of image files, or a name the dataset registry knows
(`imagenot.data.get_dataset(spec, split)`, whose datasets expose `.images` as uint8 [N, C, H, W]).
Fingerprints are computed exactly as for the dataset's own images (RGB pixel hash; phash after resizing the
shorter side to the same size) so that a copy of a reference image is found whatever its file format.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image, UnidentifiedImageError

from imagenot import safepath
from imagenot.data.orientation import upright
from imagenot.download.clean import perceptual_hash, prepare
from imagenot.download.dedup import Reference
from imagenot.errors import ImagenotError, InputError
from imagenot.fileio import atomic_path
from imagenot.progress import pool_map, progress
from imagenot.spec import Spec

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
FINGERPRINT_SCHEMA = pa.schema([("id", pa.string()), ("pixel_sha256", pa.string()), ("phash", pa.string())])


def image_hashes(im: Image.Image, image_size: int) -> tuple[str, str]:
    small, digest, _ = prepare(im, image_size)
    return digest, perceptual_hash(small)


def _array_to_image(arr: np.ndarray) -> Image.Image:
    """[C, H, W] uint8 -> PIL image (C = 1, 3 or 4)."""
    if arr.ndim == 2:
        return Image.fromarray(arr, "L")
    c = arr.shape[0]
    hwc = np.ascontiguousarray(np.moveaxis(arr, 0, -1))
    if c == 1:
        return Image.fromarray(hwc[..., 0], "L")
    if c == 3:
        return Image.fromarray(hwc, "RGB")
    if c == 4:
        return Image.fromarray(hwc, "RGBA")
    raise ValueError(f"cannot make an image of {c} channels")


def _from_download_folder(path: Path) -> Iterator[tuple[str, str, str]]:
    table = pq.read_table(path / "samples.parquet", columns=["key", "split", "pixel_sha256", "phash"])
    for key, split, h, p in zip(*(table[c].to_pylist() for c in ("key", "split", "pixel_sha256", "phash"))):
        yield f"{split}/{key}", h, p


def _from_image_folder(path: Path, image_size: int) -> Iterator[tuple[str, str, str]]:
    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise InputError("no image files found (expected an ImageFolder tree or a dataset folder)", path)
    for f in progress(files, desc=f"fingerprint {path.name}", unit="img"):
        try:
            with Image.open(f) as im:
                im.load()
                h, p = image_hashes(upright(im), image_size)  # as downloaded images are stored: upright
        except (OSError, UnidentifiedImageError, ValueError) as exc:
            log.warning("skipping unreadable reference image %s: %s", f, exc)
            continue
        yield str(f.relative_to(path)), h, p


def _fingerprint_chunk(job: tuple[int, np.ndarray, int]) -> list[tuple[str, str]]:
    _, arr, image_size = job
    return [image_hashes(_array_to_image(arr[i]), image_size) for i in range(len(arr))]


def _fingerprint_all(arr: np.ndarray, image_size: int, processes: int, desc: str) -> Iterator[tuple[str, str]]:
    """Fingerprints of a [N, C, H, W] array in order, over `processes` worker processes (70,000 small images
    take about 1-2 minutes on one busy core, mostly PIL resizes)."""
    chunk = 2000
    jobs = [(lo, arr[lo:lo + chunk], image_size) for lo in range(0, len(arr), chunk)]
    done = {job[0]: part for job, part in pool_map(_fingerprint_chunk, jobs, workers=processes, desc=desc,
                                                    unit="chunk")}
    for lo in sorted(done):
        yield from done[lo]


def _from_registry(spec: str, image_size: int, processes: int = 1) -> Iterator[tuple[str, str, str]]:
    try:
        from imagenot.data import get_dataset
    except ImportError as exc:
        raise ImagenotError(
            f"--against {spec}: not a folder, and the dataset registry (imagenot.data) is unavailable: {exc}"
        ) from None
    found = False
    for split in ("train", "val", "test"):
        try:
            ds = get_dataset(spec, split)
        except (ImagenotError, KeyError, ValueError, FileNotFoundError) as exc:
            log.debug("reference %s has no split %s: %s", spec, split, exc)
            continue
        images = getattr(ds, "images", None)
        if images is None:
            log.warning("reference %s/%s has no in-memory .images; skipped", spec, split)
            continue
        arr = np.asarray(images)
        found = True
        for i, (h, p) in enumerate(_fingerprint_all(arr, image_size, processes, f"fingerprint {spec}/{split}")):
            yield f"{split}/{i}", h, p
    if not found:
        raise ImagenotError(f"--against {spec}: the dataset registry returned no split (tried train, val, test)")


def check_reference(spec: str) -> None:
    """Refuse an --against that cannot work before anything is fetched: a missing folder, a file, or a name
    the dataset registry does not know."""
    path = Path(spec).expanduser()
    if path.is_dir():
        return
    if path.exists():
        raise InputError("--against needs a folder (dataset folder or ImageFolder) or a dataset name", path)
    try:
        from imagenot.data import list_datasets
    except ImportError:  # pragma: no cover - the data package is part of imagenot
        names: list[str] = []
    else:  # listed as e.g. "fashion-mnist[:PATH]", "wds:PATH"
        names = [n.split("[")[0].split(":")[0] for n, _ in list_datasets()]
    parsed = Spec.parse(spec)
    if parsed.kind in names:
        if parsed.arg and not Path(parsed.arg).expanduser().exists():
            raise InputError(f"--against {spec}: no such path", parsed.arg)
        return
    if any(c in spec for c in "/\\") or spec.startswith((".", "~")) or not names:
        raise InputError("--against: no such folder (expected a dataset folder, an ImageFolder tree or a "
                         "dataset name)", path)
    raise InputError(f"--against {spec}: not a folder and not a dataset name; known names: {', '.join(names)}")


def load_reference(spec: str, image_size: int, cache_dir: Path | None = None, processes: int = 1) -> Reference:
    """Fingerprints of one reference, cached per spec and image size (a 70k-image set takes ~15 s)."""
    path = Path(spec)
    name = spec.rstrip("/").split("/")[-1] or spec
    if path.is_dir() and (path / "samples.parquet").is_file():
        rows: Iterator[tuple[str, str, str]] = _from_download_folder(path)
        cache = None
    else:
        cache = cache_dir / f"against-{safepath.slug(spec)}-{image_size}.parquet" if cache_dir else None
        if cache is not None and cache.is_file():
            rows = _read_cache(cache)
        elif path.is_dir():
            rows = _from_image_folder(path, image_size)
        elif path.exists():
            raise InputError("--against needs a folder (dataset folder or ImageFolder) or a dataset name", path)
        else:
            rows = _from_registry(spec, image_size, processes)
    ids, exact_h, near_h = [], [], []
    for ident, h, p in rows:
        ids.append(ident)
        exact_h.append(h)
        near_h.append(p)
    if cache is not None and not cache.is_file():
        with atomic_path(cache) as tmp:
            pq.write_table(pa.table({"id": ids, "pixel_sha256": exact_h, "phash": near_h},
                                    schema=FINGERPRINT_SCHEMA), tmp)
    prefix = f"{name}:"
    exact: dict[str, str] = {}
    for ident, h in zip(ids, exact_h):
        exact.setdefault(h, prefix + ident)
    near = [(int(p, 16), prefix + ident) for ident, p in zip(ids, near_h)]
    log.info("reference %s: %d images fingerprinted", spec, len(ids))
    return Reference(name=spec, exact=exact, near=near)


def _read_cache(path: Path) -> Iterator[tuple[str, str, str]]:
    t = pq.read_table(path)
    yield from zip(t["id"].to_pylist(), t["pixel_sha256"].to_pylist(), t["phash"].to_pylist())
