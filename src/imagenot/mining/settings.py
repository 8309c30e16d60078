"""The configs of `imagenot mine` and `imagenot select` (frozen, written resolved as config.json)."""

from __future__ import annotations

from dataclasses import dataclass

from imagenot.errors import ImagenotError
from imagenot.mining.matcher import MATCH_MODES
from imagenot.mining.scan import MULTI_POLICIES
from imagenot.mining.selection import SelectionParams
from imagenot.mining.similarity import DEFAULT_ENCODER

ENGINES = ("local", "ray")


@dataclass(frozen=True)
class MineConfig:
    corpus: str = "openclipart"  # file, directory, glob, `openclipart` or `openclipart:SVG_DIR`
    classes: str = "classes.tsv"
    out: str = "mine"
    format: str | None = None  # force the shard format (parquet, csv, tsv, jsonl)
    text_col: str = "TEXT"
    url_col: str = "URL"
    id_col: str = "SAMPLE_ID"  # missing column or null value: `<shard>:<row>`
    nsfw_col: str = "NSFW"
    nsfw_safe: str = "UNLIKELY"
    keep_nsfw: bool = False
    local: bool = False  # the user vouches for file:// urls (openclipart declares itself local)
    max_caption_bytes: int = 65536
    batch_rows: int = 65536
    match: str = "laionet"
    multi: str = "drop"
    pool: bool = False  # two passes: count over a pool with shared lemmas, then LAIONet on the chosen set
    embed: bool = True
    encoder: str = DEFAULT_ENCODER
    threshold: float | None = None  # None: the encoder's default (similarity.DEFAULT_THRESHOLDS)
    device: str | None = None
    embed_batch_size: int | None = None
    engine: str = "local"
    workers: int = 0  # 0: one per core (at most 8)
    ray_address: str | None = None
    select: bool = True
    num_classes: int | None = None
    min_per_class: int = 1
    max_per_class: int | None = None
    cap: str = "top"
    seed: int = 0
    val_per_class: int = 0
    oversample: float = 1.0
    max_val_fraction: float = 0.5
    hist_classes: int = 100

    def check(self) -> None:
        if self.match not in MATCH_MODES:
            raise ImagenotError(f"unknown --match {self.match!r}; known: {', '.join(MATCH_MODES)}")
        if self.multi not in MULTI_POLICIES:
            raise ImagenotError(f"unknown --multi {self.multi!r}; known: {', '.join(MULTI_POLICIES)}")
        if self.engine not in ENGINES:
            raise ImagenotError(f"unknown --engine {self.engine!r}; known: {', '.join(ENGINES)}")
        if self.multi == "best" and not self.embed:
            raise ImagenotError("--multi best needs caption embeddings; drop --no-embed")
        if self.max_caption_bytes < 1 or self.batch_rows < 1:
            raise ImagenotError("max_caption_bytes and batch_rows must be positive")
        self.selection().check()

    def selection(self) -> SelectionParams:
        return SelectionParams(self.num_classes, self.min_per_class, self.max_per_class, self.cap, self.seed,
                               self.val_per_class, self.oversample, self.max_val_fraction)


@dataclass(frozen=True)
class SelectConfig:
    mine_dir: str = "mine"
    out: str | None = None  # default: the mine folder
    threshold: float | None = None  # default: the threshold the mine run used
    num_classes: int | None = None
    min_per_class: int = 1
    max_per_class: int | None = None
    cap: str = "top"
    seed: int = 0
    val_per_class: int = 0
    oversample: float = 1.0
    max_val_fraction: float = 0.5

    def selection(self) -> SelectionParams:
        return SelectionParams(self.num_classes, self.min_per_class, self.max_per_class, self.cap, self.seed,
                               self.val_per_class, self.oversample, self.max_val_fraction)
