"""The CLI generated from config dataclasses: flags, defaults in help, --config layering, paths, globals."""

import argparse
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest

from imagenot.cli_options import add_stage_parser, config_from_args
from imagenot.config import ConfigError, option, to_record


@dataclass(frozen=True)
class ToyConfig:
    out: str = option("toy-out", help="where to write", path=True)
    dataset: str = option("fashion-mnist", help="a dataset spec", path="spec")
    epochs: int | None = option(None, help="passes over the data (default: the recipe's)")
    lr: float = option(0.1, help="learning rate")
    mode: Literal["fast", "exact"] = option("fast", help="how to run")
    embed: bool = option(True, help="compute embeddings")
    models: tuple[str, ...] = option(("a", "b"), help="models to train")
    options: dict[str, Any] = option(default_factory=dict, help="entry options", flag="--data-opt")
    secret: int = option(3, help="only through --config", cli=False)


PRESETS = {"tiny": {"epochs": 1, "lr": 0.5}}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="imagenot")
    sub = parser.add_subparsers(dest="command")
    add_stage_parser(sub, "toy", ToyConfig, help="a toy stage", description="A toy stage.",
                     examples=["imagenot toy --lr 0.2", "imagenot toy --config run/config.json"], presets=PRESETS)
    return parser


def _cfg(argv: list[str]) -> ToyConfig:
    args = _parser().parse_args(["toy", *argv])
    return config_from_args(ToyConfig, args, presets=PRESETS)


