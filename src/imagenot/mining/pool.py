"""Choosing the final classes from a pool (SPEC section 3, "Choosing classes from a pool").

Over a pool of tens of thousands of WordNet nouns, most caption words are lemmas of several synsets ("cat":
the feline, a whip, a tractor brand), so the LAIONet rule (drop captions hitting several classes) would drop
nearly everything, and making lemmas unique over the whole pool would delete the common words. So:

1. pass 1 matches the pool with its shared lemmas and gives each caption to one candidate, the class whose
   query is most similar (or, without an encoder, the most frequent WordNet sense of the matched lemma), and
   counts images per class (above the similarity threshold);
2. the final N classes are fixed greedily by that count, skipping a class whose counted lemmas another chosen
   class also has (or that would take a counted lemma from a chosen one): `make_unique_lemmas` removes shared
   lemmas, and the counts must survive it;
3. the LAIONet rule runs on the chosen set with unique lemmas (pass 2).
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

from imagenot.wordnet.classes import ClassRow, make_unique_lemmas

log = logging.getLogger(__name__)


class SenseRanker:
    """Rank of a class among the WordNet noun senses of a lemma (0 = most frequent); picklable, lazy."""

    def __init__(self, classes: Sequence[ClassRow]) -> None:
        self.wnids = [c.wnid for c in classes]

    def __getstate__(self) -> dict[str, Any]:
        return {"wnids": self.wnids}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.wnids = state["wnids"]

    @staticmethod
    @lru_cache(maxsize=200_000)
    def _senses(lemma: str) -> tuple[str, ...]:
        from imagenot.wordnet.loader import get_wordnet
        from imagenot.wordnet.synsets import synset_to_wnid

        return tuple(synset_to_wnid(s) for s in get_wordnet().synsets(lemma.replace(" ", "_"), pos="n"))

    def __call__(self, cls: int, lemma: str) -> int:
        senses = self._senses(lemma)
        wnid = self.wnids[cls]
        return senses.index(wnid) if wnid in senses else len(senses) + 1000


def pool_counts(groups: Iterable[tuple[str, str, int]]) -> tuple[Counter[str], dict[str, Counter[str]]]:
    """Images per class and, per class, which lemmas brought them, from the pass-1 matches above threshold
    counted per (wnid, lemma) (`MatchQuery.lemma_counts`), given in order of first appearance so that ties in
    `most_common` fall in corpus order."""
    per_class: Counter[str] = Counter()
    lemmas: dict[str, Counter[str]] = defaultdict(Counter)
    for wnid, lemma, n in groups:
        per_class[wnid] += n
        lemmas[wnid][lemma] += n
    return per_class, lemmas


def pool_classes(num_classes: int | None, class_choice: str) -> int | None:
    """How many classes the pool pass keeps for the final pass. A class's pool count is over every pool lemma;
    in the final pass a caption counts once, for its best class, so a class can fall below the minimum there.
    With a random choice the pool pass keeps a few spare drawn classes, and the selection draws the N among
    those that still qualify (its own seeded draw), so the dataset still gets N classes."""
    if num_classes is None or class_choice != "random":
        return num_classes
    return num_classes + max(2, num_classes // 10)


def choose_from_pool(
    pool: Sequence[ClassRow],
    counts: Counter[str],
    lemma_counts: dict[str, Counter[str]],
    num_classes: int | None,
    min_matches_per_class: int,
    class_choice: str = "most",
    seed: int = 0,
) -> list[ClassRow]:
    """The chosen classes, with lemmas unique within the chosen set: those with the most pass-1 matches, in
    that order, or (`class_choice="random"`) a seeded draw among every class with enough, so that a corpus whose
    biggest classes are all of one kind (an icon set's interface words) does not decide the whole set."""
    by_wnid = {c.wnid: c for c in pool}
    order = sorted((w for w, n in counts.items() if n >= min_matches_per_class and w in by_wnid),
                   key=lambda w: (-counts[w], by_wnid[w].index))
    if class_choice == "random":
        import numpy as np

        order = [order[i] for i in np.random.default_rng([seed, 3]).permutation(len(order))]
    chosen: list[ClassRow] = []
    all_lemmas: set[str] = set()  # every lemma of a chosen class
    counted_lemmas: set[str] = set()  # lemmas that brought a chosen class its images
    for wnid in order:
        if num_classes is not None and len(chosen) >= num_classes:
            break
        row = by_wnid[wnid]
        counted = {lm for lm, n in lemma_counts[wnid].items() if n > 0}
        # Keep the class only if its counted lemmas stay its own and it takes none from a chosen class.
        own = counted - all_lemmas
        if sum(lemma_counts[wnid][lm] for lm in own) < min_matches_per_class or set(row.lemmas) & counted_lemmas:
            log.info("pool: skipping %s (%s): its lemmas collide with an already chosen class", wnid, row.name)
            continue
        chosen.append(row)
        all_lemmas |= set(row.lemmas)
        counted_lemmas |= own
    return make_unique_lemmas(chosen)
