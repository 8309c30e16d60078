"""Progress on long loops: a tqdm bar on a terminal, periodic rate lines in a log, nothing when switched off.

Why both: a bar drawn into a pipe or a Slurm log is a wall of carriage returns, while a job that prints
nothing for hours looks hung. So `progress()` draws a bar only when stderr is a terminal and otherwise logs a
line every `interval` seconds with the count, the rate and an ETA. `imagenot --no-progress` (or `--quiet`)
switches both off for the process (`set_enabled(False)`).

`pool_map()` is the one "serial or spawned process pool, with progress" loop of the project: serial in this
process for one worker (easy to debug, no pickling), a spawn-context ProcessPoolExecutor otherwise (fork is
unsafe with torch and Arrow threads), results yielded as they complete.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")

log = logging.getLogger(__name__)

_ENABLED = True


def set_enabled(enabled: bool) -> None:
    """Switch progress output on or off for the whole process (the CLI's --no-progress / --quiet)."""
    global _ENABLED
    _ENABLED = bool(enabled)


def enabled() -> bool:
    return _ENABLED


def _is_tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _fmt_eta(seconds: float) -> str:
    seconds = max(0, int(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Progress:
    """A counter that shows itself as a tqdm bar (TTY) or as periodic log lines (otherwise)."""

    def __init__(self, total: int | None = None, *, desc: str = "", unit: str = "it", enabled: bool = True,
                 initial: int = 0, interval: float = 30.0, logger: logging.Logger | None = None,
                 leave: bool = False) -> None:
        self.total = total
        self.desc = desc
        self.unit = unit
        self.n = initial
        self._initial = initial
        self._interval = interval
        self._log = logger or log
        self._t0 = time.perf_counter()
        self._last = self._t0
        self._postfix = ""
        self._bar = None
        self._active = enabled and _ENABLED
        if self._active and _is_tty():
            from tqdm import tqdm

            self._bar = tqdm(total=total, initial=initial, desc=desc, unit=unit, leave=leave, dynamic_ncols=True,
                             mininterval=0.5)

    def update(self, k: int = 1) -> None:
        self.n += k
        if self._bar is not None:
            self._bar.update(k)
            return
        if self._active:
            now = time.perf_counter()
            if now - self._last >= self._interval:
                self._last = now
                self._log.info("%s", self.line(now))

    def set_postfix(self, text: str) -> None:
        self._postfix = text
        if self._bar is not None:
            self._bar.set_postfix_str(text, refresh=False)

    def line(self, now: float | None = None) -> str:
        """`desc: 1,200/5,000 unit (24%), 310 unit/s, ETA 0:12` (what the log lines say)."""
        now = time.perf_counter() if now is None else now
        elapsed = max(now - self._t0, 1e-9)
        rate = (self.n - self._initial) / elapsed
        parts = [f"{self.desc}: {self.n:,}"]
        if self.total:
            parts[0] += f"/{self.total:,} {self.unit} ({100.0 * self.n / self.total:.0f}%)"
        else:
            parts[0] += f" {self.unit}"
        # Slow units (runs, shards) read better as seconds per unit than as "0.0 run/s".
        parts.append(f"{rate:,.1f} {self.unit}/s" if rate >= 1 or rate == 0 else f"{1.0 / rate:,.0f} s/{self.unit}")
        if self.total and rate > 0:
            parts.append(f"ETA {_fmt_eta((self.total - self.n) / rate)}")
        if self._postfix:
            parts.append(self._postfix)
        return ", ".join(parts)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def progress(iterable: Iterable[T], *, total: int | None = None, desc: str = "", unit: str = "it",
             enabled: bool = True, interval: float = 30.0, logger: logging.Logger | None = None) -> Iterator[T]:
    """Iterate `iterable`, showing progress (see the module docstring)."""
    if total is None:
        try:
            total = len(iterable)  # type: ignore[arg-type]
        except TypeError:
            total = None
    with Progress(total, desc=desc, unit=unit, enabled=enabled, interval=interval, logger=logger) as bar:
        for item in iterable:
            yield item
            bar.update(1)


def pool_map(fn: Callable[[T], R], items: Iterable[T], *, workers: int = 1, desc: str = "", unit: str = "task",
             enabled: bool = True, initializer: Callable[..., Any] | None = None,
             initargs: tuple[Any, ...] = ()) -> Iterator[tuple[T, R]]:
    """(item, fn(item)) for every item, serially (workers <= 1) or in spawned processes, as they complete.

    An exception in a task is raised here (the remaining tasks are cancelled), so a failure is never silent.
    """
    todo = list(items)
    with Progress(len(todo), desc=desc, unit=unit, enabled=enabled) as bar:
        if workers <= 1 or len(todo) <= 1:
            if initializer is not None:
                initializer(*initargs)
            for item in todo:
                result = fn(item)
                bar.update(1)
                yield item, result
            return
        import multiprocessing
        from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(min(workers, len(todo)), mp_context=ctx, initializer=initializer,
                                 initargs=initargs) as pool:
            pending = {pool.submit(fn, item): item for item in todo}
            try:
                while pending:
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in done:
                        item = pending.pop(fut)
                        result = fut.result()
                        bar.update(1)
                        yield item, result
            finally:
                for fut in pending:
                    fut.cancel()
