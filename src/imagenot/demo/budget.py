"""The demo's budget sweep: the plateaus (scripts/demo_budget_sweep.py) the demo's report and summary compare
each model against, shipped with the package as `budget.json` beside this module.

Its own module so that the demo's runner and its summary both read it without importing each other. The sweep
measured one budget (the default demo's epochs, recipe and batch): a demo run with other settings is not
compared against it, since "4x the epochs" would then name epochs nobody trained.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from imagenot.demo.config import DemoConfig

log = logging.getLogger(__name__)


def plateau_file(cfg: DemoConfig | None = None) -> Path | None:
    """The demo's budget sweep, shipped with the package, if it exists and (given `cfg`) was measured with the
    settings `cfg` trains with (epochs on both datasets, recipe, batch, models, training seed)."""
    path = Path(__file__).with_name("budget.json")
    if not path.is_file():
        return None
    if cfg is None:
        return path
    mismatch = sweep_mismatch(cfg, path)
    if mismatch:
        log.info("the shipped budget sweep (%s) was measured with %s: the report does not compare against it",
                 path.name, mismatch)
        return None
    return path


def sweep_mismatch(cfg: DemoConfig, path: Path) -> str | None:
    """What differs between the settings the sweep in `path` measured and `cfg`'s (None: nothing)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return f"an unreadable file ({exc})"
    epochs = data.get("epochs") or {}
    measured = {"reference epochs": epochs.get("reference"), "contrast epochs": epochs.get("contrast"),
                "recipe": data.get("recipe"), "batch size": data.get("batch_size")}
    wanted = {"reference epochs": cfg.epochs, "contrast epochs": cfg.contrast_epochs, "recipe": cfg.recipe,
              "batch size": cfg.batch_size}
    if data.get("models"):
        measured["models"], wanted["models"] = sorted(data["models"]), sorted(cfg.models)
    if data.get("seed") is not None:
        measured["seed"], wanted["seed"] = data["seed"], cfg.seeds[0]
    diff = [f"{k} {measured[k]} (this demo: {wanted[k]})" for k in measured if measured[k] != wanted[k]]
    return ", ".join(diff) or None
