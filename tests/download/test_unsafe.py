"""Issue 25 (unsafe): a dataset folder is data, and data must never act on the machine.

Crafted cards (wnids and shard paths out of the folder), `export --overwrite` over its own input, and class
names and captions written to be HTML, table breakers or mathtext: each case through the CLI, asserting the
exit status, the message, that nothing was written outside the output folder and that nothing was lost.
"""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from imagenot.cli import main
from imagenot.fileio import read_json, sha256_file
from imagenot.wordnet.classes import ClassRow, write_classes

from .conftest import make_image

# real WordNet nouns with names written to attack every output that shows them
NASTY = [("n00015388", "<img src=x onerror=alert(1)>"), ("n02913152", "pipe|and\nnewline"),
         ("n00021265", "$x_1^$ =SUM(A1)")]
CAPTION = "<script>alert('caption')</script> | a picture"


def _tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): (sha256_file(p) if p.is_file() else "dir") for p in sorted(root.rglob("*"))}


@pytest.fixture(scope="module")
def nasty_ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dataset made by `imagenot download` from local PNGs whose class names and captions are hostile."""
    root = tmp_path_factory.mktemp("unsafe")
    rows: dict[str, list] = {k: [] for k in ("source_id", "url", "caption", "wnid", "label", "lemma",
                                             "similarity", "split")}
    (root / "files").mkdir()
    for label, (wnid, _) in enumerate(NASTY):
        for i in range(6):
            p = root / "files" / f"{label}-{i}.png"
            make_image(100 * label + i, (40, 40)).save(p)
            for key, value in (("source_id", f"s{label}-{i}"), ("url", p.as_uri()), ("caption", CAPTION),
                               ("wnid", wnid), ("label", label), ("lemma", "thing"), ("similarity", 0.5),
                               ("split", "val" if i % 3 == 0 else "train")):
                rows[key].append(value)
    schema = pa.schema([("source_id", pa.string()), ("url", pa.string()), ("caption", pa.string()),
                        ("wnid", pa.string()), ("label", pa.int32()), ("lemma", pa.string()),
                        ("similarity", pa.float32()), ("split", pa.string())])
    (root / "mine").mkdir()
    pq.write_table(pa.table(rows, schema=schema), root / "mine" / "selected.parquet")
    write_classes(root / "mine" / "classes.tsv", [ClassRow(i, w, n.replace("\n", " "), ("thing",), "a thing",
                                                           "thing which is a thing", "noun.artifact")
                                                  for i, (w, n) in enumerate(NASTY)])
    out = root / "ds"
    rc = main(["download", "--matches", str(root / "mine" / "selected.parquet"), "--out", str(out),
               "--allow-local", "--image-size", "24", "--min-images-per-class", "2", "--near-dup-distance", "-1",
               "--encode-format", "png"])
    assert rc == 0
    return out


@pytest.fixture()
def ds(nasty_ds: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy inside `tmp_path/data`, for one test to craft."""
    monkeypatch.setenv("IMAGENOT_CACHE", str(tmp_path / "cache"))
    copy = tmp_path / "data" / "ds"
    shutil.copytree(nasty_ds, copy)
    return copy


def test_readme_and_contact_sheet_show_hostile_names_as_text(nasty_ds: Path) -> None:
    readme = (nasty_ds / "README.md").read_text()
    assert "<img" not in readme and "<script" not in readme
    assert "&lt;img src=x onerror=alert(1)>" in readme and "pipe&#124;and newline" in readme
    classes = readme.split("## Classes")[1].split("\n\n")[1].splitlines()
    assert all(line.count("|") == 7 for line in classes)  # 6 cells per row: no column added by a name
    assert (nasty_ds / "contact_sheet.png").stat().st_size > 1000  # drawn despite "$x_1^$" (mathtext)


def test_export_makes_safe_folders_from_hostile_names(ds: Path, tmp_path: Path) -> None:
    out = tmp_path / "exported"
    assert main(["export", "--dataset", str(ds), "--out", str(out)]) == 0
    folders = sorted(p.name for p in (out / "train").iterdir())
    assert folders == ["000_n00015388_img_src_x_onerror_alert_1", "001_n02913152_pipe_and_newline",
                       "002_n00021265_x_1_SUM_A1"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "exported"]


