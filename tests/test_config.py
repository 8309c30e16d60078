"""imagenot.config: choices checked from the Literal types, and resolve's config-file layer (the one the CLI uses)."""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest

from imagenot.config import ConfigError, check_choices, from_dict, option, resolve


@dataclass(frozen=True)
class Checked:
    mode: Literal["fast", "exact"] = option("fast", help="how")
    role: Literal["reference", "contrast"] | None = option(None, help="which side")
    name: str = option("x", help="free text")

    def __post_init__(self) -> None:
        check_choices(self, prefix="toy: ")


def test_choices_come_from_the_literal_types():
    assert Checked(mode="exact", role="contrast").role == "contrast"
    assert Checked(role=None, name="anything").mode == "fast"
    with pytest.raises(ConfigError, match="^toy: mode 'slow' not one of fast, exact$"):
        Checked(mode="slow")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="^toy: role 'both' not one of reference, contrast$"):
        Checked(role="both")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="Checked.mode: 'slow' is not one of fast, exact"):
        from_dict(Checked, {"mode": "slow"})  # the file and CLI layers coerce through the same type


def test_stage_configs_check_their_choices_when_built_directly():
    from imagenot.demo.config import DemoConfig
    from imagenot.training.config import TrainConfig
    from imagenot.training.recipes import Recipe

    with pytest.raises(ConfigError, match="^finetune_mode 'half' not one of full, linear$"):
        DemoConfig(finetune_mode="half")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="^precision 'bfloat16' not one of auto, fp32, bf16, fp16$"):
        TrainConfig(precision="bfloat16")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="^recipe r: optimizer 'lamb' not one of sgd, adamw, rmsprop$"):
        Recipe(name="r", optimizer="lamb")  # type: ignore[arg-type]


@dataclass(frozen=True)
class Layered:
    data: str = option("fashion-mnist", help="a dataset spec", path="spec")
    out: str | None = option(None, help="output folder", path=True)
    options: dict[str, Any] = option(default_factory=dict, help="entry options")
    epochs: int = option(1, help="epochs")


def test_resolve_reads_a_config_file_relative_to_its_folder(tmp_path: Path):
    folder = tmp_path / "plans"
    folder.mkdir()
    f = folder / "c.json"
    f.write_text(json.dumps({"data": "wds:ds", "out": "runs/a", "options": {"limit": 5, "verify": "size"},
                             "epochs": 3, "_meta": {"ignored": True}}))
    cfg = resolve(Layered, config_file=f, overrides={"options": {"limit": 7}, "epochs": None})
    assert cfg == Layered(data=f"wds:{folder / 'ds'}", out=str(folder / "runs" / "a"),
                          options={"limit": 7, "verify": "size"}, epochs=3)
    f.write_text(json.dumps({"epochs": "many"}))
    with pytest.raises(ConfigError, match=f"^{f}: Layered.epochs: expected int"):
        resolve(Layered, config_file=f)
