"""report.md and a self-contained report.html that lead with the answer and say how far it can be trusted.

The first screen holds a one-sentence verdict and the scatter with every model's interval on both axes; then
the models with their validation sizes, chance levels and training budgets; then which differences the test
images support (flips on both datasets, one, or neither); then the agreement statistics with each source of
noise on its own; details (how scales were read, notes, method) come last. Every sentence quotes the number it
rests on, and every caveat the analysis found is printed, not softened.
"""

from __future__ import annotations

import csv
import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from imagenot import datacard, escape
from imagenot.analysis import context, plots, stats
from imagenot.analysis.blocks import (
    Block,
    Figure,
    Heading,
    Link,
    Paragraph,
    bullets,
    render_html,
    render_markdown,
    table,
)
from imagenot.analysis.comparison import Analysis, Comparison, DatasetInfo
from imagenot.analysis.outdir import replaced_folder
from imagenot.analysis.results import write_results_csv
from imagenot.analysis.uncertainty import FlipSupport, SideEvidence
from imagenot.fileio import atomic_open, write_json, write_manifest, write_text

log = logging.getLogger(__name__)

MODELS_COLUMNS = ("dataset", "model", "seed", "n", "top1", "ci_low", "ci_high", "method", "seeds", "seed_sd",
                  "source")
PAIRS_COLUMNS = ("dataset", "model_a", "model_b", "n", "acc_a", "acc_b", "diff", "mcnemar_p", "p_holm", "ci_low",
                 "ci_high", "flip", "significant", "only_a", "only_b")
NOISE_NAMES = {"images": "test images", "seeds": "seeds", "models": "models"}


# ---------------------------------------------------------------------------------------------- formatting
def fmt_p(p: float | None) -> str:
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "p = n/a"
    if p < 1e-6:
        return "p < 1e-6"
    return f"p = {p:.2g}"


def fmt_num(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{digits}f}"


def fmt_ci(ci: dict[str, float] | None, digits: int = 2) -> str:
    if not ci or math.isnan(ci.get("low", math.nan)):
        return "n/a"
    return f"[{ci['low']:.{digits}f}, {ci['high']:.{digits}f}]"


def fmt_range(low: float, high: float, digits: int = 1) -> str:
    if math.isnan(low) or math.isnan(high):
        return ""
    return f"[{low:.{digits}f}, {high:.{digits}f}]"


def fmt_value(entry: dict[str, Any] | None, scale: str) -> str:
    if entry is None:
        return "—"
    digits = 3 if scale == "ratio" else 2
    text = fmt_num(entry["mean"], digits)
    if entry["n"] > 1:
        text += f" ± {fmt_num(entry['sd'], digits)} ({entry['n']} seeds)"
    return text


def describe_tau(tau: float) -> str:
    if tau >= 1.0 - 1e-12:
        return "the ranking is identical"
    if tau <= -1.0 + 1e-12:
        return "the ranking is reversed"
    if tau >= 0.8:
        return "the ranking is largely preserved"
    if tau >= 0.5:
        return "the ranking is partly preserved"
    if tau > 0:
        return "the rankings agree only weakly"
    return "the ranking is not preserved"


def _level(confidence: float) -> str:
    return f"{int(round(confidence * 100))}%"


def _boot_phrase(boot: dict[str, Any] | None) -> str:
    if not boot:
        return ""
    what = {"models": "resampling models", "seeds": "resampling seeds within models",
            "both": "resampling models and seeds within them"}[boot["resample"]]
    return f"{_level(boot['confidence'])} bootstrap intervals, {what}, {boot['n_boot']} resamples"


def _tau_p(comp: Comparison) -> tuple[float | None, str]:
    """The p-value the report quotes for tau (the permutation test when it ran) and how it was made."""
    perm = comp.permutation
    if perm:
        how = (f"permutation p, all {perm['permutations']:,} orders" if perm["exact"]
               else f"permutation p, {perm['permutations']:,} random orders")
        return perm["p"], how
    if comp.rank:
        return comp.rank["kendall_p"], "scipy"
    return None, ""


