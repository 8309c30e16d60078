"""`imagenot mine` and `imagenot select`: flags generated from MineConfig and SelectConfig."""

from __future__ import annotations

import argparse
import logging

from imagenot.cli_options import add_stage_parser, config_from_args

log = logging.getLogger(__name__)

MINE_EXAMPLES = (
    "imagenot mine --preset imagenot --corpus relaion2B-en-research-safe/ --schema relaion5b-research-safe "
    "--threshold T --oversample 1.4 --out mine   # the study: released classes, RoBERTa, 1000 x 1000",
    "imagenot mine --corpus laion2B-en/ --schema laion2b-en --classes imagenot_classes.tsv --num-classes 1000 "
    "--encoder all-mpnet-base-v2 --max-per-class 1000 --oversample 1.4 --out mine   # LAIONet's 0.58",
    "imagenot mine --corpus shards/ --no-embed --workers 8      # matching only: counts per class, fast",
    "imagenot mine --corpus coyo/ --schema coyo --keep-columns clip_similarity_vitb32 --watermark-max 0.5",
    "imagenot mine --corpus datacomp/ --schema datacomp --keep-nsfw   # DataComp has no safety column",
)
SELECT_EXAMPLES = (
    "imagenot select --mine-dir mine --threshold 0.6 --num-classes 100   # re-threshold without re-mining",
    "imagenot select --mine-dir mine --max-per-class 500 --cap random --val-per-class 50 --out mine-500",
)


def register(sub: argparse._SubParsersAction) -> None:
    from imagenot.mining.config import MINE_PRESETS, MineConfig, SelectConfig

    p = add_stage_parser(
        sub, "mine", MineConfig,
        help="match captions of an image-text corpus to classes (LAIONet rule), score, select",
        description="Find images of each class in an image-text corpus by caption text: the corpus's own "
        "safety and metadata filters (--schema names the corpus), the LAIONet rule (lemma between spaces after "
        "punctuation -> space, case-sensitive), captions of several classes dropped, caption-query similarity "
        "from a text encoder, then the top classes and a capped, split sample. Writes matches/<shard>.parquet, "
        "mine_stats.json, histograms/, classes.tsv, selected.parquet.",
        examples=MINE_EXAMPLES, presets=MINE_PRESETS,
    )
    p.set_defaults(func=run_mine)
    s = add_stage_parser(
        sub, "select", SelectConfig,
        help="choose classes and images from a mine folder (other threshold, N, K, cap)",
        description="Redo the selection of `imagenot mine` from its matches: writes classes.tsv, "
        "selected.parquet and selection.json.",
        examples=SELECT_EXAMPLES,
    )
    s.set_defaults(func=run_select_cmd)


def run_mine(args: argparse.Namespace) -> int:
    from imagenot.mining.config import MINE_PRESETS, MineConfig
    from imagenot.mining.pipeline import mine

    res = mine(config_from_args(MineConfig, args, presets=MINE_PRESETS))
    st = res.stats
    print(f"schema {st['schema']}; safety {st['provenance']['safety']['rule']}: "
          f"{st['provenance']['safety']['dropped']} dropped")
    print(f"rows read {st['rows_read']}, matched {st['matched']} ({st['multi_class_dropped']} multi-class "
          f"dropped), above threshold {st['above_threshold']}, {st['classes_with_matches']} classes with "
          f"matches; {len(st['unreadable_shards'])} unreadable shard(s)")
    if st.get("encoded_captions") is not None and res.stats.get("encoder"):
        print(f"encoded {st['encoded_captions']} caption(s) and {st['encoded_queries']} query text(s); "
              f"{st.get('stored_captions_reused', 0)} reused from the embedding store")
    if res.selection:
        sel = res.selection
        print(f"selected {sel['classes']} classes, {sel['rows']} images -> {res.out}/selected.parquet")
    print(f"wrote {res.out}")
    return 0


def run_select_cmd(args: argparse.Namespace) -> int:
    from imagenot.mining.config import SelectConfig
    from imagenot.mining.pipeline import run_select

    final, report = run_select(config_from_args(SelectConfig, args))
    if not report["scored"]:
        applied = "none (no similarities)"
    else:
        applied = report["threshold"] if report["threshold_applied"] else "none (every similarity kept)"
    print(f"selected {len(final)} classes, {report['rows']} images (threshold {applied})")
    return 0
