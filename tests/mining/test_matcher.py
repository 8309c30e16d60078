"""The LAIONet rule, exactly: punctuation -> space, pad, " lemma " case-sensitively; several classes: dropped."""

from __future__ import annotations

import random

import pyarrow as pa
import pytest

from imagenot.mining.matcher import LemmaMatcher, plural_forms, reference_match
from imagenot.mining.normalize import check_captions, laionet_normalize, normalized_buffer

CLASSES = [("dog", "domestic dog"), ("cat",), ("hot dog",), ("New York",), ("café",), ("St. John's wort",),
           ("sea",)]


def classes_of(captions: list[str | None], class_lemmas=CLASSES, mode: str = "laionet") -> list[set[int]]:
    m = LemmaMatcher(class_lemmas, mode)
    text = check_captions(pa.array(captions, pa.string()), 10_000).text
    hits = m.match(text)
    out: list[set[int]] = [set() for _ in captions]
    for r, c in zip(hits.row, hits.cls):
        out[int(r)].add(int(c))
    return out


@pytest.mark.parametrize("caption, expected", [
    ("a dog", {0}),
    ("dog", {0}),  # padding makes the first and last word match
    ("Dog on the beach", set()),  # case-sensitive
    ("DOG", set()),
    ("dogs playing", set()),  # no plural handling
    ("hotdog stand", set()),  # lemma inside a longer word
    ("underdog", set()),
    ("dog-friendly hotel", {0}),  # '-' becomes a space
    ("(dog)", {0}),
    ("dog's bowl", {0}),  # "'" becomes a space
    ("dog_walker", {0}),  # '_' is ASCII punctuation too
    ("a domestic dog", {0}),  # multi-word lemma (and "dog" itself)
    ("domestic  dog", {0}),  # two spaces: the multi-word lemma does not match, "dog" does
    ("I love New York", {3}),
    ("new york", set()),
    ("New-York", {3}),  # punctuation inside a multi-word lemma's text becomes its space
    ("NewYork", set()),
    ("cat and dog", {0, 1}),  # several classes: found here, dropped by the scan
    ("hot dog", {0, 2}),  # "hot dog" contains " dog ": two classes
    ("un café noir", {4}),  # non-ASCII lemma
    ("cafés", set()),
    ("café’s terrace", set()),  # a non-ASCII apostrophe is not ASCII punctuation: "café’s" stays one word
    ("chat: «cat»", set()),  # « and » are not ASCII punctuation: "«cat»" stays one word
    ("St. John's wort tea", set()),  # a lemma with punctuation can never match (exactly as LAIONet)
    ("sea\tdog", set()),  # a tab is not a space and not ASCII punctuation
    ("Éléphant près de la sea", {6}),
    ("", set()),
])
def test_laionet_rule(caption: str, expected: set[int]) -> None:
    assert classes_of([caption])[0] == expected
    assert reference_match(caption, CLASSES) == expected


def test_reference_normalisation_matches_the_bulk_buffer() -> None:
    captions = ["a.b,c", "x\u00e9!y", None, "", "end?"]
    joined, starts = normalized_buffer(pa.array(captions, pa.string()))
    for i, cap in enumerate(captions):
        seg = joined[starts[i]:starts[i + 1]]
        if cap is None:
            assert seg == ""
            continue
        # the buffer is the UTF-8 bytes viewed as latin-1, followed by a NUL separator
        assert seg.encode("latin-1").decode("utf-8") == laionet_normalize(cap) + "\x00"


def test_automaton_agrees_with_the_per_lemma_loop_on_random_text() -> None:
    rng = random.Random(7)
    pieces = ["dog", "Dog", "domestic", "hot", "cat", "cats", "New", "York", "café", "sea", "St", "John", "s",
              "wort", "é", "ü", "日本", ".", ",", "!", "-", "'", "(", ")", "_", " ", "  ", "\t", "\n"]
    captions = ["".join(rng.choice(pieces) + rng.choice(["", " ", "."]) for _ in range(rng.randint(0, 12)))
                for _ in range(3000)]
    got = classes_of(captions)
    for cap, classes in zip(captions, got):
        assert classes == reference_match(cap, CLASSES), cap


def test_first_lemma_in_text_order_is_reported() -> None:
    m = LemmaMatcher([("domestic dog", "dog")])
    hits = m.match(pa.array(["my dog is a domestic dog"]))
    assert len(hits) == 1
    assert m.lemma_text[hits.lemma[0]] == "dog"
    assert hits.n_classes.tolist() == [1]


def test_shared_lemma_hits_every_class_that_has_it() -> None:
    m = LemmaMatcher([("cat", "true cat"), ("cat", "Caterpillar"), ("whip",)])
    hits = m.match(pa.array(["a cat", "a whip", "Caterpillar tractor"]))
    assert sorted(zip(hits.row.tolist(), hits.cls.tolist())) == [(0, 0), (0, 1), (1, 2), (2, 1)]
    assert hits.n_classes.tolist() == [2, 2, 1, 1]


def test_relaxed_mode_lower_cases_and_accepts_simple_plurals() -> None:
    lemmas = [("dog",), ("box",), ("berry",), ("New York",)]
    got = classes_of(["Dogs barking", "two boxes", "BERRIES", "new york", "doggy"], lemmas, "relaxed")
    assert got == [{0}, {1}, {2}, {3}, set()]
    assert plural_forms("sea horse") == ["sea horses"]
    assert plural_forms("fox") == ["foxs", "foxes"]


def test_unknown_mode_is_an_error() -> None:
    from imagenot.errors import ImagenotError

    with pytest.raises(ImagenotError, match="known: laionet, relaxed"):
        LemmaMatcher([("dog",)], "fuzzy")


def test_matcher_survives_pickling() -> None:
    import pickle

    m = pickle.loads(pickle.dumps(LemmaMatcher(CLASSES)))
    assert classes_of(["a dog"], CLASSES)[0] == {int(c) for c in m.match(pa.array(["a dog"])).cls}
