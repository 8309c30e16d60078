"""The download stage's cases of the fault-and-bad-input catalogue (issue 15), each through the CLI.

Every case asserts the exit status, the message, and that nothing was written or lost. The dataset folders
are small (24 images of 32 px in 4-image shards) and built once per module.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from imagenot.cli import main
from imagenot.download import DownloadConfig, run_download
from imagenot.fileio import read_json, sha256_file

from .conftest import make_image, write_selection


def _files(folder: Path, n: int, seed: int) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    urls = []
    for i in range(n):
        p = folder / f"{seed}-{i}.png"
        make_image(seed + i).save(p)
        urls.append(p.as_uri())
    return urls


def _selection(root: Path, name: str, seed: int, n: int = 24) -> Path:
    urls = _files(root / f"files-{name}", n, seed)
    labels = [i % 3 for i in range(n)]
    splits = ["val" if i % 6 == 0 else "train" for i in range(n)]
    return write_selection(root / name, urls, labels, splits)


def _args(matches: Path, out: Path, *extra: str) -> list[str]:
    return ["download", "--matches", str(matches), "--out", str(out), "--allow-local", "--image-size", "32",
            "--min-images-per-class", "3", "--shard-size", "4", *extra]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("faults")
    matches = _selection(root, "mine", 5000)
    assert main(_args(matches, root / "ds")) == 0
    return root, matches


def _snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): sha256_file(p) for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture()
def dataset(built, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the complete dataset folder, for one test to damage."""
    monkeypatch.setenv("IMAGENOT_CACHE", str(tmp_path / "cache"))
    copy = tmp_path / "ds"
    shutil.copytree(built[0] / "ds", copy)
    return copy


def _damage(folder: Path, kind: str) -> str:
    """Damage the folder as a killed download or a careless copy would; return what the error must say."""
    card = read_json(folder / "dataset.json")
    victim = card["splits"]["train"]["shards"][1]["file"]
    path = folder / victim
    if kind == "no_card":
        (folder / "dataset.json").unlink()
        return "no dataset.json"
    if kind == "missing_shard":
        path.unlink()
        return f"{victim} is missing"
    if kind == "truncated_shard":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
        return f"{victim} has {len(data) // 2} bytes"
    if kind == "replaced_shard":  # same size, other content (the mtime changes, so the hash is checked)
        path.write_bytes(_flipped(path))
        return f"{victim} differs from the sha256"
    raise AssertionError(kind)


def _flipped(path: Path) -> bytes:
    """The shard's bytes with 40 bytes inside its first image inverted (the tar stays readable)."""
    import tarfile

    with tarfile.open(path) as tar:
        member = next(m for m in tar if m.name.endswith((".jpg", ".png")))
    data = path.read_bytes()
    at = member.offset_data + member.size // 2
    return data[:at] + bytes(b ^ 0xFF for b in data[at:at + 40]) + data[at + 40:]


DAMAGE = ["no_card", "missing_shard", "truncated_shard", "replaced_shard"]


@pytest.mark.parametrize("kind", DAMAGE)
def test_incomplete_folder_is_refused_by_datasets_export_and_train(dataset: Path, kind: str, tmp_path: Path,
                                                                   capsys) -> None:
    expected = _damage(dataset, kind)
    before = _snapshot(dataset)
    for argv in (["datasets", "--show", f"wds:{dataset}"],
                 ["export", "--dataset", str(dataset), "--out", str(tmp_path / "exported")],
                 ["train", "--dataset", f"wds:{dataset}", "--model", "resnet_s32", "--out", str(tmp_path / "run"),
                  "--epochs", "1", "--device", "cpu"]):
        rc = main(argv)
        err = capsys.readouterr().err
        assert rc == 2, (argv, err)
        assert expected in err and "allow_incomplete=true" in err and "Traceback" not in err, err
    assert not (tmp_path / "exported").exists() and not list(tmp_path.glob(".exported*"))
    assert _snapshot(dataset) == before  # nothing was "repaired" or rewritten