# ---------------------------------------------------------------------------------------------- verdict
def _support_counts(flips: Sequence[FlipSupport]) -> dict[str, int]:
    counts = {"both": 0, "one": 0, "neither": 0, "untested": 0}
    for f in flips:
        counts[f.support] += 1
    return counts


def flips_phrase(comp: Comparison) -> str:
    """'1 of 15 pairs flips, and the validation images do not support it (...)' and the like."""
    order = comp.order or {}
    flips = order.get("discordant", 0)
    pairs = order.get("pairs", 0)
    if not flips:
        return f"no pair of models flips ({pairs} pairs)" if pairs else "no pair to compare"
    text = f"{flips} of {pairs} pairs {'flips' if flips == 1 else 'flip'}"
    counts = _support_counts(comp.flip_support)
    if counts["untested"] == len(comp.flip_support):
        return text + (", and without per-image predictions the report cannot test whether "
                       + ("it is" if flips == 1 else "they are") + " real")
    if counts["both"]:
        text += (", and the validation images support it: it is significant on both datasets" if flips == 1 else
                 f", and the validation images support {counts['both']} of them (significant on both datasets)")
    else:
        text += ", and the validation images do not support " + ("it" if flips == 1 else "any of them")
        if counts["one"]:
            many = f"{counts['one']} " if flips > 1 else ""
            text += f" ({many}significant on one dataset only, within test-set noise on the other)"
        else:
            text += " (within test-set noise on both datasets)"
    if counts["untested"]:
        text += f"; {counts['untested']} of {flips} could not be tested (no predictions)"
    return text


def verdict(analysis: Analysis) -> str:
    """The one sentence the report leads with."""
    comp = analysis.main
    if not comp.rank:
        if comp.n < stats.MIN_POINTS:
            return (f"Only {comp.n} model(s) have results on both {comp.x_name} and {comp.y_name}: too few to say "
                    "whether the ranking survives.")
        return "Rank agreement is undefined: one side has the same accuracy for every model."
    tau = comp.rank["kendall_tau"]
    p, _ = _tau_p(comp)
    head = describe_tau(tau)
    sentence = (f"{head[0].upper()}{head[1:]} from {comp.x_name} to {comp.y_name}: Kendall tau = {tau:.2f} over "
                f"{comp.n} models ({'permutation ' if comp.permutation else ''}{fmt_p(p)}); {flips_phrase(comp)}")
    if p is not None and p > 0.05:
        sentence += "; with p > 0.05 an agreement this strong could be chance"
    return sentence + "."


def published_sentence(analysis: Analysis) -> str | None:
    """Say in words which side comes from published weights rather than runs of this tool."""
    parts = []
    for name in (analysis.reference, analysis.contrast):
        info = analysis.datasets.get(name)
        if info is None or info.source == "trained":
            continue
        weights = ""
        if info.weights:
            more = f" and {len(info.weights) - 1} more" if len(info.weights) > 1 else ""
            weights = f" ({info.weights[0]}{more})"
        if info.source == "published":
            parts.append(f"The {name} side comes from published weights{weights}: their published accuracies, "
                         "not models trained by this tool.")
        else:
            parts.append(f"Some {name} results come from published weights{weights}; they are marked "
                         "'published' in the tables.")
    return " ".join(parts) or None


