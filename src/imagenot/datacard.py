"""The dataset card of a dataset folder: `dataset.json` (for programs) and `README.md` (for people).

`imagenot download` writes the card last, so its presence marks a folder complete; the data stage's reader,
the audit, the report and the demo read it. Analysis may import no other stage, and foundations import no
stage, so the card's one owner sits here: the file names, writing both files (atomically, the README from
the card so the two cannot disagree) and reading the card back, strictly (a dataset folder being loaded:
errors name the file) or leniently (context for a report: an unreadable card is simply absent).

What goes into the card is decided by the download stage (`imagenot.download.card.build_card`), its only
producer; the fields readers rely on are read through the small accessors below.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from imagenot import escape
from imagenot.errors import InputError
from imagenot.fileio import write_json, write_text

log = logging.getLogger(__name__)

CARD = "dataset.json"
README = "README.md"
CONTACT_SHEET = "contact_sheet.png"


def card_path(root: str | Path) -> Path:
    """Where a dataset folder's card is (whether or not it exists yet)."""
    return Path(root) / CARD


def has_card(root: str | Path) -> bool:
    """Whether the folder has a card, i.e. a finished download (the card is written last)."""
    return card_path(root).is_file()


def read_card(root: str | Path) -> dict[str, Any]:
    """The card of a dataset folder, refusing a missing, malformed or non-object card with an InputError
    naming the file (and the line of a JSON error)."""
    path = card_path(root)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise InputError(f"no {CARD} (not a finished dataset folder of `imagenot download`)", path=path) from exc
    try:
        card = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"bad JSON: {exc}", path=path, line=exc.lineno) from exc
    if not isinstance(card, dict):
        raise InputError("expected a JSON object (the dataset card)", path=path)
    return card


def read_card_if_any(root: str | Path) -> dict[str, Any] | None:
    """The card, or None when it is absent or cannot be read: for readers to whom the card is context (the
    report's notes, the demo's summary), never a reason to fail."""
    path = card_path(root)
    if not path.is_file():
        return None
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        log.debug("%s cannot be read: treated as absent", path)
        return None
    return card if isinstance(card, dict) else None


def similarity_threshold(card: Mapping[str, Any]) -> float | None:
    """The caption-similarity threshold the rows were selected with, as the card records it (thresholds
    first, then the mining summary); None when not recorded."""
    for section in (card.get("thresholds", {}), card.get("mining", {})):
        value = section.get("similarity_threshold") if isinstance(section, dict) else None
        if isinstance(value, (int, float)):
            return float(value)
    return None


def write_card(root: str | Path, card: Mapping[str, Any]) -> Path:
    """Write `dataset.json` (atomically). Call it last: its presence marks the folder complete."""
    path = card_path(root)
    write_json(path, card)
    return path


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(x) for x in r) + " |" for r in rows]
    return out


