"""The dataset card: `dataset.json` (machine-readable), `README.md` (for people) and a contact sheet.

The card is what lets someone audit a contrast dataset without opening the shards: where every selected row
went (kept, or which reason removed it), which classes survived, what the thresholds were, and hashes that
pin the exact shard contents.
"""

from __future__ import annotations

import io
import json
import logging
import shlex
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from imagenot import __version__, escape
from imagenot.data.orientation import upright
from imagenot.download.config import DownloadConfig
from imagenot.download.decide import TEXT_IN_IMAGE, Decision
from imagenot.download.matches import Selection
from imagenot.fileio import atomic_path, write_text

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MiningSummary:
    """What the card says about how the rows were mined, read from the files `imagenot mine` writes."""

    corpus: Any
    encoder: str | None
    similarity_threshold: float | None
    stats: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"corpus": self.corpus, "encoder": self.encoder, "similarity_threshold": self.similarity_threshold,
                "stats": self.stats}


def _first(*values: Any) -> Any:
    return next((v for v in values if v not in (None, "")), None)


def mining_summary(mine_info: Mapping[str, Any], provenance: Mapping[str, Any] | None = None) -> MiningSummary:
    """Corpus, encoder and threshold: selected.parquet's provenance first, then the mine folder's
    selection.json (the threshold selection applied), mine_stats.json and config.json (MineConfig)."""
    prov = provenance or {}
    cfg = mine_info.get("config") or {}
    stats = mine_info.get("mine_stats") or {}
    selection = mine_info.get("selection") or {}
    embedded = cfg.get("embed", True)
    return MiningSummary(
        corpus=_first(prov.get("corpus"), stats.get("corpus"), cfg.get("corpus")),
        encoder=_first(prov.get("encoder"), stats.get("encoder"), cfg.get("encoder") if embedded else None),
        similarity_threshold=_first(prov.get("threshold"), selection.get("threshold"), stats.get("threshold"),
                                    cfg.get("threshold")),
        stats=dict(stats),
    )


