"""The pool pass's class choice: the N classes with the most matches, or a seeded draw among the eligible ones."""

from __future__ import annotations

from collections import Counter

from imagenot.mining.pool import choose_from_pool, pool_classes
from imagenot.wordnet.classes import ClassRow


def _pool(n: int) -> tuple[list[ClassRow], Counter[str], dict[str, Counter[str]]]:
    rows = [ClassRow(i, f"n{i:08d}", f"thing{i}", (f"thing{i}",), "a thing", f"thing{i} which is a thing",
                     "noun.artifact") for i in range(n)]
    # class i has 10 * i matches: the biggest are the last ones
    counts = Counter({r.wnid: 10 * r.index for r in rows})
    lemma_counts = {r.wnid: Counter({r.lemmas[0]: 10 * r.index}) for r in rows}
    return rows, counts, lemma_counts


def test_most_takes_the_biggest_classes() -> None:
    rows, counts, lemmas = _pool(30)
    chosen = choose_from_pool(rows, counts, lemmas, 5, 50)
    assert [c.name for c in chosen] == [f"thing{i}" for i in (29, 28, 27, 26, 25)]


def test_random_draws_among_eligible_classes_by_seed() -> None:
    rows, counts, lemmas = _pool(30)
    a = choose_from_pool(rows, counts, lemmas, 5, 50, "random", seed=0)
    b = choose_from_pool(rows, counts, lemmas, 5, 50, "random", seed=0)
    c = choose_from_pool(rows, counts, lemmas, 5, 50, "random", seed=1)
    assert [r.wnid for r in a] == [r.wnid for r in b]
    assert {r.wnid for r in a} != {r.wnid for r in c}
    assert len(a) == 5 and all(counts[r.wnid] >= 50 for r in a + c)
    # not simply the five biggest
    assert {r.name for r in a} != {f"thing{i}" for i in range(25, 30)}


def test_random_keeps_every_eligible_class_when_there_are_few() -> None:
    rows, counts, lemmas = _pool(8)
    chosen = choose_from_pool(rows, counts, lemmas, 40, 50, "random", seed=4)
    assert sorted(r.name for r in chosen) == ["thing5", "thing6", "thing7"]


def test_a_random_pool_keeps_spare_classes_for_the_final_pass() -> None:
    """A class can lose matches in the final pass (a caption counts for one class only): a random choice keeps
    spares, so the selection's own draw still finds N classes; 'most' keeps exactly N."""
    rows, counts, lemmas = _pool(100)
    assert len(choose_from_pool(rows, counts, lemmas, pool_classes(40, "random"), 50, "random")) == 44
    assert len(choose_from_pool(rows, counts, lemmas, pool_classes(40, "most"), 50)) == 40
    assert pool_classes(None, "random") is None
