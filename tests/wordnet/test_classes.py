import re
from pathlib import Path

import pytest

from imagenot.errors import InputError
from imagenot.wordnet.classes import (
    ClassRow,
    PoolOptions,
    build_pool,
    check_class_set,
    make_unique_lemmas,
    read_classes,
    rows_from_wnids,
    select_pool,
    write_classes,
)
from imagenot.wordnet.references import (
    FASHION_MNIST_WNIDS,
    imagenet_1k_wnids,
    read_wnid_file,
    reference_wnids,
)
from imagenot.wordnet.synsets import synset_lemmas, synset_to_wnid


class FakeSynset:
    """A synset-like node of a hand-made hierarchy (NLTK's interface, just the parts the rules use)."""

    def __init__(self, name, lemmas, parent=None):
        self._name, self._lemmas, self.parent, self.children = name, lemmas, parent, []
        if parent:
            parent.children.append(self)

    def name(self):
        return f"{self._name}.n.01"

    def lemma_names(self):
        return self._lemmas

    def hypernyms(self):
        return [self.parent] if self.parent else []

    def hyponyms(self):
        return list(self.children)

    def instance_hypernyms(self):
        return []

    def instance_hyponyms(self):
        return []

    def closure(self, rel):
        seen, todo = [], rel(self)
        while todo:
            s = todo.pop()
            if s not in seen:
                seen.append(s)
                todo += rel(s)
        return seen

    def __repr__(self):
        return self._name


@pytest.fixture()
def tree():
    entity = FakeSynset("entity", ["entity"])
    animal = FakeSynset("animal", ["animal", "beast"], entity)
    dog = FakeSynset("dog", ["dog", "domestic_dog"], animal)
    poodle = FakeSynset("poodle", ["poodle"], dog)
    cat = FakeSynset("cat", ["cat", "true_cat"], animal)
    tool = FakeSynset("tool", ["tool"], entity)
    hotdog = FakeSynset("hotdog", ["hotdog", "dog"], tool)  # shares the lemma "dog"
    whip = FakeSynset("cat-o'-nine-tails", ["cat-o'-nine-tails", "cat"], tool)
    hammer = FakeSynset("hammer", ["hammer"], tool)
    return {s._name: s for s in (entity, animal, dog, poodle, cat, tool, hotdog, whip, hammer)}


def names(synsets):
    return sorted(s._name for s in synsets)


def test_pool_drops_reference_and_lemma_sharers(tree):
    pool = select_pool(list(tree.values()), [tree["dog"]])
    assert names(pool) == ["animal", "cat", "cat-o'-nine-tails", "entity", "hammer", "poodle", "tool"]


def test_pool_exclude_hierarchy(tree):
    pool = select_pool(list(tree.values()), [tree["dog"]], exclude_hierarchy=True)
    # ancestors (animal, entity) and descendants (poodle) of the reference go too
    assert names(pool) == ["cat", "cat-o'-nine-tails", "hammer", "tool"]


def test_pool_root(tree):
    pool = select_pool(list(tree.values()), [tree["dog"]], root=tree["tool"])
    assert names(pool) == ["cat-o'-nine-tails", "hammer", "tool"]


def row(i, wnid, lemmas):
    return ClassRow(i, wnid, lemmas[0], tuple(lemmas), "d", f"{lemmas[0]} which is d", "noun.artifact")


def test_unique_lemmas_says_why_a_class_is_dropped(caplog: pytest.LogCaptureFixture):
    import logging

    caplog.set_level(logging.INFO)
    rows = [ClassRow(0, "n00000001", "a", (), "", "", ""), ClassRow(1, "n00000002", "b", ("x",), "", "", ""),
            ClassRow(2, "n00000003", "c", ("x",), "", "", "")]
    assert make_unique_lemmas(rows) == []
    text = caplog.text
    assert "n00000001 (a): it has no lemma" in text and "n00000002 (b): every lemma is shared" in text


