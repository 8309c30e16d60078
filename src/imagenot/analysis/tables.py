"""The report's tables: models with their intervals and ranks, the datasets with links to their cards,
the agreement statistics, each source of noise, the fits; and the two CSV tables beside the report
(models.csv: every model's interval; pairs.csv: every pair's test).
"""

from __future__ import annotations

import csv
import logging
import math
import os
from pathlib import Path
from typing import Any

from imagenot import datacard, escape
from imagenot.analysis import stats
from imagenot.analysis.blocks import Block, Heading, Link, Paragraph, table
from imagenot.analysis.comparison import Analysis, Comparison, DatasetInfo
from imagenot.analysis.uncertainty import SideEvidence
from imagenot.analysis.wording import fmt_ci, fmt_num, fmt_p, fmt_range, fmt_value, percent_level, tau_p
from imagenot.fileio import atomic_open
from imagenot.spec import Spec

log = logging.getLogger(__name__)

NOISE_NAMES = {"images": "test images", "seeds": "seeds", "models": "models"}


def _published(analysis: Analysis, dataset: str, model: str) -> bool:
    return any(r["source"] == "published" and r["dataset"] == dataset and r["model"] == model
               for r in analysis.rows)


def models_table(analysis: Analysis) -> list[Block]:
    main = analysis.main
    sides = [(analysis.reference, main.x, main.x_scale, main.evidence_x),
             (analysis.contrast, main.y, main.y_scale, main.evidence_y)]
    ranks: list[dict[str, int]] = []
    for _, values, _, _ in sides:
        names = [m for m in analysis.order if m in values]
        r = stats.ranks([values[m]["mean"] for m in names]) if names else []
        ranks.append(dict(zip(names, (int(v) for v in r))))
    any_ci = any(ev is not None and any(not math.isnan(m.ci_low) for m in ev.models) for *_, ev in sides)
    level = percent_level(float(analysis.settings.get("confidence", 0.95)))
    headers = ["model", "year"]
    for name, _, scale, _ in sides:
        headers += [f"{name}" + ("" if scale == "ratio" or "%" in name else " top-1 (%)")]
        if any_ci:
            headers.append(f"{level} CI")
        headers.append("rank")
    rows = []
    for m in analysis.order:
        row = [m, str(analysis.models[m]["year"] or "")]
        for (name, values, scale, ev), rk in zip(sides, ranks):
            cell = fmt_value(values.get(m), scale)
            if m in values and _published(analysis, name, m):
                cell += " (published)"
            row.append(cell)
            if any_ci:
                acc = ev.accuracy(m) if ev is not None else None
                row.append(fmt_range(acc.ci_low, acc.ci_high) if acc else "")
            row.append(str(rk[m]) if m in rk else "—")
        rows.append(row)
    note = ("Top-1 in percent, or the ratio for datasets given as ratios (mean ± standard deviation over seeds "
            "where there are several); rank 1 is the best model in that column; — means no result.")
    if any_ci:
        note += (f" {level} CI: Clopper-Pearson for one run (from its predictions, or from its validation size "
                 "when it has none), the bootstrap over test images for a mean over seeds.")
    return [table(headers, rows), Paragraph(note, "sub")]


def dataset_links(info: DatasetInfo, out_dir: Path) -> list[Link]:
    """The dataset card and contact sheet of a dataset folder (from a run's dataset_spec), relative to out_dir."""
    links: list[Link] = []
    for spec in info.specs:
        folder = Path(Spec.parse(spec).path or spec).expanduser()
        if not folder.is_absolute() or not folder.is_dir():
            continue
        for name, label in ((datacard.README, "card"), (datacard.CARD, datacard.CARD),
                            (datacard.CONTACT_SHEET, "contact sheet")):
            if (folder / name).is_file():
                links.append(Link(label, Path(os.path.relpath(folder / name, out_dir)).as_posix()))
    return links


def datasets_table(analysis: Analysis, out_dir: Path) -> list[Block]:
    headers = ["dataset", "role", "validation images (n)", "classes (chance)", "epochs", "training images",
               "source", "card", "contact sheet"]
    rows = []
    for info in analysis.datasets.values():
        if info.n_val is not None:
            n = f"{info.n_val:,}"
        elif info.n_val_range:
            n = f"{info.n_val_range[0]:,}–{info.n_val_range[1]:,}"
        else:
            n = "unknown"
        chance = (f"{round(100.0 / info.chance)} ({info.chance:.1f}%)" if info.chance else "unknown")
        links = {link.text: link for link in dataset_links(info, out_dir)}
        card = links.get("card") or links.get(datacard.CARD) or ""
        rows.append([info.name, info.role or "", n, chance, str(info.epochs) if info.epochs else "—",
                     f"{info.train_images:,}" if info.train_images else "—", info.source, card,
                     links.get("contact sheet", "")])
    return [table(headers, rows),
            Paragraph("n is the number of validation images each accuracy rests on; chance is 100 / classes; "
                      "the budget is the epochs and training images of each run (— for published weights or "
                      "when the results do not say).", "sub")]


