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
import pyarrow.parquet as pq

from imagenot import escape
from imagenot.config import to_dict, to_record
from imagenot.errors import ImagenotError, InputError, disk_full_is_an_error
from imagenot.fileio import (
    atomic_open,
    environment,
    json_digest,
    read_json,
    sha256_file,
    write_json,
    write_manifest,
)
from imagenot.lock import locks_output, output_lock
from imagenot.mining.config import MineConfig, SelectConfig
from imagenot.mining.embed import EncoderSpec
from imagenot.mining.encoders import default_threshold, published_laionet, threshold_note
from imagenot.mining.folder import claim_mine_folder
from imagenot.mining.histograms import write_histograms
from imagenot.mining.matcher import LemmaMatcher
from imagenot.mining.passes import PassResult, PassSpec, run_local
from imagenot.mining.plan import (
    CorpusPlan,
    is_builtin,
    is_openclipart,
    materialise_selected,
    plan_corpus,
    prepare_corpus,
    provenance,
)
from imagenot.mining.pool import SenseRanker, choose_from_pool, pool_classes, pool_counts
from imagenot.mining.scan import COUNTERS, ScanContext
from imagenot.mining.select_engine import MatchQuery
from imagenot.mining.selection import open_matches, select_folder
from imagenot.runtime import canonical_precision
from imagenot.wordnet.classes import ClassRow, make_unique_lemmas, read_classes, write_classes

log = logging.getLogger(__name__)


@dataclass
class MineResult:
    out: Path
    stats: dict[str, Any]
    classes: list[ClassRow]  # the mined class set (lemmas unique)
    selected: list[ClassRow] = field(default_factory=list)  # the final classes, when selection ran
    selection: dict[str, Any] = field(default_factory=dict)


def _class_key(rows: list[ClassRow]) -> list[Any]:
    return [[r.wnid, list(r.lemmas)] for r in rows]


def run_pass(spec: PassSpec, cfg: MineConfig) -> PassResult:
    if cfg.engine == "ray":
        from imagenot.mining.ray_engine import run_ray

        return run_ray(spec, cfg.workers, cfg.ray_address)
    return run_local(spec, cfg.workers)


RUN_COUNTERS = ("encoded_captions", "encoded_queries", "stored_captions_reused")


def _sum_counters(result: PassResult) -> dict[str, int]:
    """Counters over every shard (this run's and earlier runs'); encoder counters over this run's only."""
    total: Counter[str] = Counter()
    for name, stats in result.shard_stats.items():
        for k, v in stats.items():
            if k in RUN_COUNTERS and name in result.skipped:
                continue
            if isinstance(v, (int, float)) and not k.startswith("seconds"):
                total[k] += int(v)
    keys = [*COUNTERS, "matched", "multi_class_resolved", "multi_class_unresolved", *RUN_COUNTERS]
    return {k: int(total.get(k, 0)) for k in keys}


