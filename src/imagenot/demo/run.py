"""`imagenot demo`: the study in miniature, end to end, on data that installs from the package registries.

Fashion-MNIST plays ImageNet (a curated, human-labelled benchmark); "clipart-not", built here by the tool's
own classes -> mine -> download stages from the @iconify/json icon sets (or the Open Clip Art Library), plays
ImageNot (WordNet classes disjoint from the reference, images chosen by caption text alone); Animal-MNIST plays CIFAR-10 (the transfer
target). Six small-input architecture families are trained on both with one recipe, fine-tuned on the
target, and the report says whether their ranking survived. Every stage skips what a previous run finished.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from imagenot import datacard, safepath
from imagenot.config import to_dict, to_record
from imagenot.demo.budget import plateau_file
from imagenot.demo.config import DemoConfig
from imagenot.demo.stages import StageRunner
from imagenot.fileio import read_json, write_json, write_manifest
from imagenot.lock import locks_output

log = logging.getLogger(__name__)


CORPUS_TITLES = {"openclipart": "Open Clip Art", "iconify": "@iconify/json icon sets",
                 "openclipart+iconify": "Open Clip Art and @iconify/json icon sets"}


class DemoPaths:
    def __init__(self, out: Path) -> None:
        self.out = out
        self.pool = out / "classes" / "pool.tsv"
        self.mine = out / "mine"
        self.dataset = out / "clipart-not"
        self.runs = out / "runs"
        self.audit = out / "audit"
        self.report = out / "report"
        self.summary = out / "summary.md"


def _classes(cfg: DemoConfig, p: DemoPaths) -> str:
    from imagenot.wordnet.classes import PoolOptions, build_pool, write_classes
    from imagenot.wordnet.references import reference_wnids

    rows = build_pool(reference_wnids(cfg.reference_classes),
                      PoolOptions(exclude_hierarchy=cfg.exclude_hierarchy, root=cfg.root))
    write_classes(p.pool, rows)
    return f"{len(rows)} WordNet noun classes disjoint from {cfg.reference_classes} (pool)"


def _mine(cfg: DemoConfig, p: DemoPaths) -> str:
    from imagenot.mining.config import MineConfig
    from imagenot.mining.pipeline import mine

    res = mine(MineConfig(
        corpus=cfg.corpus, classes=str(p.pool), out=str(p.mine), allow_local=True, pool=True,
        encoder=cfg.encoder, threshold=cfg.threshold, num_classes=cfg.num_classes,
        min_matches_per_class=cfg.min_per_class, max_per_class=cfg.max_per_class, val_per_class=cfg.val_per_class,
        class_choice=cfg.class_choice, seed=cfg.seed, hist_classes=cfg.num_classes,
    ))
    s = res.stats
    return (f"{s.get('rows_read', 0)} captions, {s.get('matched', 0)} matched, "
            f"{s.get('above_threshold', 0)} above threshold; {len(res.selected)} classes selected")


def _download(cfg: DemoConfig, p: DemoPaths) -> str:
    from imagenot.download import DownloadConfig, run_download

    card = run_download(DownloadConfig(
        matches=str(p.mine / "selected.parquet"), out=str(p.dataset), name="clipart-not",
        image_size=cfg.image_size, allow_local=True, processes=min(2, os.cpu_count() or 1),
        near_dup_distance=cfg.near_dup_distance, min_images_per_class=cfg.min_images_per_class, seed=cfg.seed,
        text_filter=cfg.text_filter, text_filter_fraction=cfg.text_filter_fraction if cfg.text_filter != "off" else 1.0,
    ), command="imagenot demo")
    counts = {k: v.get("count", v) if isinstance(v, dict) else v for k, v in card.get("splits", {}).items()}
    summary = f"{len(card.get('classes', []))} classes, splits {counts}"
    tf = card.get("text_filter") or {}
    if tf.get("mode") not in (None, "off") and tf.get("checked"):
        summary += f"; text in image: {tf.get('text_in_image', 0)} of {tf['checked']} OCR'd"
    return summary


def zoo_plan(cfg: DemoConfig, p: DemoPaths) -> Any:
    """The demo's zoo: also what scripts/demo_budget_sweep.py multiplies."""
    from imagenot.zoo.plan import ZooDataset, ZooPlan, ZooTransfer

    reference_options: dict[str, Any] = {}
    if cfg.reference_limit_per_class:
        reference_options["train.limit_per_class"] = cfg.reference_limit_per_class
    if cfg.reference_val_limit:
        reference_options["val.limit"] = cfg.reference_val_limit
    return ZooPlan(
        out=str(p.runs), models=cfg.models, seeds=tuple(cfg.seeds), recipe=cfg.recipe, epochs=cfg.epochs,
        batch_size=cfg.batch_size, image_size=32, threads=cfg.threads, eval_every=0,
        datasets=(
            ZooDataset(cfg.reference, role="reference", name="fashion-mnist", options=reference_options),
            ZooDataset(f"wds:{p.dataset}", role="contrast", name="clipart-not", epochs=cfg.contrast_epochs),
        ),
        transfer=(ZooTransfer(cfg.transfer, name="animal-mnist", modes=(cfg.finetune_mode,),
                              epochs=cfg.finetune_epochs,
                              options={"train.limit_per_class": cfg.transfer_limit_per_class}),),
    )


