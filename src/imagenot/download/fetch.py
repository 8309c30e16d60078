"""Fetching with img2dataset, used as a library.

img2dataset brings the parts that matter at LAION scale: many threads per process, retries, timeouts,
X-Robots-Tag opt-outs, per-shard stats, resumable shards and its multiprocessing / pyspark / ray
distributors. It runs here with re-encoding disabled and parquet output, so each of its shards holds the
original bytes and the error text of every row; `clean.py` then decodes with PIL, where conversion and
decompression-bomb rules can be counted per reason (img2dataset's OpenCV resizer would hide them).

Its process start-up is slow (each spawned worker imports albumentations, OpenCV, torch via webdataset and
wandb: 5-15 s each on a small machine), so a corpus made only of local files skips it (`fetcher=direct`).

Two things are changed around it. Requests are bounded (`http_fetch`: a total deadline and a size cap).
And Ctrl-C: img2dataset installs a SIGINT handler that calls `sys.exit(0)`, so an interrupted download would
look finished to `download && train`; here that exit becomes a KeyboardInterrupt again (the CLI then exits
130 with "interrupted; rerun the same command to resume"), and the previous handler is put back.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from imagenot.errors import ImagenotError

log = logging.getLogger(__name__)


def shard_name(shard: int) -> str:
    return f"{shard:05d}"  # img2dataset's own naming with oom_shard_count=5


def done_fetch_shards(fetch_dir: Path) -> set[int]:
    """Shards img2dataset finished: it writes `<shard>_stats.json` last."""
    if not fetch_dir.is_dir():
        return set()
    return {int(p.name.split("_")[0]) for p in fetch_dir.glob("*_stats.json")}


def fetch_shard_problem(fetch_dir: Path, shard: int) -> str | None:
    """Why a finished-looking fetch shard cannot be used, or None: img2dataset writes `<shard>.parquet` in
    place, so a killed run, or two processes fetching into one folder, can leave a stats file beside a torn
    or foreign parquet file."""
    import json

    import pyarrow.parquet as pq

    stats_path = fetch_dir / f"{shard_name(shard)}_stats.json"
    raw = fetch_dir / f"{shard_name(shard)}.parquet"
    try:
        stats = json.loads(stats_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return f"unreadable {stats_path.name} ({exc})"
    if not raw.is_file():
        return f"{raw.name} is missing"
    try:
        rows = pq.read_metadata(raw).num_rows
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a torn file
        return f"{raw.name} is not a readable parquet file ({exc})"
    count = stats.get("count") if isinstance(stats, dict) else None
    if isinstance(count, int) and rows != count:
        return f"{raw.name} holds {rows} rows, its stats say {count}"
    return None


def drop_broken_fetch_shards(fetch_dir: Path, shards: list[int]) -> list[int]:
    """Remove every partial or corrupt fetch shard among `shards` (its parquet and stats file), so that
    img2dataset's incremental mode fetches it again; return the shards removed."""
    dropped = []
    for shard in sorted(set(shards) & done_fetch_shards(fetch_dir)):
        problem = fetch_shard_problem(fetch_dir, shard)
        if problem is None:
            continue
        log.warning("fetch shard %s in %s cannot be used (%s): fetching it again", shard_name(shard), fetch_dir,
                    problem)
        for suffix in ("_stats.json", ".parquet"):
            (fetch_dir / f"{shard_name(shard)}{suffix}").unlink(missing_ok=True)
        dropped.append(shard)
    return dropped


def run_img2dataset(
    input_parquet: Path,
    fetch_dir: Path,
    *,
    processes: int,
    threads: int,
    timeout: int,
    retries: int,
    shard_size: int,
    distributor: str,
    max_bytes: int,
) -> float:
    """Fetch every row of `input_parquet` (columns row_id, url, caption) into `fetch_dir`; return seconds.

    img2dataset's incremental mode skips shards whose stats file exists, so a rerun fetches only what an
    interrupted run left.
    """
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    os.environ.setdefault("WANDB_MODE", "disabled")
    try:
        import img2dataset
    except ImportError as exc:  # pragma: no cover - img2dataset is a dependency
        raise ImagenotError(f"img2dataset is needed to fetch http(s) urls: {exc}") from exc
    started_ray = False
    if distributor == "pyspark":
        try:
            import pyspark  # noqa: F401
        except ImportError:
            raise ImagenotError("--distributor pyspark needs pyspark (pip install pyspark); img2dataset uses "
                                "an active SparkSession, or starts a local one") from None
    if distributor == "ray":
        try:
            import ray
        except ImportError:
            raise ImagenotError("--distributor ray needs ray (pip install 'ray[data]')") from None

        if not ray.is_initialized():  # on a cluster, call ray.init(address=...) before; here: a local one
            ray.init(num_cpus=processes, include_dashboard=False, log_to_driver=False)
            started_ray = True
    fetch_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    try:
        _download(img2dataset, input_parquet, fetch_dir, processes=processes, threads=threads, timeout=timeout,
                  retries=retries, shard_size=shard_size, distributor=distributor, max_bytes=max_bytes)
    finally:
        if started_ray:
            import ray

            ray.shutdown()
    return time.perf_counter() - t0


def _download(img2dataset: Any, input_parquet: Path, fetch_dir: Path, *, processes: int, threads: int,
              timeout: int, retries: int, shard_size: int, distributor: str, max_bytes: int) -> None:
    from imagenot.download.http_fetch import bounded_downloads

    # img2dataset and its worker processes print progress bars and tracebacks to stdout and stderr; keep them
    # in a log file instead, so that stdout stays for the command's own result and no bar is drawn into a
    # pipe (worker processes inherit the redirected descriptors)
    log_path = fetch_dir.parent / "img2dataset.log"
    log.info("img2dataset's own output goes to %s", log_path)
    with _outputs_to(log_path), _sigint_is_an_interrupt(), bounded_downloads(max_bytes):
        img2dataset.download(
            url_list=str(input_parquet),
            input_format="parquet",
            url_col="url",
            caption_col="caption",
            save_additional_columns=["row_id"],
            output_folder=str(fetch_dir),
            output_format="parquet",
            processes_count=processes,
            thread_count=threads,
            number_sample_per_shard=shard_size,
            oom_shard_count=5,
            disable_all_reencoding=True,
            extract_exif=False,
            compute_hash=None,
            timeout=timeout,
            retries=retries,
            enable_wandb=False,
            distributor=distributor,
            incremental_mode="incremental",
            max_shard_retry=1,
            user_agent_token="imagenot",
        )
    log.debug("img2dataset output in %s", log_path)


@contextlib.contextmanager
def _sigint_is_an_interrupt() -> Iterator[None]:
    """img2dataset's SIGINT handler ends with sys.exit(0): turn that back into the interrupt it was."""
    previous = signal.getsignal(signal.SIGINT)
    try:
        yield
    except SystemExit as exc:
        if exc.code in (0, None):
            raise KeyboardInterrupt from None
        raise
    finally:
        with contextlib.suppress(ValueError, TypeError):  # ValueError: not the main thread
            signal.signal(signal.SIGINT, previous if previous is not None else signal.default_int_handler)


@contextlib.contextmanager
def _outputs_to(path: Path) -> Iterator[None]:
    """Point file descriptors 1 and 2 at `path` (appending) for the duration of the block."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    with open(path, "ab") as fh:
        for fd in saved:
            os.dup2(fh.fileno(), fd)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            for fd, copy in saved.items():
                os.dup2(copy, fd)
                os.close(copy)
