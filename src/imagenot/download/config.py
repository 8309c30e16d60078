"""Configs of the download and export stages.

Every knob that changes which images end up in the dataset lives here, so that `config.json` in the dataset
folder is enough to rebuild it (`imagenot download --config DATASET/config.json`).
"""

from __future__ import annotations

from dataclasses import dataclass

FETCHERS = ("auto", "img2dataset", "direct")
DISTRIBUTORS = ("multiprocessing", "pyspark", "ray")
ENCODE_FORMATS = ("jpg", "png")

# PIL's own default (Image.MAX_IMAGE_PIXELS): about 89.5 megapixels, a 1024x1024x3x... bomb guard.
PIL_MAX_IMAGE_PIXELS = 89_478_485


@dataclass(frozen=True)
class DownloadConfig:
    """Turn `selected.parquet` (+ `classes.tsv`) into webdataset shards with a dataset card."""

    matches: str = ""  # selected.parquet from `imagenot mine`
    out: str = ""  # the dataset folder
    classes: str | None = None  # default: classes.tsv next to `matches`
    name: str | None = None  # dataset name in the card; default: the folder name
    image_size: int = 64  # shorter side after resizing (aspect ratio kept; centre crop at train time)
    encode_format: str = "jpg"
    encode_quality: int = 95  # jpg quality; png uses lossless compression level 6
    # fetching
    fetcher: str = "auto"  # auto: `direct` when every url is file://, else img2dataset
    processes: int = 1
    threads: int = 16
    timeout: int = 10  # seconds per request
    retries: int = 1  # extra tries per url after a failed one
    distributor: str = "multiprocessing"  # img2dataset distributor (pyspark / ray on clusters)
    fetch_shard_size: int = 1000  # rows per img2dataset shard (the unit of resuming)
    allow_local: bool = False  # accept file:// urls (only for corpora the user declares local)
    keep_raw: bool = False  # keep the fetched original bytes after cleaning
    # cleaning
    min_image_size: int = 10  # shorter side below this: dropped as too_small
    max_image_pixels: int = PIL_MAX_IMAGE_PIXELS  # above this: refused as a decompression bomb
    max_aspect_ratio: float = 10.0  # longer/shorter side above this: dropped as extreme_aspect_ratio
    # deduplication
    dedup: bool = True
    near_dup_distance: int = 4  # Hamming distance between 64-bit perceptual hashes; <0 disables near-dup
    against: tuple[str, ...] = ()  # reference datasets to check for contamination
    # splits
    seed: int = 0
    val_fraction: float = 0.1  # used for rows without a split (or when `matches` has no split column)
    min_per_class: int = 10  # surviving images a class needs (train + val)
    min_val_per_class: int = 1
    keep_small_classes: bool = False  # keep classes below the minimum (flagged in the card)
    # per-class caps: mining oversamples and orders rows by priority; the first survivors are kept.
    # None: take them from selection.json next to `matches` (max_per_class, val_per_class); -1: no cap
    max_train_per_class: int | None = None
    max_val_per_class: int | None = None
    # output
    shard_size: int = 5000  # samples per output shard
    sheet_per_class: int = 8  # contact sheet columns
    sheet_max_classes: int = 40  # contact sheet rows


@dataclass(frozen=True)
class ExportConfig:
    """Export a dataset folder made by `imagenot download` to another layout."""

    dataset: str = ""
    out: str = ""
    format: str = "folder"  # ImageFolder layout: OUT/<split>/<wnid>/<key>.<ext>
    splits: tuple[str, ...] = ("train", "val")
    overwrite: bool = False