def _zoo(cfg: DemoConfig, p: DemoPaths) -> str:
    from imagenot.zoo.run import run_zoo

    results = run_zoo(zoo_plan(cfg, p))
    n_pre = sum(1 for r in results if r.get("role") != "transfer")
    return f"{n_pre} pretraining runs and {len(results) - n_pre} fine-tunes finished"


def audit_run(cfg: DemoConfig, p: DemoPaths) -> Path:
    """The contrast run whose out-of-sample predictions the audit's confident learning uses: the best family
    of the demo on the contrast side is not known in advance, so the first ResNet variant (else the first
    model) of the first seed."""
    model = next((m for m in cfg.models if m.startswith("resnet")), cfg.models[0])
    return p.runs / "clipart-not" / safepath.component(model, "demo model name") / f"seed{cfg.seeds[0]}"


def _audit(cfg: DemoConfig, p: DemoPaths) -> str:
    from imagenot.audit import AuditConfig, run_audit

    result = run_audit(AuditConfig(reference=cfg.reference, contrast=f"wds:{p.dataset}", out=str(p.audit),
                                   contrast_run=str(audit_run(cfg, p)), samples_per_dataset=cfg.audit_samples,
                                   seed=cfg.seed, threads=cfg.threads, progress=False))
    image = (result.get("summary") or {}).get("image_level") or {}
    label = (result.get("summary") or {}).get("label_level") or {}
    parts = []
    if image.get("accuracy") is not None:
        parts.append(f"the datasets are told apart with {100 * image['accuracy']:.1f}% accuracy")
    if label.get("label_issues") is not None:
        parts.append(f"{label['label_issues']} of {label.get('label_issues_checked')} contrast val images "
                     "flagged as likely label errors")
    return "; ".join(parts) or "audit written"


def _report(cfg: DemoConfig, p: DemoPaths) -> str:
    from imagenot.analysis.config import ReportConfig
    from imagenot.analysis.pipeline import run_report

    audit = p.audit / "audit.json"
    plateau = plateau_file(cfg)
    run_report(ReportConfig(runs=(str(p.runs),), out=str(p.report), reference="fashion-mnist",
                            contrast="clipart-not", audit=str(audit) if audit.is_file() else None,
                            plateau=str(plateau) if plateau else None,
                            title=f"imagenot demo: Fashion-MNIST vs clipart-not ({CORPUS_TITLES[cfg.corpus]})"))
    stats = read_json(p.report / "stats.json")
    return _headline(stats)


def _summary(cfg: DemoConfig, p: DemoPaths, runner: StageRunner) -> str:
    from imagenot.demo.summary import write_summary

    write_summary(cfg, p, runner.timings())
    return f"{p.summary.name} (the README's demo section: python scripts/update_readme.py {p.out})"


