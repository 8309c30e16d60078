"""A full disk in `mine` is one clear error naming the folder (exit 1, as in every stage), nothing partial is
left, and the rerun resumes: the match writer (pyarrow) and the embedding store (its part files) both run out."""

from __future__ import annotations

import errno
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from imagenot.cli import main
from imagenot.errors import ImagenotError
from imagenot.fileio import read_json

from .mine_helpers import write_parquet


def test_disk_full_while_writing_matches_exits_1_naming_the_folder_and_the_rerun_resumes(
        tmp_path: Path, animal_classes: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    for i in range(3):
        write_parquet(tmp_path / "corpus" / f"part-{i}.parquet", ["a dog", "a cat", "the sea"],
                      ids=[f"{i}-{j}" for j in range(3)])
    out = tmp_path / "out"
    argv = ["mine", "--corpus", str(tmp_path / "corpus"), "--classes", str(animal_classes), "--out", str(out),
            "--no-embed", "--workers", "1"]
    real = pq.write_table
    written: list[str] = []

    def full(table, where, *args, **kwargs):
        if "part-1" in Path(str(where)).name:
            Path(str(where)).write_bytes(b"PAR1 half")  # what a full disk leaves in the temporary file
            raise OSError(errno.ENOSPC, "Error writing bytes to file. Detail: [errno 28] No space left on device")
        written.append(Path(str(where)).name)
        return real(table, where, *args, **kwargs)

    monkeypatch.setattr(pq, "write_table", full)
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert f"imagenot mine: error: no space left on the device holding {out}" in err
    assert "rerun the same command" in err and "Traceback" not in err
    assert sorted(p.name for p in (out / "matches").iterdir()) == ["part-0.parquet"]  # no partial file
    assert not (out / "selected.parquet").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["classes.tsv", "corpus", "out"]  # nothing elsewhere
    monkeypatch.undo()
    assert main(argv) == 0
    stats = read_json(out / "mine_stats.json")
    assert stats["shards"] == {"processed": 2, "skipped_finished": 1, "unreadable": 0}
    assert stats["matched"] == 9 and pq.read_table(out / "selected.parquet").num_rows == 9


def test_a_full_embedding_store_is_a_full_disk_not_a_broken_store(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A part file that cannot be written (ENOSPC) is a full disk (mine exits 1 with the disk-full message),
    leaves no partial part behind, and the store keeps the parts written before."""
    from imagenot.errors import disk_full_is_an_error
    from imagenot.mining import store as store_mod
    from imagenot.mining.store import EmbeddingStore

    store = EmbeddingStore(tmp_path / "emb", "enc", 64)
    store.put(["a dog"], np.ones((1, 64), np.float32))
    store.flush()
    parts_before = sorted(p.name for p in store.path.iterdir())

    def full(fh, arr, allow_pickle=False):  # noqa: ARG001 - np.save's signature
        fh.write(b"\x93NUMPY half")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store_mod.np, "save", full)
    texts = [f"caption {i}" for i in range(500)]
    store.put(texts, np.ones((500, 64), np.float32))
    with pytest.raises(OSError) as err:
        store.flush()
    assert err.value.errno == errno.ENOSPC
    with pytest.raises(ImagenotError, match=f"no space left on the device holding {tmp_path}"), \
            disk_full_is_an_error(tmp_path):
        store.flush()
    assert sorted(p.name for p in store.path.iterdir()) == parts_before  # no partial or hidden part left
    monkeypatch.undo()
    found, _ = EmbeddingStore(tmp_path / "emb", "enc", 64).get(["a dog", "caption 1"])
    assert found.tolist() == [True, False]
