"""One matching pass over a corpus, and the local engine that runs it.

A pass is: scan every unfinished shard (CPU, `scan.scan_shard`), then finish it (`finish_shard`: resolve each
caption to one class, score it with the encoder, write `matches/<shard>.parquet`). The local engine scans in
a pool of worker processes. With an encoder it finishes in the main process, which holds the encoder (and the
GPU if any), keeping at most two scans per worker in flight so memory stays bounded however many shards there
are. Without one (`--no-embed`) a worker finishes its own shard and sends back only the counters: shipping
the candidates to the parent (pickled) and writing them there kept part of every pass on one core. Each worker
gets the pass once, at start-up, so the lemma automaton is built once per process, not once per shard. The
Ray engine (`ray_engine`) runs the same two functions on a cluster.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from imagenot.mining.corpus import Shard
from imagenot.mining.embed import EncoderSpec
from imagenot.mining.resolve import RankFn, resolve_candidates
from imagenot.mining.scan import CANDIDATE_SCHEMA, ScanContext, ShardScan, scan_shard
from imagenot.mining.shard_output import finished_stats, matches_path, shard_fingerprint, write_matches
from imagenot.mining.similarity import Scorer
from imagenot.progress import Progress
from imagenot.wordnet.classes import ClassRow

log = logging.getLogger(__name__)


@dataclass
class PassSpec:
    """Everything a pass needs; picklable except `rank` (used only by the local engine)."""

    shards: list[Shard]
    classes: list[ClassRow]
    ctx: ScanContext
    out_dir: Path
    fingerprint: str
    embed: EncoderSpec | None = None
    rank: RankFn | None = None
    label: str = "mine"


@dataclass
class PassResult:
    shard_stats: dict[str, dict[str, Any]] = field(default_factory=dict)  # shard name -> counters
    unreadable: list[dict[str, str]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # finished on an earlier run
    seconds: float = 0.0


def make_scorer(spec: PassSpec) -> Scorer | None:
    if spec.embed is None:
        return None
    return Scorer.from_spec(spec.embed, [c.query for c in spec.classes])


def finish_shard(scan: ShardScan, spec: PassSpec, scorer: Scorer | None) -> dict[str, Any]:
    """Resolve, score and write one scanned shard; returns its counters."""
    t0 = time.perf_counter()
    before = (scorer.encoded_captions, scorer.encoded_queries, scorer.stored_captions_reused) if scorer else (0, 0, 0)
    table, extra = resolve_candidates(scan.candidates, spec.classes, spec.ctx.matcher, scorer, spec.rank)
    stats: dict[str, Any] = {**scan.stats, **extra, "seconds_scan": round(scan.seconds, 3),
                             "seconds_embed": round(time.perf_counter() - t0, 3)}
    if scorer is not None:
        stats["encoded_captions"] = scorer.encoded_captions - before[0]
        stats["encoded_queries"] = scorer.encoded_queries - before[1]
        stats["stored_captions_reused"] = scorer.stored_captions_reused - before[2]
    write_matches(matches_path(spec.out_dir, scan.shard), table, stats,
                  shard_fingerprint(spec.fingerprint, scan.shard))
    return stats


def pending(spec: PassSpec, result: PassResult) -> list[Shard]:
    """Shards without a finished output of this fingerprint (the others' stats go into `result`)."""
    todo = []
    for shard in spec.shards:
        done = finished_stats(matches_path(spec.out_dir, shard), shard_fingerprint(spec.fingerprint, shard))
        if done is None:
            todo.append(shard)
        else:
            result.shard_stats[shard.name] = done
            result.skipped.append(shard.name)
    if result.skipped:
        log.info("%s: %d shard(s) already finished, skipped", spec.label, len(result.skipped))
    return todo


def _record(result: PassResult, scan: ShardScan, finish: Callable[[ShardScan], dict[str, Any]]) -> None:
    if scan.error is not None:
        result.unreadable.append({"shard": scan.shard.name, "path": scan.shard.path, "error": scan.error})
        return
    result.shard_stats[scan.shard.name] = finish(scan)


_WORKER_SPEC: PassSpec | None = None  # the pass a worker process serves (set once by `_init_worker`)


def _init_worker(spec_file: str) -> None:
    # The file is this run's own pickle in a private (0700) temporary folder, written just before the pool
    # starts: not input from a corpus or a user. It goes by file, not as an initializer argument, because
    # spawn writes initializer arguments into each child's pipe before the child reads it: a pass larger
    # than the pipe's buffer (1000 classes are 250 KB) made the parent start its workers one after another.
    global _WORKER_SPEC
    with open(spec_file, "rb") as f:
        _WORKER_SPEC = pickle.load(f)


def _scan_in_worker(shard: Shard) -> ShardScan:
    assert _WORKER_SPEC is not None
    return scan_shard(shard, _WORKER_SPEC.ctx)


def _scan_and_finish_in_worker(shard: Shard) -> tuple[ShardScan, dict[str, Any] | None]:
    """Scan and finish one shard without an encoder; the scan comes back without its candidates."""
    assert _WORKER_SPEC is not None
    scan = scan_shard(shard, _WORKER_SPEC.ctx)
    stats = None if scan.error is not None else finish_shard(scan, _WORKER_SPEC, None)
    return ShardScan(scan.shard, CANDIDATE_SCHEMA.empty_table(), scan.stats, scan.seconds, scan.error), stats


def _worker_spec(spec: PassSpec) -> PassSpec | None:
    """The pass as a worker gets it, or None if it cannot travel (an unpicklable `rank`)."""
    slim = replace(spec, shards=[])
    try:
        pickle.dumps(slim.rank)
    except Exception:  # noqa: BLE001 - any pickling failure means: finish in this process
        return None
    return slim


def _write_spec(spec: PassSpec, folder: Path) -> str:
    path = folder / "pass.pickle"
    with open(path, "wb") as f:
        pickle.dump(spec, f, protocol=pickle.HIGHEST_PROTOCOL)
    return str(path)


def default_workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def run_local(spec: PassSpec, workers: int = 0) -> PassResult:
    """Scan shards in `workers` processes (0: one per core, at most 8), finish them here."""
    t0 = time.perf_counter()
    spec.out_dir.mkdir(parents=True, exist_ok=True)
    result = PassResult()
    todo = pending(spec, result)
    if not todo:
        result.seconds = time.perf_counter() - t0
        return result
    scorer_box: list[Scorer | None] = []

    def finish(scan: ShardScan) -> dict[str, Any]:
        if not scorer_box:
            scorer_box.append(make_scorer(spec))
        return finish_shard(scan, spec, scorer_box[0])

    workers = workers or default_workers()
    workers = min(workers, len(todo))
    # Not progress.pool_map: that submits every shard at once, and with a CPU encoder the finished scans
    # (hundreds of MB of candidates each at LAION scale) would pile up waiting for the encoder.
    bar = Progress(len(todo), desc=spec.label, unit="shard", enabled=len(todo) > 1, logger=log)
    if workers <= 1:
        for shard in todo:
            _record(result, scan_shard(shard, spec.ctx), finish)
            bar.update()
    else:
        _run_pool(spec, todo, workers, result, finish, bar)
    bar.close()
    result.seconds = time.perf_counter() - t0
    return result


def _run_pool(spec: PassSpec, todo: list[Shard], workers: int, result: PassResult,
              finish: Callable[[ShardScan], dict[str, Any]], bar: Progress) -> None:
    """Scan in worker processes. Without an encoder this process is one of the `workers`: it takes a shard
    from the end of the queue whenever the pool has its fill, so a spawned worker's start-up (about a second:
    Python, pyarrow, the automaton) is not paid by the whole pass. With an encoder it only finishes."""
    slim = _worker_spec(spec)
    in_worker = spec.embed is None and slim is not None
    task = _scan_and_finish_in_worker if in_worker else _scan_in_worker
    helpers = workers - 1 if in_worker else workers
    # spawn, not fork: the parent may hold torch/OpenMP threads that a forked child would inherit broken.
    mp = multiprocessing.get_context("spawn")
    init_spec = slim if slim is not None else replace(spec, shards=[], rank=None)

    def collect(done: set[Future[Any]]) -> None:
        for fut in done:
            if in_worker:
                scan, stats = fut.result()
                _record(result, scan, lambda _scan, stats=stats: stats)
            else:
                _record(result, fut.result(), finish)
            bar.update()

    with tempfile.TemporaryDirectory(prefix="imagenot-pass-") as tmp, \
            ProcessPoolExecutor(helpers, mp_context=mp, initializer=_init_worker,
                                initargs=(_write_spec(init_spec, Path(tmp)),)) as pool:
        queue = list(todo)
        running: set[Future[Any]] = set()
        while queue or running:
            while queue and len(running) < 2 * helpers:
                running.add(pool.submit(task, queue.pop(0)))
            if in_worker and queue:
                shard = queue.pop()
                _record(result, scan_shard(shard, spec.ctx), finish)
                bar.update()
                done = {f for f in running if f.done()}
                running -= done
            else:
                done, running = wait(running, return_when=FIRST_COMPLETED)
            collect(done)