def stats_table(comp: Comparison) -> tuple[list[str], list[list[str]]]:
    boot = comp.bootstrap or {}
    headers = ["statistic", "value", "p", f"{percent_level(boot.get('confidence', 0.95))} CI (bootstrap)"]
    rows: list[list[str]] = []
    if comp.rank:
        p, how = tau_p(comp)
        rows.append(["Kendall tau-b", fmt_num(comp.rank["kendall_tau"]),
                     fmt_p(p) + (f" ({how})" if comp.permutation else ""), fmt_ci(boot.get("kendall_tau"))])
        rows.append(["Spearman rho", fmt_num(comp.rank["spearman_rho"]), fmt_p(comp.rank["spearman_p"]),
                     fmt_ci(boot.get("spearman_rho"))])
    fit = comp.fits.get(comp.primary_fit)
    if fit:
        rows.append([f"slope ({comp.primary_fit} fit)", fmt_num(fit["slope"]), fmt_p(fit["p"]),
                     fmt_ci(boot.get("slope"), 3)])
        rows.append([f"R^2 ({comp.primary_fit} fit)", fmt_num(fit["r2"]), "", fmt_ci(boot.get("r2"), 3)])
    if comp.order:
        rows.append(["pairs in the same order", f"{comp.order['concordant']} of {comp.order['pairs']}", "", ""])
    return headers, rows


def noise_blocks(comp: Comparison) -> list[Block]:
    """Each source of noise alone: which one makes the agreement statistics uncertain."""
    noise = comp.noise
    if not noise:
        return []
    sources = [s for s in ("images", "seeds", "models") if s in noise]
    level = percent_level(next(iter(noise.values()))["confidence"])
    headers = ["statistic"] + [f"resampling {NOISE_NAMES[s]}" for s in sources]
    fits = [comp.primary_fit] + [h for h in ("logit", "probit") if h != comp.primary_fit
                                 and all(h in noise[s]["fits"] for s in sources)]
    rows = [["Kendall tau"] + [fmt_ci(noise[s]["kendall_tau"]) for s in sources],
            ["Spearman rho"] + [fmt_ci(noise[s]["spearman_rho"]) for s in sources]]
    for how in fits:
        if not all(how in noise[s]["fits"] for s in sources):
            continue
        rows.append([f"slope ({how})"] + [fmt_ci(noise[s]["fits"][how]["slope"], 3) for s in sources])
        rows.append([f"R^2 ({how})"] + [fmt_ci(noise[s]["fits"][how]["r2"], 3) for s in sources])
    widths = {s: noise[s]["kendall_tau"]["high"] - noise[s]["kendall_tau"]["low"] for s in sources
              if not math.isnan(noise[s]["kendall_tau"]["low"])}
    blocks: list[Block] = [Heading(3, "Which source of noise dominates"), table(headers, rows)]
    if len(widths) == 1:
        (only,) = widths
        blocks.append(Paragraph(f"{level} intervals from resampling {NOISE_NAMES[only]} "
                                f"({next(iter(noise.values()))['n_boot']} resamples); the other sources cannot be "
                                "resampled here (one seed per model, no per-image predictions)."))
    elif widths:
        ranked = sorted(widths, key=lambda s: -widths[s])
        text = (f"{level} intervals from resampling one source at a time ({next(iter(noise.values()))['n_boot']} "
                "resamples each). The widest interval of tau comes from resampling "
                + ", then ".join(f"{NOISE_NAMES[s]} ({widths[s]:.2f} wide)" for s in ranked) + ".")
        if "images" not in noise:
            text += " Test images are not resampled: not every paired model has per-image predictions."
        blocks.append(Paragraph(text))
    return blocks


def fits_table(comp: Comparison) -> tuple[list[str], list[list[str]]]:
    headers = ["scale", "n", "slope", "slope s.e.", "intercept", "R^2", "p"]
    rows = []
    for how in stats.FIT_SCALES:
        fit = comp.fits.get(how)
        if fit:
            rows.append([how, str(fit["n"]), fmt_num(fit["slope"], 4), fmt_num(fit["slope_stderr"], 4),
                         fmt_num(fit["intercept"], 4), fmt_num(fit["r2"]), fmt_p(fit["p"])])
    return headers, rows


SUPPORT_CELLS = {"both": "yes (both)", "one": "no (one dataset)", "neither": "no (neither)",
                 "untested": "untested"}
