import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from imagenot.config import ConfigError, from_dict, replace, resolve, to_dict
from imagenot.fileio import atomic_open, environment, read_json, sha256_file, write_json, write_manifest
from imagenot.registry import Registry, UnknownNameError


@dataclass(frozen=True)
class Cfg:
    name: str = "x"
    epochs: int = 1
    lr: float = 0.1
    flag: bool = False
    sizes: tuple[int, ...] = (32,)
    path: str | None = None


def test_from_dict_coerces_and_rejects_unknown_keys():
    cfg = from_dict(Cfg, {"epochs": "3", "lr": "0.5", "flag": "yes", "sizes": "32,64"})
    assert cfg == Cfg(epochs=3, lr=0.5, flag=True, sizes=(32, 64))
    with pytest.raises(ConfigError, match="unknown key\\(s\\) for Cfg: epoch; known: "):
        from_dict(Cfg, {"epoch": 3})
    with pytest.raises(ConfigError, match="Cfg.epochs: expected int"):
        from_dict(Cfg, {"epochs": "many"})
    with pytest.raises(ConfigError, match="expected a boolean"):
        from_dict(Cfg, {"flag": "perhaps"})


def test_resolve_layers_preset_file_and_overrides(tmp_path: Path):
    presets = {"demo": {"epochs": 2, "name": "demo"}}
    f = tmp_path / "c.yaml"
    f.write_text("epochs: 5\nlr: 0.01\n")
    cfg = resolve(Cfg, presets=presets, preset="demo", config_file=f, overrides={"lr": 0.2, "path": None})
    assert cfg == Cfg(name="demo", epochs=5, lr=0.2)
    with pytest.raises(ConfigError, match="unknown preset 'dem'; known: demo"):
        resolve(Cfg, presets=presets, preset="dem")


def test_config_round_trip_through_json(tmp_path: Path):
    cfg = Cfg(name="a", sizes=(1, 2), path="p")
    write_json(tmp_path / "config.json", to_dict(cfg))
    assert resolve(Cfg, config_file=tmp_path / "config.json") == cfg
    assert replace(cfg, epochs=9).epochs == 9
    with pytest.raises(ConfigError):
        replace(cfg, bogus=1)


def test_bad_config_file_messages(tmp_path: Path):
    f = tmp_path / "c.json"
    f.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="expected a mapping"):
        resolve(Cfg, config_file=f)
    f.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid json"):
        resolve(Cfg, config_file=f)


def test_atomic_open_leaves_old_file_on_failure(tmp_path: Path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_open(target) as fh:
        fh.write("new, half")
        raise RuntimeError("crash mid-write")
    assert target.read_text() == "old"
    assert sorted(os.listdir(tmp_path)) == ["out.txt"]  # no temporary left behind
    with atomic_open(target) as fh:
        fh.write("new")
    assert target.read_text() == "new"


def test_manifest_records_environment_and_hashes(tmp_path: Path):
    data = tmp_path / "in.bin"
    data.write_bytes(b"abc")
    digest = sha256_file(data)
    assert digest == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    path = write_manifest(tmp_path, {"a": 1}, inputs={"in.bin": digest})
    manifest = read_json(path)
    assert manifest["config"] == {"a": 1} and manifest["inputs"]["in.bin"] == digest
    assert "torch" in manifest["environment"]["packages"]
    assert json.dumps(environment())  # serialisable


def test_registry_raises_on_duplicates_and_unknown_names():
    reg: Registry[int] = Registry("model")
    reg.register("b", 2)
    reg.register("a", 1)
    assert list(reg) == ["a", "b"] and reg.get("a") == 1 and "a" in reg and len(reg) == 2
    with pytest.raises(ValueError, match="duplicate model name 'a'"):
        reg.register("a", 3)
    with pytest.raises(UnknownNameError, match="unknown model 'c'; known: a, b"):
        reg.get("c")


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_writes_follow_the_umask(tmp_path: Path, mask: int, mode: int):
    from imagenot.fileio import atomic_path, write_bytes

    old = os.umask(mask)
    try:
        write_json(tmp_path / "a.json", {"x": 1})
        write_bytes(tmp_path / "b.bin", b"\x00")
        with atomic_path(tmp_path / "c.npz") as tmp:
            tmp.write_bytes(b"npz")
    finally:
        os.umask(old)
    for name in ("a.json", "b.bin", "c.npz"):
        assert (tmp_path / name).stat().st_mode & 0o777 == mode, name


def test_literal_choices_are_checked():
    from typing import Literal

    from imagenot.config import option

    @dataclass(frozen=True)
    class Choice:
        mode: Literal["fast", "exact"] = option("fast", help="how")

    assert from_dict(Choice, {"mode": "exact"}).mode == "exact"
    with pytest.raises(ConfigError, match="not one of fast, exact"):
        from_dict(Choice, {"mode": "slow"})


def test_yaml_alias_bombs_and_binary_configs_are_refused(tmp_path: Path):
    from imagenot.config import load_mapping

    bomb = tmp_path / "plan.yaml"
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]" for i in range(8)]
    bomb.write_text("\n".join(lines) + "\nmodels: *i\n")
    with pytest.raises(ConfigError, match=r"plan.yaml: line 2: YAML aliases \(\*a\) are not allowed"):
        load_mapping(bomb)
    binary = tmp_path / "config.json"
    binary.write_bytes(os.urandom(64) + b"\xff\xfe")
    with pytest.raises(ConfigError, match="not a text config file"):
        load_mapping(binary)
    ok = tmp_path / "ok.yaml"
    ok.write_text("models: [resnet_s32]\nseeds: [0, 1]\n")
    assert load_mapping(ok) == {"models": ["resnet_s32"], "seeds": [0, 1]}