# ---------------------------------------------------------------------------------------------- sentences
def comparison_findings(comp: Comparison) -> list[str]:
    """The sentences a reader can check against the tables, most important first."""
    out: list[str] = []
    subject = (f"between {comp.x_name} and {comp.y_name}" if comp.kind == "transfer"
               else f"from {comp.x_name} to {comp.y_name}")
    order = comp.order or {}
    boot = comp.bootstrap or {}
    if comp.rank:
        r = comp.rank
        flips = order.get("discordant", 0)
        ties = order.get("ties", 0)
        p, how = _tau_p(comp)
        sentence = (f"Kendall tau = {r['kendall_tau']:.2f} ({fmt_p(p)}{', ' + how if comp.permutation else ''}) "
                    f"over {r['n']} models: {describe_tau(r['kendall_tau'])} {subject} ({flips} of "
                    f"{order.get('pairs', 0)} pairs {'flips' if flips == 1 else 'flip'}")
        sentence += f", {ties} tied)." if ties else ")."
        if p is not None and p > 0.05:
            sentence += " With p > 0.05 this agreement could be chance."
        out.append(sentence)
        rho = f"Spearman rho = {r['spearman_rho']:.2f} ({fmt_p(r['spearman_p'])}, t approximation)"
        if boot.get("kendall_tau"):
            rho += (f"; {_boot_phrase(boot)}: tau {fmt_ci(boot['kendall_tau'])}, "
                    f"rho {fmt_ci(boot['spearman_rho'])}")
        out.append(rho + ".")
    elif comp.n >= stats.MIN_POINTS:
        out.append("Rank correlations are undefined: one side has the same value for every model.")
    else:
        out.append(f"Only {comp.n} model(s) have results on both sides ({subject}): too few for rank "
                   "correlations or fits.")
        if comp.n == 2 and order:
            kept = "keep" if order["concordant"] == 1 else ("flip" if order["discordant"] == 1 else "tie on")
            out.append(f"The two paired models {kept} their order.")
    fit = comp.fits.get(comp.primary_fit)
    if fit:
        if comp.primary_fit == "ratio":
            what = (f"the ratio to {comp.relative['baseline'] if comp.relative else 'the baseline'} on "
                    f"{comp.y_name} against the same ratio on {comp.x_name}")
        else:
            what = f"{comp.y_name} top-1 against {comp.x_name} top-1 (percent)"
        sentence = (f"A straight-line fit of {what} has slope {fit['slope']:.3f} (standard error "
                    f"{fit['slope_stderr']:.3f}")
        if boot.get("slope"):
            sentence += f", bootstrap {fmt_ci(boot['slope'])}"
        sentence += f") and R^2 = {fit['r2']:.3f}"
        if boot.get("r2"):
            sentence += f" ({fmt_ci(boot['r2'])})"
        sentence += f", {fmt_p(fit['p'])}."
        if comp.primary_fit == "raw":
            sentence += (f" Each percentage point gained on {comp.x_name} goes with {fit['slope']:.2f} points "
                         f"on {comp.y_name}.")
        out.append(sentence)
        others = [f"{how} R^2 = {comp.fits[how]['r2']:.3f} (slope {comp.fits[how]['slope']:.3f})"  # type: ignore[index]
                  for how in ("logit", "probit") if comp.fits.get(how)]
        if others:
            out.append("On transformed scales: " + "; ".join(others) + ".")
    rel = comp.relative
    if rel:
        corr = rel.get("correlation")
        if corr:
            out.append(f"Relative to {rel['baseline']}, the improvements on the two datasets correlate with Pearson "
                       f"r = {corr['r']:.3f} (R^2 = {corr['r2']:.3f}, {fmt_p(corr['p'])}).")
        if rel["steps_total"]:
            sentence = (f"In publication order, {rel['steps_same_sign']} of {rel['steps_total']} step-to-step "
                        "changes go in the same direction on both datasets")
            sc = rel.get("steps_correlation")
            sentence += (f"; the step sizes correlate with r = {sc['r']:.2f} ({fmt_p(sc['p'])})." if sc
                         else " (too few steps for a correlation).")
            out.append(sentence)
    if order.get("flips"):
        listed = "; ".join(f"{f['better_on_x']} > {f['better_on_y']} on {comp.x_name} but the reverse on "
                           f"{comp.y_name}" for f in order["flips"][:8])
        more = f" (and {len(order['flips']) - 8} more)" if len(order["flips"]) > 8 else ""
        out.append(f"Flipped pairs: {listed}{more}.")
    return out


