"""Contrast class sets: the WordNet pool disjoint from a reference, explicit lists, lemma uniqueness, checks.

`classes.tsv` is the hand-off to mining: one row per class with the lemmas the caption matcher looks for and
the query text the similarity filter compares captions with (SPEC section 3, after LAIONet).
"""

from __future__ import annotations

import csv
import dataclasses
import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from imagenot import escape
from imagenot.errors import InputError
from imagenot.fileio import atomic_open
from imagenot.wordnet.loader import get_wordnet
from imagenot.wordnet.synsets import (
    all_noun_synsets,
    ancestors,
    descendants,
    is_wnid,
    query_text,
    synset_lemmas,
    synset_name,
    synset_to_wnid,
    wnid_to_synset,
)

log = logging.getLogger(__name__)

COLUMNS = ("index", "wnid", "name", "lemmas", "definition", "query", "lexname")


@dataclass(frozen=True)
class ClassRow:
    index: int
    wnid: str
    name: str
    lemmas: tuple[str, ...]
    definition: str
    query: str
    lexname: str


def class_row(synset: Any, index: int = 0) -> ClassRow:
    """The row of a WordNet synset, white space in its gloss folded (13 WordNet 3.0 glosses hold double
    spaces), so the row in memory is the row `read_classes` gives back from the written file."""
    return ClassRow(
        index=index,
        wnid=synset_to_wnid(synset),
        name=synset_name(synset),
        lemmas=synset_lemmas(synset),
        definition=_fold(synset.definition()),
        query=_fold(query_text(synset)),
        lexname=synset.lexname(),
    )


def reindex(rows: Iterable[ClassRow]) -> list[ClassRow]:
    return [dataclasses.replace(r, index=i) for i, r in enumerate(rows)]


def _fold(text: str) -> str:
    return " ".join(text.split())


def write_classes(path: str | Path, rows: Sequence[ClassRow]) -> None:
    """Write `classes.tsv` atomically; a value the unquoted TSV cannot hold is refused (`escape.tsv_row`).

    A tab or line break in a name, lemma or definition would shift the columns of its row, and a `|` in a
    lemma would split it in two on reading: both are refused with an InputError naming the value, before the
    file is touched, so what `read_classes` gives back is exactly what was written.
    """
    where = Path(path).name
    lines = [escape.tsv_row(COLUMNS)]
    for r in rows:
        bad = [lemma for lemma in r.lemmas if "|" in lemma]
        if bad:
            raise InputError(f"lemma {bad[0]!r} of class {r.wnid} contains '|', the lemma separator of {where}")
        fields = (r.index, r.wnid, r.name, "|".join(r.lemmas), r.definition, r.query, r.lexname)
        lines.append(escape.tsv_row(fields, COLUMNS, where))
    with atomic_open(path, "w") as fh:
        fh.writelines(lines)