def test_help_lists_every_cli_field_with_its_default_and_examples(capsys: pytest.CaptureFixture):
    with pytest.raises(SystemExit):
        _parser().parse_args(["toy", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for fragment in ("--out OUT where to write (default: toy-out)", "--lr X learning rate (default: 0.1)",
                     "--mode {fast,exact} how to run (default: fast)", "--embed, --no-embed",
                     "compute embeddings (default: on)", "(default: a,b)", "--data-opt KEY=VALUE",
                     "(default: the recipe's)", "examples: imagenot toy --lr 0.2", "--config FILE",
                     "--preset {tiny}", "--log-level"):
        assert fragment in text, fragment
    assert "--secret" not in text


def test_flags_types_and_layering(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    cfg = _cfg(["--mode", "exact", "--no-embed", "--models", "x,y,z", "--data-opt", "limit=5",
                "--data-opt", "name=abc", "--epochs", "4"])
    assert (cfg.mode, cfg.embed, cfg.models, cfg.epochs) == ("exact", False, ("x", "y", "z"), 4)
    assert cfg.options == {"limit": 5, "name": "abc"}
    assert cfg.out == str(tmp_path / "toy-out")  # defaults are made absolute too
    assert _cfg(["--preset", "tiny"]).lr == 0.5 and _cfg(["--preset", "tiny", "--lr", "0.3"]).lr == 0.3
    with pytest.raises(SystemExit):
        _cfg(["--mode", "slow"])


def test_config_file_replays_from_another_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    first = _cfg(["--out", "runs/a", "--dataset", "wds:data/clip", "--data-opt", "limit=5", "--preset", "tiny"])
    assert first.out == str(work / "runs" / "a") and first.dataset == f"wds:{work / 'data' / 'clip'}"
    record = tmp_path / "elsewhere" / "config.json"
    record.parent.mkdir()
    record.write_text(json.dumps(to_record(first)))
    monkeypatch.chdir(tmp_path)
    again = _cfg(["--config", str(record)])
    assert again == first
    # flags on top of the file: scalars replace, dict options merge
    more = _cfg(["--config", str(record), "--data-opt", "seed=2", "--lr", "0.7"])
    assert more.options == {"limit": 5, "seed": 2} and more.lr == 0.7 and more.out == first.out
    # a config file's relative paths are relative to the file, not to where the command runs
    rel = tmp_path / "elsewhere" / "rel.json"
    rel.write_text(json.dumps({"out": "sub/out", "dataset": "imagefolder:pics", "epochs": None}))
    got = _cfg(["--config", str(rel), "--preset", "tiny"])
    assert got.out == str(tmp_path / "elsewhere" / "sub" / "out")
    assert got.dataset == f"imagefolder:{tmp_path / 'elsewhere' / 'pics'}"
    assert got.epochs is None  # an explicit null in the file unsets the preset's value


def test_specs_that_are_not_paths_stay_as_they_are(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    for spec in ("fashion-mnist", "synthetic", "torchvision:resnet18.IMAGENET1K_V1", "https://x/y"):
        assert _cfg(["--dataset", spec]).dataset == spec


def test_bad_config_file_names_the_file(tmp_path: Path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"lr": "fast"}))
    with pytest.raises(ConfigError, match=f"{bad}: ToyConfig.lr: expected float"):
        _cfg(["--config", str(bad)])
    unknown = tmp_path / "unknown.json"
    unknown.write_text(json.dumps({"lrr": 1}))
    with pytest.raises(ConfigError, match="unknown key"):
        _cfg(["--config", str(unknown)])


def test_global_options_work_before_and_after_the_command(tmp_path: Path):
    from imagenot import progress
    from imagenot.cli import main

    out = tmp_path / "c.tsv"
    try:
        assert main(["classes", "--reference", "fashion-mnist", "--wnids", str(_wnids(tmp_path)), "--out",
                     str(out), "--quiet"]) == 0
        assert not progress.enabled()
        progress.set_enabled(True)
        assert main(["--no-progress", "--log-level", "warning", "classes", "--reference", "fashion-mnist",
                     "--wnids", str(_wnids(tmp_path)), "--out", str(out)]) == 0
        assert not progress.enabled()
    finally:
        progress.set_enabled(True)
    assert out.is_file() and oct(out.stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def _wnids(tmp_path: Path) -> Path:
    path = tmp_path / "wnids.txt"
    path.write_text("n01440764\nn02084071\n")
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _all_parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    found = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found += _all_parsers(sub)
    return found


def test_no_parser_accepts_abbreviated_long_options(capsys: pytest.CaptureFixture) -> None:
    from imagenot.cli import build_parser

    parsers = _all_parsers(build_parser())
    assert len(parsers) > 10
    assert [p.prog for p in parsers if p.allow_abbrev] == []
    for argv in (["train", "--checkpoint-ev", "3"], ["mine", "--no-emb"], ["-v", "models", "--qui"],
                 ["--log-lev", "debug", "models"]):
        with pytest.raises(SystemExit) as exc:
            build_parser().parse_args(argv)
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert "unrecognized arguments" in err or "invalid choice: 'debug'" in err
    # the full flag still works
    args = build_parser().parse_args(["train", "--checkpoint-every", "3"])
    assert args.checkpoint_every_steps == 3


@pytest.mark.parametrize(("argv", "successor"), [
    (["finetune", "--checkpoint", "runs/a"], "--init run:DIR"),
    (["finetune", "--checkpoint=runs/a"], "--init run:DIR"),
    (["finetune", "--mode", "linear"], "--finetune-mode"),
    (["zoo", "--plan", "study.yaml"], "--config PLAN"),
])
def test_a_renamed_option_is_an_error_naming_its_successor(argv: list[str], successor: str,
                                                           capsys: pytest.CaptureFixture) -> None:
    from imagenot.cli import main

    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"{argv[1].split('=')[0]} was renamed: use {successor}" in err


def test_a_stage_parser_under_a_plain_argparse_parent_rejects_abbreviations() -> None:
    parser = _parser()
    with pytest.raises(SystemExit):
        parser.parse_args(["toy", "--ep", "3"])
    assert _cfg(["--epochs", "3"]).epochs == 3


def test_an_older_value_of_a_choice_is_still_accepted_on_the_command_line():
    """`imagenot mine --precision float16` (the flag's vocabulary before fp16/bf16/fp32) still works."""
    from imagenot.cli import build_parser

    args = build_parser().parse_args(["mine", "--corpus", "c.parquet", "--classes", "k.tsv", "--precision",
                                      "float16"])
    assert args.precision == "fp16"
