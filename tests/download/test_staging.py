"""A fetch shard torn by a killed run or by a second `download` into the same folder is detected and fetched
again, and `--force` never reuses staging: every rerun finishes. img2dataset is replaced by a stand-in that
writes its shard format (one parquet per shard, `<shard>_stats.json` last) from local image bytes."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import imagenot.download.pipeline as pipeline
from imagenot.cli import main
from imagenot.fileio import read_json

from .conftest import encode, make_image, write_selection

N, SHARD = 12, 4


class FakeImg2dataset:
    """img2dataset's incremental mode over an input parquet: shards with a stats file are skipped."""

    def __init__(self, images: dict[str, bytes], tear: int | None = None) -> None:
        self.images = images
        self.tear = tear  # this shard is left torn, with its stats, as a concurrent writer leaves it
        self.fetched: list[int] = []

    def __call__(self, input_parquet: Path, fetch_dir: Path, *, shard_size: int, **_: object) -> float:
        fetch_dir.mkdir(parents=True, exist_ok=True)
        rows = pq.read_table(input_parquet).to_pylist()
        for shard in range((len(rows) + shard_size - 1) // shard_size):
            name = f"{shard:05d}"
            if (fetch_dir / f"{name}_stats.json").exists():
                continue
            part = rows[shard * shard_size:(shard + 1) * shard_size]
            table = pa.table({"row_id": [r["row_id"] for r in part], "status": ["success"] * len(part),
                              "error_message": [None] * len(part), "jpg": [self.images[r["url"]] for r in part]},
                             schema=pa.schema([("row_id", pa.int64()), ("status", pa.string()),
                                               ("error_message", pa.string()), ("jpg", pa.binary())]))
            pq.write_table(table, fetch_dir / f"{name}.parquet")
            if shard == self.tear:
                raw = (fetch_dir / f"{name}.parquet").read_bytes()
                (fetch_dir / f"{name}.parquet").write_bytes(raw[: len(raw) // 2])
            (fetch_dir / f"{name}_stats.json").write_text(json.dumps({"count": len(part)}))
            self.fetched.append(shard)
        if self.tear is not None:
            raise RuntimeError("the other process crashed")
        return 0.0


@pytest.fixture
def selection(tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    urls = [f"http://images.invalid/{i}.jpg" for i in range(N)]
    images = {u: encode(make_image(900 + i), "JPEG") for i, u in enumerate(urls)}
    return write_selection(tmp_path / "mine", urls, [i % 3 for i in range(N)]), images


def _argv(matches: Path, out: Path, *extra: str) -> list[str]:
    return ["download", "--matches", str(matches), "--out", str(out), "--image-size", "32", "--min-images-per-class",
            "2", "--fetch-shard-size", str(SHARD), "--keep-raw", *extra]


def test_a_torn_fetch_shard_is_fetched_again(selection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    matches, images = selection
    out = tmp_path / "ds"
    crashed = FakeImg2dataset(images, tear=1)
    monkeypatch.setattr(pipeline, "run_img2dataset", crashed)
    with pytest.raises(RuntimeError):
        main(_argv(matches, out))
    assert (out / "_work" / "fetch" / "00001_stats.json").is_file()  # looks finished, is torn
    rerun = FakeImg2dataset(images)
    monkeypatch.setattr(pipeline, "run_img2dataset", rerun)
    assert main(_argv(matches, out)) == 0
    assert rerun.fetched == [1]  # only the torn shard: the intact ones are kept
    card = read_json(out / "dataset.json")
    assert card["counts"]["train"] + card["counts"]["val"] == N


@pytest.mark.parametrize("damage", ["stats_says_more_rows", "stats_unreadable", "parquet_missing"])
def test_other_inconsistent_fetch_shards_are_fetched_again(damage: str, selection, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    matches, images = selection
    out = tmp_path / "ds"
    first = FakeImg2dataset(images)
    monkeypatch.setattr(pipeline, "run_img2dataset", first)
    monkeypatch.setattr(pipeline, "_fetch_and_clean", _fetch_only(pipeline._fetch_and_clean))
    assert main(_argv(matches, out)) == 130
    monkeypatch.undo()
    fetch = out / "_work" / "fetch"
    if damage == "stats_says_more_rows":
        (fetch / "00002_stats.json").write_text(json.dumps({"count": SHARD + 3}))
    elif damage == "stats_unreadable":
        (fetch / "00002_stats.json").write_text("{")
    else:
        (fetch / "00002.parquet").unlink()
    rerun = FakeImg2dataset(images)
    monkeypatch.setattr(pipeline, "run_img2dataset", rerun)
    assert main(_argv(matches, out)) == 0
    assert rerun.fetched == [2]


def _fetch_only(real):
    """Stop (as Ctrl-C would) right after img2dataset, before any shard is cleaned."""
    import imagenot.download.pipeline as p

    def wrapped(*args, **kwargs):
        real_clean = p.pool_map

        def interrupt(*a, **k):
            raise KeyboardInterrupt

        p.pool_map = interrupt
        try:
            return real(*args, **kwargs)
        finally:
            p.pool_map = real_clean

    return wrapped


def test_force_starts_clean(selection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    matches, images = selection
    out = tmp_path / "ds"
    monkeypatch.setattr(pipeline, "run_img2dataset", FakeImg2dataset(images))
    assert main(_argv(matches, out)) == 0
    # staging that looks fine but holds another image (what no check can see): --force does not reuse it
    fetch = out / "_work" / "fetch"
    table = pq.read_table(fetch / "00000.parquet")
    wrong = table.set_column(3, "jpg", pa.array([encode(make_image(1))] * table.num_rows, pa.binary()))
    pq.write_table(wrong, fetch / "00000.parquet")
    (out / "_work" / "clean" / "00000.parquet").unlink()
    (out / "stats" / "fetch-00000.json").unlink()
    again = FakeImg2dataset(images)
    monkeypatch.setattr(pipeline, "run_img2dataset", again)
    assert main(_argv(matches, out, "--force")) == 0
    assert again.fetched == [0, 1, 2]  # everything fetched again
    card = read_json(out / "dataset.json")
    assert card["counts"]["train"] + card["counts"]["val"] == N