def read_classes(path: str | Path, check_wordnet: bool = True) -> list[ClassRow]:
    """Read `classes.tsv`; errors name the file and line.

    Every wnid must name a WordNet 3.0 noun synset (checked without loading WordNet; skipped, with nothing to
    check against, where WordNet is not installed): a made-up wnid would otherwise be mined and labelled.
    """
    path = Path(path)
    try:
        fh = open(path, encoding="utf-8", newline="")
    except FileNotFoundError:
        raise InputError("no such file", path) from None
    rows: list[ClassRow] = []
    lines: list[int] = []
    with fh:
        reader = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        try:
            header = next(reader)
        except StopIteration:
            raise InputError("empty file: expected a header " + "\t".join(COLUMNS), path) from None
        except UnicodeDecodeError as exc:
            raise InputError(f"not UTF-8 text ({exc.reason})", path, 1) from None
        missing = [c for c in COLUMNS if c not in header]
        if missing:
            raise InputError(f"missing column(s) {', '.join(missing)}; found {', '.join(header)}", path, 1)
        pos = {c: header.index(c) for c in COLUMNS}
        try:
            for lineno, rec in enumerate(reader, start=2):
                if not rec or all(not f.strip() for f in rec):
                    continue
                if len(rec) < len(header):
                    raise InputError(f"expected {len(header)} tab-separated fields, got {len(rec)}", path, lineno)
                get = {c: rec[i] for c, i in pos.items()}
                if not is_wnid(get["wnid"]):
                    raise InputError(f"malformed wnid {get['wnid']!r}", path, lineno)
                try:
                    index = int(get["index"])
                except ValueError:
                    raise InputError(f"index {get['index']!r} is not an integer", path, lineno) from None
                lemmas = tuple(x for x in get["lemmas"].split("|") if x)
                blank = [x for x in lemmas if not x.strip()]
                if blank:
                    raise InputError(f"class {get['wnid']}: lemma {blank[0]!r} is empty (whitespace only); it "
                                     "would never match a caption", path, lineno)
                rows.append(ClassRow(index, get["wnid"], get["name"], lemmas, get["definition"],
                                     get["query"], get["lexname"]))
                lines.append(lineno)
        except UnicodeDecodeError as exc:
            raise InputError(f"not UTF-8 text ({exc.reason})", path) from None
    if not rows:
        raise InputError("no classes (header only)", path)
    seen: dict[str, int] = {}
    for r, lineno in zip(rows, lines):
        if r.wnid in seen:
            raise InputError(f"duplicate wnid {r.wnid}", path, lineno)
        seen[r.wnid] = r.index
    if check_wordnet:
        from imagenot.wordnet.loader import unknown_noun_wnids

        bad = set(unknown_noun_wnids([r.wnid for r in rows]) or ())
        if bad:
            lineno, r = next((n, r) for r, n in zip(rows, lines) if r.wnid in bad)
            raise InputError(f"{r.wnid} is not a WordNet 3.0 noun synset ({len(bad)} such wnid(s) in the file); "
                             "wnids are 'n' + the 8-digit offset in WordNet 3.0's data.noun", path, lineno)
    return rows


def make_unique_lemmas(rows: Sequence[ClassRow]) -> list[ClassRow]:
    """LAIONet's rule for a fixed class set: keep a lemma only if exactly one class has it; drop classes
    left without a lemma; reindex. Without it a caption word would vote for several classes."""
    counts = Counter(lemma for r in rows for lemma in set(r.lemmas))
    out = []
    for r in rows:
        kept = tuple(lemma for lemma in r.lemmas if counts[lemma] == 1)
        if kept:
            out.append(dataclasses.replace(r, lemmas=kept))
        elif not r.lemmas:
            log.info("dropping %s (%s): it has no lemma", r.wnid, r.name)
        else:
            log.info("dropping %s (%s): every lemma is shared with another class", r.wnid, r.name)
    return reindex(out)


@dataclass(frozen=True)
class PoolOptions:
    exclude_hierarchy: bool = False
    root: str | None = None  # a synset name (physical_entity.n.01) or wnid


def _resolve_synset(name_or_wnid: str) -> Any:
    if is_wnid(name_or_wnid):
        return wnid_to_synset(name_or_wnid)
    try:
        return get_wordnet().synset(name_or_wnid)
    except Exception as exc:  # noqa: BLE001 - NLTK raises WordNetError / ValueError
        raise InputError(f"unknown synset {name_or_wnid!r} (use a name like physical_entity.n.01 or a wnid)") from exc


def reference_lemmas(reference_wnids: Sequence[str]) -> set[str]:
    return {lemma for w in reference_wnids for lemma in synset_lemmas(wnid_to_synset(w))}


def build_pool(
    reference_wnids: Sequence[str],
    options: PoolOptions = PoolOptions(),
    synsets: Iterable[Any] | None = None,
) -> list[ClassRow]:
    """Every WordNet 3.0 noun synset that is not a reference class and shares no lemma string with one.

    Lemma uniqueness is not applied here: it is a property of a final class set, not of a pool.
    """
    root = _resolve_synset(options.root) if options.root else None
    candidates = list(synsets) if synsets is not None else all_noun_synsets()
    kept = select_pool(candidates, [wnid_to_synset(w) for w in reference_wnids],
                       exclude_hierarchy=options.exclude_hierarchy, root=root)
    return reindex(class_row(s) for s in kept)


def select_pool(
    candidates: Sequence[Any], references: Sequence[Any], *, exclude_hierarchy: bool = False, root: Any = None
) -> list[Any]:
    """The pool rules on any synset-like objects (NLTK's, or a test's hand-made hierarchy)."""
    ref_set = set(references)
    ref_lemmas = {lemma for r in references for lemma in synset_lemmas(r)}
    banned: set[Any] = set()
    if exclude_hierarchy:
        for r in references:
            banned |= ancestors(r) | descendants(r)
    allowed = (descendants(root) | {root}) if root is not None else None
    kept = []
    for s in tqdm(candidates, desc="pool", unit="synset", disable=len(candidates) < 5000, leave=False):
        if s in ref_set or s in banned or (allowed is not None and s not in allowed):
            continue
        if ref_lemmas.intersection(synset_lemmas(s)):
            continue
        kept.append(s)
    return kept


