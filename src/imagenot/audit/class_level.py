"""Class level: how the two class sets relate in WordNet (the `imagenot classes --check` facts, side by side).

The facts themselves come from `imagenot.wordnet.classes.check_class_set`; this module adds where the class
sets come from (a dataset, a reference name, a classes.tsv or a wnid list) and how far each contrast class
lies from its nearest reference class. That distance is NLTK's `shortest_path_distance` (fewest edges through
a common hypernym, instance hypernyms included, no simulated root), computed for every contrast class at once:
each synset's hypernym closure with distances is built once, the reference closures are folded into "nearest
reference class below this ancestor", and each contrast class then needs one pass over its own closure
(1000 x 1000 classes in well under a second, where 10^6 NLTK calls take minutes).
"""

from __future__ import annotations

import functools
import logging
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imagenot.errors import InputError
from imagenot.spec import FOLDER_KINDS, Spec
from imagenot.wordnet.classes import COLUMNS, check_class_set, read_classes
from imagenot.wordnet.references import REFERENCES, read_wnid_file, reference_wnids
from imagenot.wordnet.synsets import is_wnid, synset_name, synset_to_wnid, wnid_to_synset

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClassSet:
    """The WordNet classes of one side: wnids in label order and where they came from."""

    wnids: tuple[str, ...]
    source: str  # e.g. "classes.tsv of wds:/data/x", "reference fashion-mnist", "wnid list /path"


def _looks_like_classes_tsv(path: Path) -> bool:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            first = fh.readline()
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", path) from None
    header = first.rstrip("\n").split("\t")
    return all(c in header for c in ("index", "wnid")) and len(set(header) & set(COLUMNS)) >= 3


def class_set_from_file(path: str | Path) -> ClassSet:
    """A classes.tsv (by its header) or a wnid list; a folder means its classes.tsv."""
    path = Path(path).expanduser()
    if path.is_dir():
        if not (path / "classes.tsv").is_file():
            raise InputError("folder has no classes.tsv", path)
        path = path / "classes.tsv"
    if not path.exists():
        raise InputError("no such file", path)
    if _looks_like_classes_tsv(path):
        rows = sorted(read_classes(path), key=lambda r: r.index)
        return ClassSet(tuple(r.wnid for r in rows), f"classes.tsv {path}")
    return ClassSet(tuple(read_wnid_file(path)), f"wnid list {path}")


def class_set_override(value: str) -> ClassSet:
    """`--reference-classes` / `--contrast-classes`: a reference name, a `wds:PATH`, a classes.tsv or wnid list."""
    if value in REFERENCES:
        return ClassSet(tuple(reference_wnids(value)), f"reference {value}")
    parsed = Spec.parse(value)
    if parsed.kind in FOLDER_KINDS and parsed.arg:
        found, reason = class_set_of_dataset(value)
        if found is None:
            raise InputError(f"class set {value!r}: {reason}")
        return found
    if Path(value).expanduser().exists():
        return class_set_from_file(value)
    raise InputError(f"unknown class set {value!r}: not one of {', '.join(REFERENCES)}, not a wds:/imagefolder: "
                     "dataset and not an existing classes.tsv or wnid file")


def class_set_of_dataset(spec: str) -> tuple[ClassSet | None, str]:
    """The class set a dataset spec implies, or None and why not (no torch import: the class level may run alone).

    `wds:PATH` has classes.tsv; `imagefolder:PATH` has it when its class folders are named by wnid (as
    `imagenot download --export` writes them); a registry dataset has it when it is a reference class set
    (fashion-mnist).
    """
    parsed = Spec.parse(spec)
    name, arg = parsed.kind, parsed.arg
    if name == "wds" and arg:
        tsv = Path(arg).expanduser() / "classes.tsv"
        if not tsv.is_file():
            return None, f"{tsv} does not exist"
        rows = sorted(read_classes(tsv), key=lambda r: r.index)
        return ClassSet(tuple(r.wnid for r in rows), f"classes.tsv of {spec}"), ""
    if name == "imagefolder" and arg:
        root = Path(arg).expanduser()
        folder = root / "train" if (root / "train").is_dir() else root
        names = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")) \
            if folder.is_dir() else []
        if names and all(is_wnid(n) for n in names):
            for n in names:
                wnid_to_synset(n)
            return ClassSet(tuple(names), f"class folders of {spec}"), ""
        return None, f"the class folders of {spec} are not named by wnid"
    if name in REFERENCES and arg is None:
        return ClassSet(tuple(reference_wnids(name)), f"reference {name}"), ""
    return None, f"dataset {spec} has no WordNet class ids (pass a class set with --*-classes)"


def resolve_class_set(override: str | None, dataset: str | None, side: str) -> tuple[ClassSet | None, str]:
    if override:
        return class_set_override(override), ""
    if dataset:
        return class_set_of_dataset(dataset)
    return None, f"no {side} dataset or class set given"


