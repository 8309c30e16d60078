"""Class level: the `classes --check` facts side by side, class-set sources, and fast path distances."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from imagenot.audit.class_level import (
    ClassSet,
    class_level,
    class_set_of_dataset,
    class_set_override,
    class_summary,
    nearest_references,
)
from imagenot.errors import InputError
from imagenot.wordnet.classes import rows_from_wnids, write_classes
from imagenot.wordnet.references import FASHION_MNIST_WNIDS
from imagenot.wordnet.synsets import synset_to_wnid, wnid_to_synset


def test_released_imagenot_list_against_imagenet(shared_reference: Path) -> None:
    ref = class_set_override("imagenet-1k")
    con = class_set_override(str(shared_reference / "imagenot_classes.txt"))
    section = class_level(ref, con)
    assert class_summary(section) | {"mean_path_distance": None} == {
        "wnid_overlap": 0, "lemma_overlap": 0, "ancestors": 11, "descendants": 8, "mean_path_distance": None}
    names = {a["name"] for a in section["ancestors_of_reference"]}
    assert {"insect", "aircraft"} <= names
    assert "gavel" in {d["name"] for d in section["descendants_of_reference"]}
    # the reference README's lexname counts for the released list, and ImageNet's own side next to it
    lex = section["contrast"]["lexnames"]
    assert (lex["artifact"], lex["food"], lex["animal"], lex["plant"], lex["Tops"]) == (575, 104, 95, 89, 1)
    assert section["contrast"]["pairs_inside"] == 45 and section["contrast"]["under_physical_entity"] == 999
    assert sum(section["reference"]["lexnames"].values()) == 1000
    pd = section["path_distance"]
    assert sum(pd["histogram"].values()) == 1000
    # no shared wnid: nothing at distance 0; every class reaches ImageNet through entity.n.01
    assert pd["min"] >= 1 and pd["max"] < 30 and 1 < pd["mean"] < pd["max"]
    by = {p["wnid"]: p for p in section["per_class"]}
    gavel = next(d["wnid"] for d in section["descendants_of_reference"] if d["name"] == "gavel")
    assert by[gavel]["distance"] == wnid_to_synset(gavel).shortest_path_distance(
        wnid_to_synset(by[gavel]["nearest"]))


def test_nearest_reference_equals_nltk_shortest_path(shared_reference: Path) -> None:
    wnids = class_set_override(str(shared_reference / "imagenot_classes.txt")).wnids
    contrast = [wnid_to_synset(w) for w in random.Random(0).sample(wnids, 25)]
    refs = [wnid_to_synset(w) for w in FASHION_MNIST_WNIDS]
    fast = nearest_references(contrast, refs)
    for c, (d, r) in zip(contrast, fast):
        brute = [c.shortest_path_distance(x) for x in refs]
        assert d == min(brute)
        assert c.shortest_path_distance(r) == d


def test_overlap_parent_and_child_are_found(wordnet) -> None:
    trouser = wnid_to_synset("n04489008")  # a Fashion-MNIST class
    parent = trouser.hypernyms()[0]
    child = wnid_to_synset("n03595614").hyponyms()[0]  # under jersey (T-shirt)
    contrast = ClassSet(("n04489008", synset_to_wnid(parent), synset_to_wnid(child)), "test")
    section = class_level(class_set_override("fashion-mnist"), contrast)
    s = class_summary(section)
    assert (s["wnid_overlap"], s["ancestors"], s["descendants"]) == (1, 1, 1)
    dist = {p["wnid"]: p["distance"] for p in section["per_class"]}
    assert dist == {"n04489008": 0, synset_to_wnid(parent): 1, synset_to_wnid(child): 1}
    assert s["mean_path_distance"] == pytest.approx(2 / 3)


def test_class_sets_from_files_folders_and_datasets(tmp_path: Path, wordnet) -> None:
    wnids = ["n03354903", "n03720163"]
    (tmp_path / "list.txt").write_text("# two classes\n" + "\n".join(wnids) + "\n")
    write_classes(tmp_path / "ds" / "classes.tsv", rows_from_wnids(wnids))
    assert class_set_override(str(tmp_path / "list.txt")).wnids == tuple(wnids)
    assert class_set_override(str(tmp_path / "ds" / "classes.tsv")).wnids == tuple(wnids)
    assert class_set_override(str(tmp_path / "ds")).wnids == tuple(wnids)
    assert class_set_of_dataset(f"wds:{tmp_path / 'ds'}")[0].wnids == tuple(wnids)
    assert class_set_of_dataset("fashion-mnist")[0].wnids == FASHION_MNIST_WNIDS
    for w in wnids:
        (tmp_path / "folder" / "train" / w).mkdir(parents=True)
    assert class_set_of_dataset(f"imagefolder:{tmp_path / 'folder'}")[0].wnids == tuple(wnids)
    (tmp_path / "named" / "cats").mkdir(parents=True)
    none, why = class_set_of_dataset(f"imagefolder:{tmp_path / 'named'}")
    assert none is None and "not named by wnid" in why
    assert class_set_of_dataset("synthetic")[0] is None
    with pytest.raises(InputError, match="unknown class set"):
        class_set_override("imagenet-2k")
    (tmp_path / "bad.txt").write_text("n99999999\n")
    with pytest.raises(InputError, match="not a WordNet 3.0 synset"):
        class_set_override(str(tmp_path / "bad.txt"))
