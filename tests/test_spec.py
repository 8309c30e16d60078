"""imagenot.spec: the one parser of `kind:ARG` strings and the one rule for whether the argument is a path."""

from pathlib import Path

import pytest

from imagenot.config import absolute_paths, option
from imagenot.safepath import spec_path
from imagenot.spec import Spec, SpecError, dataset_display_name


@pytest.mark.parametrize("text", ["wds:/data/imagenot-1k", "run:rel/dir", "torchvision:resnet18.IMAGENET1K_V1",
                                  "fashion-mnist", "scratch", "wds:", "synthetic:n=10", "file:a:b.pt",
                                  "https://host/x.pth"])
def test_str_round_trips(text: str):
    assert str(Spec.parse(text)) == text


def test_kind_and_argument():
    assert Spec.parse("wds:/x") == Spec("wds", "/x")
    assert Spec.parse(" wds :rel") == Spec("wds", "rel")
    assert Spec.parse("fashion-mnist") == Spec("fashion-mnist", None)
    assert Spec.parse("wds:") == Spec("wds", "")
    assert Spec.parse("file:C:/w.pt").arg == "C:/w.pt"  # only the first colon splits


def test_kinds_restricts_and_names_the_known_ones():
    assert Spec.parse("run:x", kinds=("run", "file")).kind == "run"
    with pytest.raises(SpecError, match="unknown kind 'wds' in 'wds:x'; known: run, file"):
        Spec.parse("wds:x", kinds=("run", "file"))


@pytest.mark.parametrize(("text", "path"), [
    ("wds:/data/a", "/data/a"), ("imagefolder:rel", "rel"), ("cifar10:c", "c"), ("fashion-mnist:idx", "idx"),
    ("run:runs/r1", "runs/r1"), ("file:w.pt", "w.pt"), ("openclipart:svgs", "svgs"),
    ("torchvision:resnet18.IMAGENET1K_V1", None), ("TorchVision:resnet18.X", None), ("synthetic:n=4", None),
    ("https://host/w.pth", None), ("hf:org/model", None), ("custom://bucket/x", None),
    ("wds:", None), ("fashion-mnist", None), ("scratch", None),
])
def test_one_rule_for_paths(text: str, path: str | None):
    assert Spec.parse(text).path == path


def test_config_and_safepath_follow_the_rule(tmp_path: Path):
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Cfg:
        data: str = option("x", help="a spec", path="spec")

    for text in ("wds:sub/ds", "torchvision:resnet18.IMAGENET1K_V1", "fashion-mnist", "synthetic:n=4"):
        made = absolute_paths(Cfg, {"data": text}, base=tmp_path)["data"]
        path = Spec.parse(text).path
        assert made == (text if path is None else f"{Spec.parse(text).kind}:{tmp_path / path}")
        assert spec_path(text) == (path or text)


def test_dataset_display_name():
    assert dataset_display_name("wds:/data/imagenot-1k/") == "imagenot-1k"
    assert dataset_display_name("imagefolder:rel/pets") == "pets"
    assert dataset_display_name("cifar10:/x") == "cifar10"
    assert dataset_display_name("fashion-mnist") == "fashion-mnist"
