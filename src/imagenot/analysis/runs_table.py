"""`imagenot runs DIR`: what every run under a folder is, how far it got, and what it scored.

A zoo leaves dozens of run directories; before a report a researcher needs to know which finished, which
stopped with a checkpoint (resume them), and which died before their first one. Status comes from the files
`imagenot.rundir` defines, read without torch: result.json (finished), checkpoints/last.pt (partial), only
config.json (failed), an unreadable result.json (failed, with the reason).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import logging
import math
from pathlib import Path
from typing import Any

from imagenot import escape, rundir
from imagenot.errors import InputError
from imagenot.fileio import read_json
from imagenot.spec import dataset_display_name

log = logging.getLogger(__name__)

COLUMNS = ("run", "model", "dataset", "role", "seed", "status", "epochs_done", "epochs_total", "top1",
           "wall_time_s", "source", "note")


@dataclasses.dataclass
class RunInfo:
    """One run directory as `imagenot runs` lists it."""

    run: str  # path relative to the listed folder
    model: str | None
    dataset: str | None
    role: str | None
    seed: int | None
    status: str  # finished, diverged, partial or failed
    epochs_done: int | None
    epochs_total: int | None
    top1: float | None
    wall_time_s: float | None
    source: str | None
    note: str = ""


def _read(path: Path) -> tuple[dict[str, Any] | None, str]:
    if not path.is_file():
        return None, ""
    try:
        data = read_json(path)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, f"{path.name} unreadable: {exc}"
    if not isinstance(data, dict):
        return None, f"{path.name} is not a JSON object"
    return data, ""


def _metrics(path: Path) -> list[dict[str, Any]]:
    """The epochs a run finished (metrics.jsonl); a torn last line (a kill mid-write) is skipped."""
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def _display_dataset(config: dict[str, Any]) -> str | None:
    """The dataset name result.json would record: dataset_name, else the spec's folder name or kind."""
    if config.get("dataset_name"):
        return str(config["dataset_name"])
    spec = str(config.get("dataset") or "")
    return dataset_display_name(spec) if spec else None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def describe_run(run_dir: Path, root: Path) -> RunInfo:
    """Status, progress and score of one run directory."""
    result, result_err = _read(rundir.result_path(run_dir))
    config, config_err = _read(run_dir / rundir.CONFIG)
    manifest, _ = _read(run_dir / rundir.MANIFEST)
    history = _metrics(run_dir / rundir.METRICS)
    config = config or {}
    total = config.get("epochs")
    if total is None and manifest:
        total = (manifest.get("recipe") or {}).get("epochs")
    if total is None and result:
        total = result.get("epochs")
    done = max((int(r["epoch"]) for r in history if isinstance(r.get("epoch"), int)), default=None)
    notes = [n for n in (result_err, config_err) if n]
    if result is not None:
        status = "diverged" if rundir.is_diverged(result) else "finished"
        top1 = _number(result.get("top1"))
        wall = _number(result.get("wall_time_s"))
        if done is None and result.get("epochs") is not None:
            done = int(result["epochs"])
        if top1 is not None and math.isnan(top1):
            notes.append("top-1 is NaN (diverged)")
        if status == "diverged":
            notes.append("no accuracy, left out of reports")
    else:
        status = "partial" if rundir.checkpoint_path(run_dir).is_file() else "failed"
        top1 = None
        wall = sum(float(r["time_s"]) for r in history if _number(r.get("time_s")) is not None) if history else None
        if status == "partial":
            notes.append("resume with --resume")
        elif not result_err:
            notes.append("no checkpoint and no result")
        if history and _number(history[-1].get("top1")) is not None:
            notes.append(f"last epoch top-1 {float(history[-1]['top1']):.2f}")
    info = result or {}

    def pick(key: str) -> Any:
        return info.get(key) if info.get(key) is not None else config.get(key)

    seed = pick("seed")
    return RunInfo(
        run=run_dir.relative_to(root).as_posix() or ".",
        model=pick("model"),
        dataset=info.get("dataset") or _display_dataset(config),
        role=pick("role"),
        seed=int(seed) if isinstance(seed, int) else None,
        status=status,
        epochs_done=done,
        epochs_total=int(total) if isinstance(total, int) else None,
        top1=top1,
        wall_time_s=wall,
        source=(info.get("source") or "trained") if result is not None else None,
        note="; ".join(notes),
    )


def find_runs(root: str | Path) -> list[Path]:
    """Every run folder under `root` (itself included): dataset, mine, audit and report folders also hold a
    config.json, but are not runs (`imagenot.rundir.is_run_dir`)."""
    root = Path(root)
    if not root.is_dir():
        raise InputError("no such folder", path=root)
    found = {p.parent for name in (rundir.CONFIG, rundir.RESULT) for p in root.rglob(name)}
    # a report folder also holds a config.json; it is not a run
    return sorted(d for d in found if rundir.is_run_dir(d) and not (d / "report.md").exists()
                  and not (d / "stats.json").exists())


def list_runs(root: str | Path) -> list[RunInfo]:
    root = Path(root)
    runs = [describe_run(d, root) for d in find_runs(root)]
    log.info("found %d run(s) under %s", len(runs), root)
    return runs


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.2f}"
    return str(value)


def _epochs(r: RunInfo) -> str:
    if r.epochs_done is None and r.epochs_total is None:
        return ""
    return f"{r.epochs_done if r.epochs_done is not None else 0}/{r.epochs_total if r.epochs_total else '?'}"


def _wall(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def format_table(runs: list[RunInfo]) -> str:
    headers = ["run", "model", "dataset", "role", "seed", "status", "epochs", "top-1", "wall", "note"]
    rows = [[escape.term(c) for c in (r.run, r.model or "", r.dataset or "", r.role or "", _cell(r.seed),
                                      r.status, _epochs(r), _cell(r.top1), _wall(r.wall_time_s), r.note)]
            for r in runs]
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    counts = {s: sum(r.status == s for r in runs) for s in ("finished", "diverged", "partial", "failed")}
    if not counts["diverged"]:
        del counts["diverged"]
    lines.append(f"{len(runs)} run(s): " + ", ".join(f"{n} {s}" for s, n in counts.items()))
    return "\n".join(lines)


def format_csv(runs: list[RunInfo]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    for r in runs:
        row = dataclasses.asdict(r)
        writer.writerow(["" if row[c] is None else (repr(row[c]) if isinstance(row[c], float) else
                                                    escape.csv_cell(row[c])) for c in COLUMNS])
    return buf.getvalue()


def format_json(runs: list[RunInfo]) -> str:
    def clean(value: Any) -> Any:
        return None if isinstance(value, float) and not math.isfinite(value) else value

    return json.dumps([{k: clean(v) for k, v in dataclasses.asdict(r).items()} for r in runs], indent=2)