def flip_sentence(f: FlipSupport, comp: Comparison) -> str:
    """One flipped pair, its difference and Holm-adjusted p on each dataset, and whether it is supported."""
    a, b = f.better_on_x, f.better_on_y
    x_part = f"{a} is {f.diff_x:.1f} points ahead on {comp.x_name} ({fmt_p(f.p_x)})"
    y_part = f"{b} is {-f.diff_y:.1f} points ahead on {comp.y_name} ({fmt_p(f.p_y)})"
    if f.support == "both":
        return f"{x_part} and {y_part}: significant on both datasets, a supported reversal."
    if f.support == "one":
        side = comp.x_name if f.significant_x else comp.y_name
        other = comp.y_name if f.significant_x else comp.x_name
        return (f"{x_part}; {y_part}: significant on {side} only; on {other} the two cannot be told apart, so "
                "the flip is not supported.")
    if f.support == "neither":
        return f"{x_part}; {y_part}: within test-set noise on both datasets, so the flip is not supported."
    return f"{a} > {b} on {comp.x_name}, the reverse on {comp.y_name}: not tested (no per-image predictions)."


def _order_sentence(ev: SideEvidence) -> str:
    total = len(ev.pairs)
    sig = sum(t.significant for t in ev.pairs)
    head = (f"{ev.dataset} ({ev.n:,} validation images): {sig} of {total} differences significant "
            f"(exact McNemar, Holm-adjusted, at the {_level(ev.alpha)} level)")
    if not ev.supported:
        return head + "; the images cannot order any two models."
    groups: dict[str, list[str]] = {}
    for better, worse in ev.supported:
        groups.setdefault(better, []).append(worse)
    acc = {m.model: m.top1 for m in ev.models if m.seed == "all"}
    ordered = sorted(groups, key=lambda m: -acc.get(m, 0.0))
    text = "; ".join(f"{m} > {', '.join(sorted(groups[m], key=lambda w: -acc.get(w, 0.0)))}" for m in ordered)
    return head + f"; supported order: {text}."


def _mdd_sentence(ev: SideEvidence, power: float) -> str | None:
    mdd = ev.mdd
    if not mdd or not ev.n or math.isnan(mdd["unpaired"]):
        return None
    text = f"{ev.dataset}: with {ev.n:,} validation images, "
    if not math.isnan(mdd["paired"]):
        text += (f"two models on the same images must differ by {mdd['paired'] * 100:.1f} points (at the observed "
                 f"{mdd['discordance'] * 100:.0f}% of images on which they disagree) and one model on two "
                 f"independent sets by {mdd['unpaired'] * 100:.1f} points")
    else:
        text += f"two independent samples must differ by {mdd['unpaired'] * 100:.1f} points"
    return text + (f" to be detected with {int(round(power * 100))}% power at the {_level(ev.alpha)} level "
                   f"(around {mdd['accuracy'] * 100:.0f}% accuracy); smaller differences are often missed.")


# ---------------------------------------------------------------------------------------------- tables
def _published(analysis: Analysis, dataset: str, model: str) -> bool:
    return any(r["source"] == "published" and r["dataset"] == dataset and r["model"] == model
               for r in analysis.rows)


def _models_table(analysis: Analysis) -> list[Block]:
    main = analysis.main
    sides = [(analysis.reference, main.x, main.x_scale, main.evidence_x),
             (analysis.contrast, main.y, main.y_scale, main.evidence_y)]
    ranks: list[dict[str, int]] = []
    for _, values, _, _ in sides:
        names = [m for m in analysis.order if m in values]
        r = stats.ranks([values[m]["mean"] for m in names]) if names else []
        ranks.append(dict(zip(names, (int(v) for v in r))))
    any_ci = any(ev is not None and any(not math.isnan(m.ci_low) for m in ev.models) for *_, ev in sides)
    level = _level(float(analysis.settings.get("confidence", 0.95)))
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
        kind, sep, rest = spec.partition(":")
        folder = Path(rest if sep and rest else spec).expanduser()
        if not folder.is_absolute() or not folder.is_dir():
            continue
        for name, label in ((datacard.README, "card"), (datacard.CARD, "dataset.json"),
                            (datacard.CONTACT_SHEET, "contact sheet")):
            if (folder / name).is_file():
                links.append(Link(label, Path(os.path.relpath(folder / name, out_dir)).as_posix()))
    return links


