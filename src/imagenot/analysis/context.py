"""What else is known about the datasets a report compares, from other stages' files (never their code).

* an audit (`imagenot audit`'s audit.json): how unlike the reference the contrast is, at the class, image and
  label level;
* the dataset cards (`imagenot download`'s dataset.json): the text-in-image filter's count, when it ran;
* a budget sweep (JSON `{"plateau": {"reference": {model: {"top1": ..}}, "contrast": {...}}}`, such as the
  demo's `scripts/demo_budget_sweep.py` writes): how far each model is from its plateau, so a reader can
  tell whether the ranking is of architectures or of how fast they start learning.

Each part is optional and says what it rests on; a missing or unreadable file is a note, not a failure.
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Any

from imagenot import datacard
from imagenot.analysis.blocks import Block, Heading, Link, Paragraph, bullets, table
from imagenot.analysis.comparison import Analysis
from imagenot.spec import Spec

log = logging.getLogger(__name__)


def _read(path: str | Path | None, what: str, notes: list[str]) -> dict[str, Any] | None:
    if not path:
        return None
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        notes.append(f"The {what} {path} could not be read ({exc}); it is left out.")
        return None
    return data if isinstance(data, dict) else None


def _pct(value: Any, digits: int = 1) -> str:
    return "—" if not isinstance(value, int | float) or math.isnan(value) else f"{100.0 * value:.{digits}f}%"


def audit_blocks(path: str | Path | None, out_dir: Path, notes: list[str]) -> list[Block]:
    """The audit's summary in words, with a link to audit.md."""
    data = _read(path, "audit", notes)
    if data is None:
        return []
    s = data.get("summary") or {}
    items: list[str] = []
    c = s.get("class_level") or {}
    if c:
        items.append(f"Classes: {c.get('wnid_overlap', '?')} shared wnids, {c.get('lemma_overlap', '?')} shared "
                     f"lemmas; {c.get('ancestors', '?')} contrast classes are WordNet ancestors and "
                     f"{c.get('descendants', '?')} descendants of reference classes; mean shortest path from a "
                     f"contrast class to its nearest reference class {c.get('mean_path_distance', float('nan')):.2f}"
                     " edges.")
    i = s.get("image_level") or {}
    if i and i.get("accuracy") is not None:
        items.append(f"Images: a {i.get('model', 'small')} classifier tells the two datasets apart with "
                     f"{_pct(i['accuracy'])} held-out accuracy (95% CI {_pct(i.get('ci_low'))} to "
                     f"{_pct(i.get('ci_high'))}, {i.get('n_test', '?')} test images; chance 50%); the best single "
                     f"image statistic ({i.get('best_statistic', '?')}) alone reaches "
                     f"{_pct(i.get('best_statistic_accuracy'))}.")
    lab = s.get("label_level") or {}
    if lab:
        text = (f"Labels: median caption-query similarity {lab.get('median_similarity', float('nan')):.3f}; "
                f"{_pct(lab.get('multi_lemma_share'))} of captions also name another class's lemma")
        if lab.get("label_issues") is not None:
            text += (f"; confident learning flags {lab['label_issues']} of {lab.get('label_issues_checked', '?')} "
                     "validation images as likely label errors (from a contrast run's out-of-sample predictions)")
        items.append(text + ".")
    if not items:
        return []
    blocks: list[Block] = [Heading(2, "How unlike is the contrast?"), bullets(items)]
    md = Path(path).with_name("audit.md")  # type: ignore[arg-type]
    if md.is_file():
        link = Link("the audit", Path(os.path.relpath(md, out_dir)).as_posix())
        blocks.append(table(["details"], [[link]]))
    return blocks


def text_filter_lines(analysis: Analysis) -> list[str]:
    """'The text-in-image filter would remove N of M checked images' per dataset whose card ran it."""
    out = []
    for info in analysis.datasets.values():
        for spec in info.specs:
            card = datacard.read_card_if_any(Path(Spec.parse(spec).path or spec))
            if card is None:
                continue
            tf = card.get("text_filter") or {}
            if tf.get("mode") in (None, "off") or not tf.get("checked"):
                continue
            share = tf.get("text_in_image", 0) / tf["checked"]
            sample = "" if (tf.get("fraction") or 1.0) >= 1.0 else f" (a seeded {tf['fraction']:.0%} sample)"
            verb = "removed" if tf["mode"] == "drop" else "would remove"
            out.append(f"{info.name}: LAIONet's text-in-image filter (Tesseract OCR) {verb} "
                       f"{tf.get('text_in_image', 0)} of {tf['checked']} images checked{sample}, {share:.1%}, "
                       "whose visible text names their class.")
            break
    return out


def plateau_blocks(path: str | Path | None, analysis: Analysis, notes: list[str]) -> list[Block]:
    """Each model's accuracy against its plateau from a budget sweep, per dataset role."""
    data = _read(path, "budget sweep", notes)
    if data is None:
        return []
    plateau = data.get("plateau") or {}
    sides = [("reference", analysis.reference, analysis.main.x), ("contrast", analysis.contrast, analysis.main.y)]
    rows, gaps = [], []
    for model in analysis.main.models:
        row = [model]
        for role, _, values in sides:
            have = (values.get(model) or {}).get("mean")
            ref = ((plateau.get(role) or {}).get(model) or {}).get("top1")
            row += ["—" if have is None else f"{have:.1f}", "—" if ref is None else f"{ref:.1f}"]
            gap = None if have is None or ref is None else ref - have
            row.append("—" if gap is None else f"{gap:+.1f}")
            if gap is not None:
                gaps.append((role, model, gap))
        rows.append(row)
    if not gaps:
        return []
    # A sweep over multiples of these runs' epochs (the demo's) names its largest multiple; older files a budget.
    multiple = max(data.get("multiples") or [0]) or None
    what = f"{multiple}x the epochs" if multiple else "plateau"
    headers = ["model"]
    for _, name, _ in sides:
        headers += [f"{name} top-1", what, "gain" if multiple else "below plateau"]
    worst = {role: max((g for r, _, g in gaps if r == role), default=None) for role, _, _ in sides}
    def phrase(role: str, name: str) -> str:
        gap = worst[role]
        if gap <= 0:
            return f"on {name} no model gains from it" if multiple else \
                f"on {name} every model is at or above its plateau"
        target = f"its {multiple}x-epoch figure" if multiple else "its plateau"
        return f"on {name} every model is within {gap:.1f} points of {target}"

    words = "; ".join(phrase(role, name) for role, name, _ in sides if worst[role] is not None)
    source = data.get("source", "a budget sweep")
    when = f" ({data['date']})" if data.get("date") else ""
    against = (f"what the same model reaches with {multiple}x these epochs" if multiple else
               "its plateau, the accuracy it reached with the largest budget")
    return [Heading(2, "Training budget: architectures or learning speed?"),
            Paragraph(f"Each model's top-1 here against {against} in {source}{when} (same recipe, data and input "
                      f"size): {words}. Differences between models smaller than these gaps may reflect how fast a "
                      "model learns, not how far.", "sub"),
            table(headers, rows)]
