"""Fetching with img2dataset, used as a library.

img2dataset brings the parts that matter at LAION scale: many threads per process, retries, timeouts,
X-Robots-Tag opt-outs, per-shard stats, resumable shards and its multiprocessing / pyspark / ray
distributors. It runs here with re-encoding disabled and parquet output, so each of its shards holds the
original bytes and the error text of every row; `clean.py` then decodes with PIL, where conversion and
decompression-bomb rules can be counted per reason (img2dataset's OpenCV resizer would hide them).

Its process start-up is slow (each spawned worker imports albumentations, OpenCV, torch via webdataset and
wandb: 5-15 s each on a small machine), so a corpus made only of local files skips it (`fetcher=direct`).

Two things are changed around it. Requests are bounded (`http_fetch`: a total deadline and a size cap).
And Ctrl-C: img2dataset runs in a child process in its own session, which this process waits for, so an
interrupt always reaches this process (img2dataset's import alone takes seconds, and its SIGINT handler
calls `sys.exit(0)`, which made an interrupted download look finished or go on): the child's process group
is stopped, and the CLI exits 130 with "interrupted; rerun the same command to resume". In the child,
img2dataset's exit on SIGINT is still turned back into an interrupt (a non-zero status).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import signal
import subprocess
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

    img2dataset runs in a child process of its own session (`python -m imagenot.download.fetch SPEC`), and
    this process only waits for it. So Ctrl-C reaches this process alone, at any moment (img2dataset's
    import and its workers' start take seconds, and its SIGINT handler would otherwise swallow the
    interrupt): the child's whole process group is stopped within seconds and KeyboardInterrupt goes on (the
    CLI exits 130). img2dataset's incremental mode skips shards whose stats file exists, so the rerun
    fetches only what is left.
    """
    if distributor == "pyspark" and importlib.util.find_spec("pyspark") is None:
        raise ImagenotError("--distributor pyspark needs pyspark (pip install pyspark); img2dataset uses "
                            "an active SparkSession, or starts a local one")
    if distributor == "ray" and importlib.util.find_spec("ray") is None:
        raise ImagenotError("--distributor ray needs ray (pip install 'ray[data]')")
    if importlib.util.find_spec("img2dataset") is None:  # pragma: no cover - img2dataset is a dependency
        raise ImagenotError("img2dataset is needed to fetch http(s) urls: pip install img2dataset")
    fetch_dir.mkdir(parents=True, exist_ok=True)
    spec = {"input": str(input_parquet), "fetch_dir": str(fetch_dir), "processes": processes, "threads": threads,
            "timeout": timeout, "retries": retries, "shard_size": shard_size, "distributor": distributor,
            "max_bytes": max_bytes}
    spec_path = fetch_dir.parent / "img2dataset_spec.json"
    spec_path.write_text(json.dumps(spec), encoding="utf-8")
    log_path = fetch_dir.parent / "img2dataset.log"
    log.info("img2dataset's own output goes to %s", log_path)
    t0 = time.perf_counter()
    rc = _run_child([sys.executable, "-m", "imagenot.download.fetch", str(spec_path)], log_path)
    if rc != 0:  # the shards it did not finish are reported (with the log) by the caller
        log.warning("img2dataset stopped with status %s; see %s", rc, log_path)
    return time.perf_counter() - t0


def _child_env() -> dict[str, str]:
    """The environment of the child: this imagenot first on its path, img2dataset's noise turned off."""
    import imagenot

    env = dict(os.environ)
    root = str(Path(imagenot.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join([root, *[p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]])
    env.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    env.setdefault("WANDB_MODE", "disabled")
    return env


def _run_child(argv: list[str], log_path: Path, grace_s: float = 5.0) -> int:
    """Run `argv` in a new session with its output appended to `log_path`; on any exception here (Ctrl-C
    above all) stop its whole process group (SIGTERM, then SIGKILL after `grace_s`) and re-raise."""
    with open(log_path, "ab") as fh:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=fh, stderr=fh, env=_child_env(),
                                start_new_session=True)
        try:
            while proc.poll() is None:
                time.sleep(0.1)
        except BaseException:
            _stop_group(proc, grace_s)
            raise
    return int(proc.returncode)


def _stop_group(proc: subprocess.Popen[bytes], grace_s: float) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=grace_s)
            if sig == signal.SIGKILL:
                return
        except subprocess.TimeoutExpired:
            continue
    with contextlib.suppress(ProcessLookupError, PermissionError):  # the workers may outlive their parent
        os.killpg(proc.pid, signal.SIGKILL)


def _child_main(spec_path: str) -> int:
    """The child process: img2dataset with bounded requests, its SIGINT exit kept an interrupt."""
    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    os.environ.setdefault("WANDB_MODE", "disabled")
    import img2dataset

    started_ray = False
    if spec["distributor"] == "ray":
        import ray

        if not ray.is_initialized():
            ray.init(num_cpus=spec["processes"], include_dashboard=False, log_to_driver=False)
            started_ray = True
    try:
        _download(img2dataset, Path(spec["input"]), Path(spec["fetch_dir"]), processes=spec["processes"],
                  threads=spec["threads"], timeout=spec["timeout"], retries=spec["retries"],
                  shard_size=spec["shard_size"], distributor=spec["distributor"], max_bytes=spec["max_bytes"])
    finally:
        if started_ray:
            import ray

            ray.shutdown()
    return 0


def _download(img2dataset: Any, input_parquet: Path, fetch_dir: Path, *, processes: int, threads: int,
              timeout: int, retries: int, shard_size: int, distributor: str, max_bytes: int) -> None:
    from imagenot.download.http_fetch import bounded_downloads

    with _sigint_is_an_interrupt(), bounded_downloads(max_bytes):
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


if __name__ == "__main__":
    raise SystemExit(_child_main(sys.argv[1]))