def test_unique_lemmas_keeps_only_single_class_lemmas_and_drops_empty():
    rows = [row(0, "n00000001", ["cat", "true cat"]), row(1, "n00000002", ["cat", "whip"]),
            row(2, "n00000003", ["cat"]), row(3, "n00000004", ["hammer"])]
    out = make_unique_lemmas(rows)
    assert [(r.index, r.wnid, r.lemmas) for r in out] == [
        (0, "n00000001", ("true cat",)), (1, "n00000002", ("whip",)), (2, "n00000004", ("hammer",))]


def test_classes_tsv_round_trip(tmp_path: Path, wordnet):
    rows = rows_from_wnids(["n01440764", "n03472535"])
    assert rows[1].lemmas == ("gym shoe", "sneaker", "tennis shoe")
    assert rows[0].query == "tench which is " + wordnet.synset("tench.n.01").definition()
    path = tmp_path / "classes.tsv"
    write_classes(path, rows)
    assert path.read_text().splitlines()[0] == "index\twnid\tname\tlemmas\tdefinition\tquery\tlexname"
    assert read_classes(path) == rows


def test_classes_tsv_round_trips_wordnet_glosses_with_double_spaces(tmp_path: Path, wordnet):
    # WordNet 3.0's gloss of "exposure" holds two spaces in a row: the row in memory is the row read back
    synset = next(s for s in wordnet.synsets("exposure", "n") if "  " in s.definition())
    rows = rows_from_wnids([synset_to_wnid(synset)])
    assert "  " not in rows[0].definition and "  " not in rows[0].query
    write_classes(tmp_path / "classes.tsv", rows)
    assert read_classes(tmp_path / "classes.tsv") == rows


def test_classes_tsv_round_trips_hostile_but_tab_free_values(tmp_path: Path):
    rows = [ClassRow(0, "n01440764", "<img src=x onerror=alert(1)> $x_1$ =SUM(A1)", ("a \"b\"", "c'd", "e\\f"),
                     "a 'quoted' \"gloss\" with \\ and ; and ,", "=cmd|' /C calc'!A0", "noun.animal")]
    write_classes(tmp_path / "classes.tsv", rows)
    assert read_classes(tmp_path / "classes.tsv", check_wordnet=False) == rows


@pytest.mark.parametrize(("field", "value", "column", "what"), [
    ("name", "two\tcolumns", "name", "a tab"),
    ("definition", "first line\nsecond", "definition", "a newline"),
    ("query", "old mac\rline", "query", "a carriage return"),
    ("lexname", "noun\0x", "lexname", "a NUL byte"),
    ("lemmas", ("ok", "in\ttab"), "lemmas", "a tab"),
    ("lemmas", ("a|b",), "lemma", "'|'"),
])
def test_write_classes_refuses_values_that_would_shift_columns(tmp_path: Path, field, value, column, what):
    import dataclasses

    row = dataclasses.replace(ClassRow(0, "n01440764", "tench", ("tench",), "a fish", "tench which is a fish",
                                       "noun.animal"), **{field: value})
    path = tmp_path / "classes.tsv"
    with pytest.raises(InputError, match=f"^{column} .*contains {re.escape(what)}") as err:
        write_classes(path, [row])
    if isinstance(value, tuple):  # the message names the lemma ('|') or the whole lemmas field (a tab)
        value = value[0] if column == "lemma" else "|".join(value)
    assert repr(value) in str(err.value)
    assert list(tmp_path.iterdir()) == []  # refused before the file (or a temporary one) was written


