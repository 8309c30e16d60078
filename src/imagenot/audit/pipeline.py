"""`run_audit(cfg)`: check every input, then run the class, image and label levels and write the audit folder.

    OUT/audit.json        everything, JSON-ready, with a top-level `summary`
    OUT/audit.md          the findings in words, numbers with intervals
    OUT/plots/*.png       lexnames, path distances, image samples and statistics, similarities, label issues
    OUT/contact_sheet.png images with captions per class, and the likely label errors
    OUT/config.json       the resolved AuditConfig (rerun with --config)
    OUT/manifest.json     config, environment, input fingerprints
    OUT/levels/*.json     each finished level with the key of its inputs: a rerun reuses it (--force redoes)

Every input is checked before the folder is created (unknown dataset, empty dataset, a run on another
dataset, a bad class list), so a failed audit leaves nothing behind.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imagenot import __version__, rundir, runtime
from imagenot.audit import class_level as CL
from imagenot.audit.config import AuditConfig, absolute
from imagenot.audit.dataset_meta import SampleTable, folder_fingerprint, is_download_folder, wds_root
from imagenot.config import to_dict, to_record
from imagenot.errors import InputError
from imagenot.fileio import json_digest, read_json, sha256_file, write_json, write_manifest
from imagenot.lock import locks_output

log = logging.getLogger(__name__)

# Bumped whenever a level's section changes shape, so that a rerun never reuses a section it cannot read.
SECTION_FORMAT = 1


@dataclass
class Plan:
    """What the checked inputs allow: the class sets, the levels to run, and why others are skipped."""

    cfg: AuditConfig
    reference_classes: CL.ClassSet | None = None
    contrast_classes: CL.ClassSet | None = None
    run: Any = None  # label_issues.ContrastRun
    levels: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    inputs: dict[str, str] = field(default_factory=dict)


def _check_spec(spec: str, side: str) -> None:
    from imagenot.data import list_datasets, parse_spec
    from imagenot.wordnet.references import REFERENCES

    name, arg = parse_spec(spec)
    known = {shown.split(":")[0].split("[")[0] for shown, _ in list_datasets()}
    if name not in known:
        hint = (f"; {name} is a class set: pass it as --{side}-classes {name}" if name in REFERENCES else "")
        raise InputError(f"unknown {side} dataset spec {spec!r}; known: {', '.join(sorted(known))}{hint}")


def _count(spec: str, cfg: AuditConfig, side: str) -> int:
    from imagenot.audit.image_level import count_images

    n = count_images(spec, cfg, cfg.samples_per_dataset * (2 if cfg.reference == cfg.contrast else 1))
    if n == 0:
        raise InputError(f"{side} dataset {spec} has no images in its {cfg.split} split")
    return n


def _fingerprint(spec: str | None) -> str | None:
    root = wds_root(spec)
    if root is not None:
        return folder_fingerprint(root)
    return spec


def prepare(cfg: AuditConfig) -> Plan:
    """Check the inputs and decide the levels; raises InputError and writes nothing."""
    plan = Plan(cfg)
    have_data = bool(cfg.reference and cfg.contrast)
    if not have_data and not (
            (cfg.reference or cfg.reference_classes) and (cfg.contrast or cfg.contrast_classes)):
        raise InputError("nothing to compare: give --reference and --contrast datasets, or class sets with "
                         "--reference-classes and --contrast-classes")
    for spec, side in ((cfg.reference, "reference"), (cfg.contrast, "contrast")):
        if spec:
            _check_spec(spec, side)
    if cfg.contrast_run and not cfg.contrast:
        raise InputError("--contrast-run needs the --contrast dataset it was trained on")
    wanted = list(cfg.levels)
    if "class" in wanted:
        plan.reference_classes, why_r = CL.resolve_class_set(cfg.reference_classes, cfg.reference, "reference")
        plan.contrast_classes, why_c = CL.resolve_class_set(cfg.contrast_classes, cfg.contrast, "contrast")
        if plan.reference_classes and plan.contrast_classes:
            plan.levels.append("class")
        else:
            plan.skipped["class"] = "; ".join(w for w in (why_r, why_c) if w)
    if "image" in wanted:
        if have_data:
            assert cfg.reference and cfg.contrast
            from imagenot.models import check_input_size

            check_input_size(cfg.model, cfg.image_size)  # unknown model or too small an image: before any output
            _count(cfg.reference, cfg, "reference")
            if cfg.contrast != cfg.reference:
                _count(cfg.contrast, cfg, "contrast")
            plan.levels.append("image")
        else:
            plan.skipped["image"] = "no images: the image level needs both --reference and --contrast datasets"
    if "label" in wanted:
        root = wds_root(cfg.contrast)
        download = root is not None and is_download_folder(root)
        if cfg.contrast_run:
            assert cfg.contrast
            from imagenot.audit.label_issues import load_contrast_run

            plan.run = load_contrast_run(cfg.contrast_run, cfg.contrast, _dataset_classes(cfg.contrast))
            plan.inputs["contrast_run_checkpoint"] = sha256_file(rundir.checkpoint_path(plan.run.path))
        if download or plan.run is not None:
            plan.levels.append("label")
        else:
            plan.skipped["label"] = ("the contrast is not a dataset folder made by `imagenot download` (wds:PATH "
                                     "with dataset.json and classes.tsv) and no --contrast-run was given"
                                     if cfg.contrast else "no contrast dataset given")
    elif cfg.contrast_run:
        log.warning("--contrast-run is ignored: the label level is not among --levels")
    for level in ("class", "image", "label"):
        if level not in wanted:
            plan.skipped[level] = "not requested (--levels)"
    for spec, side in ((cfg.reference, "reference"), (cfg.contrast, "contrast")):
        fp = _fingerprint(spec)
        if fp:
            plan.inputs[f"{side}_dataset"] = fp
    return plan


def _dataset_classes(spec: str) -> list[str]:
    from imagenot.data import get_dataset

    return list(get_dataset(spec, "val", in_memory=False).classes)


# -- levels --------------------------------------------------------------------------------------------------
_LEVEL_FIELDS = {
    "class": ("reference", "contrast", "reference_classes", "contrast_classes"),
    "image": ("reference", "contrast", "image_size", "channels", "samples_per_dataset", "split", "test_fraction",
              "model", "epochs", "min_steps", "batch_size", "lr", "weight_decay", "augment_padding", "confidence", "seed"),
    "label": ("contrast", "contrast_run", "match_mode", "sheet_classes", "sheet_per_class", "caption_chars",
              "filter_by", "issue_examples", "confidence", "seed"),
}


def _level_key(plan: Plan, level: str) -> str:
    cfg = to_dict(plan.cfg)
    data: dict[str, Any] = {k: cfg[k] for k in _LEVEL_FIELDS[level]}
    wanted = {"class": (), "image": ("reference_dataset", "contrast_dataset"),
              "label": ("contrast_dataset", "contrast_run_checkpoint")}[level]
    data["inputs"] = {k: v for k, v in plan.inputs.items() if k in wanted}
    data["version"] = [__version__, SECTION_FORMAT]
    if level == "class":
        data["wnids"] = [plan.reference_classes.wnids if plan.reference_classes else None,
                         plan.contrast_classes.wnids if plan.contrast_classes else None]
    return json_digest(data)


def _cached(out: Path, level: str, key: str) -> dict[str, Any] | None:
    path = out / "levels" / f"{level}.json"
    if not path.is_file():
        return None
    try:
        saved = read_json(path)
    except (OSError, json.JSONDecodeError):
        return None
    if saved.get("key") != key:
        return None
    section = saved.get("section")
    for rel in (section or {}).get("plots", {}).values():
        if not (out / rel).is_file():
            return None
    return section


def _class_level(plan: Plan, out: Path) -> dict[str, Any]:
    from imagenot.audit import plots

    assert plan.reference_classes and plan.contrast_classes
    t0 = time.perf_counter()
    section = CL.class_level(plan.reference_classes, plan.contrast_classes)
    pdir = out / "plots"
    files = {
        "lexnames": plots.lexnames(pdir / "lexnames.png", section["reference"]["lexnames"],
                                   section["contrast"]["lexnames"]),
        "path_distance": plots.path_distances(pdir / "path_distance.png", section["path_distance"]["histogram"],
                                              section["path_distance"]["mean"]),
    }
    section["plots"] = {k: str(Path("plots") / Path(v).name) for k, v in files.items()}
    section["seconds"] = round(time.perf_counter() - t0, 2)
    return section


def _tables(plan: Plan) -> dict[str, SampleTable | None]:
    from imagenot.audit.dataset_meta import read_sample_table

    tables: dict[str, SampleTable | None] = {}
    for spec in {plan.cfg.reference, plan.cfg.contrast} - {None}:
        root = wds_root(spec)
        if root is not None and is_download_folder(root):
            tables[str(spec)] = read_sample_table(root, progress_enabled=plan.cfg.progress)
    return tables


def _label_level(plan: Plan, out: Path, tables: dict[str, SampleTable | None]) -> dict[str, Any]:
    from imagenot.audit import plots
    from imagenot.audit.label_level import dataset_classes, label_level, mining_threshold

    cfg = plan.cfg
    assert cfg.contrast
    t0 = time.perf_counter()
    root = wds_root(cfg.contrast)
    table = tables.get(cfg.contrast)
    files: dict[str, str] = {}
    if table is not None and root is not None:
        classes = dataset_classes(root)
        section = label_level(table, classes, cfg.match_mode)
        section["threshold"] = mining_threshold(root)
        names = [c.name for c in classes]
        labels = table.columns["label"]
        sims = table.columns["similarity"]
        per = [(c.name, [float(s) for lab, s in zip(labels, sims) if lab == c.index and s is not None])
               for c in classes]
        if section["with_similarity"]:
            files["similarity"] = plots.similarity(out / "plots" / "similarity.png", per, section["threshold"])
        captions = dict(zip(table.columns["key"], table.columns["caption"]))
    else:
        section = {"images": None, "similarity": None, "names_other_class_share": None,
                   "note": "the contrast is not a dataset folder made by `imagenot download`: no captions"}
        names = _dataset_classes(cfg.contrast)
        captions = {}
    section["label_issues"] = None
    if plan.run is not None:
        from imagenot.audit.label_issues import label_issues

        issues = label_issues(plan.run, cfg.contrast, names, cfg, captions)
        section["label_issues"] = issues
        files["label_issues"] = plots.label_issues(
            out / "plots" / "label_issues.png", [p["name"] for p in issues["per_class"]],
            [p["issues"] for p in issues["per_class"]], [p["checked"] for p in issues["per_class"]])
    examples = section["label_issues"]["examples"] if section["label_issues"] else []
    sheet = _contact_sheet(plan, out, names, examples)
    if sheet:
        files["contact_sheet"] = sheet
    section["plots"] = {k: str(Path(v).relative_to(out)) for k, v in files.items()}
    section["seconds"] = round(time.perf_counter() - t0, 2)
    return section


def _contact_sheet(plan: Plan, out: Path, names: list[str], issues: list[dict[str, Any]]) -> str | None:
    """Images with captions of the first classes (train split first), then the label-issue examples."""
    from imagenot.data.contact_sheet import Tile, decode, render

    cfg = plan.cfg
    assert cfg.contrast
    root = wds_root(cfg.contrast)
    by_class: dict[int, list[Tile]] = {}
    issue_tiles: dict[str, Tile] = {}
    want_issue = {e["key"]: e for e in issues if e.get("key")}
    if root is not None and is_download_folder(root):
        from imagenot.data.readers.files import iter_wds_samples

        shown = set(range(min(cfg.sheet_classes, len(names))))
        for split in ("train", "val"):
            need_rows = any(len(by_class.get(c, [])) < cfg.sheet_per_class for c in shown)
            need_issues = split == "val" and len(issue_tiles) < len(want_issue)
            if not (need_rows or need_issues):
                continue
            for s in iter_wds_samples(root, split):
                lab = int(s["label"])
                caption = (s["meta"] or {}).get("caption") if isinstance(s["meta"], dict) else None
                if lab in shown and len(by_class.setdefault(lab, [])) < cfg.sheet_per_class:
                    by_class[lab].append(Tile(decode(s["image"]), caption or ""))
                if s["key"] in want_issue and s["key"] not in issue_tiles:
                    issue_tiles[s["key"]] = _issue_tile(decode(s["image"]), want_issue[s["key"]], caption)
                if (all(len(by_class.get(c, [])) >= cfg.sheet_per_class for c in shown)
                        and (split != "val" or len(issue_tiles) >= len(want_issue))):
                    break
    elif want_issue:
        from PIL import Image

        from imagenot.data.orientation import upright

        for key, e in want_issue.items():
            try:
                with Image.open(key) as im:
                    issue_tiles[key] = _issue_tile(upright(im).convert("RGB"), e, None)
            except OSError:
                continue
    rows = [(f"{c} {names[c]}", by_class[c]) for c in sorted(by_class) if by_class[c]]
    ordered_issues = [issue_tiles[e["key"]] for e in issues if e.get("key") in issue_tiles]
    if not rows and not ordered_issues:
        return None
    title = f"{cfg.contrast}: {len(rows)} of {len(names)} classes, captions cut to {cfg.caption_chars} characters"
    return render(out / "contact_sheet.png", rows, title, cfg.caption_chars, ordered_issues,
                  "Likely label errors (confident learning on the run's validation predictions), lowest "
                  "probability of the given label first")


def _issue_tile(image: Any, e: dict[str, Any], caption: str | None) -> Any:
    from imagenot.data.contact_sheet import Tile

    note = f"{e['given_name']} -> {e['predicted_name']} ({e['predicted_probability']:.2f})"
    return Tile(image, caption or e.get("caption") or "", note)


# -- the whole audit -----------------------------------------------------------------------------------------
@locks_output(lambda cfg, *args, **kwargs: cfg.out)
def run_audit(cfg: AuditConfig) -> dict[str, Any]:
    """Run the audit described by `cfg`; returns the content of audit.json."""
    from imagenot.audit.image_level import clear_cache

    cfg = absolute(cfg)
    clear_cache()
    try:
        with runtime.torch_settings(cfg.threads):  # the thread count is put back afterwards
            return _run(cfg)
    finally:
        clear_cache()


def _run(cfg: AuditConfig) -> dict[str, Any]:
    from imagenot.audit.class_level import class_summary
    from imagenot.audit.image_level import image_summary
    from imagenot.audit.label_level import label_summary
    from imagenot.audit.report import write_report

    t_start = time.perf_counter()
    plan = prepare(cfg)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "config.json", to_record(cfg))
    sections: dict[str, dict[str, Any] | None] = {"class": None, "image": None, "label": None}
    reused: list[str] = []
    tables: dict[str, SampleTable | None] | None = None
    for level in ("class", "image", "label"):
        if level not in plan.levels:
            continue
        key = _level_key(plan, level)
        section = None if cfg.force else _cached(out, level, key)
        if section is not None:
            log.info("audit: %s level reused from %s", level, out / "levels")
            reused.append(level)
        else:
            log.info("audit: %s level ...", level)
            if level == "class":
                section = _class_level(plan, out)
            else:
                if tables is None:
                    tables = _tables(plan)
                if level == "image":
                    from imagenot.audit.image_level import image_level

                    section = image_level(cfg, tables, out / "plots")
                else:
                    section = _label_level(plan, out, tables)
            write_json(out / "levels" / f"{level}.json", {"key": key, "section": section})
        sections[level] = section
    audit = {
        "summary": {
            "class_level": class_summary(sections["class"]),
            "image_level": image_summary(sections["image"]),
            "label_level": label_summary(sections["label"]),
        },
        "reference": {"dataset": cfg.reference,
                      "classes": plan.reference_classes.source if plan.reference_classes else None},
        "contrast": {"dataset": cfg.contrast,
                     "classes": plan.contrast_classes.source if plan.contrast_classes else None,
                     "run": cfg.contrast_run},
        "class_level": sections["class"],
        "image_level": sections["image"],
        "label_level": sections["label"],
        "skipped": plan.skipped,
        "reused_levels": reused,
        "seconds": round(time.perf_counter() - t_start, 2),
        "tool": {"name": "imagenot", "version": __version__},
        "config": to_record(cfg),
    }
    write_report(out / "audit.md", audit)
    write_manifest(out, to_record(cfg), plan.inputs, levels=plan.levels, skipped=plan.skipped)
    write_json(out / "audit.json", audit)
    log.info("audit written to %s in %.1f s", out, audit["seconds"])
    return audit