# -- path distances ----------------------------------------------------------------------------------------
@functools.cache
def hypernym_distances(synset: Any) -> dict[Any, int]:
    """{synset itself and each hypernym (class or instance, transitively): fewest edges up to it}."""
    dist = {synset: 0}
    frontier = [synset]
    depth = 0
    while frontier:
        depth += 1
        nxt = []
        for s in frontier:
            for h in s.hypernyms() + s.instance_hypernyms():
                if h not in dist:
                    dist[h] = depth
                    nxt.append(h)
        frontier = nxt
    return dist


def nearest_references(contrast: Sequence[Any], reference: Sequence[Any]) -> list[tuple[int | None, Any]]:
    """(shortest path distance, nearest reference synset) for each contrast synset.

    Equal to min over r of NLTK's `c.shortest_path_distance(r)`: a path runs up from c to a common hypernym
    a and down to r, so min over r and a of d(c, a) + d(r, a) = min over a of d(c, a) + min over r of d(r, a),
    and the inner minimum is folded once over all reference closures. Ties go to the smaller wnid.
    (None, None) where no reference shares a hypernym (cannot happen between nouns: all reach entity.n.01).
    """
    below: dict[Any, tuple[int, str, Any]] = {}
    for r in reference:
        rid = synset_to_wnid(r)
        for a, d in hypernym_distances(r).items():
            cur = below.get(a)
            if cur is None or (d, rid) < cur[:2]:
                below[a] = (d, rid, r)
    out: list[tuple[int | None, Any]] = []
    for c in contrast:
        best: tuple[int, str, Any] | None = None
        for a, d in hypernym_distances(c).items():
            hit = below.get(a)
            if hit is not None and (best is None or (d + hit[0], hit[1]) < best[:2]):
                best = (d + hit[0], hit[1], hit[2])
        out.append((best[0], best[2]) if best else (None, None))
    return out


def _named(wnid: str) -> dict[str, str]:
    return {"wnid": wnid, "name": synset_name(wnid_to_synset(wnid))}


def class_level(reference: ClassSet, contrast: ClassSet) -> dict[str, Any]:
    """The class-level section of audit.json: check facts, both lexname histograms, path distances."""
    check = check_class_set(list(contrast.wnids), list(reference.wnids))
    ref_alone = check_class_set(list(reference.wnids), [])
    con_syn = [wnid_to_synset(w) for w in contrast.wnids]
    ref_syn = [wnid_to_synset(w) for w in reference.wnids]
    nearest = nearest_references(con_syn, ref_syn)
    per_class = [
        {**_named(w), "distance": d, "nearest": None if r is None else synset_to_wnid(r),
         "nearest_name": None if r is None else synset_name(r)}
        for w, (d, r) in zip(contrast.wnids, nearest)
    ]
    dists = [p["distance"] for p in per_class if p["distance"] is not None]
    hist = Counter(dists)
    return {
        "reference": {"source": reference.source, "count": len(reference.wnids),
                      "lexnames": ref_alone["lexnames"], "pairs_inside": len(ref_alone["pairs_inside"]),
                      "under_physical_entity": ref_alone["under_physical_entity"]},
        "contrast": {"source": contrast.source, "count": len(contrast.wnids), "lexnames": check["lexnames"],
                     "pairs_inside": len(check["pairs_inside"]),
                     "under_physical_entity": check["under_physical_entity"],
                     "classes_without_unique_lemma": check["classes_without_unique_lemma"]},
        "wnid_overlaps": [_named(w) for w in check["wnid_overlaps"]],
        "lemma_overlaps": [{**_named(w), "lemmas": ls} for w, ls in check["lemma_overlaps"].items()],
        "ancestors_of_reference": [_named(w) for w in check["ancestors_of_reference"]],
        "descendants_of_reference": [_named(w) for w in check["descendants_of_reference"]],
        "path_distance": {
            "mean": statistics.fmean(dists) if dists else None,
            "median": statistics.median(dists) if dists else None,
            "min": min(dists) if dists else None,
            "max": max(dists) if dists else None,
            "histogram": {str(k): hist[k] for k in sorted(hist)},
            "closest": sorted(per_class, key=lambda p: (p["distance"] is None, p["distance"], p["wnid"]))[:15],
        },
        "per_class": per_class,
    }


def class_summary(section: dict[str, Any] | None) -> dict[str, Any]:
    keys = ("wnid_overlap", "lemma_overlap", "ancestors", "descendants", "mean_path_distance")
    if section is None:
        return dict.fromkeys(keys)
    return {
        "wnid_overlap": len(section["wnid_overlaps"]),
        "lemma_overlap": len(section["lemma_overlaps"]),
        "ancestors": len(section["ancestors_of_reference"]),
        "descendants": len(section["descendants_of_reference"]),
        "mean_path_distance": section["path_distance"]["mean"],
    }