def _datasets_table(analysis: Analysis, out_dir: Path) -> list[Block]:
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
        card = links.get("card") or links.get("dataset.json") or ""
        rows.append([info.name, info.role or "", n, chance, str(info.epochs) if info.epochs else "—",
                     f"{info.train_images:,}" if info.train_images else "—", info.source, card,
                     links.get("contact sheet", "")])
    return [table(headers, rows),
            Paragraph("n is the number of validation images each accuracy rests on; chance is 100 / classes; "
                      "the budget is the epochs and training images of each run (— for published weights or "
                      "when the results do not say).", "sub")]


def _stats_table(comp: Comparison) -> tuple[list[str], list[list[str]]]:
    boot = comp.bootstrap or {}
    headers = ["statistic", "value", "p", f"{_level(boot.get('confidence', 0.95))} CI (bootstrap)"]
    rows: list[list[str]] = []
    if comp.rank:
        p, how = _tau_p(comp)
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


def _noise_blocks(comp: Comparison) -> list[Block]:
    """Each source of noise alone: which one makes the agreement statistics uncertain."""
    noise = comp.noise
    if not noise:
        return []
    sources = [s for s in ("images", "seeds", "models") if s in noise]
    level = _level(next(iter(noise.values()))["confidence"])
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


def _fits_table(comp: Comparison) -> tuple[list[str], list[list[str]]]:
    headers = ["scale", "n", "slope", "slope s.e.", "intercept", "R^2", "p"]
    rows = []
    for how in stats.FIT_SCALES:
        fit = comp.fits.get(how)
        if fit:
            rows.append([how, str(fit["n"]), fmt_num(fit["slope"], 4), fmt_num(fit["slope_stderr"], 4),
                         fmt_num(fit["intercept"], 4), fmt_num(fit["r2"]), fmt_p(fit["p"])])
    return headers, rows


def _strength_blocks(comp: Comparison) -> list[Block]:
    out: list[Block] = []
    if comp.weak:
        out.append(Paragraph("The evidence is weak: " + "; ".join(comp.weak) + ".", "weak"))
    if comp.caveats:
        out.append(Paragraph("Caveat: " + "; ".join(comp.caveats) + ".", "caveat"))
    if not out:
        out.append(Paragraph(f"No warning signs: {comp.n} paired models with several seeds each, significant rank "
                             "agreement, and narrow intervals.", "ok"))
    elif not comp.weak and comp.rank:
        out.insert(0, Paragraph(f"{comp.n} paired models, rank agreement significant at 0.05 and intervals that "
                                "are not wide.", "ok"))
    return out


def evidence_blocks(comp: Comparison, power: float) -> list[Block]:
    """Which differences the validation images support: flips, the supported order, detectable sizes."""
    sides = [ev for ev in (comp.evidence_x, comp.evidence_y) if ev is not None]
    paired_sides = [ev for ev in sides if ev.paired and ev.pairs]
    blocks: list[Block] = []
    if not paired_sides:
        text = ("No per-image predictions (predictions.parquet) were found for these runs, so the report cannot "
                "test individual differences; it falls back to seed and model resampling.")
        if comp.order and comp.order.get("flips"):
            text += " The flipped pairs' seed spread is in the table of flipped pairs below."
        blocks.append(Paragraph(text))
    if comp.flip_support and any(f.support != "untested" for f in comp.flip_support):
        blocks.append(bullets([flip_sentence(f, comp) for f in comp.flip_support]))
        rows = []
        for f in comp.flip_support:
            tx = comp.evidence_x.pair(f.better_on_x, f.better_on_y) if comp.evidence_x else None
            ty = comp.evidence_y.pair(f.better_on_x, f.better_on_y) if comp.evidence_y else None

            def diff_cell(t: Any, sign_of: str) -> str:
                if t is None:
                    return "n/a"
                s = 1.0 if t.model_a == sign_of else -1.0
                lo, hi = sorted((s * t.ci_low, s * t.ci_high))
                return f"{s * t.diff:+.1f} {fmt_range(lo, hi)}"

            rows.append([f"{f.better_on_x} vs {f.better_on_y}", diff_cell(tx, f.better_on_x), fmt_p(f.p_x),
                         diff_cell(ty, f.better_on_x), fmt_p(f.p_y),
                         {"both": "yes (both)", "one": "no (one dataset)", "neither": "no (neither)",
                          "untested": "untested"}[f.support]])
        blocks.append(table(["flipped pair (a vs b)", f"a - b on {comp.x_name} [CI]", "Holm p",
                             f"a - b on {comp.y_name} [CI]", "Holm p", "supported"], rows))
    for ev in paired_sides:
        blocks.append(Paragraph(_order_sentence(ev)))
    mdd = [s for s in (_mdd_sentence(ev, power) for ev in sides) if s]
    if mdd:
        blocks.append(bullets(mdd))
    if paired_sides:
        blocks.append(Paragraph("Every pair's difference, exact McNemar p (with several seeds, the sign test of the "
                                "per-image differences), Holm-adjusted p and paired-bootstrap interval is in "
                                "pairs.csv; every model's interval in models.csv.", "sub"))
    return blocks


