"""The report's words: number formats and the sentences it is made of (the verdict, the findings, each
flipped pair, the supported order, the detectable difference, the scatter's caption).

Every sentence quotes the number it rests on. Kept apart from the tables and the assembly so that other
readers of a finished report (the demo's summary reads stats.json) say a thing the way the report does:
`flip_sentences` words the flips from stats.json's records.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

from imagenot.analysis import stats
from imagenot.analysis.comparison import Analysis, Comparison
from imagenot.analysis.uncertainty import FlipSupport, SideEvidence

log = logging.getLogger(__name__)


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


def percent_level(confidence: float) -> str:
    return f"{int(round(confidence * 100))}%"


def boot_phrase(boot: dict[str, Any] | None) -> str:
    if not boot:
        return ""
    what = {"models": "resampling models", "seeds": "resampling seeds within models",
            "both": "resampling models and seeds within them"}[boot["resample"]]
    return f"{percent_level(boot['confidence'])} bootstrap intervals, {what}, {boot['n_boot']} resamples"


def tau_p(comp: Comparison) -> tuple[float | None, str]:
    """The p-value the report quotes for tau (the permutation test when it ran) and how it was made."""
    perm = comp.permutation
    if perm:
        how = (f"permutation p, all {perm['permutations']:,} orders" if perm["exact"]
               else f"permutation p, {perm['permutations']:,} random orders")
        return perm["p"], how
    if comp.rank:
        return comp.rank["kendall_p"], "scipy"
    return None, ""


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
    p, _ = tau_p(comp)
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


def comparison_findings(comp: Comparison) -> list[str]:
    """The sentences a reader can check against the tables, most important first."""
    return (_rank_findings(comp) + _fit_findings(comp) + _relative_findings(comp)
            + _flipped_pairs_finding(comp))


def _rank_findings(comp: Comparison) -> list[str]:
    """Kendall tau and Spearman rho with their intervals, or why they are undefined."""
    subject = (f"between {comp.x_name} and {comp.y_name}" if comp.kind == "transfer"
               else f"from {comp.x_name} to {comp.y_name}")
    order = comp.order or {}
    boot = comp.bootstrap or {}
    if not comp.rank:
        if comp.n >= stats.MIN_POINTS:
            return ["Rank correlations are undefined: one side has the same value for every model."]
        out = [f"Only {comp.n} model(s) have results on both sides ({subject}): too few for rank "
               "correlations or fits."]
        if comp.n == 2 and order:
            kept = "keep" if order["concordant"] == 1 else ("flip" if order["discordant"] == 1 else "tie on")
            out.append(f"The two paired models {kept} their order.")
        return out
    r = comp.rank
    flips = order.get("discordant", 0)
    ties = order.get("ties", 0)
    p, how = tau_p(comp)
    sentence = (f"Kendall tau = {r['kendall_tau']:.2f} ({fmt_p(p)}{', ' + how if comp.permutation else ''}) "
                f"over {r['n']} models: {describe_tau(r['kendall_tau'])} {subject} ({flips} of "
                f"{order.get('pairs', 0)} pairs {'flips' if flips == 1 else 'flip'}")
    sentence += f", {ties} tied)." if ties else ")."
    if p is not None and p > 0.05:
        sentence += " With p > 0.05 this agreement could be chance."
    rho = f"Spearman rho = {r['spearman_rho']:.2f} ({fmt_p(r['spearman_p'])}, t approximation)"
    if boot.get("kendall_tau"):
        rho += (f"; {boot_phrase(boot)}: tau {fmt_ci(boot['kendall_tau'])}, "
                f"rho {fmt_ci(boot['spearman_rho'])}")
    return [sentence, rho + "."]


def _fit_findings(comp: Comparison) -> list[str]:
    """The primary straight-line fit (slope, R^2, intervals) and the fits on transformed scales."""
    fit = comp.fits.get(comp.primary_fit)
    if not fit:
        return []
    boot = comp.bootstrap or {}
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
    out = [sentence]
    others = [f"{how} R^2 = {comp.fits[how]['r2']:.3f} (slope {comp.fits[how]['slope']:.3f})"  # type: ignore[index]
              for how in ("logit", "probit") if comp.fits.get(how)]
    if others:
        out.append("On transformed scales: " + "; ".join(others) + ".")
    return out


def _relative_findings(comp: Comparison) -> list[str]:
    """How the improvements over the baseline, and the publication-order steps, agree."""
    rel = comp.relative
    if not rel:
        return []
    out = []
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
    return out


def _flipped_pairs_finding(comp: Comparison) -> list[str]:
    """The flipped pairs by name (the first eight)."""
    order = comp.order or {}
    if not order.get("flips"):
        return []
    listed = "; ".join(f"{f['better_on_x']} > {f['better_on_y']} on {comp.x_name} but the reverse on "
                       f"{comp.y_name}" for f in order["flips"][:8])
    more = f" (and {len(order['flips']) - 8} more)" if len(order["flips"]) > 8 else ""
    return [f"Flipped pairs: {listed}{more}."]


def flip_sentence(f: FlipSupport, x_name: str, y_name: str) -> str:
    """One flipped pair, its difference and Holm-adjusted p on each dataset (`x_name`, `y_name`), and
    whether it is supported: the one wording of a flip, used by the report and the demo's summary."""
    a, b = f.better_on_x, f.better_on_y
    x_part = f"{a} is {f.diff_x:.1f} points ahead on {x_name} ({fmt_p(f.p_x)})"
    y_part = f"{b} is {-f.diff_y:.1f} points ahead on {y_name} ({fmt_p(f.p_y)})"
    if f.support == "both":
        return f"{x_part} and {y_part}: significant on both datasets, a supported reversal."
    if f.support == "one":
        side = x_name if f.significant_x else y_name
        other = y_name if f.significant_x else x_name
        return (f"{x_part}; {y_part}: significant on {side} only; on {other} the two cannot be told apart, so "
                "the flip is not supported.")
    if f.support == "neither":
        return f"{x_part}; {y_part}: within test-set noise on both datasets, so the flip is not supported."
    return f"{a} > {b} on {x_name}, the reverse on {y_name}: not tested (no per-image predictions)."


