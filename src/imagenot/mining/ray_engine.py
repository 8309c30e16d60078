"""The Ray engine: the same pass as the local engine, spread over a Ray cluster with Ray Data.

Pipeline: a dataset of shard references -> `map_batches(scan)` (CPU tasks: read the shard in record batches,
filter, run the automaton) -> `map_batches(Finisher)` in an actor pool (each actor loads the encoder once,
on a GPU when the cluster has them; resolves, scores and writes `matches/<shard>.parquet`) -> the driver
collects the per-shard counters. Shards are read inside the scan task rather than with `ray.data.read_parquet`
so that a truncated shard is reported and skipped instead of failing the job, csv/jsonl shards with bad rows
are handled like the local engine does, and both engines give the same rows. `--out` must be on a filesystem
every node sees (NFS, a mounted bucket) when the cluster has more than one node.
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any

import pyarrow as pa

from imagenot.mining.passes import PassResult, PassSpec, finish_shard, make_scorer, pending
from imagenot.mining.scan import CANDIDATE_SCHEMA, ShardScan, scan_shard

log = logging.getLogger(__name__)


def _to_ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def _from_ipc(data: bytes) -> pa.Table:
    return pa.ipc.open_stream(pa.py_buffer(data)).read_all()


def _scan_task(batch: dict[str, Any], spec: PassSpec) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {"shard": [], "error": [], "stats": [], "seconds": [], "candidates": []}
    for i in batch["shard"]:
        shard = spec.shards[int(i)]
        scan = scan_shard(shard, spec.ctx)
        out["shard"].append(int(i))
        out["error"].append(scan.error or "")
        out["stats"].append(json.dumps(scan.stats))
        out["seconds"].append(scan.seconds)
        out["candidates"].append(_to_ipc(scan.candidates))
    return out


class _Finisher:
    """An actor: loads the encoder once, then resolves, scores and writes shard after shard."""

    def __init__(self, spec: PassSpec) -> None:
        self.spec = spec
        self.scorer = make_scorer(spec)

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {"shard": [], "error": [], "stats": []}
        for i, err, stats, secs, cands in zip(batch["shard"], batch["error"], batch["stats"], batch["seconds"],
                                              batch["candidates"]):
            shard = self.spec.shards[int(i)]
            out["shard"].append(int(i))
            out["error"].append(str(err))
            if err:
                out["stats"].append("{}")
                continue
            scan = ShardScan(shard, _from_ipc(bytes(cands)) if cands else CANDIDATE_SCHEMA.empty_table(),
                             json.loads(stats), float(secs))
            out["stats"].append(json.dumps(finish_shard(scan, self.spec, self.scorer)))
        return out


def init_ray(address: str | None = None, num_cpus: int | None = None) -> Any:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"include_dashboard": False, "ignore_reinit_error": True,
                                  "log_to_driver": False, "logging_level": logging.WARNING}
        if address:
            kwargs["address"] = address
        elif num_cpus:
            kwargs["num_cpus"] = num_cpus
        ray.init(**kwargs)
    return ray


def run_ray(spec: PassSpec, workers: int = 0, address: str | None = None) -> PassResult:
    """Run a pass with Ray Data; `workers` caps the local cluster's CPUs when Ray is started here."""
    t0 = time.perf_counter()
    spec.out_dir.mkdir(parents=True, exist_ok=True)
    result = PassResult()
    todo = pending(spec, result)
    if not todo:
        return result
    ray = init_ray(address, workers or None)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    # The rank function (first-sense, --no-embed pool mode) is cloudpickled with the spec.
    job = PassSpec(todo, spec.classes, spec.ctx, spec.out_dir, spec.fingerprint, spec.embed, spec.rank, spec.label)
    gpus = int(ray.cluster_resources().get("GPU", 0))
    ds = ray.data.from_items([{"shard": i} for i in range(len(todo))], override_num_blocks=len(todo))
    ds = ds.map_batches(_scan_task, batch_size=1, fn_kwargs={"spec": job}, batch_format="numpy")
    # With GPUs the encoder actors ask for a GPU, so Ray keeps the scan as separate CPU tasks on every core.
    # Without GPUs Ray fuses scan and finish into the actor pool; the CPU encoder is then the bottleneck
    # anyway (hundreds of captions/s against hundreds of thousands scanned).
    pool_size = max(1, gpus) if job.embed else max(1, min(len(todo), workers or 1))
    finisher_opts: dict[str, Any] = {"compute": ray.data.ActorPoolStrategy(size=pool_size)}
    if job.embed and gpus:
        finisher_opts["num_gpus"] = 1
    ds = ds.map_batches(_Finisher, batch_size=1, fn_constructor_kwargs={"spec": job}, batch_format="numpy",
                        **finisher_opts)
    for row in ds.take_all():
        shard = todo[int(row["shard"])]
        if row["error"]:
            result.unreadable.append({"shard": shard.name, "path": shard.path, "error": str(row["error"])})
        else:
            result.shard_stats[shard.name] = json.loads(row["stats"])
    result.seconds = time.perf_counter() - t0
    return result