def _agreement_blocks(comp: Comparison, figures: dict[str, Path], figure_keys: Sequence[tuple[str, str]]
                      ) -> list[Block]:
    blocks: list[Block] = [bullets(comparison_findings(comp))]
    blocks += _strength_blocks(comp)
    if comp.rank or comp.order:
        blocks.append(Heading(3, "Statistics"))
        blocks.append(table(*_stats_table(comp)))
        if comp.bootstrap:
            blocks.append(Paragraph(f"Intervals: {_boot_phrase(comp.bootstrap)}; tau, slope and R^2 on the "
                                    f"{comp.bootstrap['fit']} scale. Resamples where a statistic is undefined "
                                    "are dropped (valid counts in stats.json).", "sub"))
    blocks += _noise_blocks(comp)
    fits = _fits_table(comp)
    if fits[1]:
        blocks.append(Heading(3, "Linear fits"))
        blocks.append(table(*fits))
        blocks.append(Paragraph("Fit of the second dataset on the first: raw units as given; logit and probit of "
                                "the accuracy as a fraction; ratio = accuracy / baseline accuracy on the same "
                                "dataset.", "sub"))
    if comp.order and comp.order["flips"]:
        blocks.append(Heading(3, "Pairs that flip"))
        noise = {True: "yes", False: "no", None: "unknown (one seed)"}
        blocks.append(table([f"better on {comp.x_name}", f"better on {comp.y_name}", comp.x_name, comp.y_name,
                             "within seed noise"],
                            [[f["better_on_x"], f["better_on_y"], f"{f['x'][0]:.2f} vs {f['x'][1]:.2f}",
                              f"{f['y'][0]:.2f} vs {f['y'][1]:.2f}", noise[f.get("within_noise")]]
                             for f in comp.order["flips"]]))
        blocks.append(Paragraph("Within seed noise: on at least one dataset the two models differ by less than "
                                "sqrt(sd_a^2 + sd_b^2) of their seeds, so the flip may not be real.", "sub"))
    rel = comp.relative
    if rel:
        blocks.append(Heading(3, f"Relative improvement over {rel['baseline']}"))
        blocks.append(table(["model", comp.x_name, comp.y_name],
                            [[m, fmt_num(rel["x"][m]), fmt_num(rel["y"][m])] for m in comp.models]))
        if rel["steps"]:
            blocks.append(table(["step (publication order)", f"change on {comp.x_name}",
                                 f"change on {comp.y_name}", "same direction"],
                                [[f"{s['from']} -> {s['to']}", f"{s['x'] * 100:+.1f}%", f"{s['y'] * 100:+.1f}%",
                                  "yes" if math.copysign(1, s["x"]) == math.copysign(1, s["y"]) else "no"]
                                 for s in rel["steps"]]))
    for key, caption in figure_keys:
        if key in figures:
            blocks.append(Figure(figures[key], caption))
    if comp.notes:
        blocks.append(Heading(3, "Notes"))
        blocks.append(bullets(list(comp.notes)))
    return blocks