def summarize(result: PassResult, query: MatchQuery, classes: list[ClassRow],
              threshold: float | None) -> dict[str, Any]:
    """Counters of every shard plus what only the whole set of matches shows (duplicates across shards, the
    counts per class before and after the threshold), asked of an open MatchQuery over the pass's matches
    folder: DuckDB deduplicates and counts within its memory limit; Python sees one row per class."""
    counters = _sum_counters(result)
    totals = query.totals(threshold)
    names = {c.wnid: c.name for c in classes}
    per_class = {c.wnid: {"name": names.get(c.wnid, ""), "matched": c.matched,
                          "above_threshold": totals.per_class.get(c.wnid, (0, 0))[0]}
                 for c in sorted(query.class_matches(), key=lambda c: (-c.matched, c.wnid))}
    dups = totals.duplicates
    below = totals.matches - totals.above
    matched = counters["matched"] - dups
    return {
        **counters,
        "duplicate_ids": dups,
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
    columns = ("wnid", "name", "count", "chosen", "lemmas", "definition")
    lines = [escape.tsv_row(columns)]
    for wnid, n in counts.most_common():
        c = by_wnid[wnid]
        lem = ", ".join(f"{lm}:{k}" for lm, k in lemma_counts[wnid].most_common(5))
        lines.append(escape.tsv_row((wnid, c.name, n, int(wnid in chosen), lem, c.definition), columns, path.name))
    with atomic_open(path) as fh:
        fh.writelines(lines)


def _threshold(cfg: MineConfig, out: Path) -> tuple[float | None, str | None]:
    """(threshold, where it comes from). A default that no one published for this kind of corpus (the demo's
    MiniLM value, chosen on clip art) is used with a warning that is also recorded in provenance."""
    if not cfg.embed:
        return None, None
    if cfg.threshold is not None:
        return cfg.threshold, "given (--threshold)"
    threshold = default_threshold(cfg.encoder)
    source = threshold_note(cfg.encoder)
    if threshold is None:
        log.warning("no default threshold for encoder %s (%s): keeping every similarity; choose one from "
                    "%s/histograms and rerun `imagenot select --threshold`", cfg.encoder, source, out)
        return None, source
    if not published_laionet(cfg.encoder, threshold) and not is_openclipart(cfg.corpus):
        source = (f"default of {cfg.encoder}, {source}: NOT validated on this corpus; pass --threshold, or an "
                  "encoder with a published LAIONet threshold (all-mpnet-base-v2 0.58, clip-ViT-B-32 0.82, "
                  "bert-base-uncased 0.97)")
        log.warning("threshold %g: %s", threshold, source)
    return threshold, source


def _precision(cfg: MineConfig, threshold: float | None) -> str:
    """LAIONet computed its published thresholds in float32: use fp32 whenever one of them is in use."""
    precision = canonical_precision(cfg.precision)
    if not published_laionet(cfg.encoder, threshold):
        return precision
    if precision == "auto":
        log.info("threshold %g is LAIONet's published value for %s, computed in float32: encoding in float32",
                 threshold, cfg.encoder)
        return "fp32"
    if precision != "fp32":
        log.warning("--precision %s with LAIONet's published threshold %g for %s, which LAIONet computed in "
                    "float32: similarities near the threshold may fall on the other side", precision,
                    threshold, cfg.encoder)
    return precision


def released_classes() -> tuple[list[ClassRow], Path]:
    """The authors' released ImageNot list with LAIONet's unique lemmas (what `imagenot classes --preset
    imagenot` writes), and the released wnid file it comes from."""
    from imagenot.wordnet.classes import rows_from_wnids
    from imagenot.wordnet.references import read_wnid_file
    from imagenot.wordnet.released import released_classes_path

    path = released_classes_path()
    return make_unique_lemmas(rows_from_wnids(read_wnid_file(path))), path


@locks_output(lambda cfg, *args, **kwargs: cfg.out)
def mine(cfg: MineConfig) -> MineResult:
    """Run the mining stage (and the selection unless `cfg.select` is false); a full disk is an error naming
    the folder (exit 1), and the rerun resumes from the finished shards."""
    with disk_full_is_an_error(cfg.out):
        return _mine(cfg)


@dataclass
class _MineRun:
    """What every step of one mine shares, decided before the output folder is touched: the corpus plan,
    whether it is local, the input hashes, the threshold and where it comes from, and the encoder."""

    cfg: MineConfig
    out: Path
    plan: CorpusPlan
    local: bool
    inputs: dict[str, str]
    threshold: float | None
    threshold_source: str | None
    embed: EncoderSpec | None
    base: dict[str, Any]  # every setting that changes a pass's matches (its resume key digests them)

    def context(self, matcher: LemmaMatcher, keep_multi: bool) -> ScanContext:
        cfg = self.cfg
        return ScanContext(matcher, self.plan.columns, self.plan.resolved.safety, self.local, cfg.max_caption_bytes,
                           cfg.batch_rows, keep_multi=keep_multi, watermark_max=cfg.watermark_max,
                           min_image_size=cfg.min_image_size)

    def pass_key(self, **what: Any) -> str:
        """A pass's resume key: every setting that changes its matches, and `what` the pass is."""
        return json_digest({**self.base, **what}, 32)


def _mine(cfg: MineConfig) -> MineResult:
    """Run the mining stage (and the selection unless `cfg.select` is false).

    Every input (settings, classes, corpus columns, schema, filters) is checked before the output folder is
    created, so a mistake leaves nothing behind."""
    cfg.check()
    t0 = time.perf_counter()
    pool_rows, classes_path = _class_pool(cfg)
    run = _prepare(cfg, classes_path)
    stats: dict[str, Any] = {"corpus": cfg.corpus, "schema": run.plan.resolved.name, "local_corpus": run.local,
                             "encoder": cfg.encoder if run.embed else None}
    mined = _pool_pass(run, pool_rows, stats) if cfg.pool else _unique_lemmas(cfg, pool_rows)
    write_classes(run.out / "mined_classes.tsv", mined)
    matcher = LemmaMatcher([r.lemmas for r in mined], cfg.match)
    spec = PassSpec(run.plan.shards, mined, run.context(matcher, cfg.multi == "best"), run.out / "matches",
                    run.pass_key(**{"pass": "mine", "multi": cfg.multi, "classes": _class_key(mined)}), run.embed,
                    label="mine")
    result = run_pass(spec, cfg)
    if not list((run.out / "matches").glob("*.parquet")):
        raise ImagenotError("no shard could be read: " + "; ".join(
            f"{u['path']}: {u['error']}" for u in result.unreadable[:5]))
    # One DuckDB session over the matches (deduplicated once, within --selection-memory-mb): the summary, the
    # histograms and the selection; no table of all matches in Python.
    with open_matches(run.out / "matches", run.out, cfg.selection_memory_mb,
                      _temp_dir(cfg.selection_temp_dir)) as query:
        _finish_stats(run, stats, result, query, mined, len(matcher.unmatchable), t0)
        _write_mine_outputs(run, stats, query, mined)
        res = MineResult(run.out, stats, mined)
        if cfg.select:
            res.selected, res.selection = select_folder(run.out / "matches", mined, cfg.selection(), run.threshold,
                                                        run.out, stats["provenance"], query=query)
    if cfg.select:
        materialise_selected(run.out, cfg.corpus, run.out / "selected.parquet")
    return res


def _class_pool(cfg: MineConfig) -> tuple[list[ClassRow], Path]:
    """The classes to mine (the released list, or --classes) and the file they come from."""
    if cfg.released_classes:
        return released_classes()
    return read_classes(Path(cfg.classes)), Path(cfg.classes)


def _prepare(cfg: MineConfig, classes_path: Path) -> _MineRun:
    """Every check and decision before mining: the corpus (imagenot's own conversions written into OUT/corpus
    first), its plan, the engine, the threshold, the folder claimed, the encoder."""
    out = Path(cfg.out)
    inputs = {"classes": sha256_file(classes_path)}
    if is_builtin(cfg.corpus):  # our own conversions: written into OUT/corpus first
        corpus_spec, local, extra = prepare_corpus(cfg, out)
    else:
        corpus_spec, local, extra = cfg.corpus, cfg.allow_local, {}
    inputs.update(extra)
    plan = plan_corpus(cfg, corpus_spec)
    if cfg.engine == "ray":
        import importlib.util

        if importlib.util.find_spec("ray") is None:
            raise ImagenotError("--engine ray needs Ray: pip install 'imagenot[ray]'")
    threshold, threshold_source = _threshold(cfg, out)
    claim_mine_folder(out, plan.shards, inputs["classes"], cfg.force)  # another mine's folder: refused
    out.mkdir(parents=True, exist_ok=True)
    embed = EncoderSpec(cfg.encoder, cfg.device, cfg.embed_batch_size, cfg.encoder_backend, cfg.quantize,
                        _precision(cfg, threshold), (cfg.embedding_store or str(out / "embeddings"))
                        if cfg.store_embeddings else None) if cfg.embed else None
    base = {"columns": to_dict(plan.columns), "safety": to_dict(plan.resolved.safety), "local": local,
            "match": cfg.match, "max_caption_bytes": cfg.max_caption_bytes, "watermark_max": cfg.watermark_max,
            "min_image_size": cfg.min_image_size, "encoder": embed.fingerprint() if embed else None}
    return _MineRun(cfg, out, plan, local, inputs, threshold, threshold_source, embed, base)


def _pool_pass(run: _MineRun, pool_rows: list[ClassRow], stats: dict[str, Any]) -> list[ClassRow]:
    """--pool: match the whole pool (shared lemmas kept), count per class within the selection's memory,
    choose --num-classes of them (pool/pool_counts.tsv says how); returns the chosen classes."""
    cfg, threshold = run.cfg, run.threshold
    matcher = LemmaMatcher([r.lemmas for r in pool_rows], cfg.match)
    pool_dir = run.out / "pool"
    spec = PassSpec(run.plan.shards, pool_rows, run.context(matcher, True), pool_dir / "matches",
                    run.pass_key(**{"pass": "pool", "classes": _class_key(pool_rows)}), run.embed,
                    None if run.embed else SenseRanker(pool_rows), label="pool pass")
    res1 = run_pass(spec, cfg)
    with open_matches(pool_dir / "matches", pool_dir, cfg.selection_memory_mb,
                      _temp_dir(cfg.selection_temp_dir)) as query:  # the pool's matches, out of core too
        counts, lemma_counts = pool_counts(query.lemma_counts(threshold))
        stats["pool_pass"] = {k: v for k, v in summarize(res1, query, pool_rows, threshold).items()
                              if k != "per_class"}
    mined = choose_from_pool(pool_rows, counts, lemma_counts, pool_classes(cfg.num_classes, cfg.class_choice),
                             cfg.min_matches_per_class, cfg.class_choice, cfg.seed)
    _write_pool_counts(pool_dir / "pool_counts.tsv", pool_rows, counts, lemma_counts, {c.wnid for c in mined})
    stats["pool_pass"]["classes_counted"] = len(counts)
    stats["pool_pass"]["classes_chosen"] = len(mined)
    log.info("pool pass: %d pool classes counted, %d chosen", len(counts), len(mined))
    if not mined:
        raise ImagenotError(f"pool pass: no class has {cfg.min_matches_per_class} matches above threshold "
                            f"{threshold}; see {pool_dir / 'pool_counts.tsv'}")
    return mined


def _unique_lemmas(cfg: MineConfig, pool_rows: list[ClassRow]) -> list[ClassRow]:
    """Without --pool: the classes as given, LAIONet's rule applied where lemmas are shared."""
    mined = make_unique_lemmas(pool_rows)
    if len(mined) != len(pool_rows) or any(a.lemmas != b.lemmas for a, b in zip(mined, pool_rows)):
        log.warning("%s: lemmas were not unique; applied the LAIONet rule (%d -> %d classes); for a large "
                    "pool use --pool", cfg.classes, len(pool_rows), len(mined))
    return mined


def _finish_stats(run: _MineRun, stats: dict[str, Any], result: PassResult, query: MatchQuery,
                  mined: list[ClassRow], unmatchable: int, t0: float) -> None:
    """mine_stats.json's contents: the summary of the matches, the pool pass's encoder work added, the
    provenance, timings."""
    stats.update(summarize(result, query, mined, run.threshold))
    if run.cfg.pool:
        for k in RUN_COUNTERS:
            stats[k] += stats["pool_pass"].get(k, 0)
    stats["provenance"] = provenance(run.cfg, run.plan, stats, run.local, run.threshold)
    stats["provenance"]["threshold_source"] = run.threshold_source
    stats["unmatchable_lemmas"] = unmatchable
    stats["seconds"] = round(time.perf_counter() - t0, 3)
    stats["captions_per_s"] = round(stats["rows_read"] / max(result.seconds, 1e-9), 1) if result.seconds \
        else None


def _write_mine_outputs(run: _MineRun, stats: dict[str, Any], query: MatchQuery, mined: list[ClassRow]) -> None:
    """histograms/ (with similarities), mine_stats.json, config.json and manifest.json."""
    cfg, out = run.cfg, run.out
    if cfg.embed:
        write_histograms(query, query.class_matches(), {c.wnid: c.name for c in mined}, run.threshold,
                         out / "histograms", cfg.hist_classes)
    write_json(out / "mine_stats.json", stats)
    write_json(out / "config.json", to_record(cfg))
    write_manifest(out, to_record(cfg), run.inputs)
    log.info("mine: %d rows read, %d matched, %d above threshold, %d classes with matches (%.1f s)",
             stats["rows_read"], stats["matched"], stats["above_threshold"], stats["classes_with_matches"],
             stats["seconds"])


def _temp_dir(path: str | None) -> Path | None:
    if path is None:
        return None
    Path(path).mkdir(parents=True, exist_ok=True)
    return Path(path)


@locks_output(lambda cfg, *args, **kwargs: cfg.out or cfg.mine_dir)
def run_select(cfg: SelectConfig) -> tuple[list[ClassRow], dict[str, Any]]:
    """Redo the selection of a mine folder (other threshold, N, K, cap...) without re-mining.

    Returns (final classes, the selection report); the rows are in OUT/selected.parquet."""
    cfg.check()
    mine_dir = Path(cfg.mine_dir)
    classes_path = mine_dir / "mined_classes.tsv"
    if not classes_path.is_file():
        raise InputError("not a mine folder (no mined_classes.tsv); run `imagenot mine` first", mine_dir)
    mine_stats = read_json(mine_dir / "mine_stats.json") if (mine_dir / "mine_stats.json").is_file() else {}
    if cfg.threshold is not None and _unscored(mine_dir / "matches"):
        raise ImagenotError(f"{mine_dir} was mined with --no-embed: its matches have no similarity, so no "
                            "threshold can be applied; drop --threshold, or rerun `imagenot mine` without "
                            "--no-embed (the embedding store keeps what was encoded)")
    threshold = cfg.threshold if cfg.threshold is not None else mine_stats.get("threshold")
    prov = dict(mine_stats.get("provenance") or {})
    prov["threshold"] = threshold
    out = Path(cfg.out) if cfg.out else mine_dir
    final, report = select_folder(mine_dir / "matches", read_classes(classes_path), cfg.selection(), threshold, out,
                                  prov, cfg.selection_memory_mb, _temp_dir(cfg.selection_temp_dir))
    with output_lock(mine_dir):  # the selected icons' files go into the mine folder, even with another --out
        materialise_selected(mine_dir, str(prov.get("corpus") or ""), out / "selected.parquet")
    write_json(out / "select_config.json", to_record(cfg))
    write_json(out / "select_manifest.json", {"config": to_record(cfg), "environment": environment(),
                                              "inputs": {"mined_classes.tsv": sha256_file(classes_path)}})
    return final, report


def _unscored(matches_dir: Path) -> bool:
    """Whether the matches have rows but no similarity at all (a --no-embed mine folder), read one similarity
    column at a time."""
    rows = False
    for f in sorted(matches_dir.glob("*.parquet")):
        try:
            col = pq.read_table(f, columns=["similarity"])["similarity"]
        except (pa.ArrowInvalid, OSError, KeyError) as exc:
            raise InputError(f"unreadable matches file: {exc}", f) from None
        rows = rows or len(col) > 0
        if col.null_count < len(col):
            return False
    return rows
