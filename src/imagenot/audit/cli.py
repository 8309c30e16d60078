"""`imagenot audit`: how unlike the reference is the contrast (class, image and label level)."""

from __future__ import annotations

import argparse
import logging

log = logging.getLogger(__name__)

EPILOG = """examples:
  # the demo's contrast against Fashion-MNIST, with label errors from a trained run
  imagenot audit --reference fashion-mnist --contrast wds:demo-out/clipart-not \\
      --contrast-run demo-out/runs/clipart-not/resnet_s32/seed0 --out demo-out/audit

  # class level only: the released ImageNot list against ImageNet-1k (no images needed)
  imagenot audit --reference-classes imagenet-1k --contrast-classes imagenot_classes.txt --out audit-imagenot
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "audit",
        help="how unlike the reference is the contrast: WordNet classes, a 'which dataset?' classifier, captions",
        description=(
            "Compare a reference and a contrast dataset at three levels and write audit.json, audit.md, plots/ "
            "and contact_sheet.png into --out. Class level: shared wnids and lemmas, ancestors and descendants, "
            "lexnames and WordNet path distances. Image level: held-out accuracy (with a Clopper-Pearson "
            "interval) of a small CNN and of simple image statistics at telling the two datasets apart. Label "
            "level (a contrast made by `imagenot download`): caption-query similarities and captions naming "
            "other classes per class, and, with --contrast-run, likely label errors by confident learning. "
            "A rerun reuses finished levels."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    src = p.add_argument_group("inputs")
    src.add_argument("--reference", metavar="SPEC", help="reference dataset spec (fashion-mnist, wds:PATH, "
                     "imagefolder:PATH, ...)")
    src.add_argument("--contrast", metavar="SPEC", help="contrast dataset spec (typically wds:PATH from "
                     "`imagenot download`)")
    src.add_argument("--reference-classes", metavar="SET", help="reference class set instead of the dataset's: "
                     "imagenet-1k, fashion-mnist, a classes.tsv or a wnid file")
    src.add_argument("--contrast-classes", metavar="SET", help="contrast class set instead of the dataset's "
                     "(same forms, e.g. imagenot_classes.txt)")
    src.add_argument("--contrast-run", metavar="RUN_DIR", help="a finished training run on the contrast: its "
                     "validation predictions give the likely label errors")
    src.add_argument("--levels", metavar="LEVEL,...", help="levels to run: class,image,label (default all that "
                     "the inputs allow)")
    src.add_argument("--config", metavar="FILE", help="rerun from a config.json written by an earlier audit")
    img = p.add_argument_group("image level")
    img.add_argument("--image-size", type=int, help="common image side in px (default 32)")
    img.add_argument("--channels", type=int, choices=(1, 3), help="common channel count (default 3)")
    img.add_argument("--samples-per-dataset", type=int, help="images drawn from each dataset (default 1000)")
    img.add_argument("--split", choices=("train", "val"), help="split the images come from (default train)")
    img.add_argument("--test-fraction", type=float, help="held-out share of the drawn images (default 0.3)")
    img.add_argument("--model", help="registry model of the dataset classifier (default resnet_s32)")
    img.add_argument("--epochs", type=int, help="classifier training epochs (default 3)")
    img.add_argument("--min-steps", type=int, help="at least this many classifier steps; small samples get "
                     "more epochs (default 60)")
    img.add_argument("--batch-size", type=int, help="classifier batch size (default 64)")
    img.add_argument("--lr", type=float, help="classifier AdamW learning rate (default 2e-3)")
    img.add_argument("--weight-decay", type=float, help="classifier AdamW weight decay (default 0.05)")
    img.add_argument("--augment-padding", type=int, help="random-crop padding of the classifier's training "
                     "augmentation, with flips (default 4; 0 for flips only)")
    img.add_argument("--confidence", type=float, help="level of the binomial intervals (default 0.95)")
    lab = p.add_argument_group("label level")
    lab.add_argument("--match-mode", choices=("laionet", "relaxed"), help="caption matching rule (default "
                     "laionet, as mined)")
    lab.add_argument("--sheet-classes", type=int, help="classes in contact_sheet.png (default 20)")
    lab.add_argument("--sheet-per-class", type=int, help="images per class in contact_sheet.png (default 4)")
    lab.add_argument("--caption-chars", type=int, help="caption length in the contact sheet (default 80)")
    lab.add_argument("--filter-by", choices=("prune_by_noise_rate", "prune_by_class", "both",
                                             "confident_learning", "predicted_neq_given"),
                     help="cleanlab find_label_issues method (default prune_by_noise_rate)")
    lab.add_argument("--issue-examples", type=int, help="label errors shown in the contact sheet (default 12)")
    lab.add_argument("--eval-batch-size", type=int, help="batch size evaluating the contrast run (default 256)")
    run_g = p.add_argument_group("execution")
    run_g.add_argument("--out", metavar="DIR", help="output folder (default audit)")
    run_g.add_argument("--seed", type=int, help="seed of draws, held-out split and training (default 0)")
    run_g.add_argument("--threads", type=int, help="torch CPU threads")
    run_g.add_argument("--no-progress", dest="progress", action="store_false", default=None,
                       help="no progress bars or rate lines")
    run_g.add_argument("--force", action="store_true", default=None,
                       help="recompute every level instead of reusing finished ones")
    p.set_defaults(func=run)


_FIELDS = ("reference", "contrast", "reference_classes", "contrast_classes", "contrast_run", "levels", "out",
           "image_size", "channels", "samples_per_dataset", "split", "test_fraction", "model", "epochs",
           "min_steps", "batch_size", "lr", "weight_decay", "augment_padding", "confidence", "match_mode", "sheet_classes",
           "sheet_per_class", "caption_chars", "filter_by", "issue_examples", "eval_batch_size", "seed",
           "threads", "progress", "force")


def run(args: argparse.Namespace) -> int:
    from imagenot.audit.config import AuditConfig
    from imagenot.audit.pipeline import run_audit
    from imagenot.config import resolve

    cfg = resolve(AuditConfig, config_file=args.config, overrides={k: getattr(args, k) for k in _FIELDS})
    audit = run_audit(cfg)
    s = audit["summary"]
    out = audit["config"]["out"]
    c, i, lab = s["class_level"], s["image_level"], s["label_level"]
    if c["wnid_overlap"] is not None:
        print(f"class level: {c['wnid_overlap']} shared wnids, {c['lemma_overlap']} shared lemmas, "
              f"{c['ancestors']} ancestors, {c['descendants']} descendants, mean path distance "
              f"{c['mean_path_distance']:.2f}")
    if i["accuracy"] is not None:
        print(f"image level: {i['model']} tells them apart at {100 * i['accuracy']:.1f}% "
              f"(CI {100 * i['ci_low']:.1f}-{100 * i['ci_high']:.1f}, n={i['n_test']}); best statistic "
              f"{i['best_statistic']} at {100 * i['best_statistic_accuracy']:.1f}%")
    if lab["median_similarity"] is not None or lab["label_issues"] is not None:
        parts = []
        if lab["median_similarity"] is not None:
            parts.append(f"median similarity {lab['median_similarity']:.3f}")
        if lab["multi_lemma_share"] is not None:
            parts.append(f"{100 * lab['multi_lemma_share']:.1f}% of captions name another class")
        if lab["label_issues"] is not None:
            parts.append(f"{lab['label_issues']} likely label errors in {lab['label_issues_checked']} "
                         "validation images")
        print("label level: " + ", ".join(parts))
    for level, why in audit["skipped"].items():
        if not why.startswith("not requested"):
            print(f"{level} level not run: {why}")
    print(f"audit: {out}/audit.md  {out}/audit.json")
    return 0