def _scatter_caption(analysis: Analysis) -> str:
    main = analysis.main
    level = _level(float(analysis.settings.get("confidence", 0.95)))
    text = f"{main.y_name} against {main.x_name}: one point per model"
    if main.primary_fit == "ratio":
        return text + ", both as ratios to the baseline, with the fitted line and y = x."
    has_ci = any(ev is not None and ev.accuracy(m) is not None and not math.isnan(ev.accuracy(m).ci_low)  # type: ignore[union-attr]
                 for ev in (main.evidence_x, main.evidence_y) for m in main.models)
    if has_ci:
        text += (f", bars the {level} interval on each axis (Clopper-Pearson over the validation images; for "
                 "a mean over seeds, the image bootstrap)")
    else:
        text += ", bars one seed standard deviation where models have several seeds"
    return text + f"; the line is the least-squares fit with its {level} band, dashed y = x; red: models in a flipped pair."


def build_blocks(analysis: Analysis, figures: dict[str, Path], title: str | None = None,
                 out_dir: Path | None = None, audit: str | Path | None = None,
                 plateau: str | Path | None = None) -> list[Block]:
    """The report, verdict first. `out_dir` is the report's final folder (for links to dataset cards);
    `audit` and `plateau` are optional files of other stages (see imagenot.analysis.context)."""
    main = analysis.main
    power = float(analysis.settings.get("power", 0.8))
    blocks: list[Block] = [Heading(1, title or f"Do model rankings survive the contrast? {analysis.contrast} vs "
                                                f"{analysis.reference}")]
    blocks.append(Paragraph(verdict(analysis), "verdict"))
    published = published_sentence(analysis)
    if published:
        blocks.append(Paragraph(published, "sub"))
    if "scatter" in figures:
        blocks.append(Figure(figures["scatter"], _scatter_caption(analysis), lead=True))

    blocks.append(Heading(2, "Models and datasets"))
    blocks += _models_table(analysis)
    known = [i for i in analysis.datasets.values() if i.n_val_range or i.chance or i.epochs or i.train_images
             or i.specs or i.source != "trained"]
    if known:
        blocks += _datasets_table(analysis, out_dir or Path.cwd())
    else:
        blocks.append(Paragraph("The results give no validation sizes, chance levels or training budgets.", "sub"))
    text_filter = context.text_filter_lines(analysis)
    if text_filter:
        blocks.append(bullets(text_filter))
    context_notes: list[str] = []
    blocks += context.plateau_blocks(plateau, analysis, context_notes)
    blocks += context.audit_blocks(audit, out_dir or Path.cwd(), context_notes)

    blocks.append(Heading(2, "Which differences are real"))
    blocks += evidence_blocks(main, power)

    blocks.append(Heading(2, "Agreement between the rankings"))
    blocks += _agreement_blocks(main, figures, [
        ("scatter_logit", "The scatter on logit axes, with the logit-scale fit (accuracies near 0 or 100% spread "
                          "out, as in 'accuracy on the line' studies)."),
        ("bump", "Rank on each dataset (1 = best); models that change places are in red."),
        ("relative", f"Top-1 relative to {analysis.baseline} on each dataset, in publication order."),
    ])
    for comp in analysis.transfer:
        blocks.append(Heading(2, f"Transfer to {comp.target}"))
        blocks += _agreement_blocks(comp, figures, [
            (f"transfer_{comp.target}", f"Fine-tuned top-1 on {comp.target}: contrast-pretrained against "
                                        "reference-pretrained, with the fitted line and y = x."),
        ])
        if any(ev is not None and ev.paired for ev in (comp.evidence_x, comp.evidence_y)):
            blocks.append(Heading(3, "Which differences are real"))
            blocks += evidence_blocks(comp, power)
        blocks.append(table(["model", comp.x_name, comp.y_name],
                            [[m, fmt_value(comp.x.get(m), comp.x_scale), fmt_value(comp.y.get(m), comp.y_scale)]
                             for m in analysis.order if m in comp.x or m in comp.y]))
    if not analysis.transfer:
        blocks.append(Heading(2, "Transfer"))
        blocks.append(Paragraph("No transfer runs (role 'transfer') were given, so nothing is said about transfer."))

    blocks.append(Heading(2, "Details"))
    n_runs = len(analysis.rows)
    seeds = sorted({r["seed"] for r in analysis.rows if r["seed"] is not None})
    seed_text = f"seeds {', '.join(map(str, seeds))}" if seeds else "no seeds recorded"
    blocks.append(Paragraph(f"{n_runs} results of {len(analysis.order)} models; reference {analysis.reference}, "
                            f"contrast {analysis.contrast}; baseline {analysis.baseline or 'none'}; {seed_text}."))
    blocks.append(bullets([f"{d}: read as {s['scale']} ({s['reason']})" for d, s in analysis.scales.items()]))
    if analysis.notes or context_notes:
        blocks.append(Heading(3, "Data notes"))
        blocks.append(bullets([*analysis.notes, *context_notes]))
    blocks.append(Heading(3, "Method"))
    blocks.append(Paragraph(
        "Kendall tau-b (ties handled) with a permutation p-value (every order of up to 9 models, Monte Carlo "
        "beyond) and Spearman rho from scipy.stats; least-squares fits with scipy.stats.linregress; relative "
        "improvement = top-1 / the baseline's top-1 on the same dataset; steps = change from each model to the "
        "next in publication order (year). Per-image predictions give Clopper-Pearson intervals "
        "(statsmodels proportion_confint, method 'beta'), exact McNemar tests per pair (statsmodels), Holm's "
        "correction across the pairs of a dataset (statsmodels multipletests) and paired-bootstrap intervals of "
        "each difference, resampling the same test images for every model. The agreement statistics are "
        "bootstrapped three ways, each alone: test images (paired across models within a dataset), seeds within "
        "models, and the models themselves. The smallest detectable difference uses statsmodels' normal power "
        "(Cohen's h). All numbers are in stats.json; the runs are in results.csv, intervals in models.csv and "
        "pair tests in pairs.csv."))
    return blocks


