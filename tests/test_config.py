"""imagenot.config: resolve's config-file layer (the one the CLI uses)."""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from imagenot.config import ConfigError, option, resolve


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
