"""Safe path components from data, paths kept inside their folder, and guarded removal of outputs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from imagenot import safepath
from imagenot.errors import InputError


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.parametrize(("value", "why"), [
    ("../evil", "path separator"), ("..", "relative to its parent"), (".", "relative to its parent"),
    ("/etc", "path separator"), ("/", "path separator"), ("a\\b", "path separator"), ("..\\x", "path separator"),
    ("", "empty"), ("   ", "empty"), ("a\0b", "NUL"), ("a\nb", "control character"), ("tab\there", "control"),
    ("esc\x1b[31m", "control"), ("-rf", "starts with '-'"), (" padded", "white space"), ("x\x7f", "control"),
])
def test_component_refuses_names_that_are_not_one_folder(value: str, why: str) -> None:
    with pytest.raises(InputError, match=why) as err:
        safepath.component(value, "class wnid")
    assert "class wnid" in str(err.value) and repr(value) in str(err.value)


@pytest.mark.parametrize("value", ["n02084071", "resnet_s32", "imagenet-1k", "jack-o'-lantern", "café crème",
                                   "a.b", "...", "$x_1^2$", "x" * 255])
def test_component_keeps_ordinary_names(value: str, tmp_path: Path) -> None:
    assert safepath.component(value, "name") == value
    (tmp_path / value).mkdir()  # it really is one folder name here
    assert _tree(tmp_path) == [value]


def test_over_long_names_are_refused_or_shortened_with_a_hash(tmp_path: Path) -> None:
    long = "é" * 200  # 400 bytes in UTF-8
    with pytest.raises(InputError, match="400 bytes"):
        safepath.component(long, "plan dataset name")
    short = safepath.component(long, "class folder", shorten=True)
    assert len(short.encode()) <= 255 and short.startswith("é" * 50) and "~" in short
    assert short == safepath.component(long, "class folder", shorten=True)  # deterministic
    other = safepath.component("é" * 199 + "x", "class folder", shorten=True)
    assert other != short  # a shared prefix still gives distinct folders
    (tmp_path / short).mkdir()
    (tmp_path / other).mkdir()
    assert len(_tree(tmp_path)) == 2


def test_slug_is_always_a_component() -> None:
    assert safepath.slug("../../etc/passwd") == "etc_passwd"
    assert safepath.slug("..") == "x" and safepath.slug("") == "x"
    assert safepath.slug("cifar10:/data/x y") == "cifar10_data_x_y"
    assert len(safepath.slug("a" * 1000).encode()) <= 255


def test_inside_refuses_paths_out_of_the_folder(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    root.mkdir()
    (tmp_path / "secret.tar").write_bytes(b"x")
    (root / "train-000.tar").write_bytes(b"x")
    assert safepath.inside(root, "train-000.tar", "shard") == root / "train-000.tar"
    assert safepath.inside(root, "sub/../train-000.tar", "shard").resolve() == (root / "train-000.tar").resolve()
    for bad in ("../secret.tar", str(tmp_path / "secret.tar"), "/etc/passwd", "sub/../../secret.tar"):
        with pytest.raises(InputError, match="lies outside its folder"):
            safepath.inside(root, bad, "shard")
    os.symlink(tmp_path / "secret.tar", root / "link.tar")
    with pytest.raises(InputError, match="link.tar"):
        safepath.inside(root, "link.tar", "shard")
    with pytest.raises(InputError, match="NUL"):
        safepath.inside(root, "a\0b", "shard")


def test_check_output_refuses_inputs_their_parents_and_their_insides(tmp_path: Path) -> None:
    data = tmp_path / "data" / "ds"
    data.mkdir(parents=True)
    for out, relation in ((data, "is"), (data / "sub", "lies inside"), (tmp_path / "data", "contains"),
                          (tmp_path, "contains")):
        with pytest.raises(InputError, match=relation):
            safepath.check_output(out, [data])
    os.symlink(data, tmp_path / "alias")
    with pytest.raises(InputError, match="is the input"):
        safepath.check_output(tmp_path / "alias", [data])
    safepath.check_output(tmp_path / "elsewhere", [data, None, ""])  # apart from the inputs: fine


def test_check_removable_refuses_inputs_and_user_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "ds"
    data.mkdir()
    (data / "keep.txt").write_text("data")
    old = tmp_path / "out"
    (old / "sub").mkdir(parents=True)
    for out in (data, tmp_path):
        with pytest.raises(InputError, match="input"):
            safepath.check_removable(out, [data])
    monkeypatch.chdir(old / "sub")
    with pytest.raises(InputError, match="refusing to delete"):
        safepath.check_removable(old, [data])  # the working folder lies in it
    monkeypatch.chdir(tmp_path / "ds")
    for folder in (Path("/"), Path.home(), tmp_path / "ds", tmp_path):
        with pytest.raises(InputError, match="refusing to delete"):
            safepath.check_removable(folder)
    safepath.check_removable(old, [data])  # apart from the inputs and the working folder: fine
    safepath.check_removable(data / "report", [data])  # inside an input: replacing it deletes no input


def test_unique_slug_keeps_plain_names_and_separates_the_rest() -> None:
    assert safepath.unique_slug("000000123") == "000000123" and safepath.unique_slug("a_b.c-d") == "a_b.c-d"
    hostile = ["a/b", "a b", "a:b", "../x", "/etc/passwd", "-rf", ".hidden", "", "..", "x\ny", "é", "x" * 300]
    names = [safepath.unique_slug(k, 240) for k in hostile]
    assert len(set(names)) == len(hostile) and "a_b" not in names  # none collides with a plain `a_b`
    for name in names:
        assert safepath.component(name, "file") == name and len(name.encode()) <= 240
        assert not name.startswith((".", "-"))
    assert safepath.unique_slug("a/b") == safepath.unique_slug("a/b")  # stable across runs
