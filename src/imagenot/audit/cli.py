"""`imagenot audit`: how unlike the reference is the contrast (class, image and label level).

The flags are generated from `AuditConfig`'s fields (`imagenot.cli_options`); torch is imported only when
the command runs.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

log = logging.getLogger(__name__)

EXAMPLES = (
    "imagenot audit --reference fashion-mnist --contrast wds:demo-out/clipart-not \\\n"
    "      --contrast-run demo-out/runs/clipart-not/resnet_s32/seed0 --out demo-out/audit   # all three levels",
    "imagenot audit --reference-classes imagenet-1k --contrast-classes imagenot_classes.txt \\\n"
    "      --out audit-imagenot   # class level only: no images needed",
)

DESCRIPTION = (
    "Compare a reference and a contrast dataset at three levels and write audit.json, audit.md, plots/ and "
    "contact_sheet.png into --out. Class level: shared wnids and lemmas, ancestors and descendants, lexnames and "
    "WordNet path distances. Image level: held-out accuracy (with a Clopper-Pearson interval) of a small CNN and "
    "of simple image statistics at telling the two datasets apart. Label level (a contrast made by `imagenot "
    "download`): caption-query similarities and captions naming other classes, per class, and, with "
    "--contrast-run, likely label errors by confident learning. Every input is checked before anything is "
    "written; a rerun reuses finished levels (--force recomputes)."
)


def register(sub: argparse._SubParsersAction) -> None:
    from imagenot.audit.config import AuditConfig
    from imagenot.cli_options import add_stage_parser

    p = add_stage_parser(
        sub, "audit", AuditConfig,
        help="how unlike the reference is the contrast: WordNet classes, a 'which dataset?' classifier, captions",
        description=DESCRIPTION, examples=EXAMPLES,
    )
    p.set_defaults(func=run)


def summary_lines(audit: dict[str, Any]) -> list[str]:
    """What the command prints: one line per level that ran, one per level that could not."""
    s = audit["summary"]
    c, i, lab = s["class_level"], s["image_level"], s["label_level"]
    lines = []
    if c["wnid_overlap"] is not None:
        lines.append(f"class level: {c['wnid_overlap']} shared wnids, {c['lemma_overlap']} shared lemmas, "
                     f"{c['ancestors']} ancestors, {c['descendants']} descendants, mean path distance "
                     f"{c['mean_path_distance']:.2f}")
    if i["accuracy"] is not None:
        lines.append(f"image level: {i['model']} tells them apart at {100 * i['accuracy']:.1f}% "
                     f"(CI {100 * i['ci_low']:.1f}-{100 * i['ci_high']:.1f}, n={i['n_test']}); best statistic "
                     f"{i['best_statistic']} at {100 * i['best_statistic_accuracy']:.1f}%")
    parts = []
    if lab["median_similarity"] is not None:
        parts.append(f"median similarity {lab['median_similarity']:.3f}")
    if lab["multi_lemma_share"] is not None:
        parts.append(f"{100 * lab['multi_lemma_share']:.1f}% of captions name another class")
    if lab["label_issues"] is not None:
        parts.append(f"{lab['label_issues']} likely label errors in {lab['label_issues_checked']} validation images")
    if parts:
        lines.append("label level: " + ", ".join(parts))
    for level, why in audit["skipped"].items():
        if not why.startswith("not requested"):
            lines.append(f"{level} level not run: {why}")
    out = audit["config"]["out"]
    lines.append(f"audit: {out}/audit.md  {out}/audit.json")
    return lines


def run(args: argparse.Namespace) -> int:
    from imagenot.audit.config import AuditConfig
    from imagenot.audit.pipeline import run_audit
    from imagenot.cli_options import config_from_args

    audit = run_audit(config_from_args(AuditConfig, args))
    print("\n".join(summary_lines(audit)))
    return 0
