"""Configs of the download and export stages.

Every knob that changes which images end up in the dataset lives here, so that `config.json` in the dataset
folder is enough to rebuild it (`imagenot download --config DATASET/config.json`).
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Literal

from imagenot.config import option

Fetcher = Literal["auto", "img2dataset", "direct"]
Distributor = Literal["multiprocessing", "pyspark", "ray"]
EncodeFormat = Literal["jpg", "png"]
TextFilter = Literal["off", "count", "drop"]
TextTerms = Literal["name", "name+lemmas"]
ExportFormat = Literal["folder"]

FETCHERS: tuple[str, ...] = typing.get_args(Fetcher)
DISTRIBUTORS: tuple[str, ...] = typing.get_args(Distributor)
ENCODE_FORMATS: tuple[str, ...] = typing.get_args(EncodeFormat)
TEXT_FILTERS: tuple[str, ...] = typing.get_args(TextFilter)
EXPORT_FORMATS: tuple[str, ...] = typing.get_args(ExportFormat)

# PIL's own default (Image.MAX_IMAGE_PIXELS): about 89.5 megapixels.
PIL_MAX_IMAGE_PIXELS = 89_478_485


@dataclass(frozen=True)
class DownloadConfig:
    """Turn `selected.parquet` (+ `classes.tsv`) into webdataset shards with a dataset card."""

    matches: str | None = option(None, help="selected.parquet from `imagenot mine` (the rows to materialise; required)",
                                 path=True)
    out: str | None = option(None, help="the dataset folder to create, finish or confirm (required)", path="dir")
    classes: str | None = option(None, help="classes.tsv of the selection (default: next to --matches)",
                                 path=True)
    name: str | None = option(None, help="dataset name in the card (default: the folder name)")
    force: bool = option(False, help="start clean: rebuild the folder, fetching everything again (nothing staged "
                         "in _work/ is reused), and replace a dataset built from other inputs; without it such a "
                         "folder is refused, so an old dataset is never deleted by a typo")
    image_size: int = option(64, help="shorter side in px after resizing, aspect ratio kept (the square crop "
                             "is left to training time)")
    encode_format: EncodeFormat = option("jpg", help="image format inside the shards")
    encode_quality: int = option(95, help="jpg quality (png is lossless, compression level 6)")
    # fetching
    fetcher: Fetcher = option("auto", help="auto: read local files directly when every url is file://, "
                              "else img2dataset")
    processes: int = option(1, help="fetch and clean processes")
    threads: int = option(16, help="download threads per process")
    timeout: int = option(10, help="seconds per request, in total: connecting, redirects and the whole body "
                          "(a server trickling bytes cannot hold a thread longer)")
    max_response_mb: float = option(50.0, help="largest response body accepted, in MB; bigger ones are "
                                    "dropped as response_too_large without being buffered whole")
    retries: int = option(1, help="extra tries per url after a failed one")
    distributor: Distributor = option("multiprocessing", help="img2dataset distributor (pyspark or ray on "
                                      "clusters)")
    fetch_shard_size: int = option(1000, help="rows per fetch shard, the unit of resuming")
    allow_local: bool = option(False, help="accept file:// urls: only for a corpus you declare local (an "
                               "untrusted corpus could otherwise read any file you can)")
    keep_raw: bool = option(False, help="keep the fetched original bytes and the _work/ staging folder after "
                            "the dataset is complete, so that a rebuild with other settings fetches nothing "
                            "again (without it a complete folder keeps no staging)")
    # cleaning
    min_image_size: int = option(10, help="drop images whose shorter side is below this many px (too_small)")
    max_image_pixels: int = option(PIL_MAX_IMAGE_PIXELS, help="refuse images with more pixels as "
                                   "decompression bombs (default: PIL's own limit)")
    max_aspect_ratio: float = option(10.0, help="drop images whose longer/shorter side ratio is above this "
                                     "(extreme_aspect_ratio)")
    text_filter: TextFilter = option("off", help="LAIONet's text-in-image filter with Tesseract OCR: drop "
                                     "images whose recognised text contains their class's terms "
                                     "(--text-filter-terms) (drop), only count them (count), or skip OCR (off)")
    text_filter_terms: TextTerms = option("name", help="what the text filter looks for: name (LAIONet's: the "
                                          "class name, lower-cased) or name+lemmas (also every lemma)")
    text_filter_fraction: float = option(1.0, help="with --text-filter count: OCR only a seeded sample of this "
                                         "fraction of the images (OCR costs about 0.3 s an image; a sample "
                                         "estimates what drop would remove, with a binomial interval)")
    blur_faces: bool = option(True, help="blur the faces of rows that carry face boxes (DataComp's face_bboxes, "
                              "kept by mine as corpus_face_bboxes) with img2dataset's blurrer before resizing, as "
                              "DataComp's own downloader does (--no-blur-faces: keep the pixels)")
    # deduplication
    dedup: bool = option(True, help="remove exact and near duplicates within the dataset")
    near_dup_distance: int = option(4, help="two images whose 64-bit perceptual hashes differ in at most this "
                                    "many bits are near duplicates; -1 disables near duplicates")
    against: tuple[str, ...] = option((), help="reference datasets to check for contamination: dataset "
                                      "folders, ImageFolder trees or registry names (repeatable)",
                                      path="spec", repeat=True, metavar="DATASET")
    # splits
    seed: int = option(0, help="split and shuffle seed")
    val_fraction: float = option(0.1, help="val share for rows without a split from mining")
    min_images_per_class: int = option(10, help="images a class needs after download (train + val); "
                                       "smaller classes are dropped (see --keep-small-classes)")
    min_val_per_class: int = option(1, help="val images a class needs after download")
    keep_small_classes: bool = option(False, help="keep classes below the minimum, flagged in the card")
    # per-class caps: mining oversamples and orders rows by priority; the first survivors are kept
    max_train_per_class: int | None = option(None, help="keep the first N surviving train rows per class "
                                             "(default: from selection.json next to --matches; -1: no cap)")
    max_val_per_class: int | None = option(None, help="keep the first N surviving val rows per class "
                                           "(default: from selection.json; -1: no cap)")
    # output
    shard_size: int = option(5000, help="samples per output tar shard")
    sheet_per_class: int = option(8, help="contact sheet columns (images per class)")
    sheet_max_classes: int = option(40, help="contact sheet rows (classes shown)")


@dataclass(frozen=True)
class ExportConfig:
    """Export a dataset folder made by `imagenot download` to another layout."""

    dataset: str | None = option(None, help="dataset folder made by `imagenot download` (required)", path=True)
    out: str | None = option(None, help="output folder (required)", path="dir")
    format: ExportFormat = option("folder", help="folder: OUT/<split>/<NNN>_<wnid>_<name>/<key>.<ext>, class "
                                  "folders numbered so that sorted order is label order (torchvision's "
                                  "ImageFolder then gives the dataset's labels)")
    splits: tuple[str, ...] = option(("train", "val"), help="splits to export, comma-separated")
    overwrite: bool = option(False, help="replace a non-empty --out")