def build_card(cfg: DownloadConfig, sel: Selection, d: Decision, *, splits_info: dict[str, Any],
               removed: Counter[str], totals: dict[str, Counter[str]], decoded: int, timing: dict[str, Any],
               inputs: dict[str, str], schemes: Counter[str], fetcher: str, plan: str, command: str,
               out: Path) -> dict[str, Any]:
    """dataset.json: where every selected row went, the classes, thresholds, provenance and shard hashes."""
    report = d.class_report
    classes_by_label = {c.index: c for c in sel.classes}
    mining = mining_summary(sel.mine_info, sel.provenance)
    text = totals.get("text_filter", Counter())
    counts = {
        "selected": sel.num_rows,
        "duplicate_source_ids": len(sel.duplicates),
        "decoded": decoded,
        "after_dedup": sum(d.kept),
        "train": splits_info["train"]["count"],
        "val": splits_info["val"]["count"],
    }
    return {
        "name": cfg.name or out.resolve().name,
        "format": "webdataset",
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "tool": {"name": "imagenot", "version": __version__},
        "command": command,
        "rerun_command": f"imagenot download --config {shlex.quote(str(out / 'config.json'))}",
        "image_size": cfg.image_size,
        "encode_format": cfg.encode_format,
        "resize": "shorter side resized to image_size, aspect ratio kept; centre crop at training time",
        "num_classes": len(d.final_classes),
        "classes": [
            {"index": d.new_index[lab], "wnid": classes_by_label[lab].wnid, "name": classes_by_label[lab].name,
             "source_label": lab, "train": report[lab].train, "val": report[lab].val, "status": report[lab].status}
            for lab in d.kept_labels
        ],
        "dropped_classes": [
            {"wnid": c.wnid, "name": c.name, "source_label": lab,
             "selected": report[lab].selected if lab in report else 0,
             "survived": report[lab].survived if lab in report else 0,
             "val": report[lab].val if lab in report else 0}
            for lab, c in sorted(classes_by_label.items()) if lab not in d.new_index
        ],
        "splits": splits_info,
        "counts": counts,
        "removed": dict(sorted(removed.items())),
        "http_status": dict(sorted(totals["http_status"].items())),
        "conversions": dict(sorted(totals["conversions"].items())),
        "text_filter": {"mode": cfg.text_filter, "terms": cfg.text_filter_terms, "fraction": cfg.text_filter_fraction,
                        "checked": text.get("checked", 0),
                        "text_in_image": text.get(TEXT_IN_IMAGE, 0), "removed": removed.get(TEXT_IN_IMAGE, 0),
                        "ocr_errors": text.get("ocr_errors", 0)},
        "dedup": {"within": cfg.dedup, "near_dup_distance": cfg.near_dup_distance, "against": list(cfg.against),
                  "counts": dict(sorted(d.dedup_counts.items()))},
        "split": {"seed": cfg.seed, "val_fraction": cfg.val_fraction, "caps": d.caps,
                  "moved_to_val": sum(r.moved_to_val for r in report.values()),
                  "moved_to_train": sum(r.moved_to_train for r in report.values()),
                  "per_class": [r.to_dict() for _, r in sorted(report.items())]},
        "thresholds": {
            **{k: getattr(cfg, k) for k in ("min_image_size", "max_image_pixels", "max_aspect_ratio",
                                            "near_dup_distance", "min_images_per_class", "min_val_per_class",
                                            "keep_small_classes", "max_response_mb")},
            "similarity_threshold": mining.similarity_threshold,
        },
        "mining": mining.to_dict(),
        "encoder": mining.encoder,
        "corpus": mining.corpus,
        "provenance": sel.provenance,
        "corpus_columns": list(sel.corpus.column_names) if sel.corpus is not None else [],
        "source": {"matches": str(sel.matches_path), "classes": str(sel.classes_path),
                   "matches_sha256": inputs["selected.parquet"], "classes_sha256": inputs["classes.tsv"],
                   "url_schemes": dict(schemes), "fetcher": fetcher},
        "timing": timing,
        "plan_sha256": plan,
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
                tile = ImageOps.fit(upright(im).convert("RGB"), (cell, cell),
                                    Image.Resampling.BICUBIC)
            y, x = r * (cell + 2) + 1, c * (cell + 2) + 1
            grid[y:y + cell, x:x + cell] = np.asarray(tile)
    height = grid.shape[0] / 100 + 0.4
    width = grid.shape[1] / 100 + 2.0
    fig, ax = plt.subplots(figsize=(width, height), dpi=100)
    ax.imshow(grid, interpolation="nearest")
    ax.set_yticks([r * (cell + 2) + cell / 2 for r in range(len(rows))])
    ax.set_yticklabels([escape.mpl(labels[lab]) for lab in rows], fontsize=7)
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


def _compact(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def write_readme(path: Path, card: Mapping[str, Any]) -> None:
    """README.md from the card. Every string of the card (class names, corpus and column names, paths) is
    escaped once up front (`escape.md_tree`); commands, paths and values shown as code go through
    `escape.md_code` from the raw card, so they show literally and cannot close their code span."""
    raw = card
    card = escape.md_tree(dict(card))
    c = card["counts"]
    mining = card.get("mining", {})
    lines = [
        f"# {card['name']}",
        "",
        f"A contrast dataset materialised by `imagenot download` (imagenot {card['tool']['version']}) on "
        f"{card['created_utc']}.",
        "",
        f"- Command: {escape.md_code(raw['command'])}",
        f"- Source: {escape.md_code(raw['source']['matches'])} (sha256 {card['source']['matches_sha256'][:16]}...), "
        f"classes {escape.md_code(raw['source']['classes'])}",
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
        ["repeated source ids (fetched once)", c.get("duplicate_source_ids", 0)],
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
    tf = card.get("text_filter") or {}
    if tf.get("mode") not in (None, "off"):
        verb = "removed" if tf["mode"] == "drop" else "would remove (count only; kept)"
        lines += ["", f"Text-in-image filter (Tesseract OCR, LAIONet's last step): {tf['checked']} images read, "
                  f"{tf['text_in_image']} show their class name"
                  f"{' or a lemma' if tf.get('terms') == 'name+lemmas' else ''}; the filter {verb} "
                  f"{tf['text_in_image']}" + (f"; OCR failed on {tf['ocr_errors']}" if tf.get("ocr_errors") else "")]
    th = card["thresholds"]
    if card.get("provenance"):
        lines += ["", "## Provenance (from mining)", ""]
        lines += [f"- {escape.md(k)}: {escape.md_code(_compact(v))}" for k, v in raw["provenance"].items()]
    if card.get("corpus_columns"):
        lines += ["", "Corpus columns kept in each sample's json (under `corpus`): " +
                  ", ".join(escape.md_code(c) for c in raw["corpus_columns"])]
    lines += [
        "",
        "## Thresholds",
        "",
        f"- images under {th['min_image_size']} px, over {th['max_image_pixels']} pixels (decompression bombs) or "
        f"with aspect ratio over {th['max_aspect_ratio']} are dropped",
        f"- near duplicates: perceptual hash (imagehash.phash) within Hamming distance "
        f"{th['near_dup_distance']} of 64 bits; exact duplicates: same decoded RGB pixels",
        f"- contamination check against: {', '.join(card['dedup']['against']) or 'none'}",
        f"- classes need {th['min_images_per_class']} images ({th['min_val_per_class']} in val) after download; "
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
