"""Which run of a zoo starts next when several run side by side: longest first, dependencies respected.

A run's cost is an estimate, the model's cost per image x images x epochs (x3 for training: forward and
backward), from `imagenot.models.cost.training_cost` on the meta device (FLOPs plus activation traffic, which
is what makes depthwise and densely connected nets slow per FLOP); only the order matters. The runs are
started by priority, the cost of the run plus the costs of the longest chain of runs waiting for it (a
pretraining run whose fine-tune must follow it counts both), which for independent runs is plain longest
first: the classic list-scheduling rule that keeps the last process from finishing long after the others.
A run starts only once the run it depends on (`after`, a fine-tune's pretraining run) has finished.

This module is light (no torch): the scheduler takes the costs as numbers, so it is tested on made-up ones.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Task:
    """One run to schedule: `key` names it, `cost` is its estimate, `after` the key it must wait for."""

    key: Hashable
    cost: float
    after: Hashable | None = None


class Scheduler:
    """Hands out ready tasks by priority (`take`) and learns of finished ones (`done`)."""

    def __init__(self, tasks: Sequence[Task], finished: Iterable[Hashable] = ()) -> None:
        self.tasks = {t.key: t for t in tasks}
        self.order = {t.key: i for i, t in enumerate(tasks)}
        self.finished = set(finished)
        self.started: set[Hashable] = set()
        self.priority = _priorities(tasks)

    def ready(self) -> list[Hashable]:
        """Tasks that may start now, highest priority first (plan order among equals)."""
        keys = [k for k, t in self.tasks.items() if k not in self.started and self._unblocked(t)]
        return sorted(keys, key=lambda k: (-self.priority[k], self.order[k]))

    def take(self) -> Hashable | None:
        """The next task to start, or None when none is ready (all started, or waiting for a running one)."""
        ready = self.ready()
        if not ready:
            return None
        self.started.add(ready[0])
        return ready[0]

    def done(self, key: Hashable) -> None:
        self.finished.add(key)

    @property
    def unstarted(self) -> int:
        return len(self.tasks) - len(self.started)

    def _unblocked(self, task: Task) -> bool:
        return task.after is None or task.after not in self.tasks or task.after in self.finished


def _priorities(tasks: Sequence[Task]) -> dict[Hashable, float]:
    """Each task's cost plus the longest chain of tasks waiting for it."""
    children: dict[Hashable, list[Hashable]] = {}
    for t in tasks:
        if t.after is not None:
            children.setdefault(t.after, []).append(t.key)
    costs = {t.key: float(t.cost) for t in tasks}
    memo: dict[Hashable, float] = {}

    def chain(key: Hashable) -> float:
        if key not in memo:
            memo[key] = costs[key] + max((chain(c) for c in children.get(key, ())), default=0.0)
        return memo[key]

    return {t.key: chain(t.key) for t in tasks}


def order(tasks: Sequence[Task]) -> list[Hashable]:
    """The start order one process at a time would follow (the schedule's order, for logs and tests)."""
    sched = Scheduler(tasks)
    out = []
    while (key := sched.take()) is not None:
        out.append(key)
        sched.done(key)
    return out


def job_cost(model: str, image_size: int | None, images: int | None, epochs: int | None, *,
             training: bool) -> float:
    """Estimated cost of one run: the model's cost per image (`imagenot.models.cost.training_cost`: FLOPs plus
    activation traffic) x images x epochs, x3 when it trains.

    `images` None (a split of unknown size) counts as one, so runs on the same data still order by model and
    epochs; a model whose cost cannot be counted costs 1 per image.
    """
    from imagenot.models.cost import training_cost

    try:
        per_image = training_cost(model, image_size)
    except Exception:  # noqa: BLE001 - an estimate is never a reason to fail a zoo
        log.debug("no cost estimate for %s at %s px", model, image_size, exc_info=True)
        per_image = 1.0
    return per_image * (images or 1) * (epochs or 1) * (3.0 if training else 1.0)