def rows_from_wnids(wnids: Sequence[str]) -> list[ClassRow]:
    return reindex(class_row(wnid_to_synset(w)) for w in wnids)


def check_class_set(wnids: Sequence[str], reference_wnids: Sequence[str]) -> dict[str, Any]:
    """How a class list relates to a reference: overlaps, hierarchy, internal pairs, lexnames."""
    classes = [wnid_to_synset(w) for w in wnids]
    refs = [wnid_to_synset(w) for w in reference_wnids]
    ref_set = set(refs)
    ref_lemmas = reference_lemmas(reference_wnids)
    ref_ancestors: set[Any] = set().union(*(ancestors(r) for r in refs)) if refs else set()
    class_set = set(classes)
    wnid_overlap = sorted(set(wnids) & set(reference_wnids))
    lemma_overlap = {
        synset_to_wnid(s): sorted(set(synset_lemmas(s)) & ref_lemmas)
        for s in classes
        if set(synset_lemmas(s)) & ref_lemmas
    }
    ancestor_of_ref = sorted(synset_to_wnid(s) for s in classes if s in ref_ancestors)
    descendant_of_ref = sorted(synset_to_wnid(s) for s in classes if ancestors(s) & ref_set)
    pairs = sorted(
        (synset_to_wnid(a), synset_to_wnid(s)) for s in classes for a in ancestors(s) if a in class_set
    )
    lemma_counts = Counter(lemma for s in classes for lemma in set(synset_lemmas(s)))
    no_unique = sorted(synset_to_wnid(s) for s in classes if all(lemma_counts[x] > 1 for x in synset_lemmas(s)))
    physical = get_wordnet().synset("physical_entity.n.01")
    lex = Counter(s.lexname().split(".", 1)[1] for s in classes)
    return {
        "count": len(classes),
        "reference_count": len(refs),
        "wnid_overlaps": wnid_overlap,
        "lemma_overlaps": lemma_overlap,
        "ancestors_of_reference": ancestor_of_ref,
        "descendants_of_reference": descendant_of_ref,
        "pairs_inside": [list(p) for p in pairs],
        "classes_without_unique_lemma": no_unique,
        "under_physical_entity": sum(1 for s in classes if physical in ancestors(s) or s == physical),
        "lexnames": dict(sorted(lex.items(), key=lambda kv: (-kv[1], kv[0]))),
    }


def format_check(report: dict[str, Any]) -> str:
    def names(wnids: Sequence[str], limit: int = 8) -> str:
        shown = ", ".join(f"{w} ({synset_name(wnid_to_synset(w))})" for w in wnids[:limit])
        return shown + (f", ... (+{len(wnids) - limit})" if len(wnids) > limit else "")

    lines = [
        f"classes:                      {report['count']} (reference: {report['reference_count']})",
        f"wnid overlaps:                {len(report['wnid_overlaps'])}" +
        (f"  {names(report['wnid_overlaps'])}" if report["wnid_overlaps"] else ""),
        f"lemma overlaps:               {len(report['lemma_overlaps'])}" +
        ("  " + "; ".join(f"{w}: {', '.join(ls)}" for w, ls in list(report["lemma_overlaps"].items())[:8])
         if report["lemma_overlaps"] else ""),
        f"ancestors of reference:       {len(report['ancestors_of_reference'])}" +
        (f"  {names(report['ancestors_of_reference'])}" if report["ancestors_of_reference"] else ""),
        f"descendants of reference:     {len(report['descendants_of_reference'])}" +
        (f"  {names(report['descendants_of_reference'])}" if report["descendants_of_reference"] else ""),
        f"ancestor/descendant pairs inside the list: {len(report['pairs_inside'])}",
        f"classes without a unique lemma: {len(report['classes_without_unique_lemma'])}",
        f"under physical_entity.n.01:   {report['under_physical_entity']}",
        "lexnames:",
    ]
    lines += [f"  {k:<14} {v}" for k, v in report["lexnames"].items()]
    return "\n".join(lines)
