"""`imagenot mine` and `imagenot select` as library functions over their configs.

mine: corpus + classes -> [pool pass: choose the classes] -> matching pass -> matches/<shard>.parquet,
mine_stats.json, histograms/, mined_classes.tsv -> (select) -> classes.tsv, selected.parquet, selection.json.
Every step writes atomically and a rerun skips finished shards, so an interrupted run resumes by rerunning it.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from imagenot.config import to_dict
from imagenot.errors import ImagenotError, InputError
from imagenot.fileio import atomic_open, environment, read_json, sha256_file, write_json, write_manifest
from imagenot.mining.corpus import Columns, check_columns, list_shards
from imagenot.mining.histograms import plot_histograms, similarity_quantiles
from imagenot.mining.matcher import LemmaMatcher
from imagenot.mining.passes import EmbedSpec, PassResult, PassSpec, run_local
from imagenot.mining.pool import SenseRanker, choose_from_pool, pool_counts
from imagenot.mining.resolve import above
from imagenot.mining.scan import COUNTERS, ScanContext
from imagenot.mining.selection import drop_repeated_ids, read_matches, select, write_selection
from imagenot.mining.settings import MineConfig, SelectConfig
from imagenot.mining.shard_output import fingerprint
from imagenot.mining.similarity import default_threshold
from imagenot.wordnet.classes import ClassRow, make_unique_lemmas, read_classes, write_classes

log = logging.getLogger(__name__)

OPENCLIPART = "openclipart"


@dataclass
class MineResult:
    out: Path
    stats: dict[str, Any]
    classes: list[ClassRow]  # the mined class set (lemmas unique)
    selected: list[ClassRow] = field(default_factory=list)  # the final classes, when selection ran
    selection: dict[str, Any] = field(default_factory=dict)


def prepare_corpus(cfg: MineConfig, out: Path) -> tuple[str, bool, dict[str, str]]:
    """(shard spec, local, inputs to hash): `openclipart[:SVG_DIR]` is first written as a parquet corpus."""
    if cfg.corpus == OPENCLIPART or cfg.corpus.startswith(OPENCLIPART + ":"):
        from imagenot.mining.openclipart import PNG_ROOT, SVG_ROOT, write_openclipart_corpus

        svg_root = Path(cfg.corpus.partition(":")[2]) if ":" in cfg.corpus else SVG_ROOT
        png_root = svg_root.parent / "png" if svg_root != SVG_ROOT else PNG_ROOT
        path = out / "corpus" / "openclipart.parquet"
        if not path.is_file():
            write_openclipart_corpus(path, svg_root, png_root)
        else:
            log.info("reusing %s", path)
        return str(path), True, {"corpus": sha256_file(path)}
    return cfg.corpus, cfg.local, {}


def _class_key(rows: list[ClassRow]) -> list[Any]:
    return [[r.wnid, list(r.lemmas)] for r in rows]


def run_pass(spec: PassSpec, cfg: MineConfig) -> PassResult:
    if cfg.engine == "ray":
        from imagenot.mining.ray_engine import run_ray

        return run_ray(spec, cfg.workers, cfg.ray_address)
    return run_local(spec, cfg.workers)


def _sum_counters(result: PassResult) -> dict[str, int]:
    total: Counter[str] = Counter()
    for stats in result.shard_stats.values():
        for k, v in stats.items():
            if isinstance(v, (int, float)) and not k.startswith("seconds"):
                total[k] += int(v)
    keys = [*COUNTERS, "matched", "multi_class_resolved", "multi_class_unresolved", "encoded_captions",
            "encoded_queries"]
    return {k: int(total.get(k, 0)) for k in keys}


def summarize(result: PassResult, matches_dir: Path, classes: list[ClassRow],
              threshold: float | None) -> dict[str, Any]:
    """Counters of every shard (this run's and earlier runs') plus what only the whole set of matches shows."""
    counters = _sum_counters(result)
    names = {c.wnid: c.name for c in classes}
    files = sorted(matches_dir.glob("*.parquet"))
    cols = pa.concat_tables([pq.read_table(f, columns=["source_id", "wnid", "similarity"])
                             .replace_schema_metadata(None) for f in files]) if files else None
    per_class: dict[str, dict[str, Any]] = {}
    cross_dups = below = 0
    if cols is not None and cols.num_rows:
        cols, cross_dups = drop_repeated_ids(cols)
        kept = above(cols, threshold)
        below = cols.num_rows - kept.num_rows
        all_counts = Counter(cols["wnid"].to_pylist())
        kept_counts = Counter(kept["wnid"].to_pylist())
        for wnid, n in sorted(all_counts.items(), key=lambda kv: (-kv[1], kv[0])):
            per_class[wnid] = {"name": names.get(wnid, ""), "matched": n, "above_threshold": kept_counts[wnid]}
    matched = counters["matched"] - cross_dups
    return {
        **counters,
        "duplicate_ids": counters["duplicate_ids"] + cross_dups,
        "matched": matched,
        "below_threshold": below,
        "above_threshold": matched - below,
        "threshold": threshold,
        "classes": len(classes),
        "classes_with_matches": len(per_class),
        "shards": {"processed": len(result.shard_stats) - len(result.skipped),
                   "skipped_finished": len(result.skipped), "unreadable": len(result.unreadable)},
        "unreadable_shards": result.unreadable,
        "pass_seconds": round(result.seconds, 3),
        "per_class": per_class,
    }


def _write_pool_counts(path: Path, pool: list[ClassRow], counts: Counter[str],
                       lemma_counts: dict[str, Counter[str]], chosen: set[str]) -> None:
    by_wnid = {c.wnid: c for c in pool}
    with atomic_open(path) as fh:
        fh.write("wnid\tname\tcount\tchosen\tlemmas\tdefinition\n")
        for wnid, n in counts.most_common():
            c = by_wnid[wnid]
            lem = ", ".join(f"{lm}:{k}" for lm, k in lemma_counts[wnid].most_common(5))
            fh.write(f"{wnid}\t{c.name}\t{n}\t{int(wnid in chosen)}\t{lem}\t{c.definition}\n")


def mine(cfg: MineConfig) -> MineResult:
    """Run the mining stage (and the selection unless `cfg.select` is false)."""
    cfg.check()
    t0 = time.perf_counter()
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    corpus_spec, local, inputs = prepare_corpus(cfg, out)
    shards = list_shards(corpus_spec, cfg.format)
    columns = Columns(cfg.text_col, cfg.url_col, cfg.id_col, cfg.nsfw_col)
    try:
        lacking = check_columns(shards[0], columns)
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - an unreadable first shard is reported with the others
        log.warning("cannot read the header of %s (%s); it will be reported as unreadable", shards[0].path, exc)
        lacking = []
    if cfg.nsfw_col in lacking and not cfg.keep_nsfw and not cfg.corpus.startswith(OPENCLIPART):
        log.warning("no %s column in %s: NSFW rows cannot be filtered", cfg.nsfw_col, shards[0].path)
    pool_rows = read_classes(cfg.classes)
    inputs["classes"] = sha256_file(cfg.classes)
    threshold = cfg.threshold if cfg.threshold is not None else (
        default_threshold(cfg.encoder) if cfg.embed else None)
    if cfg.embed and threshold is None:
        log.warning("no default threshold for encoder %s: keeping every similarity; choose one from "
                    "%s/histograms and rerun `imagenot select --threshold`", cfg.encoder, out)
    embed = EmbedSpec(cfg.encoder, cfg.device, cfg.embed_batch_size) if cfg.embed else None
    nsfw_safe = None if cfg.keep_nsfw else cfg.nsfw_safe
    base = {"columns": to_dict(columns), "nsfw": nsfw_safe, "local": local, "match": cfg.match,
            "max_caption_bytes": cfg.max_caption_bytes, "encoder": cfg.encoder if cfg.embed else None}
    stats: dict[str, Any] = {"corpus": cfg.corpus, "local_corpus": local, "encoder": embed.encoder if embed else None}

    if cfg.pool:
        matcher = LemmaMatcher([r.lemmas for r in pool_rows], cfg.match)
        ctx = ScanContext(matcher, columns, nsfw_safe, local, cfg.max_caption_bytes, cfg.batch_rows,
                          keep_multi=True)
        pool_dir = out / "pool"
        spec = PassSpec(shards, pool_rows, ctx, pool_dir / "matches",
                        fingerprint({**base, "pass": "pool", "classes": _class_key(pool_rows)}), embed,
                        None if embed else SenseRanker(pool_rows), label="pool pass")
        res1 = run_pass(spec, cfg)
        m1 = pa.concat_tables([pq.read_table(f).replace_schema_metadata(None)
                               for f in sorted((pool_dir / "matches").glob("*.parquet"))])
        counts, lemma_counts = pool_counts(above(m1, threshold))
        mined = choose_from_pool(pool_rows, counts, lemma_counts, cfg.num_classes, cfg.min_per_class)
        _write_pool_counts(pool_dir / "pool_counts.tsv", pool_rows, counts, lemma_counts,
                           {c.wnid for c in mined})
        stats["pool_pass"] = {k: v for k, v in summarize(res1, pool_dir / "matches", pool_rows, threshold).items()
                              if k != "per_class"}
        stats["pool_pass"]["classes_counted"] = len(counts)
        stats["pool_pass"]["classes_chosen"] = len(mined)
        log.info("pool pass: %d pool classes counted, %d chosen", len(counts), len(mined))
        if not mined:
            raise ImagenotError(f"pool pass: no class has {cfg.min_per_class} matches above threshold "
                                f"{threshold}; see {pool_dir / 'pool_counts.tsv'}")
    else:
        mined = make_unique_lemmas(pool_rows)
        if len(mined) != len(pool_rows) or any(a.lemmas != b.lemmas for a, b in zip(mined, pool_rows)):
            log.warning("%s: lemmas were not unique; applied the LAIONet rule (%d -> %d classes); for a large "
                        "pool use --pool", cfg.classes, len(pool_rows), len(mined))
    write_classes(out / "mined_classes.tsv", mined)

    matcher = LemmaMatcher([r.lemmas for r in mined], cfg.match)
    ctx = ScanContext(matcher, columns, nsfw_safe, local, cfg.max_caption_bytes, cfg.batch_rows,
                      keep_multi=cfg.multi == "best")
    spec = PassSpec(shards, mined, ctx, out / "matches",
                    fingerprint({**base, "pass": "mine", "multi": cfg.multi, "classes": _class_key(mined)}),
                    embed, label="mine")
    result = run_pass(spec, cfg)
    if not list((out / "matches").glob("*.parquet")):
        raise ImagenotError("no shard could be read: " + "; ".join(
            f"{u['path']}: {u['error']}" for u in result.unreadable[:5]))
    stats.update(summarize(result, out / "matches", mined, threshold))
    stats["unmatchable_lemmas"] = len(matcher.unmatchable)
    stats["seconds"] = round(time.perf_counter() - t0, 3)
    stats["captions_per_s"] = round(stats["rows_read"] / max(result.seconds, 1e-9), 1) if result.seconds else None
    if cfg.embed:
        matches, _ = read_matches(out / "matches")
        names = {c.wnid: c.name for c in mined}
        plot_histograms(matches, names, threshold, out / "histograms", cfg.hist_classes)
        write_json(out / "histograms" / "quantiles.json", similarity_quantiles(matches, names))
    write_json(out / "mine_stats.json", stats)
    write_json(out / "config.json", to_dict(cfg))
    write_manifest(out, to_dict(cfg), inputs)
    log.info("mine: %d rows read, %d matched, %d above threshold, %d classes with matches (%.1f s)",
             stats["rows_read"], stats["matched"], stats["above_threshold"], stats["classes_with_matches"],
             stats["seconds"])
    res = MineResult(out, stats, mined)
    if cfg.select:
        matches, _ = read_matches(out / "matches")
        final, selected, report = select(matches, mined, cfg.selection(), threshold)
        write_selection(out, final, selected, report)
        res.selected, res.selection = final, report
    return res


def run_select(cfg: SelectConfig) -> tuple[list[ClassRow], pa.Table, dict[str, Any]]:
    """Redo the selection of a mine folder (other threshold, N, K, cap...) without re-mining."""
    mine_dir = Path(cfg.mine_dir)
    classes_path = mine_dir / "mined_classes.tsv"
    if not classes_path.is_file():
        raise InputError("not a mine folder (no mined_classes.tsv); run `imagenot mine` first", mine_dir)
    threshold = cfg.threshold
    if threshold is None and (mine_dir / "mine_stats.json").is_file():
        threshold = read_json(mine_dir / "mine_stats.json").get("threshold")
    matches, dups = read_matches(mine_dir / "matches")
    final, selected, report = select(matches, read_classes(classes_path), cfg.selection(), threshold)
    report["duplicate_ids_across_shards"] = dups
    out = Path(cfg.out) if cfg.out else mine_dir
    write_selection(out, final, selected, report)
    write_json(out / "select_config.json", to_dict(cfg))
    write_json(out / "select_manifest.json", {"config": to_dict(cfg), "environment": environment(),
                                              "inputs": {"mined_classes.tsv": sha256_file(classes_path)}})
    return final, selected, report


def label_counts(selected: pa.Table) -> dict[int, int]:
    return dict(Counter(pc.cast(selected["label"], pa.int64()).to_pylist()))