# ---------------------------------------------------------------------------------------------- files
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


def write_report(
    analysis: Analysis,
    out_dir: str | Path,
    *,
    title: str | None = None,
    config: dict[str, Any] | None = None,
    inputs: dict[str, str] | None = None,
    audit: str | Path | None = None,
    plateau: str | Path | None = None,
) -> dict[str, Path]:
    """Write results.csv, models.csv, pairs.csv, stats.json, plots/*.png, report.md, report.html, manifest.json
    (and config.json when `config` is given) into `out_dir`.

    The folder is built beside `out_dir` and swapped in when complete, so a failure leaves an earlier report
    untouched; the returned mapping names the final paths (plots as `plot_<name>`).
    """
    out = Path(out_dir)
    final = Path(os.path.abspath(out))
    with replaced_folder(out, inputs=[*(inputs or {}), *(p for p in (audit, plateau) if p)]) as build:
        paths: dict[str, Path] = {"results": write_results_csv(build / "results.csv", analysis.rows)}
        paths["models"] = write_models_csv(build / "models.csv", analysis)
        paths["pairs"] = write_pairs_csv(build / "pairs.csv", analysis)
        figures = plots.render_all(analysis, build)
        paths.update({f"plot_{k}": v for k, v in figures.items()})
        blocks = build_blocks(analysis, figures, title, out_dir=final, audit=audit, plateau=plateau)
        data = analysis.to_dict()
        data.pop("rows")
        data["n_runs"] = len(analysis.rows)
        write_json(build / "stats.json", data)
        paths["stats"] = build / "stats.json"
        heading = blocks[0].text if isinstance(blocks[0], Heading) else "report"
        write_text(build / "report.md", render_markdown(blocks, build))
        write_text(build / "report.html", render_html(blocks, heading))
        paths["report_md"] = build / "report.md"
        paths["report_html"] = build / "report.html"
        if config is not None:
            write_json(build / "config.json", config)
            paths["config"] = build / "config.json"
        paths["manifest"] = write_manifest(build, config if config is not None else analysis.settings, inputs,
                                           outputs=sorted(p.relative_to(build).as_posix() for p in paths.values()))
        relative = {k: p.relative_to(build) for k, p in paths.items()}
    log.info("report written to %s", out)
    return {k: out / rel for k, rel in relative.items()}
