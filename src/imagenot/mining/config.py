"""The configs of `imagenot mine` and `imagenot select` (frozen, written resolved as config.json)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Literal

from imagenot.config import check_choices, option
from imagenot.errors import ImagenotError, InputError
from imagenot.mining.encoders import DEFAULT_ENCODER, STUDY_ENCODER, default_threshold, threshold_note
from imagenot.mining.schemas import DEFAULT_SAFETY_MAX
from imagenot.runtime import PRECISION_ALIASES, Precision

CAPS = ("top", "random")
CLASS_CHOICES = ("most", "random")
DEFAULT_MEMORY_MB = 512  # the selection's DuckDB working memory; beyond it, it spills to disk
_SEL = "selection"


def check_threshold(threshold: float | None) -> None:
    """A cosine similarity lies in [-1, 1]: a threshold outside keeps everything or nothing."""
    if threshold is not None and not (math.isfinite(threshold) and -1.0 <= threshold <= 1.0):
        raise ImagenotError(f"--threshold must be a cosine similarity in [-1, 1] (got {threshold})")


def check_memory(memory_mb: int) -> None:
    """DuckDB needs some working memory of its own; below this it fails rather than spilling."""
    if memory_mb < 64:
        raise ImagenotError(f"--selection-memory-mb must be at least 64 (got {memory_mb})")


@dataclass(frozen=True)
class SelectionParams:
    num_classes: int | None = None  # None: every class with at least min_matches_per_class images
    min_matches_per_class: int = 1
    max_per_class: int | None = None  # None: no cap
    cap: str = "top"
    seed: int = 0
    val_per_class: int = 0
    oversample: float = 1.0
    max_val_fraction: float = 0.5  # a small class keeps at least half its images for training
    class_choice: str = "most"  # most: the N classes with the most images; random: a seeded draw of N eligible

    def check(self) -> None:
        if self.cap not in CAPS:
            raise ImagenotError(f"unknown --cap {self.cap!r}; known: {', '.join(CAPS)}")
        if self.class_choice not in CLASS_CHOICES:
            raise ImagenotError(f"unknown --class-choice {self.class_choice!r}; known: {', '.join(CLASS_CHOICES)}")
        if self.oversample < 1.0:
            raise ImagenotError(f"--oversample must be >= 1 (got {self.oversample})")
        if self.min_matches_per_class < 1 or (self.num_classes is not None and self.num_classes < 1):
            raise ImagenotError("--min-matches-per-class and --num-classes must be at least 1")
        if self.max_per_class is not None and self.max_per_class < 1:
            raise ImagenotError("--max-per-class must be at least 1")
        if self.val_per_class < 0 or not 0 <= self.max_val_fraction <= 1:
            raise ImagenotError("--val-per-class must be >= 0 and max_val_fraction in [0, 1]")


@dataclass(frozen=True)
class SelectionOptions:
    """The selection's options, declared once: `imagenot mine` selects after mining and `imagenot select`
    redoes the selection of a mine folder, with the same flags, defaults and help (the "selection" group)."""

    num_classes: int | None = option(None, group=_SEL, help="keep the N classes with the most matches "
                                      "(default: every class with enough matches)")
    min_matches_per_class: int = option(1, group=_SEL, help="a class needs at least K candidate matches above "
                                        "the threshold (before download)")
    max_per_class: int | None = option(None, group=_SEL, help="cap images per class, train+val (default: no cap)")
    cap: Literal["top", "random"] = option("top", group=_SEL, help="which images the cap keeps: top similarity "
                                           "or a seeded random sample")
    seed: int = option(0, group=_SEL, help="seed of random caps and of the train/val split")
    val_per_class: int = option(0, group=_SEL, help="validation images per class")
    oversample: float = option(1.0, group=_SEL, help="keep F x the cap as candidates, for urls that will not "
                               "download (LAION: about 1.4)")
    max_val_fraction: float = option(0.5, group=_SEL, help="at most this fraction of a class goes to validation")
    class_choice: Literal["most", "random"] = option("most", group=_SEL, help="which N classes: the N with the "
                                                     "most matches, or a seeded random draw of N among the classes "
                                                     "with at least --min-matches-per-class")
    selection_memory_mb: int = option(DEFAULT_MEMORY_MB, group=_SEL, help="working memory of the selection "
                                      "(DuckDB); beyond it, it spills to disk, so any number of matches fits")
    selection_temp_dir: str | None = option(None, path=True, group=_SEL, help="folder for the selection's spill "
                                            "files, removed afterwards (default: inside the output folder)")

    def selection(self) -> SelectionParams:
        """What `imagenot.mining.selection` decides with (the memory and spill folder are not part of it)."""
        return SelectionParams(**{f.name: getattr(self, f.name) for f in dataclasses.fields(SelectionParams)})

    def check_selection(self) -> None:
        check_memory(self.selection_memory_mb)
        self.selection().check()


@dataclass(frozen=True)
class _MineSource:
    """`imagenot mine`'s options before the selection group: corpus, classes, filters, matching, encoder,
    engine. (A base class only so that MineConfig lists its fields in the order the CLI and config.json always
    had: these, the selection group, then the rest.)"""

    corpus: str = option("openclipart", help="the image-text corpus: a parquet/csv/tsv/jsonl(.gz) file, a folder "
                         "or glob of shards; or imagenot's own conversions 'openclipart' / 'openclipart:SVG_DIR' "
                         "(the Open Clip Art Library), 'iconify' / 'iconify:PACKAGE_DIR' (@iconify/json icon "
                         "sets), or both joined by '+'")
    classes: str = option("classes.tsv", path=True, help="classes.tsv from `imagenot classes`")
    released_classes: bool = option(False, help="use the authors' released ImageNot class list (as `imagenot "
                                    "classes --preset imagenot`: LAIONet's unique lemmas) instead of --classes")
    out: str = option("mine", path="dir", help="output folder (matches/, mine_stats.json, selected.parquet...)")
    format: Literal["parquet", "csv", "tsv", "jsonl"] | None = option(
        None, help="force the shard format (default: from each file's suffix)")
    schema: Literal["auto", "laion400m", "laion2b-en", "laion2b-multi", "laion1b-nolang", "laion2b-en-joined",
                    "laion2b-multi-joined", "laion1b-nolang-joined", "relaion5b-research", "relaion5b-research-safe",
                    "datacomp", "coyo", "laion2b"] = option(
        "auto", help="the corpus as released (its columns, safety and metadata filters): laion400m; LAION-5B's "
        "standard laion2b-en / laion2b-multi / laion1b-nolang (NSFW) or their -joined layout (punsafe, "
        "pwatermark); Re-LAION-5B relaion5b-research / relaion5b-research-safe; datacomp; coyo (laion2b: the "
        "old name of laion2b-en-joined). auto recognises the layout from the first shard's columns and says "
        "when columns cannot tell corpora apart (LAION-400M vs a standard laion2B-en shard)")
    text_col: str | None = option(None, help="caption column (default: the schema's, e.g. TEXT for LAION)")
    url_col: str | None = option(None, help="url column (default: the schema's)")
    id_col: str | None = option(None, help="source id column (default: the schema's; missing: <shard>:<row>)")
    safety_col: str | None = option(None, help="safety column (default: the schema's: NSFW for LAION-400M and "
                                    "the standard LAION-5B layout, punsafe for the -joined layout and Re-LAION-5B, "
                                    "nsfw_score_opennsfw2 for COYO); numeric values are a score kept below "
                                    "--safety-max, text values are kept by --safety-keep")
    width_col: str | None = option(None, help="image width column, for --min-image-size (default: the schema's)")
    height_col: str | None = option(None, help="image height column (default: the schema's)")
    watermark_col: str | None = option(None, help="watermark probability column, for --watermark-max "
                                       "(default: the schema's: pwatermark, watermark_score)")
    keep_nsfw: bool = option(False, help="do not filter on safety; needed to mine a corpus without a safety "
                             "column (the tool never mines an unfiltered corpus silently)")
    safety_max: float = option(DEFAULT_SAFETY_MAX, help="a numeric safety score (punsafe, nsfw_score_*) is kept "
                               "when below this: 0.1, Stable Diffusion 2's conservative LAION-5B filter "
                               "(docs/scaling.md)")
    safety_keep: tuple[str, ...] | None = option(None, help="values of a categorical safety column that are kept "
                                                 "(comma-separated; default: the schema's, UNLIKELY for LAION-400M)")
    watermark_max: float | None = option(None, help="drop rows whose watermark probability is >= this, before "
                                         "download (default: no watermark filter)")
    min_image_size: int | None = option(None, help="drop rows whose metadata width or height is below N pixels, "
                                        "before download (default: no size filter)")
    keep_columns: tuple[str, ...] = option((), help="corpus columns carried into matches and selected.parquet as "
                                           "corpus_<name> (comma-separated, e.g. similarity,pwatermark)")
    allow_local: bool = option(False, help="declare the corpus local: keep file:// urls (never for a corpus you "
                               "did not make)")
    max_caption_bytes: int = option(65536, help="longer captions are skipped (counted)")
    batch_rows: int = option(65536, cli=False, help="rows read per record batch (bounds memory per worker)")
    part_rows: int = option(2_000_000, help="parquet files larger than this many rows are split into parts of "
                            "whole row groups, so --workers share one big file (0: never split)")
    match: Literal["laionet", "relaxed"] = option("laionet", help="laionet (case-sensitive lemma between "
                                                  "spaces) or relaxed (lower-case, simple plurals)")
    multi: Literal["drop", "best"] = option("drop", help="captions hitting several classes: drop (LAIONet) or "
                                            "give to the most similar class")
    pool: bool = option(False, help="the classes are a pool with shared lemmas: count in a first pass, choose "
                        "--num-classes, then match the chosen set with unique lemmas")
    embed: bool = option(True, help="score captions against class queries (--no-embed: stop "
                         "after matching, no similarity, no threshold)")
    encoder: str = option(DEFAULT_ENCODER, help="text encoder: a name from the encoder table (all-MiniLM-L6-v2, "
                          "all-mpnet-base-v2, bert-base-uncased, all-roberta-large-v1...) or a model folder")
    threshold: float | None = option(None, help="keep similarity > T, a cosine in [-1, 1] (default: the "
                                     "encoder's published or chosen threshold)")
    require_threshold: bool = option(False, help="refuse to select without --threshold when the encoder has no "
                                     "published one (set by --preset imagenot: the paper did not publish its own)")
    device: str | None = option(None, help="cpu, cuda, cuda:1 ... (default: cuda when present)")
    embed_batch_size: int | None = option(None, help="captions per encoder batch (default: 1024 on gpu; on cpu "
                                          "32 with torch, 8 with onnx or openvino)")
    encoder_backend: Literal["auto", "torch", "onnx", "openvino"] = option(
        "auto", help="CPU inference engine: torch, or ONNX Runtime / OpenVINO over an exported fp32 ONNX graph "
        "(the same similarities to 1e-6, 1.6-2.4x faster on CPU: docs/scaling.md); auto: onnx on CPU where "
        "onnxruntime is installed and the encoder exports, else torch (said in the log)")
    quantize: Literal["none", "int8"] = option("none", help="int8: ONNX Runtime dynamic int8 quantisation "
                                               "(--encoder-backend onnx; faster on CPU, similarities change by "
                                               "up to about 0.05: docs/scaling.md)")
    precision: Precision = option(
        "auto", aliases=PRECISION_ALIASES, help="encoder precision on GPU (auto: fp32 whenever a published "
        "LAIONet threshold is in use, as LAIONet computed it; otherwise fp16 on cuda, fp32 on cpu)")
    embedding_store: str | None = option(None, path=True, help="folder of the embedding store, keyed by encoder "
                                         "and text hash, shared by reruns and other mine folders (default: "
                                         "OUT/embeddings)")
    store_embeddings: bool = option(True, help="keep caption and query embeddings "
                                    "so no rerun encodes a text twice")
    engine: Literal["local", "ray"] = option("local", help="local processes or Ray Data")
    workers: int = option(0, help="scanning processes, this one included when there is no encoder / Ray CPUs (0: one per core, at most 8)")
    ray_address: str | None = option(None, help="an existing Ray cluster (default: start one here)")
    select: bool = option(True, help="choose classes and images after mining "
                          "(--no-select: stop after matches and stats)")


@dataclass(frozen=True)
class MineConfig(SelectionOptions, _MineSource):
    """`imagenot mine` (its fields: `_MineSource`'s, `SelectionOptions`', then these)."""

    hist_classes: int = option(100, help="classes with a similarity histogram panel")
    force: bool = option(False, help="mine into a folder holding another mine (other corpus or classes): its "
                         "matches and selection are removed first; without it such a folder is refused")

    def check(self) -> None:
        check_choices(self)  # engine, multi, ... (the Literal types)
        if self.multi == "best" and not self.embed:
            raise ImagenotError("--multi best needs caption embeddings; drop --no-embed")
        if self.max_caption_bytes < 1 or self.batch_rows < 1 or self.part_rows < 0:
            raise ImagenotError("--max-caption-bytes and batch_rows must be positive, --part-rows >= 0")
        check_threshold(self.threshold)
        if not self.embed and self.threshold is not None:
            raise ImagenotError("--threshold needs similarities; drop --no-embed or --threshold")
        if not (math.isfinite(self.safety_max) and 0.0 < self.safety_max <= 1.0):
            raise ImagenotError(f"--safety-max must be a probability in (0, 1] (got {self.safety_max})")
        if self.watermark_max is not None and not (0.0 < self.watermark_max <= 1.0):
            raise ImagenotError(f"--watermark-max must be a probability in (0, 1] (got {self.watermark_max})")
        if self.min_image_size is not None and self.min_image_size < 1:
            raise ImagenotError("--min-image-size must be at least 1 pixel")
        if self.quantize == "int8" and self.encoder_backend not in ("onnx", "auto"):
            raise ImagenotError("--quantize int8 needs --encoder-backend onnx")
        if self.require_threshold and self.embed and self.select and self.threshold is None \
                and default_threshold(self.encoder) is None:
            raise InputError(f"{self.encoder}: {threshold_note(self.encoder)}, and this run selects images: pass "
                             "--threshold T (the paper did not publish its similarity threshold; imagenot does not "
                             "guess one). To choose T, mine with --no-select first and read histograms/, then "
                             "`imagenot select --threshold T` reuses every similarity")
        if self.embed_batch_size is not None and self.embed_batch_size < 1:
            raise ImagenotError("--embed-batch-size must be at least 1")
        if self.workers < 0:
            raise ImagenotError("--workers must be >= 0")
        self.check_selection()


# `imagenot mine --preset imagenot`: the study as published. The released class list, the paper's RoBERTa
# sentence encoder, LAIONet's matching rule (case-sensitive lemma between spaces, multi-class captions dropped)
# and the paper's 1000 classes x 1000 images; its similarity threshold was not published, so it is required.
MINE_PRESETS = {
    "imagenot": {"released_classes": True, "encoder": STUDY_ENCODER, "match": "laionet", "multi": "drop",
                 "num_classes": 1000, "max_per_class": 1000, "cap": "top", "require_threshold": True},
}


@dataclass(frozen=True)
class _SelectSource:
    """`imagenot select`'s own options, listed before the selection group (see `_MineSource`)."""

    mine_dir: str = option("mine", path=True, help="the mine folder to select from")
    out: str | None = option(None, path="dir", help="output folder (default: the mine folder)")
    threshold: float | None = option(None, help="keep similarity > T, a cosine in [-1, 1] (default: the mine "
                                     "run's; not allowed for a --no-embed mine folder)")


@dataclass(frozen=True)
class SelectConfig(SelectionOptions, _SelectSource):
    """`imagenot select`: the selection of a mine folder redone (other threshold, N, K, cap...)."""

    def check(self) -> None:
        check_threshold(self.threshold)
        self.check_selection()