@pytest.mark.parametrize("kind", DAMAGE)
def test_allow_incomplete_loads_the_intact_shards_with_a_warning(dataset: Path, kind: str, capsys,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    card = read_json(dataset / "dataset.json")
    shards = card["splits"]["train"]["shards"]
    _damage(dataset, kind)
    with caplog.at_level(logging.WARNING):
        rc = main(["datasets", "--show", f"wds:{dataset}", "--data-opt", "allow_incomplete=true",
                   "--data-opt", "cache=false"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "allow_incomplete" in caplog.text
    intact = sum(s["samples"] for s in shards) - (0 if kind == "no_card" else shards[1]["samples"])
    assert f"train: {intact} images" in out


def test_shard_hashes_are_verified_once_per_change(dataset: Path, capsys) -> None:
    """download seeds .verified.json; a shard whose size and mtime are unchanged is not hashed again (so a
    same-size edit that restores the mtime is only caught by verify=full); any mtime change re-verifies."""
    cache = read_json(dataset / ".verified.json")["shards"]
    card = read_json(dataset / "dataset.json")
    assert sorted(cache) == sorted(s["file"] for info in card["splits"].values() for s in info["shards"])
    victim = dataset / card["splits"]["train"]["shards"][0]["file"]
    st = victim.stat()
    original = victim.read_bytes()
    victim.write_bytes(_flipped(victim))
    os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns))
    show = ["datasets", "--show", f"wds:{dataset}", "--data-opt", "cache=false"]
    assert main(show) == 0
    assert main([*show, "--data-opt", "verify=full"]) == 2
    assert "differs from the sha256" in capsys.readouterr().err
    os.utime(victim)  # a new mtime: verified again at the next load
    assert main(show) == 2
    assert f"{victim.name} differs from the sha256" in capsys.readouterr().err
    victim.write_bytes(original)
    (dataset / ".verified.json").unlink()
    assert main(show) == 0
    assert victim.name in read_json(dataset / ".verified.json")["shards"]  # re-verified and recorded


def test_out_built_from_other_inputs_is_refused_without_force(built, tmp_path: Path, capsys) -> None:
    root, matches = built
    out = tmp_path / "ds"
    shutil.copytree(root / "ds", out)
    before = _snapshot(out)
    other = _selection(tmp_path, "other", 7000, n=18)
    rc = main(_args(other, out))
    err = capsys.readouterr().err
    assert rc == 2 and "built from other inputs" in err and "--force" in err and "Traceback" not in err
    assert _snapshot(out) == before
    assert main(_args(other, out, "--force")) == 0
    card = read_json(out / "dataset.json")
    assert card["source"]["matches_sha256"] == sha256_file(other) and card["counts"]["selected"] == 18
    # a folder that is not a dataset folder is not written into either
    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "todo.txt").write_text("mine")
    assert main(_args(matches, foreign)) == 2
    assert "not a dataset folder made by `imagenot download`" in capsys.readouterr().err
    assert [p.name for p in foreign.iterdir()] == ["todo.txt"]


def test_repeated_source_ids_are_fetched_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              caplog: pytest.LogCaptureFixture) -> None:
    import imagenot.download.clean as clean

    urls = _files(tmp_path / "files", 12, 9000)
    ids = [f"src-{i}" for i in range(12)]
    # rows 12-14 repeat sources 2, 2 and 5 (same url and id, as two mined shards may hold the same row)
    urls += [urls[2], urls[2], urls[5]]
    ids += [ids[2], ids[2], ids[5]]
    labels = [i % 3 for i in range(12)] + [2, 2, 2]
    matches = write_selection(tmp_path / "mine", urls, labels, source_ids=ids)
    reads: list[str] = []
    real = clean.read_local
    monkeypatch.setattr(clean, "read_local", lambda url: (reads.append(url), real(url))[1])
    with caplog.at_level(logging.WARNING):
        card = run_download(DownloadConfig(matches=str(matches), out=str(tmp_path / "ds"), allow_local=True,
                                           image_size=32, min_images_per_class=2))
    assert sorted(reads) == sorted(urls[:12])  # each source read once
    assert "3 row(s) repeat the source_id of an earlier row" in caplog.text
    assert card["counts"]["duplicate_source_ids"] == 3 and card["removed"] == {"duplicate_source_id": 3}
    assert card["counts"]["train"] + card["counts"]["val"] == 12
    removed = pq.read_table(tmp_path / "ds" / "removed.parquet").to_pylist()
    assert [(r["row_id"], r["stage"], r["duplicate_of"]) for r in removed] == [
        (12, "input", "row 2"), (13, "input", "row 2"), (14, "input", "row 5")]


