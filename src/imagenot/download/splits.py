"""Train/val assignment after download failures and deduplication.

Failures are not uniform over classes (some hosts die, some classes are mostly duplicates), so the split
made at selection time is rechecked here: rows keep the split mining gave them, and a class whose val rows
were lost gets train rows moved to val until it has its intended val count again, so that every class is
measured on as many val images as planned. Classes that end up too small are reported and dropped (or kept
and flagged).

Mining oversamples (about 30% of LAION urls are dead) and writes each class's rows in priority order, train
rows then val rows; with per-class caps the first rows that survive are kept and the rest are removed as
`over_cap`. Surplus train rows beyond the cap are the first used to refill val.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

log = logging.getLogger(__name__)


@dataclass
class ClassSplit:
    label: int
    selected: int  # rows selected for the class
    selected_val: int  # of which mining put in val (0 when no split was given)
    survived: int  # after fetching, cleaning and dedup
    target_val: int
    train: int = 0
    val: int = 0
    moved_to_val: int = 0
    moved_to_train: int = 0
    over_cap: int = 0
    status: str = "kept"  # kept | dropped | kept_below_minimum

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class _Rules:
    """assign_splits' settings, passed to each class's steps."""

    seed: int
    val_fraction: float
    min_per_class: int
    min_val_per_class: int
    keep_small: bool
    train_cap: int | None
    val_cap: int | None


def assign_splits(
    labels: Sequence[int],
    given: Sequence[str | None],
    kept: Sequence[bool],
    *,
    seed: int,
    val_fraction: float,
    min_per_class: int,
    min_val_per_class: int,
    keep_small: bool,
    train_cap: int | None = None,
    val_cap: int | None = None,
) -> tuple[list[str | None], dict[int, ClassSplit], set[int]]:
    """Split of every row (None for rows not kept, over the caps, or in dropped classes), a per-class
    report, and the rows removed by the caps.

    `labels`, `given` (mining's split or None) and `kept` are per selected row, in row (priority) order.
    """
    rules = _Rules(seed, val_fraction, min_per_class, min_val_per_class, keep_small, train_cap, val_cap)
    by_class: dict[int, list[int]] = defaultdict(list)
    for i, lab in enumerate(labels):
        by_class[int(lab)].append(i)
    out: list[str | None] = [None] * len(labels)
    capped: set[int] = set()
    report: dict[int, ClassSplit] = {}
    for lab in sorted(by_class):
        rec, train, val = _split_class(lab, by_class[lab], given, kept, rules, capped)
        if rec.status != "dropped":
            for i in train:
                out[i] = "train"
            for i in val:
                out[i] = "val"
        report[lab] = rec
    small = [r for r in report.values() if r.status != "kept"]
    if small:
        log.info("%d of %d classes are below the minimum of %d images (%d val): %s", len(small), len(report),
                 min_per_class, min_val_per_class, "kept and flagged" if keep_small else "dropped")
    return out, report, capped


def _split_class(lab: int, rows: list[int], given: Sequence[str | None], kept: Sequence[bool], rules: _Rules,
                 capped: set[int]) -> tuple[ClassSplit, list[int], list[int]]:
    """One class: (its report, train rows, val rows); rows removed by the caps are added to `capped`."""
    rng = np.random.default_rng([rules.seed, lab])
    survivors = [i for i in rows if kept[i]]
    selected_val = sum(1 for i in rows if given[i] == "val")
    target = _val_target(rows, given, len(survivors), selected_val, rules)
    val = [i for i in survivors if given[i] == "val"]
    train = [i for i in survivors if given[i] != "val"]
    rec = ClassSplit(lab, len(rows), selected_val, len(survivors), target)
    if rules.val_cap is not None and len(val) > rules.val_cap:  # the lowest-priority val rows go
        capped.update(val[rules.val_cap:])
        rec.over_cap += len(val) - rules.val_cap
        val = val[:rules.val_cap]
    if len(val) > target:  # e.g. a class that would have no train image left
        extra = [int(i) for i in rng.permutation(val)[: len(val) - target]]
        rec.moved_to_train = len(extra)
        val = [i for i in val if i not in set(extra)]
        train = sorted(train + extra)
    if len(val) < target:
        train, val = _refill_val(train, val, target - len(val), given, rules.train_cap, rng, rec)
    if rules.train_cap is not None and len(train) > rules.train_cap:
        capped.update(train[rules.train_cap:])
        rec.over_cap += len(train) - rules.train_cap
        train = train[:rules.train_cap]
    rec.train, rec.val = len(train), len(val)
    if rec.train + rec.val < rules.min_per_class or len(val) < rules.min_val_per_class:
        rec.status = "kept_below_minimum" if rules.keep_small else "dropped"
        log.debug("class %d has %d images (%d val) after download, below the minimum %d (%d val): %s",
                  lab, rec.survived, len(val), rules.min_per_class, rules.min_val_per_class, rec.status)
    return rec, train, val


def _val_target(rows: list[int], given: Sequence[str | None], n: int, selected_val: int, rules: _Rules) -> int:
    """How many of a class's `n` surviving rows should be val: mining's val count (plus a share of rows mining
    gave no split), or a share of the survivors; within the val cap and the val minimum, leaving one train
    image."""
    if selected_val:
        target = selected_val
        if any(given[i] is None for i in rows):  # partly split: plan val for the rest by fraction
            target += round(rules.val_fraction * sum(1 for i in rows if given[i] is None))
    else:  # no split, or mining planned no val rows (val_per_class 0): a val share of the survivors
        target = round(rules.val_fraction * n)
    if rules.val_cap is not None:
        target = min(target, rules.val_cap)
    target = max(target, rules.min_val_per_class) if n >= 2 else 0
    return min(target, max(n - 1, 0))  # a class keeps at least one train image


def _refill_val(train: list[int], val: list[int], need: int, given: Sequence[str | None], train_cap: int | None,
                rng: np.random.Generator, rec: ClassSplit) -> tuple[list[int], list[int]]:
    """Move `need` train rows to val: first those the train cap would remove anyway (lowest priority first),
    then seeded draws of rows mining gave no split, then of mining's train rows."""
    surplus = train[train_cap:] if train_cap is not None else []
    pool = list(reversed(surplus))  # rows the train cap would remove anyway
    rest = [i for i in train if i not in set(surplus)]
    pool += [int(i) for i in rng.permutation([i for i in rest if given[i] is None])]
    pool += [int(i) for i in rng.permutation([i for i in rest if given[i] is not None])]
    moved = pool[:need]
    rec.moved_to_val = sum(1 for i in moved if given[i] is not None)
    moved_set = set(moved)
    return [i for i in train if i not in moved_set], val + moved