@pytest.mark.parametrize("wnid", ["../../escaped", "/tmp/imagenot-abs", "..", "a\\b", "x\ny", "-rf"])
def test_export_refuses_a_card_wnid_that_is_not_a_folder_name(ds: Path, tmp_path: Path, wnid: str,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    card = read_json(ds / "dataset.json")
    card["classes"][0]["wnid"] = wnid
    (ds / "dataset.json").write_text(json.dumps(card))
    (ds / "classes.tsv").unlink()  # the card's list is then the contract
    before = _tree(tmp_path)
    rc = main(["export", "--dataset", str(ds), "--out", str(tmp_path / "exp" / "out")])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err
    assert "class wnid" in err and repr(wnid) in err
    assert _tree(tmp_path) == before  # nothing written anywhere, inside or outside --out
    assert not Path("/tmp/imagenot-abs").exists()


@pytest.mark.parametrize("where", ["itself", "parent", "grandparent", "inside"])
def test_export_overwrite_never_takes_the_dataset(ds: Path, tmp_path: Path, where: str,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "data" / "other-user-file.txt").write_text("keep me")
    out = {"itself": ds, "parent": ds.parent, "grandparent": tmp_path, "inside": ds / "export"}[where]
    before = _tree(tmp_path)
    rc = main(["export", "--dataset", str(ds), "--out", str(out), "--overwrite"])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err
    assert "input" in err and str(ds) in err
    assert _tree(tmp_path) == before


def test_export_overwrite_of_a_symlink_to_the_dataset_is_refused(ds: Path, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    os.symlink(ds, tmp_path / "alias")
    before = _tree(ds)
    assert main(["export", "--dataset", str(ds), "--out", str(tmp_path / "alias"), "--overwrite"]) == 2
    assert "is the input" in capsys.readouterr().err and _tree(ds) == before


@pytest.mark.parametrize("shard", ["../outside.tar", "ABS", "sub/../../outside.tar", "link.tar"])
def test_a_card_cannot_list_a_shard_outside_its_folder(ds: Path, tmp_path: Path, shard: str,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    card = read_json(ds / "dataset.json")
    first = card["splits"]["train"]["shards"][0]
    shutil.copyfile(ds / first["file"], tmp_path / "data" / "outside.tar")
    os.symlink(tmp_path / "data" / "outside.tar", ds / "link.tar")
    first["file"] = str(tmp_path / "data" / "outside.tar") if shard == "ABS" else shard
    (ds / "dataset.json").write_text(json.dumps(card))
    before = _tree(tmp_path)
    for argv in (["datasets", "--show", f"wds:{ds}"], ["export", "--dataset", str(ds), "--out",
                                                         str(tmp_path / "exp")]):
        rc = main(argv)
        err = capsys.readouterr().err
        assert rc == 2 and "Traceback" not in err, argv
        assert "lies outside its folder" in err and "train shard listed in dataset.json" in err
    assert _tree(tmp_path) == before


def test_download_force_never_rewrites_its_own_input(nasty_ds: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    mine = tmp_path / "mine"
    shutil.copytree(nasty_ds.parent / "mine", mine)
    (mine / "notes.txt").write_text("mine")
    before = _tree(tmp_path)
    rc = main(["download", "--matches", str(mine / "selected.parquet"), "--out", str(mine), "--allow-local",
               "--force"])
    err = capsys.readouterr().err
    assert rc == 2 and "contains the input" in err and "Traceback" not in err
    assert _tree(tmp_path) == before


def test_train_force_never_clears_its_dataset_or_weights(ds: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    before = _tree(tmp_path)
    for argv in (["train", "--dataset", f"wds:{ds}", "--model", "resnet_s32", "--out", str(ds), "--force"],
                 ["train", "--dataset", f"wds:{ds}", "--model", "resnet_s32", "--out", str(ds.parent), "--force"]):
        rc = main(argv)
        err = capsys.readouterr().err
        assert rc == 2 and ("contains the input" in err or "is the input" in err), err
        assert "Traceback" not in err
    assert _tree(tmp_path) == before  # the card's config.json and manifest.json are still there


def test_audit_md_shows_hostile_names_and_captions_as_text(nasty_ds: Path, tmp_path: Path) -> None:
    out = tmp_path / "audit"
    assert main(["audit", "--reference", "synthetic", "--contrast", f"wds:{nasty_ds}", "--reference-classes",
                 "fashion-mnist", "--levels", "class,label", "--out", str(out)]) == 0
    md = (out / "audit.md").read_text()
    assert "<script" not in md and "<img" not in md
    assert "&lt;script>" in md or "&lt;img" in md
    rows = [line for line in md.splitlines() if line.startswith("| ")]
    assert rows and len({line.count(" | ") for line in rows[:1 + len(NASTY)]}) == 1


def test_export_refuses_a_card_class_name_that_would_shift_class_folders_tsv(
        ds: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    card = read_json(ds / "dataset.json")
    card["classes"][1]["name"] = "two\tcolumns"
    (ds / "dataset.json").write_text(json.dumps(card))
    before = _tree(tmp_path)
    rc = main(["export", "--dataset", str(ds), "--out", str(tmp_path / "exp")])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err
    assert "name 'two\\tcolumns' contains a tab; it cannot be a field of class_folders.tsv" in err
    assert _tree(tmp_path) == before  # no export, no hidden temporary folder left


def _rekey_train_shard(ds: Path, keys: list[str], *, list_twice: bool = False) -> None:
    """Rename the first samples of the train shard to `keys` (a crafted shard), keeping the card consistent."""
    import tarfile

    card = read_json(ds / "dataset.json")
    entry = card["splits"]["train"]["shards"][0]
    path = ds / entry["file"]
    with tarfile.open(path) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar if m.isfile()]
    old = list(dict.fromkeys(m.name.split(".", 1)[0] for m, _ in members))
    rename = dict(zip(old, keys))
    with tarfile.open(path, "w") as tar:
        for m, data in members:
            stem, ext = m.name.split(".", 1)
            m.name = f"{rename.get(stem, stem)}.{ext}"
            tar.addfile(m, io.BytesIO(data))
    entry.update(bytes=path.stat().st_size, sha256=sha256_file(path))
    if list_twice:
        card["splits"]["train"]["shards"].append(dict(entry))
    (ds / "dataset.json").write_text(json.dumps(card))


def test_export_names_files_from_hostile_sample_keys_inside_their_class_folder(ds: Path, tmp_path: Path) -> None:
    keys = ["../../../escaped", "a/b", "a_b", "-rf", ".hidden", "x" * 300]
    _rekey_train_shard(ds, keys)
    out = tmp_path / "exp"
    assert main(["export", "--dataset", str(ds), "--out", str(out), "--splits", "train"]) == 0
    files = [p for p in out.rglob("*") if p.is_file() and p.parent.parent.name == "train"]
    assert len(files) == sum(read_json(out / "export.json")["splits"]["train"].values())  # none replaced another
    names = {p.stem for p in files}
    assert "a_b" in names and any(n.startswith("a_b~") for n in names)  # `a/b` and `a_b` stay two files
    assert all(not n.startswith((".", "-")) and len(n.encode()) <= 240 for n in names)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "exp"]  # nothing escaped the export


def test_export_refuses_a_card_that_lists_one_shard_twice(ds: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    _rekey_train_shard(ds, [], list_twice=True)
    before = _tree(tmp_path)
    rc = main(["export", "--dataset", str(ds), "--out", str(tmp_path / "exp"), "--splits", "train"])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err and "two train samples share the key" in err
    after = _tree(tmp_path)
    after.pop("data/ds/.verified.json")  # the reader's cache of checked shards, refreshed by design
    before.pop("data/ds/.verified.json", None)
    assert after == before


def test_datasets_show_prints_class_names_with_control_characters_as_escapes(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    hostile = "evil\x1b]0;pwned\x07\rforged"
    for split in ("train", "val"):
        for c, name in enumerate(("plain", hostile)):
            (tmp_path / "f" / split / name).mkdir(parents=True)
            for i in range(2):
                make_image(10 * c + i, (16, 16)).save(tmp_path / "f" / split / name / f"{i}.png")
    assert main(["datasets", "--show", f"imagefolder:{tmp_path / 'f'}", "--data-opt", "cache=false"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "\r" not in out
    assert "evil\\x1b]0;pwned\\x07\\rforged" in out.splitlines()[-1]
