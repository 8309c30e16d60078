"""The dataset card: `dataset.json` (machine-readable), `README.md` (for people) and a contact sheet.

The card is what lets someone audit a contrast dataset without opening the shards: where every selected row
went (kept, or which reason removed it), which classes survived, what the thresholds were, and hashes that
pin the exact shard contents.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from imagenot.fileio import atomic_path, write_text

log = logging.getLogger(__name__)


def pick(info: Mapping[str, Any], *keys: str) -> Any:
    """First value found under any of `keys`, at top level or one level down (mine configs nest)."""
    for key in keys:
        if key in info and info[key] not in (None, ""):
            return info[key]
    for value in info.values():
        if isinstance(value, Mapping):
            found = pick(value, *keys)
            if found is not None:
                return found
    return None


def mining_summary(mine_info: Mapping[str, Any]) -> dict[str, Any]:
    cfg = mine_info.get("config", {}) or {}
    stats = mine_info.get("mine_stats", {}) or {}
    both = {"config": cfg, "mine_stats": stats}
    return {
        "corpus": pick(both, "corpus", "corpus_path", "input", "inputs", "corpus_name"),
        "encoder": pick(both, "encoder", "model", "encoder_name", "text_encoder"),
        "similarity_threshold": pick(both, "threshold", "similarity_threshold"),
        "config": cfg,
        "stats": stats,
    }


def write_contact_sheet(
    path: Path,
    samples: Mapping[int, Sequence[bytes]],
    labels: Sequence[str],
    per_class: int,
    cell: int = 64,
) -> None:
    """A grid with one row per class (up to the rows given) and its first images, class names on the left."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = sorted(samples)
    if not rows:
        return
    grid = np.full((len(rows) * (cell + 2), per_class * (cell + 2), 3), 255, np.uint8)
    for r, lab in enumerate(rows):
        for c, data in enumerate(samples[lab][:per_class]):
            with Image.open(io.BytesIO(data)) as im:
                tile = ImageOps.fit(im.convert("RGB"), (cell, cell), Image.Resampling.BICUBIC)
            y, x = r * (cell + 2) + 1, c * (cell + 2) + 1
            grid[y:y + cell, x:x + cell] = np.asarray(tile)
    height = grid.shape[0] / 100 + 0.4
    width = grid.shape[1] / 100 + 2.0
    fig, ax = plt.subplots(figsize=(width, height), dpi=100)
    ax.imshow(grid, interpolation="nearest")
    ax.set_yticks([r * (cell + 2) + cell / 2 for r in range(len(rows))])
    ax.set_yticklabels([labels[lab] for lab in rows], fontsize=7)
    ax.set_xticks([])
    for side in ("top", "right", "bottom", "left"):
        ax.spines[side].set_visible(False)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", bbox_inches="tight", pad_inches=0.05)
    plt.close(fig)


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(x) for x in r) + " |" for r in rows]
    return out


def write_readme(path: Path, card: Mapping[str, Any]) -> None:
    c = card["counts"]
    mining = card.get("mining", {})
    lines = [
        f"# {card['name']}",
        "",
        f"A contrast dataset materialised by `imagenot download` (imagenot {card['tool']['version']}) on "
        f"{card['created_utc']}.",
        "",
        f"- Command: `{card['command']}`",
        f"- Source: `{card['source']['matches']}` (sha256 {card['source']['matches_sha256'][:16]}...), "
        f"classes `{card['source']['classes']}`",
        f"- Corpus: {mining.get('corpus') or 'not recorded'}; encoder: {mining.get('encoder') or 'not recorded'}; "
        f"similarity threshold: {mining.get('similarity_threshold') if mining.get('similarity_threshold') is not None else 'not recorded'}",
        f"- Images: shorter side {card['image_size']} px, aspect ratio kept (centre crop at training time), "
        f"stored as {card['encode_format']}",
        f"- {card['num_classes']} classes; {c['train']} train and {c['val']} val images",
        "",
        "## Where the selected rows went",
        "",
    ]
    lines += _table(["stage", "count"], [
        ["selected rows", c["selected"]],
        ["fetched and decoded", c["decoded"]],
        ["after deduplication", c["after_dedup"]],
        ["in the dataset (train + val)", c["train"] + c["val"]],
    ])
    lines += ["", "Removed, by reason (each row has exactly one):", ""]
    lines += _table(["reason", "rows"], sorted(card["removed"].items(), key=lambda kv: -kv[1]) or [["none", 0]])
    if card.get("http_status"):
        lines += ["", "HTTP status of http_error rows: " +
                  ", ".join(f"{k}: {v}" for k, v in card["http_status"].items())]
    if card.get("conversions"):
        lines += ["", "Kept after conversion to RGB (transparent parts on white): " +
                  ", ".join(f"{k}: {v}" for k, v in card["conversions"].items())]
    th = card["thresholds"]
    lines += [
        "",
        "## Thresholds",
        "",
        f"- images under {th['min_image_size']} px, over {th['max_image_pixels']} pixels (decompression bombs) or "
        f"with aspect ratio over {th['max_aspect_ratio']} are dropped",
        f"- near duplicates: perceptual hash (imagehash.phash) within Hamming distance "
        f"{th['near_dup_distance']} of 64 bits; exact duplicates: same decoded RGB pixels",
        f"- contamination check against: {', '.join(card['dedup']['against']) or 'none'}",
        f"- classes need {th['min_per_class']} images ({th['min_val_per_class']} in val) after download; "
        f"small classes were {'kept and flagged' if th['keep_small_classes'] else 'dropped'}",
        f"- split seed {card['split']['seed']}; val rows lost to failures were replaced from train "
        f"({card['split']['moved_to_val']} rows moved); per-class caps: train "
        f"{card['split']['caps']['train'] or 'none'}, val {card['split']['caps']['val'] or 'none'}"
        f" (from {card['split']['caps']['source'] or 'nowhere'})",
        "",
        "## Classes",
        "",
    ]
    lines += _table(["index", "wnid", "name", "train", "val", "status"], [
        [k["index"], k["wnid"], k["name"], k["train"], k["val"], k["status"]] for k in card["classes"]
    ])
    if card.get("dropped_classes"):
        lines += ["", "Dropped classes (below the minimum):", ""]
        lines += _table(["wnid", "name", "survived", "val"], [
            [k["wnid"], k["name"], k["survived"], k["val"]] for k in card["dropped_classes"]
        ])
    lines += ["", "## Shards", ""]
    shard_rows = [[split, s["file"], s["samples"], s["sha256"]]
                  for split, info in card["splits"].items() for s in info["shards"]]
    lines += _table(["split", "file", "samples", "sha256"], shard_rows)
    lines += ["", "![contact sheet](contact_sheet.png)", ""]
    write_text(path, "\n".join(lines))