_HEADER = "index\twnid\tname\tlemmas\tdefinition\tquery\tlexname\n"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "empty file"),
        ("index\twnid\n0\tn01440764\n", "missing column"),
        ("index\twnid\tname\tlemmas\tdefinition\tquery\tlexname\n0\tbad\tx\tx\tx\tx\tx\n", ":2: malformed wnid"),
        ("index\twnid\tname\tlemmas\tdefinition\tquery\tlexname\n0\tn01440764\n", ":2: expected 7"),
        ("index\twnid\tname\tlemmas\tdefinition\tquery\tlexname\n", "no classes"),
        (_HEADER + "0\tn01440764\ttench\ttench\td\tq\tnoun.animal\n1\tn01440765\tfake\tfake\td\tq\tx\n",
         ":3: n01440765 is not a WordNet 3.0 noun synset"),
        (_HEADER + "0\tn01440764\ttench\ttench| \td\tq\tnoun.animal\n", ":2: class n01440764: lemma ' ' is empty"),
        (_HEADER + "0\tn01440764\tt\tt\td\tq\tx\n1\tn01440764\tt\tt\td\tq\tx\n", ":3: duplicate wnid"),
    ],
)
def test_read_classes_errors_name_file_and_line(tmp_path: Path, content, message):
    path = tmp_path / "c.tsv"
    path.write_text(content)
    with pytest.raises(InputError, match=message) as err:
        read_classes(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "empty"),
        ("# only a comment\n\n", "empty"),
        ("n01440764\nn99999999\n", ":2: unknown wnid n99999999"),
        ("n01440764\ntench\n", ":2: malformed line"),
        ("n01440764\nn01440764\n", ":2: duplicate wnid"),
    ],
)
def test_wnid_file_errors_name_file_and_line(tmp_path: Path, wordnet, content, message):
    path = tmp_path / "w.txt"
    path.write_text(content)
    with pytest.raises(InputError, match=message) as err:
        read_wnid_file(path)
    assert str(path) in str(err.value)


def test_unknown_reference_names_the_choices():
    with pytest.raises(InputError, match="imagenet-1k"):
        reference_wnids("imagenet-22k")


def test_imagenet_1k_from_timm(wordnet):
    wnids = imagenet_1k_wnids()
    assert len(wnids) == 1000 and wnids[0] == "n01440764" and wnids[-1] == "n15075141"


def test_fashion_mnist_reference_is_clothing(wordnet):
    from imagenot.wordnet.synsets import wnid_to_synset

    clothing = wordnet.synset("clothing.n.01")
    footwear = wordnet.synset("footwear.n.02")
    synsets = [wnid_to_synset(w) for w in FASHION_MNIST_WNIDS]
    assert len(set(synsets)) == 10
    assert "sneaker" in synset_lemmas(synsets[7])
    from imagenot.wordnet.synsets import ancestors

    garments = [s for s in synsets if clothing in ancestors(s) or footwear in ancestors(s)]
    assert len(garments) >= 8  # the bag is a container, the rest are garments or footwear


def test_imagenet_pool_is_disjoint_and_holds_the_released_list(shared_reference, wordnet):
    ref = imagenet_1k_wnids()
    pool = build_pool(ref)
    wnids = {r.wnid for r in pool}
    assert not wnids & set(ref)
    ref_lemmas = {lemma for w in ref for lemma in synset_lemmas(__import__(
        "imagenot.wordnet.synsets", fromlist=["x"]).wnid_to_synset(w))}
    assert not any(set(r.lemmas) & ref_lemmas for r in pool)
    released = read_wnid_file(shared_reference / "imagenot_classes.txt")
    assert set(released) <= wnids
    assert 70_000 < len(pool) < 82_115


def test_check_released_list_matches_published_properties(shared_reference, wordnet):
    report = check_class_set(read_wnid_file(shared_reference / "imagenot_classes.txt"), imagenet_1k_wnids())
    assert report["count"] == 1000
    assert report["wnid_overlaps"] == [] and report["lemma_overlaps"] == {}
    assert len(report["ancestors_of_reference"]) == 11
    assert len(report["descendants_of_reference"]) == 8
    assert len(report["pairs_inside"]) == 45
    assert report["classes_without_unique_lemma"] == []
    assert report["under_physical_entity"] == 999
    assert report["lexnames"] == {"artifact": 575, "food": 104, "animal": 95, "plant": 89, "object": 54,
                                  "body": 42, "substance": 32, "person": 4, "communication": 3,
                                  "Tops": 1, "group": 1}


def test_pool_root_option_keeps_hyponyms_only(wordnet):
    rows = build_pool(list(FASHION_MNIST_WNIDS), PoolOptions(root="footwear.n.02"))
    wnids = {r.wnid for r in rows}
    assert synset_to_wnid(wordnet.synset("footwear.n.02")) in wnids
    assert "n03472535" not in wnids  # sneaker is a reference class
    assert all("boot" not in r.lemmas for r in rows)
