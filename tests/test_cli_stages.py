"""Every stage's command line is generated from its config: --help lists every field with its default and
two examples, and a stage's own config.json, given back with --config from another directory, resolves to
the same config."""

import json
import re
from pathlib import Path

import pytest

from imagenot.cli import build_parser, main
from imagenot.cli_options import config_fields, config_from_args, flag_name
from imagenot.config import to_record

STAGES = {
    "classes": "imagenot.wordnet.cli:ClassesConfig",
    "mine": "imagenot.mining.config:MineConfig",
    "select": "imagenot.mining.config:SelectConfig",
    "download": "imagenot.download.config:DownloadConfig",
    "export": "imagenot.download.config:ExportConfig",
    "models": "imagenot.models.cli:ModelsConfig",
    "datasets": "imagenot.data.cli:DatasetsConfig",
    "train": "imagenot.training.config:TrainConfig",
    "finetune": "imagenot.training.config:TrainConfig",
    "evaluate": "imagenot.evaluation.config:EvaluateConfig",
    "zoo": "imagenot.zoo.plan:ZooPlan",
    "report": "imagenot.analysis.config:ReportConfig",
    "audit": "imagenot.audit.config:AuditConfig",
    "demo": "imagenot.demo.config:DemoConfig",
}


def _cls(path: str) -> type:
    import importlib

    module, name = path.split(":")
    return getattr(importlib.import_module(module), name)


def _option_blocks(text: str) -> dict[str, str]:
    """flag -> its help text, from argparse's --help output."""
    blocks: dict[str, str] = {}
    for m in re.finditer(r"^  (-[^\n]*(?:\n {6,}[^\n]*)*)", text, re.M):
        head = re.split(r"\s{2,}", m.group(1).split("\n")[0].strip())[0]  # the flags, before their help
        block = " ".join(m.group(1).split())
        for flag in re.findall(r"(--[a-z0-9][a-z0-9-]*)", head):
            blocks.setdefault(flag, block)
    return blocks


@pytest.mark.parametrize("command", sorted(STAGES))
def test_help_lists_every_field_with_its_default_and_examples(command: str, capsys: pytest.CaptureFixture):
    with pytest.raises(SystemExit) as done:
        main([command, "--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    blocks = _option_blocks(text)
    missing, undocumented = [], []
    for f, _ in config_fields(_cls(STAGES[command])):
        block = blocks.get(flag_name(f))
        if block is None:
            missing.append(flag_name(f))
        elif "default" not in block.lower() and "required" not in block.lower():
            undocumented.append(flag_name(f))
    assert not missing, f"{command} --help lacks {missing}"
    assert not undocumented, f"{command} --help gives no default for {undocumented}"
    examples = text.split("examples:")[-1].strip().splitlines()
    assert "examples:" in text and len([e for e in examples if e.strip().startswith("imagenot")]) >= 2


@pytest.mark.parametrize("command", sorted(set(STAGES) - {"models", "datasets"}))
def test_a_written_config_replays_from_another_directory(command: str, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch):
    """Resolve the stage's config from relative flags in one directory, write it as the stage does
    (to_record), and resolve it again with --config from elsewhere: the same config, absolute paths."""
    cls = _cls(STAGES[command])
    first_dir, other = tmp_path / "a", tmp_path / "b"
    first_dir.mkdir()
    other.mkdir()
    monkeypatch.chdir(first_dir)
    path_flags = [flag_name(f) for f, tp in config_fields(cls) if f.metadata.get("path") is True
                  and "tuple" not in str(tp)]
    argv = [command]
    for flag in path_flags:
        argv += [flag, f"rel/{flag.strip('-')}"]
    parser = build_parser()
    first = config_from_args(cls, parser.parse_args(argv))
    for flag in path_flags:
        value = getattr(first, flag.strip("-").replace("-", "_"))
        assert value == str(first_dir / "rel" / flag.strip("-")), (flag, value)
    record = first_dir / "config.json"
    record.write_text(json.dumps(to_record(first)))
    monkeypatch.chdir(other)
    again = config_from_args(cls, parser.parse_args([command, "--config", str(record)]))
    assert again == first


OUTPUT_FOLDER_STAGES = [c for c in STAGES if c not in ("classes", "models", "datasets")]


def test_every_output_folder_option_is_declared_as_one() -> None:
    """Each stage that writes a folder declares its --out as path="dir" (checked in imagenot.config)."""
    import dataclasses

    for command in OUTPUT_FOLDER_STAGES:
        fields = {f.name: f for f in dataclasses.fields(_cls(STAGES[command]))}
        assert fields["out"].metadata["path"] == "dir", command


@pytest.mark.parametrize("command", OUTPUT_FOLDER_STAGES)
def test_out_naming_an_existing_file_is_a_clear_error(command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture) -> None:
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "notes.txt"
    target.write_text("keep me\n")
    assert main([command, "--out", str(target)]) == 2
    err = capsys.readouterr().err
    assert f"--out {target}: exists and is not a folder" in err
    assert "Traceback" not in err
    assert target.read_text() == "keep me\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


@pytest.mark.parametrize("command", OUTPUT_FOLDER_STAGES)
def test_a_nul_byte_in_a_path_from_a_config_file_is_a_clear_error(command: str, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture) -> None:
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "bad.json"
    config.write_text(json.dumps({"out": "runs\u0000/x"}))
    assert main([command, "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "contains a NUL byte" in err and str(config) in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.json"]


def test_a_nul_byte_anywhere_in_a_config_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Not only path fields: a corpus spec, a list of paths, a nested option mapping (YAML as well)."""
    cases = {"mine.json": ["mine", {"corpus": "corpus\u0000.parquet"}],
             "report.yaml": ["report", None],
             "train.json": ["train", {"dataset_options": {"root": "a\u0000b"}}]}
    (tmp_path / "report.yaml").write_text('runs: ["runs/a", "runs/\\0b"]\n')
    for name, (command, data) in cases.items():
        if data is not None:
            (tmp_path / name).write_text(json.dumps(data))
        assert main([command, "--config", str(tmp_path / name)]) == 2
        assert "contains a NUL byte" in capsys.readouterr().err