SEED_NOISE_CELLS = {True: "yes", False: "no", None: "unknown (one seed)"}


def _signed_difference(t: Any, sign_of: str) -> str:
    """A pair test's difference and interval as `sign_of` minus the other model ('n/a' without a test)."""
    if t is None:
        return "n/a"
    s = 1.0 if t.model_a == sign_of else -1.0
    lo, hi = sorted((s * t.ci_low, s * t.ci_high))
    return f"{s * t.diff:+.1f} {fmt_range(lo, hi)}"


def flip_support_table(comp: Comparison) -> Block:
    """Each flipped pair's difference, interval and Holm p on both datasets, and whether it is supported."""
    rows = []
    for f in comp.flip_support:
        tx = comp.evidence_x.pair(f.better_on_x, f.better_on_y) if comp.evidence_x else None
        ty = comp.evidence_y.pair(f.better_on_x, f.better_on_y) if comp.evidence_y else None
        rows.append([f"{f.better_on_x} vs {f.better_on_y}", _signed_difference(tx, f.better_on_x), fmt_p(f.p_x),
                     _signed_difference(ty, f.better_on_x), fmt_p(f.p_y), SUPPORT_CELLS[f.support]])
    return table(["flipped pair (a vs b)", f"a - b on {comp.x_name} [CI]", "Holm p",
                  f"a - b on {comp.y_name} [CI]", "Holm p", "supported"], rows)


def flips_table(comp: Comparison) -> Block:
    """The pairs that flip with their accuracies on both sides and whether seed noise covers them."""
    return table([f"better on {comp.x_name}", f"better on {comp.y_name}", comp.x_name, comp.y_name,
                  "within seed noise"],
                 [[f["better_on_x"], f["better_on_y"], f"{f['x'][0]:.2f} vs {f['x'][1]:.2f}",
                   f"{f['y'][0]:.2f} vs {f['y'][1]:.2f}", SEED_NOISE_CELLS[f.get("within_noise")]]
                  for f in (comp.order or {}).get("flips", [])])


def relative_tables(comp: Comparison) -> list[Block]:
    """Each model's improvement over the baseline, and the publication-order steps on both datasets."""
    rel = comp.relative
    if not rel:
        return []
    blocks = [table(["model", comp.x_name, comp.y_name],
                    [[m, fmt_num(rel["x"][m]), fmt_num(rel["y"][m])] for m in comp.models])]
    if rel["steps"]:
        blocks.append(table(["step (publication order)", f"change on {comp.x_name}", f"change on {comp.y_name}",
                             "same direction"],
                            [[f"{s['from']} -> {s['to']}", f"{s['x'] * 100:+.1f}%", f"{s['y'] * 100:+.1f}%",
                              "yes" if math.copysign(1, s["x"]) == math.copysign(1, s["y"]) else "no"]
                             for s in rel["steps"]]))
    return blocks


def transfer_table(analysis: Analysis, comp: Comparison) -> Block:
    """Fine-tuned accuracy per model, pretrained on each side."""
    return table(["model", comp.x_name, comp.y_name],
                 [[m, fmt_value(comp.x.get(m), comp.x_scale), fmt_value(comp.y.get(m), comp.y_scale)]
                  for m in analysis.order if m in comp.x or m in comp.y])


MODELS_COLUMNS = ("dataset", "model", "seed", "n", "top1", "ci_low", "ci_high", "method", "seeds", "seed_sd",
                  "source")


PAIRS_COLUMNS = ("dataset", "model_a", "model_b", "n", "acc_a", "acc_b", "diff", "mcnemar_p", "p_holm", "ci_low",
                 "ci_high", "flip", "significant", "only_a", "only_b")


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    if isinstance(value, str):
        return escape.csv_cell(value)  # names from data: never a spreadsheet formula
    return str(value)


def _sides(analysis: Analysis) -> list[SideEvidence]:
    seen: dict[str, SideEvidence] = {}
    for comp in analysis.comparisons:
        for ev in (comp.evidence_x, comp.evidence_y):
            if ev is not None and ev.dataset not in seen:
                seen[ev.dataset] = ev
    return list(seen.values())


def _write_table(path: Path, columns: tuple[str, ...], items: Any) -> Path:
    """One row per item (attributes named by `columns`), atomically."""
    with atomic_open(path, "w") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(columns)
        for item in items:
            writer.writerow([_csv_cell(getattr(item, c)) for c in columns])
    return path


def write_models_csv(path: Path, analysis: Analysis) -> Path:
    return _write_table(path, MODELS_COLUMNS, (m for ev in _sides(analysis) for m in ev.models))


def write_pairs_csv(path: Path, analysis: Analysis) -> Path:
    return _write_table(path, PAIRS_COLUMNS, (t for ev in _sides(analysis) for t in ev.pairs))
