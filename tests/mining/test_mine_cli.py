"""`imagenot mine --no-embed` end to end: exact LAIONet matches, outputs, stats, resume, config rerun."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from imagenot.fileio import read_json

from .mine_helpers import run_cli, write_parquet

CAPTIONS = [
    "A dog on the beach.",  # dog
    "dog-friendly café",  # dog
    "Dog food",  # nothing: case
    "hotdog stand",  # nothing: inside a word
    "a hot dog with mustard",  # hot dog + dog -> two classes, dropped
    "my cat and my dog",  # two classes, dropped
    "I ♥ New York!",  # New York
    "new york",  # nothing: case
    "house cat (indoor)",  # cat ("house cat" and "cat": one class)
    "frankfurter",  # hot dog
    "the sea, the sea",  # sea
    "seashell",  # nothing
    "日本の dog",  # dog: non-ASCII text around the lemma
]
EXPECTED = {0: ("n00001740", "dog"), 1: ("n00001740", "dog"), 6: ("n00002452", "New York"),
            8: ("n00001930", "house cat"), 9: ("n00002137", "frankfurter"), 10: ("n00002684", "sea"),
            12: ("n00001740", "dog")}


def test_no_embed_yields_exactly_the_laionet_matches(tmp_path: Path, animal_classes: Path) -> None:
    corpus = write_parquet(tmp_path / "corpus" / "part-0.parquet", CAPTIONS)
    out = tmp_path / "out"
    assert run_cli(["mine", "--corpus", str(corpus), "--classes", str(animal_classes), "--out", str(out),
                    "--no-embed", "--workers", "1"]) == 0
    rows = pq.read_table(out / "matches" / "part-0.parquet").to_pylist()
    got = {int(r["source_id"].split("-")[-1]): (r["wnid"], r["lemma"]) for r in rows}
    assert got == EXPECTED
    assert all(r["similarity"] is None for r in rows)
    assert rows[0]["url"] == "https://example.org/part-0/0.jpg" and rows[0]["caption"] == CAPTIONS[0]
    stats = read_json(out / "mine_stats.json")
    assert stats["rows_read"] == len(CAPTIONS)
    assert stats["matched"] == len(EXPECTED)
    assert stats["multi_class_dropped"] == 2
    assert stats["unmatched"] == len(CAPTIONS) - len(EXPECTED) - 2
    assert stats["per_class"]["n00001740"]["matched"] == 3
    # selection ran with defaults: every class with a match, labels = index in the final classes.tsv
    sel = pq.read_table(out / "selected.parquet")
    assert sel.num_rows == len(EXPECTED)
    classes = (out / "classes.tsv").read_text().splitlines()
    assert len(classes) == 1 + 5
    assert json.loads((out / "config.json").read_text())["embed"] is False
    assert (out / "manifest.json").is_file()
    assert not list(out.rglob("*.tmp"))


def test_rerun_skips_finished_shards_and_redoes_changed_ones(tmp_path: Path, animal_classes: Path) -> None:
    for i in range(3):
        write_parquet(tmp_path / "corpus" / f"part-{i}.parquet", CAPTIONS, ids=[f"{i}-{j}" for j in range(13)])
    out = tmp_path / "out"
    argv = ["mine", "--corpus", str(tmp_path / "corpus"), "--classes", str(animal_classes), "--out", str(out),
            "--no-embed", "--workers", "2", "--no-select"]
    run_cli(argv)
    first = {p.name: p.stat().st_mtime_ns for p in (out / "matches").iterdir()}
    assert len(first) == 3
    (out / "matches" / "part-1.parquet").unlink()  # as if the run had been killed before this shard
    run_cli(argv)
    stats = read_json(out / "mine_stats.json")
    assert stats["shards"] == {"processed": 1, "skipped_finished": 2, "unreadable": 0}
    assert stats["rows_read"] == 3 * len(CAPTIONS)  # skipped shards keep their counts
    again = {p.name: p.stat().st_mtime_ns for p in (out / "matches").iterdir()}
    assert again["part-0.parquet"] == first["part-0.parquet"]
    # a different match rule changes the fingerprint: every shard is redone
    run_cli(argv + ["--match", "relaxed"])
    assert read_json(out / "mine_stats.json")["shards"]["processed"] == 3


def test_config_json_reruns_the_same_command(tmp_path: Path, animal_classes: Path) -> None:
    corpus = write_parquet(tmp_path / "c.parquet", CAPTIONS)
    out = tmp_path / "out"
    run_cli(["mine", "--corpus", str(corpus), "--classes", str(animal_classes), "--out", str(out), "--no-embed",
             "--workers", "1"])
    before = pq.read_table(out / "selected.parquet")
    (out / "selected.parquet").unlink()
    run_cli(["mine", "--config", str(out / "config.json")])
    assert pq.read_table(out / "selected.parquet").equals(before)


def test_select_subcommand_rechooses_without_remining(tmp_path: Path, animal_classes: Path) -> None:
    corpus = write_parquet(tmp_path / "c.parquet", CAPTIONS * 3, ids=[str(i) for i in range(39)])
    out = tmp_path / "out"
    run_cli(["mine", "--corpus", str(corpus), "--classes", str(animal_classes), "--out", str(out), "--no-embed",
             "--workers", "1", "--no-select"])
    assert not (out / "selected.parquet").exists()
    run_cli(["select", "--mine-dir", str(out), "--num-classes", "2", "--min-matches-per-class", "3"])
    sel = pq.read_table(out / "selected.parquet")
    assert sorted(set(sel["wnid"].to_pylist())) == ["n00001740", "n00001930"]  # dog (9), then the 3-way tie
    assert read_json(out / "selection.json")["classes"] == 2
    assert (out / "select_config.json").is_file()


def test_user_errors_are_clear(tmp_path: Path, animal_classes: Path) -> None:
    corpus = write_parquet(tmp_path / "c.parquet", ["a dog"])
    with pytest.raises(SystemExit, match=r"missing column.s. caption \(--text-col\) for schema laion400m-or-laion2b-en; "
                       "found SAMPLE_ID, URL, TEXT, NSFW"):
        run_cli(["mine", "--corpus", str(corpus), "--classes", str(animal_classes), "--out", str(tmp_path / "o"),
                 "--no-embed", "--text-col", "caption"])
    with pytest.raises(SystemExit, match="--multi best needs caption embeddings"):
        run_cli(["mine", "--corpus", str(corpus), "--classes", str(animal_classes), "--out", str(tmp_path / "o"),
                 "--no-embed", "--multi", "best"])
    with pytest.raises(SystemExit, match="no such file"):
        run_cli(["mine", "--corpus", str(tmp_path / "nope.parquet"), "--classes", str(animal_classes),
                 "--out", str(tmp_path / "o"), "--no-embed"])


def test_a_large_shard_is_split_into_row_group_parts_for_the_workers(tmp_path: Path, animal_classes: Path) -> None:
    import pyarrow as pa

    n = 4000
    caps = [CAPTIONS[i % len(CAPTIONS)] for i in range(n)]
    table = pa.table({"URL": [f"https://x/{i}.jpg" for i in range(n)], "TEXT": caps, "NSFW": ["UNLIKELY"] * n})
    corpus = tmp_path / "big.parquet"
    pq.write_table(table, corpus, row_group_size=500)  # no id column: ids are big:<row>
    outs = []
    for workers in ("1", "2"):
        out = tmp_path / f"w{workers}"
        run_cli(["mine", "--corpus", str(corpus), "--classes", str(animal_classes), "--out", str(out),
                 "--no-embed", "--workers", workers, "--part-rows", "1000"])
        outs.append(out)
    parts = sorted(p.name for p in (outs[0] / "matches").iterdir())
    assert parts == [f"big@{k:04d}.parquet" for k in range(4)]
    assert sorted(p.name for p in (outs[1] / "matches").iterdir()) == parts
    a, b = (pq.read_table(o / "selected.parquet") for o in outs)
    assert a.equals(b) and a.num_rows == n // len(CAPTIONS) * len(EXPECTED) + sum(
        1 for i in range(n % len(CAPTIONS)) if i in EXPECTED)
    ids = set(a["source_id"].to_pylist())
    assert "big:0" in ids and f"big:{n - len(CAPTIONS) + 12}" in ids  # row numbers of the whole file
    st = read_json(outs[1] / "mine_stats.json")
    assert st["rows_read"] == n and st["shards"]["processed"] == 4
