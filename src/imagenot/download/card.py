"""What the dataset card says: `build_card` assembles `dataset.json` from the download's decisions (the file
names, writing, the README and reading back belong to `imagenot.datacard`), plus the contact sheet.

The card is what lets someone audit a contrast dataset without opening the shards: where every selected row
went (kept, or which reason removed it), which classes survived, what the thresholds were, and hashes that
pin the exact shard contents.
"""

from __future__ import annotations

import logging
import shlex
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imagenot import __version__
from imagenot.download.config import DownloadConfig
from imagenot.download.decide import TEXT_IN_IMAGE, Decision
from imagenot.download.matches import Selection

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
    """A grid with one row per class (up to the rows given) and its first images, class names on the left
    (`imagenot.data.contact_sheet`, the project's one sheet, without captions)."""
    from imagenot.data.contact_sheet import Layout, Tile, decode, render

    rows = [(labels[lab], [Tile(decode(data)) for data in samples[lab][:per_class]]) for lab in sorted(samples)]
    if not rows:
        return
    render(path, rows, layout=Layout(tile=cell, text_lines=0, columns=per_class))
