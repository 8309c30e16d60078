"""Synset helpers keyed by wnid (`n` + 8-digit WordNet 3.0 offset), the id ImageNet and ImageNot use."""

from __future__ import annotations

import functools
import re
import warnings
from typing import Any

from imagenot.errors import ImagenotError
from imagenot.wordnet.loader import get_wordnet

WNID_RE = re.compile(r"^[nvasr]\d{8}$")


class UnknownWnidError(ImagenotError):
    pass


def synset_to_wnid(synset: Any) -> str:
    return f"{synset.pos()}{synset.offset():08d}"


def is_wnid(text: str) -> bool:
    return bool(WNID_RE.match(text))


def wnid_to_synset(wnid: str) -> Any:
    """The synset for a wnid; UnknownWnidError for malformed ids or offsets that are not in WordNet 3.0."""
    if not is_wnid(wnid):
        raise UnknownWnidError(f"{wnid!r} is not a wnid (expected 'n' followed by 8 digits, e.g. n01440764)")
    wn = get_wordnet()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # NLTK warns and returns None for an unknown offset
            synset = wn.synset_from_pos_and_offset(wnid[0], int(wnid[1:]))
    except Exception as exc:  # noqa: BLE001 - NLTK raises several types for a bad offset
        raise UnknownWnidError(f"{wnid} is not a WordNet 3.0 synset") from exc
    if synset is None:
        raise UnknownWnidError(f"{wnid} is not a WordNet 3.0 synset")
    return synset


def synset_name(synset: Any) -> str:
    """Class name: the synset name without `.n.NN`, underscores as spaces (LAIONet's query name)."""
    return synset.name().rsplit(".", 2)[0].replace("_", " ")


def synset_lemmas(synset: Any) -> tuple[str, ...]:
    """Lemma strings with underscores as spaces, in WordNet order, without repeats."""
    seen: dict[str, None] = {}
    for lemma in synset.lemma_names():
        seen.setdefault(lemma.replace("_", " "), None)
    return tuple(seen)


def query_text(synset: Any) -> str:
    return f"{synset_name(synset)} which is {synset.definition()}"


@functools.cache
def ancestors(synset: Any) -> frozenset[Any]:
    """All hypernyms (class and instance), transitively, excluding the synset itself."""
    return frozenset(synset.closure(lambda s: s.hypernyms() + s.instance_hypernyms()))


@functools.cache
def descendants(synset: Any) -> frozenset[Any]:
    """All hyponyms (class and instance), transitively, excluding the synset itself."""
    return frozenset(synset.closure(lambda s: s.hyponyms() + s.instance_hyponyms()))


@functools.lru_cache(maxsize=1)
def all_noun_synsets() -> tuple[Any, ...]:
    return tuple(get_wordnet().all_synsets("n"))