@pytest.mark.parametrize("target", ["_work/clean/", "removed.parquet"])
def test_disk_full_is_a_clear_error_and_the_rerun_resumes(built, tmp_path: Path, target: str,
                                                          monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    _, matches = built
    out = tmp_path / "ds"
    real = pq.write_table
    failed: list[str] = []

    def full(table, where, *args, **kwargs):
        dest = str(where)
        if target in dest or (target.endswith(".parquet") and Path(dest).name.startswith(f".{target}.")):
            Path(dest).write_bytes(b"PAR1 half a file")  # what a full disk leaves behind
            failed.append(dest)
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(table, where, *args, **kwargs)

    monkeypatch.setattr(pq, "write_table", full)
    rc = main(_args(matches, out))
    err = capsys.readouterr().err
    assert failed and rc == 1, err  # a full disk exits 1 in every stage (architecture.md), not 2
    assert f"no space left on the device holding {out.resolve()}" in err and "Traceback" not in err
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]  # no partial file
    assert not (out / "dataset.json").exists() and not (out / Path(target).name).exists()
    monkeypatch.undo()
    assert main(_args(matches, out)) == 0
    assert read_json(out / "dataset.json")["counts"]["selected"] == 24


def test_truncated_tar_export_leaves_nothing(dataset: Path, tmp_path: Path, capsys) -> None:
    """Export of a dataset with a truncated tar: an error naming the shard, and no .export-tmp left."""
    from imagenot.download import ExportConfig, run_export
    from imagenot.errors import InputError

    card = read_json(dataset / "dataset.json")
    victim = dataset / card["splits"]["val"]["shards"][0]["file"]
    victim.write_bytes(victim.read_bytes()[:700])
    with pytest.raises(InputError, match=victim.name):
        run_export(ExportConfig(dataset=str(dataset), out=str(tmp_path / "exp")))
    assert not list(tmp_path.glob("*exp*")) and not list(tmp_path.glob(".*"))


def test_against_a_missing_path_fails_before_anything_is_fetched(built, tmp_path: Path, capsys,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import imagenot.download.clean as clean

    _, matches = built
    monkeypatch.setattr(clean, "read_local", lambda url: pytest.fail("fetched before the inputs were checked"))
    out = tmp_path / "ds"
    assert main(_args(matches, out, "--against", str(tmp_path / "no-such-folder"))) == 2
    err = capsys.readouterr().err
    assert "no such folder" in err and "no-such-folder" in err
    assert main(_args(matches, out, "--against", "no-such-dataset")) == 2
    assert "not a folder and not a dataset name; known names:" in capsys.readouterr().err
    assert not out.exists()


def test_a_crash_while_writing_input_parquet_leaves_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys) -> None:
    """img2dataset's input list is written atomically: a crash never leaves a torn one for the rerun."""
    matches = write_selection(tmp_path / "mine", [f"http://127.0.0.1:9/{i}.jpg" for i in range(4)], [0, 1, 2, 3])
    out = tmp_path / "ds"
    real = pq.write_table

    def crash(table, where, *args, **kwargs):
        if Path(str(where)).name.startswith(".input.parquet."):
            Path(str(where)).write_bytes(b"PAR1 torn")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(table, where, *args, **kwargs)

    monkeypatch.setattr(pq, "write_table", crash)
    assert main(["download", "--matches", str(matches), "--out", str(out)]) == 1
    assert "no space left" in capsys.readouterr().err
    assert not (out / "_work" / "input.parquet").exists()
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]


def test_a_card_without_hashes_still_pins_the_sample_count(dataset: Path, capsys) -> None:
    """An older or hand-written card without sha256: the sample count is read from the tar headers."""
    import json

    card = read_json(dataset / "dataset.json")
    for info in card["splits"].values():
        for s in info["shards"]:
            s.pop("sha256")
    entry = card["splits"]["val"]["shards"][0]
    entry["samples"] += 1
    (dataset / "dataset.json").write_text(json.dumps(card))
    assert main(["datasets", "--show", f"wds:{dataset}", "--data-opt", "cache=false"]) == 2
    assert f"{entry['file']} holds {entry['samples'] - 1} samples, dataset.json says {entry['samples']}" in (
        capsys.readouterr().err)
