"""The local and Ray engines give the same rows on the same input, row for row."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from .mine_helpers import run_cli, write_parquet

ray = pytest.importorskip("ray")

CAPTIONS = ["A dog on the beach.", "hot dog", "my cat and my dog", "I love New York", "house cat", "the sea",
            "frankfurter!", "nothing here", "dog-friendly", "Dog"]


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    for i in range(3):
        write_parquet(tmp_path / "corpus" / f"part-{i}.parquet", CAPTIONS * (i + 1),
                      ids=[f"{i}-{j}" for j in range(len(CAPTIONS) * (i + 1))])
    import pyarrow as pa

    n = 60  # a file of 3 row groups, split into parts by --part-rows 20
    big = pa.table({"SAMPLE_ID": [f"big-{j}" for j in range(n)], "URL": [f"https://x/big/{j}" for j in range(n)],
                    "TEXT": [CAPTIONS[j % len(CAPTIONS)] for j in range(n)], "NSFW": ["UNLIKELY"] * n})
    pq.write_table(big, tmp_path / "corpus" / "part-big.parquet", row_group_size=20)
    bad = tmp_path / "corpus" / "part-9.parquet"
    bad.write_bytes(b"PAR1 not really parquet")
    return tmp_path / "corpus"


def test_local_and_ray_agree_row_for_row(tmp_path: Path, corpus: Path, animal_classes: Path) -> None:
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    outs = {}
    for engine in ("local", "ray"):
        out = tmp_path / engine
        run_cli(["mine", "--corpus", str(corpus), "--classes", str(animal_classes), "--out", str(out),
                 "--no-embed", "--engine", engine, "--workers", "2", "--part-rows", "20"])
        outs[engine] = out
    try:
        assert sorted(p.name for p in (outs["ray"] / "matches").iterdir()) == sorted(
            p.name for p in (outs["local"] / "matches").iterdir())
        for shard in ("part-0", "part-1", "part-2", "part-big@0000", "part-big@0001", "part-big@0002"):
            a = pq.read_table(outs["local"] / "matches" / f"{shard}.parquet").replace_schema_metadata(None)
            b = pq.read_table(outs["ray"] / "matches" / f"{shard}.parquet").replace_schema_metadata(None)
            assert a.num_rows > 0 and a.equals(b), shard
        assert pq.read_table(outs["local"] / "selected.parquet").equals(pq.read_table(outs["ray"] / "selected.parquet"))
        from imagenot.fileio import read_json

        sl, sr = read_json(outs["local"] / "mine_stats.json"), read_json(outs["ray"] / "mine_stats.json")
        for key in ("rows_read", "matched", "multi_class_dropped", "per_class"):
            assert sl[key] == sr[key], key
        assert [u["shard"] for u in sr["unreadable_shards"]] == ["part-9"]
    finally:
        ray.shutdown()