def _compact(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def write_readme(root: str | Path, card: Mapping[str, Any]) -> Path:
    """`README.md` of the folder, from the card. Every string of the card (class names, corpus and column
    names, paths) is escaped once up front (`escape.md_tree`); commands, paths and values shown as code go
    through `escape.md_code` from the raw card, so they show literally and cannot close their code span."""
    safe = escape.md_tree(dict(card))
    lines = (_readme_header(safe, card) + _readme_flow(safe) + _readme_text_filter(safe)
             + _readme_provenance(safe, card) + _readme_thresholds(safe) + _readme_classes(safe)
             + _readme_shards(safe))
    path = Path(root) / README
    write_text(path, "\n".join(lines))
    return path


def _readme_header(card: Mapping[str, Any], raw: Mapping[str, Any]) -> list[str]:
    """Title, command, source, corpus and image format: what the dataset is and how it was made."""
    c = card["counts"]
    mining = card.get("mining", {})
    threshold = mining.get("similarity_threshold")
    return [
        f"# {card['name']}",
        "",
        f"A contrast dataset materialised by `imagenot download` (imagenot {card['tool']['version']}) on "
        f"{card['created_utc']}.",
        "",
        f"- Command: {escape.md_code(raw['command'])}",
        f"- Source: {escape.md_code(raw['source']['matches'])} (sha256 {card['source']['matches_sha256'][:16]}...), "
        f"classes {escape.md_code(raw['source']['classes'])}",
        f"- Corpus: {mining.get('corpus') or 'not recorded'}; encoder: {mining.get('encoder') or 'not recorded'}; "
        f"similarity threshold: {threshold if threshold is not None else 'not recorded'}",
        f"- Images: shorter side {card['image_size']} px, aspect ratio kept (centre crop at training time), "
        f"stored as {card['encode_format']}",
        f"- {card['num_classes']} classes; {c['train']} train and {c['val']} val images",
        "",
        "## Where the selected rows went",
        "",
    ]


def _readme_flow(card: Mapping[str, Any]) -> list[str]:
    """Where the selected rows went: counts per stage, removals by reason, HTTP statuses, conversions."""
    c = card["counts"]
    lines = _table(["stage", "count"], [
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
    return lines


def _readme_text_filter(card: Mapping[str, Any]) -> list[str]:
    """What the text-in-image filter found, when it ran."""
    tf = card.get("text_filter") or {}
    if tf.get("mode") in (None, "off"):
        return []
    verb = "removed" if tf["mode"] == "drop" else "would remove (count only; kept)"
    return ["", f"Text-in-image filter (Tesseract OCR, LAIONet's last step): {tf['checked']} images read, "
            f"{tf['text_in_image']} show their class name"
            f"{' or a lemma' if tf.get('terms') == 'name+lemmas' else ''}; the filter {verb} "
            f"{tf['text_in_image']}" + (f"; OCR failed on {tf['ocr_errors']}" if tf.get("ocr_errors") else "")]


def _readme_provenance(card: Mapping[str, Any], raw: Mapping[str, Any]) -> list[str]:
    """Mining's provenance and the corpus columns kept, shown as code from the raw card."""
    lines: list[str] = []
    if card.get("provenance"):
        lines += ["", "## Provenance (from mining)", ""]
        lines += [f"- {escape.md(k)}: {escape.md_code(_compact(v))}" for k, v in raw["provenance"].items()]
    if card.get("corpus_columns"):
        lines += ["", "Corpus columns kept in each sample's json (under `corpus`): " +
                  ", ".join(escape.md_code(c) for c in raw["corpus_columns"])]
    return lines


def _readme_thresholds(card: Mapping[str, Any]) -> list[str]:
    """The cleaning thresholds, deduplication and split settings."""
    th, split = card["thresholds"], card["split"]
    return [
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
        f"- split seed {split['seed']}; val rows lost to failures were replaced from train "
        f"({split['moved_to_val']} rows moved); per-class caps: train "
        f"{split['caps']['train'] or 'none'}, val {split['caps']['val'] or 'none'}"
        f" (from {split['caps']['source'] or 'nowhere'})",
    ]


def _readme_classes(card: Mapping[str, Any]) -> list[str]:
    """The kept classes with their counts, then the dropped ones."""
    lines = ["", "## Classes", ""]
    lines += _table(["index", "wnid", "name", "train", "val", "status"], [
        [k["index"], k["wnid"], k["name"], k["train"], k["val"], k["status"]] for k in card["classes"]
    ])
    if card.get("dropped_classes"):
        lines += ["", "Dropped classes (below the minimum):", ""]
        lines += _table(["wnid", "name", "survived", "val"], [
            [k["wnid"], k["name"], k["survived"], k["val"]] for k in card["dropped_classes"]
        ])
    return lines


def _readme_shards(card: Mapping[str, Any]) -> list[str]:
    """The shard list with hashes, and the contact sheet."""
    lines = ["", "## Shards", ""]
    shard_rows = [[split, s["file"], s["samples"], s["sha256"]]
                  for split, info in card["splits"].items() for s in info["shards"]]
    lines += _table(["split", "file", "samples", "sha256"], shard_rows)
    return lines + ["", f"![contact sheet]({CONTACT_SHEET})", ""]
