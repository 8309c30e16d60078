"""A resumable sequence of named stages with a summary table.

A stage is skipped when its `done()` check says its outputs exist (each stage writes its outputs atomically,
so existing outputs are complete); a killed demo therefore resumes at the stage that was in flight.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imagenot.fileio import read_json, write_json

log = logging.getLogger(__name__)


@dataclass
class StageRecord:
    name: str
    status: str  # ran | skipped
    seconds: float
    summary: str = ""


@dataclass
class StageRunner:
    out: Path
    echo: Callable[[str], None] = print
    records: list[StageRecord] = field(default_factory=list)

    @property
    def state_path(self) -> Path:
        return self.out / "demo_state.json"

    def _state(self) -> dict[str, Any]:
        return read_json(self.state_path) if self.state_path.exists() else {}

    def run(self, name: str, fn: Callable[[], str], done: Callable[[], bool], key: str = "") -> None:
        """Run `fn` (which returns a one-line summary) unless `done()` and the stage last ran with the same
        `key` (a digest of the settings it depends on); record timing either way."""
        state = self._state()
        if done() and name in state and state[name].get("key", "") == key:
            rec = StageRecord(name, "skipped", 0.0, state[name].get("summary", ""))
            self.echo(f"[demo] {name}: already done, skipped ({rec.summary})")
        else:
            self.echo(f"[demo] {name} ...")
            t0 = time.perf_counter()
            summary = fn()
            rec = StageRecord(name, "ran", time.perf_counter() - t0, summary)
            state[name] = {"seconds": round(rec.seconds, 2), "summary": summary, "key": key}
            write_json(self.state_path, state)
            self.echo(f"[demo] {name}: {summary} ({rec.seconds:.1f} s)")
        self.records.append(rec)

    def timings(self) -> dict[str, dict[str, Any]]:
        """Per stage, the seconds and summary of the last time it ran (skipped stages keep earlier runs')."""
        return self._state()

    def table(self) -> str:
        width = max((len(r.name) for r in self.records), default=5)
        lines = [f"{'stage':<{width}}  {'status':<7}  {'time':>7}  summary"]
        for r in self.records:
            t = f"{r.seconds:6.1f}s" if r.status == "ran" else "      -"
            lines.append(f"{r.name:<{width}}  {r.status:<7}  {t}  {r.summary}")
        return "\n".join(lines)
