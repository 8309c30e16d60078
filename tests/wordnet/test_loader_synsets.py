import gzip
from pathlib import Path

import pytest

from imagenot.wordnet import loader
from imagenot.wordnet.synsets import (
    UnknownWnidError,
    ancestors,
    descendants,
    query_text,
    synset_lemmas,
    synset_name,
    synset_to_wnid,
    wnid_to_synset,
)


def test_wnid_round_trips(wordnet):
    tench = wnid_to_synset("n01440764")
    assert tench.name() == "tench.n.01"
    assert wnid_to_synset("n02084071").name() == "dog.n.01"
    for name in ("tench.n.01", "dog.n.01", "minnow.n.01", "physical_entity.n.01"):
        s = wordnet.synset(name)
        assert wnid_to_synset(synset_to_wnid(s)) == s
    assert synset_to_wnid(tench) == "n01440764"


def test_names_lemmas_query(wordnet):
    s = wordnet.synset("gym_shoe.n.01")
    assert synset_name(s) == "gym shoe"
    assert synset_lemmas(s) == ("gym shoe", "sneaker", "tennis shoe")
    assert query_text(wordnet.synset("minnow.n.01")).startswith("minnow which is ")
    assert s.lexname() == "noun.artifact"


def test_hierarchy_helpers(wordnet):
    dog = wordnet.synset("dog.n.01")
    assert wordnet.synset("canine.n.02") in ancestors(dog)
    assert wordnet.synset("physical_entity.n.01") in ancestors(dog)
    assert dog not in ancestors(dog)
    assert wordnet.synset("poodle.n.01") in descendants(dog)


@pytest.mark.parametrize("bad", ["x01440764", "n0144076", "n99999999", "", "tench"])
def test_bad_wnids_are_named(wordnet, bad):
    with pytest.raises(UnknownWnidError, match="wnid|synset"):
        wnid_to_synset(bad)


def test_lexnames_rebuilt_from_man_page():
    if not loader.DEBIAN_LEXNAMES_MAN.exists():
        pytest.skip("wordnet-base not installed")
    rows = loader.parse_lexnames_man(gzip.decompress(loader.DEBIAN_LEXNAMES_MAN.read_bytes()).decode())
    assert len(rows) == 45
    assert rows[0] == ("00", "adj.all", 3)
    assert ("03", "noun.Tops", 1) in rows
    assert ("18", "noun.person", 1) in rows  # the man page pads this one with spaces before the tab
    assert rows[-1] == ("44", "adj.ppl", 3)


def test_build_from_debian_copy(tmp_path: Path):
    if not loader.DEBIAN_WORDNET_DIR.exists():
        pytest.skip("wordnet-base not installed")
    root = loader.build_from_debian(tmp_path / "nltk")
    target = root / "corpora" / "wordnet"
    assert (target / "data.noun").stat().st_size == (loader.DEBIAN_WORDNET_DIR / "data.noun").stat().st_size
    lines = (target / "lexnames").read_text().splitlines()
    assert len(lines) == 45 and lines[5] == "05\tnoun.animal\t1"
    assert not list(target.parent.glob(".*building*"))  # no leftover temporary folder


def test_build_from_incomplete_folder_says_how_to_install(tmp_path: Path):
    (tmp_path / "wn").mkdir()
    with pytest.raises(loader.WordNetUnavailable, match="apt-get install wordnet-base"):
        loader.build_from_debian(tmp_path / "out", wordnet_dir=tmp_path / "wn")
