"""The local engine: every worker count and both places a shard can be finished give the same files."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from imagenot.mining.corpus import Columns, list_shards
from imagenot.mining.matcher import LemmaMatcher
from imagenot.mining.passes import PassSpec, run_local
from imagenot.mining.scan import ScanContext
from imagenot.wordnet.classes import make_unique_lemmas

from .mine_helpers import ANIMALS, make_classes, write_parquet

CAPTIONS = ["A dog on the beach.", "hot dog", "my cat and my dog", "I love New York", "house cat", "the sea",
            "frankfurter!", "nothing here", "dog-friendly", "Dog", "a cat by the sea"]


def _spec(corpus: Path, out: Path, rank=None) -> PassSpec:
    classes = make_unique_lemmas(make_classes(ANIMALS))
    ctx = ScanContext(LemmaMatcher([c.lemmas for c in classes]), Columns(), keep_multi=rank is not None)
    return PassSpec(list_shards(str(corpus)), classes, ctx, out, "fp", rank=rank)


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    for i in range(5):
        write_parquet(tmp_path / "corpus" / f"part-{i}.parquet", CAPTIONS * (i + 1),
                      ids=[f"{i}-{j}" for j in range(len(CAPTIONS) * (i + 1))])
    (tmp_path / "corpus" / "part-7.parquet").write_bytes(b"PAR1 not really parquet")
    return tmp_path / "corpus"


def _outputs(out: Path) -> dict[str, object]:
    return {p.name: pq.read_table(p) for p in sorted(out.glob("*.parquet"))}


def _first_sense(cls: int, lemma: str) -> int:  # module level: picklable, goes to the workers
    return cls


@pytest.mark.parametrize("rank", [None, _first_sense, lambda cls, lemma: cls], ids=["drop", "rank", "unpicklable"])
def test_one_two_and_three_workers_write_the_same_shards(tmp_path: Path, corpus: Path, rank) -> None:
    """Workers finish their own shards (and this process takes shards too) unless `rank` cannot travel, in
    which case this process finishes every shard: the files and the counters are the same either way."""
    runs = {}
    for workers in (1, 2, 3):
        out = tmp_path / f"w{workers}"
        res = run_local(_spec(corpus, out, rank), workers)
        assert [u["shard"] for u in res.unreadable] == ["part-7"]
        runs[workers] = (_outputs(out), {k: {c: v for c, v in s.items() if not c.startswith("seconds")}
                                         for k, s in res.shard_stats.items()})
    files, stats = runs[1]
    assert sorted(files) == [f"part-{i}.parquet" for i in range(5)]
    assert sum(t.num_rows for t in files.values()) > 0
    for workers in (2, 3):
        assert runs[workers][1] == stats
        assert runs[workers][0].keys() == files.keys()
        for name, table in files.items():
            assert runs[workers][0][name].equals(table), (workers, name)
    if rank is not None:  # captions hitting two classes were given to one by the ranking, not dropped
        assert sum(s["multi_class_resolved"] for s in stats.values()) > 0