def _headline(stats: dict[str, Any]) -> str:
    main = stats.get("main", {})
    rank = main.get("rank", {}) or {}
    tau = rank.get("kendall_tau")
    n = main.get("n_models") or rank.get("n")
    if tau is None:
        return "report written"
    return f"Kendall tau {tau:.2f} over {n} models"


@locks_output(lambda cfg, *args, **kwargs: cfg.out)
def run_demo(cfg: DemoConfig, echo: Any = print) -> Path:
    """Run (or resume) every stage; returns the report folder."""
    from imagenot.zoo.plan import validate_plan

    t0 = time.perf_counter()
    out = Path(cfg.out)
    p = DemoPaths(out)
    # The zoo's models, recipe and image size are checked now, not after three stages of mining and download.
    validate_plan(zoo_plan(cfg, p))
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "config.json", to_record(cfg))
    runner = StageRunner(out, echo=echo)
    keys = stage_keys(cfg)
    runner.run("classes", lambda: _classes(cfg, p), lambda: p.pool.exists(), keys["classes"])
    runner.run("mine", lambda: _mine(cfg, p), lambda: (p.mine / "selected.parquet").exists(), keys["mine"])
    runner.run("download", lambda: _download(cfg, p), lambda: datacard.has_card(p.dataset),
               keys["download"])
    runner.run("zoo", lambda: _zoo(cfg, p), lambda: _zoo_done(cfg, p), keys["zoo"])
    if cfg.audit:
        runner.run("audit", lambda: _audit(cfg, p), lambda: (p.audit / "audit.json").exists(), keys["audit"])
    runner.run("report", lambda: _report(cfg, p), lambda: (p.report / "report.html").exists(), keys["report"])
    runner.run("summary", lambda: _summary(cfg, p, runner), lambda: _summary_current(p), keys["summary"])
    write_manifest(out, to_dict(cfg))
    echo("")
    echo(runner.table())
    echo(f"\n[demo] finished in {time.perf_counter() - t0:.0f} s; open {p.report / 'report.html'}")
    return p.report


# The settings each stage depends on; a stage reruns when these (or an earlier stage's) change.
_STAGE_FIELDS = {
    "classes": ("reference_classes", "root", "exclude_hierarchy"),
    "mine": ("corpus", "encoder", "threshold", "num_classes", "class_choice", "min_per_class", "max_per_class",
             "val_per_class", "seed"),
    "download": ("image_size", "near_dup_distance", "min_images_per_class", "text_filter", "text_filter_fraction"),
    "zoo": ("models", "seeds", "recipe", "epochs", "contrast_epochs", "batch_size", "reference",
            "reference_limit_per_class", "reference_val_limit", "finetune_epochs", "finetune_mode", "transfer",
            "transfer_limit_per_class"),
    "audit": ("audit", "audit_samples"),
    "report": (),
    "summary": (),
}


def stage_keys(cfg: DemoConfig) -> dict[str, str]:
    settings = to_dict(cfg)
    keys, acc = {}, hashlib.sha256()
    for stage, fields in _STAGE_FIELDS.items():
        acc.update(json.dumps({f: settings[f] for f in fields}, sort_keys=True).encode())
        keys[stage] = acc.copy().hexdigest()[:16]
    return keys


def _summary_current(p: DemoPaths) -> bool:
    """summary.md exists and is newer than the report and the audit it summarises."""
    if not p.summary.exists():
        return False
    sources = [p.report / "stats.json", p.audit / "audit.json"]
    return all(p.summary.stat().st_mtime_ns >= s.stat().st_mtime_ns for s in sources if s.exists())


def _zoo_done(cfg: DemoConfig, p: DemoPaths) -> bool:
    from imagenot import rundir
    from imagenot.zoo.run import jobs

    return all(rundir.is_finished(j.run_dir) for j in jobs(zoo_plan(cfg, p)))