def flip_sentences(comparison: Mapping[str, Any]) -> list[str]:
    """The flip sentences of a comparison as stats.json records it (e.g. its `main`): for readers of a
    finished report, such as the demo's summary, in the report's own words."""
    x_name = str(comparison.get("x_name") or "the reference")
    y_name = str(comparison.get("y_name") or "the contrast")
    fields = {f.name for f in dataclasses.fields(FlipSupport)}
    return [flip_sentence(FlipSupport(**{k: v for k, v in record.items() if k in fields}), x_name, y_name)
            for record in comparison.get("flip_support") or []]


def order_sentence(ev: SideEvidence) -> str:
    total = len(ev.pairs)
    sig = sum(t.significant for t in ev.pairs)
    head = (f"{ev.dataset} ({ev.n:,} validation images): {sig} of {total} differences significant "
            f"(exact McNemar, Holm-adjusted, at the {percent_level(ev.alpha)} level)")
    if not ev.supported:
        return head + "; the images cannot order any two models."
    groups: dict[str, list[str]] = {}
    for better, worse in ev.supported:
        groups.setdefault(better, []).append(worse)
    acc = {m.model: m.top1 for m in ev.models if m.seed == "all"}
    ordered = sorted(groups, key=lambda m: -acc.get(m, 0.0))
    text = "; ".join(f"{m} > {', '.join(sorted(groups[m], key=lambda w: -acc.get(w, 0.0)))}" for m in ordered)
    return head + f"; supported order: {text}."


def mdd_sentence(ev: SideEvidence, power: float) -> str | None:
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
    return text + (f" to be detected with {int(round(power * 100))}% power at the {percent_level(ev.alpha)} level "
                   f"(around {mdd['accuracy'] * 100:.0f}% accuracy); smaller differences are often missed.")


def scatter_caption(analysis: Analysis) -> str:
    main = analysis.main
    level = percent_level(float(analysis.settings.get("confidence", 0.95)))
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
