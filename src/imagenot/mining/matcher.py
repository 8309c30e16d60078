"""Caption -> class matching by lemma, with one Aho-Corasick automaton over the whole batch.

LAIONet (and so ImageNot) labels a caption with a class when `" " + lemma + " "` occurs in the caption after
every ASCII punctuation character became a space and the caption was padded with a space on each side:
case-sensitive, no plurals, lemmas inside longer words do not count. Testing every lemma against every caption
costs classes x captions; an automaton finds every pattern in one pass over the text. The automaton runs over
a whole batch at once (`normalize.normalized_buffer`), so per-caption Python work is limited to the hits.

`relaxed` mode (an option, never the default) lower-cases captions and lemmas and also accepts simple English
plurals of a lemma's last word.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import ahocorasick
import numpy as np
import pyarrow as pa

from imagenot.errors import ImagenotError
from imagenot.mining.normalize import PUNCTUATION, normalized_buffer

log = logging.getLogger(__name__)

MATCH_MODES = ("laionet", "relaxed")


def plural_forms(lemma: str) -> list[str]:
    """Simple English plurals of a lemma's last word (relaxed mode only)."""
    head, _, last = lemma.rpartition(" ")
    forms = [last + "s"]
    if last.endswith(("s", "x", "z", "ch", "sh")):
        forms.append(last + "es")
    if len(last) > 1 and last.endswith("y") and last[-2] not in "aeiou":
        forms.append(last[:-1] + "ies")
    return [(head + " " + f) if head else f for f in forms]


@dataclass
class Hits:
    """The distinct (caption, class) pairs of a batch, sorted by caption then class.

    `lemma` is the pattern that first matched that class in the caption (in text order); `n_classes` is the
    number of distinct classes the caption's row matched, repeated on each of its pairs.
    """

    row: np.ndarray  # int64, row within the batch
    cls: np.ndarray  # int32, class position in the matcher's class list
    lemma: np.ndarray  # int32, pattern id (see LemmaMatcher.lemma_text)
    n_classes: np.ndarray  # int32

    def __len__(self) -> int:
        return len(self.row)


class LemmaMatcher:
    """An automaton over the lemmas of a class list; picklable (rebuilt from its lemmas in a worker)."""

    def __init__(self, class_lemmas: Sequence[Sequence[str]], mode: str = "laionet") -> None:
        if mode not in MATCH_MODES:
            raise ImagenotError(f"unknown match mode {mode!r}; known: {', '.join(MATCH_MODES)}")
        self.mode = mode
        self.class_lemmas = [tuple(ls) for ls in class_lemmas]
        self.num_classes = len(self.class_lemmas)
        pattern_ids: dict[str, int] = {}
        self.lemma_text: list[str] = []
        pattern_classes: list[list[int]] = []
        for cls, lemmas in enumerate(self.class_lemmas):
            for lemma in lemmas:
                if not lemma.strip():  # " " + "" + " " would match every space: never an automaton entry
                    log.warning("class %d: empty or whitespace-only lemma %r ignored", cls, lemma)
                    continue
                base = lemma.lower() if mode == "relaxed" else lemma
                forms = [base] + (plural_forms(base) if mode == "relaxed" else [])
                for form in forms:
                    pid = pattern_ids.get(form)
                    if pid is None:
                        pid = pattern_ids[form] = len(self.lemma_text)
                        self.lemma_text.append(base)
                        pattern_classes.append([])
                    if cls not in pattern_classes[pid]:
                        pattern_classes[pid].append(cls)
        if not pattern_ids:
            raise ImagenotError("no lemmas to match: the class list is empty")
        self.unmatchable = sorted({lm for lm in self.lemma_text if any(c in PUNCTUATION for c in lm)})
        if self.unmatchable:
            # Exactly as LAIONet: captions lose their punctuation, lemmas keep theirs, so these never match.
            log.info("%d lemma(s) contain ASCII punctuation and can never match (LAIONet rule), e.g. %s",
                     len(self.unmatchable), ", ".join(self.unmatchable[:5]))
        counts = np.array([len(c) for c in pattern_classes], dtype=np.int64)
        self._cls_ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self._cls_idx = np.array([c for cs in pattern_classes for c in cs], dtype=np.int32)
        self._single = bool((counts == 1).all())
        self._automaton = ahocorasick.Automaton()
        for form, pid in pattern_ids.items():
            key = (" " + form + " ").encode("utf-8").decode("latin-1")  # same view as the caption buffer
            self._automaton.add_word(key, pid)
        self._automaton.make_automaton()

    def __reduce__(self) -> tuple[Any, ...]:
        return (LemmaMatcher, (self.class_lemmas, self.mode))

    @property
    def num_patterns(self) -> int:
        return len(self.lemma_text)

    def pattern_classes(self, pid: int) -> np.ndarray:
        return self._cls_idx[self._cls_ptr[pid]: self._cls_ptr[pid + 1]]

    def match(self, text: pa.Array) -> Hits:
        """Every (caption, class) pair of a batch of utf8 captions (nulls never match)."""
        joined, starts = normalized_buffer(text, lower=self.mode == "relaxed")
        # (end, pattern) pairs flattened in C: no Python bytecode runs per hit
        flat = np.fromiter(itertools.chain.from_iterable(self._automaton.iter(joined)), dtype=np.int64)
        if len(flat) == 0:
            e = np.zeros(0, dtype=np.int64)
            return Hits(e, e.astype(np.int32), e.astype(np.int32), e.astype(np.int32))
        end_arr = flat[0::2]
        pid_arr = flat[1::2].astype(np.int32)
        row = np.searchsorted(starts, end_arr, side="right") - 1
        if self._single:
            cls = self._cls_idx[self._cls_ptr[pid_arr]]
            lemma = pid_arr
        else:
            counts = self._cls_ptr[pid_arr + 1] - self._cls_ptr[pid_arr]
            row = np.repeat(row, counts)
            lemma = np.repeat(pid_arr, counts)
            first = np.repeat(self._cls_ptr[pid_arr], counts)
            within = np.arange(len(row)) - np.repeat(np.cumsum(counts) - counts, counts)
            cls = self._cls_idx[first + within]
        # Distinct (row, class) pairs, keeping the first lemma in text order.
        key = row * np.int64(self.num_classes) + cls.astype(np.int64)
        _, first_idx = np.unique(key, return_index=True)  # sorted by key = (row, class)
        row_u = row[first_idx]
        _, n_per_row = np.unique(row_u, return_counts=True)  # row_u is sorted: counts follow its order
        n_classes = np.repeat(n_per_row, n_per_row).astype(np.int32)
        return Hits(row_u.astype(np.int64), cls[first_idx].astype(np.int32),
                    lemma[first_idx].astype(np.int32), n_classes)


def reference_match(caption: str, class_lemmas: Sequence[Sequence[str]]) -> set[int]:
    """LAIONet's own loop (every lemma tested against the caption): the definition the automaton must meet."""
    from imagenot.mining.normalize import laionet_normalize

    text = laionet_normalize(caption)
    return {c for c, lemmas in enumerate(class_lemmas) for lemma in lemmas if " " + lemma + " " in text}
