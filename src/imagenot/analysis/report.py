"""report.md and a self-contained report.html that say what the numbers show, and how far they can be trusted.

The report is built once as a list of blocks (heading, paragraph, list, table, figure) and rendered twice, so
the Markdown and the HTML cannot disagree. Every sentence quotes the number it rests on, and every caveat the
analysis found (few models, one seed, wide intervals, p > 0.05, data left out) is printed, not softened.
"""

from __future__ import annotations

import base64
import html
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from imagenot.analysis import plots, stats
from imagenot.analysis.comparison import Analysis, Comparison
from imagenot.analysis.results import write_results_csv
from imagenot.fileio import write_json, write_manifest, write_text

log = logging.getLogger(__name__)

Block = tuple[Any, ...]

CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:980px;margin:2em auto;padding:0 1em;
color:#222;line-height:1.5}
h1{font-size:1.6em;border-bottom:2px solid #3b6ea8;padding-bottom:.2em}
h2{font-size:1.25em;margin-top:1.8em;color:#2c4f7c}
h3{font-size:1.05em}
table{border-collapse:collapse;margin:.8em 0;font-size:.9em}
th,td{border:1px solid #d5d9de;padding:.3em .6em;text-align:right}
th{background:#eef2f7}
td:first-child,th:first-child{text-align:left}
tr:nth-child(even) td{background:#fafbfc}
figure{margin:1.2em 0}
figure img{max-width:100%;border:1px solid #e3e3e3}
figcaption{font-size:.88em;color:#555}
.weak{background:#fff4e5;border-left:4px solid #edae49;padding:.5em 1em}
.caveat{background:#f4f6f8;border-left:4px solid #8c9aab;padding:.5em 1em}
.ok{background:#eef7ee;border-left:4px solid #5a9a5a;padding:.5em 1em}
code{background:#f3f3f3;padding:0 .2em}
"""


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


def fmt_value(entry: dict[str, Any] | None, scale: str) -> str:
    if entry is None:
        return "—"
    digits = 3 if scale == "ratio" else 2
    text = fmt_num(entry["mean"], digits)
    if entry["n"] > 1:
        text += f" ± {fmt_num(entry['sd'], digits)} (n={entry['n']})"
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


def _boot_phrase(boot: dict[str, Any] | None) -> str:
    if not boot:
        return ""
    what = {"models": "resampling models", "seeds": "resampling seeds within models",
            "both": "resampling models and seeds within them"}[boot["resample"]]
    return f"{int(round(boot['confidence'] * 100))}% bootstrap intervals, {what}, {boot['n_boot']} resamples"


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
        sentence = (f"Kendall tau = {r['kendall_tau']:.2f} ({fmt_p(r['kendall_p'])}) over {r['n']} models: "
                    f"{describe_tau(r['kendall_tau'])} {subject} ({flips} of {order.get('pairs', 0)} pairs "
                    f"{'flips' if flips == 1 else 'flip'}")
        sentence += f", {ties} tied)." if ties else ")."
        if r["kendall_p"] > 0.05:
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


# ---------------------------------------------------------------------------------------------- blocks
def _rank_table(analysis: Analysis) -> tuple[list[str], list[list[str]]]:
    columns: list[tuple[str, dict[str, dict[str, Any]], str]] = [
        (analysis.reference, analysis.main.x, analysis.main.x_scale),
        (analysis.contrast, analysis.main.y, analysis.main.y_scale),
    ]
    for comp in analysis.transfer:
        columns.append((comp.x_name, comp.x, comp.x_scale))
        columns.append((comp.y_name, comp.y, comp.y_scale))
    ranks: list[dict[str, int]] = []
    for _, values, _ in columns:
        names = [m for m in analysis.order if m in values]
        r = stats.ranks([values[m]["mean"] for m in names]) if names else []
        ranks.append(dict(zip(names, (int(v) for v in r))))
    headers = ["model", "year"]
    for name, _, _ in columns:
        headers += [name, "rank"]
    rows = []
    for m in analysis.order:
        row = [m, str(analysis.models[m]["year"] or "")]
        for (_, values, scale), rk in zip(columns, ranks):
            row += [fmt_value(values.get(m), scale), str(rk[m]) if m in rk else "—"]
        rows.append(row)
    return headers, rows


def _stats_table(comp: Comparison) -> tuple[list[str], list[list[str]]]:
    boot = comp.bootstrap or {}
    headers = ["statistic", "value", "p", f"{int(round(boot.get('confidence', 0.95) * 100))}% CI (bootstrap)"]
    rows: list[list[str]] = []
    if comp.rank:
        rows.append(["Kendall tau-b", fmt_num(comp.rank["kendall_tau"]), fmt_p(comp.rank["kendall_p"]),
                     fmt_ci(boot.get("kendall_tau"))])
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


def _fits_table(comp: Comparison) -> tuple[list[str], list[list[str]]]:
    headers = ["scale", "n", "slope", "slope s.e.", "intercept", "R^2", "p"]
    rows = []
    for how in stats.FIT_SCALES:
        fit = comp.fits.get(how)
        if fit:
            rows.append([how, str(fit["n"]), fmt_num(fit["slope"], 4), fmt_num(fit["slope_stderr"], 4),
                         fmt_num(fit["intercept"], 4), fmt_num(fit["r2"]), fmt_p(fit["p"])])
    return headers, rows


def _comparison_blocks(comp: Comparison, figures: dict[str, Path], figure_keys: Sequence[tuple[str, str]]
                       ) -> list[Block]:
    blocks: list[Block] = [("ul", comparison_findings(comp))]
    blocks += _strength_blocks(comp)
    if comp.rank or comp.order:
        blocks.append(("h3", "Statistics"))
        blocks.append(("table", *_stats_table(comp)))
        if comp.bootstrap:
            blocks.append(("p", f"Intervals: {_boot_phrase(comp.bootstrap)}; tau, slope and R^2 on the "
                                f"{comp.bootstrap['fit']} scale. Resamples where a statistic is undefined "
                                "are dropped (valid counts in stats.json)."))
    fits = _fits_table(comp)
    if fits[1]:
        blocks.append(("h3", "Linear fits"))
        blocks.append(("table", *fits))
        blocks.append(("p", "Fit of the second dataset on the first: raw units as given; logit and probit of "
                            "the accuracy as a fraction; ratio = accuracy / baseline accuracy on the same dataset."))
    if comp.order and comp.order["flips"]:
        blocks.append(("h3", "Pairs that flip"))
        noise = {True: "yes", False: "no", None: "unknown (one seed)"}
        blocks.append(("table", [f"better on {comp.x_name}", f"better on {comp.y_name}", comp.x_name, comp.y_name,
                                 "within seed noise"],
                       [[f["better_on_x"], f["better_on_y"], f"{f['x'][0]:.2f} vs {f['x'][1]:.2f}",
                         f"{f['y'][0]:.2f} vs {f['y'][1]:.2f}", noise[f.get("within_noise")]]
                        for f in comp.order["flips"]]))
        blocks.append(("p", "Within seed noise: on at least one dataset the two models differ by less than "
                            "sqrt(sd_a^2 + sd_b^2) of their seeds, so the flip may not be real."))
    rel = comp.relative
    if rel:
        blocks.append(("h3", f"Relative improvement over {rel['baseline']}"))
        blocks.append(("table", ["model", comp.x_name, comp.y_name],
                       [[m, fmt_num(rel["x"][m]), fmt_num(rel["y"][m])] for m in comp.models]))
        if rel["steps"]:
            blocks.append(("table", ["step (publication order)", f"change on {comp.x_name}",
                                     f"change on {comp.y_name}", "same direction"],
                           [[f"{s['from']} -> {s['to']}", f"{s['x'] * 100:+.1f}%", f"{s['y'] * 100:+.1f}%",
                             "yes" if math.copysign(1, s["x"]) == math.copysign(1, s["y"]) else "no"]
                            for s in rel["steps"]]))
    for key, caption in figure_keys:
        if key in figures:
            blocks.append(("img", figures[key], caption))
    if comp.notes:
        blocks.append(("h3", "Notes"))
        blocks.append(("ul", list(comp.notes)))
    return blocks


def _strength_blocks(comp: Comparison) -> list[Block]:
    out: list[Block] = []
    if comp.weak:
        out.append(("weak", "The evidence is weak: " + "; ".join(comp.weak) + "."))
    if comp.caveats:
        out.append(("caveat", "Caveat: " + "; ".join(comp.caveats) + "."))
    if not out:
        out.append(("ok", f"No warning signs: {comp.n} paired models with several seeds each, significant rank "
                          "agreement, and narrow intervals."))
    elif not comp.weak and comp.rank:
        out.insert(0, ("ok", f"{comp.n} paired models, rank agreement significant at 0.05 and intervals that are "
                             "not wide."))
    return out


def build_blocks(analysis: Analysis, figures: dict[str, Path], title: str | None = None) -> list[Block]:
    main = analysis.main
    blocks: list[Block] = [("h1", title or f"Do model rankings survive the contrast? {analysis.contrast} vs "
                                            f"{analysis.reference}")]
    n_runs = len(analysis.rows)
    seeds = sorted({r["seed"] for r in analysis.rows if r["seed"] is not None})
    seed_text = f"seeds {', '.join(map(str, seeds))}" if seeds else "no seeds recorded"
    scale_text = "; ".join(f"{d}: {s['scale']} ({s['reason']})" for d, s in analysis.scales.items())
    blocks.append(("p", f"{n_runs} results of {len(analysis.order)} models; reference {analysis.reference}, "
                        f"contrast {analysis.contrast}; baseline {analysis.baseline or 'none'}; {seed_text}. "
                        f"Scales: {scale_text}."))
    blocks.append(("h2", "Findings"))
    blocks += _comparison_blocks(main, figures, [
        ("scatter", f"{main.y_name} against {main.x_name}, with the fitted line and y = x."),
        ("bump", "Rank on each dataset (1 = best); models that change places are in red."),
        ("relative", f"Top-1 relative to {analysis.baseline} on each dataset, in publication order."),
    ])
    blocks.append(("h2", "Rank table"))
    blocks.append(("table", *_rank_table(analysis)))
    blocks.append(("p", "Top-1 in percent, or the ratio for datasets given as ratios (mean ± standard deviation "
                        "over seeds where there are several); rank 1 is the best model in that column; — means no "
                        "result."))
    for comp in analysis.transfer:
        blocks.append(("h2", f"Transfer to {comp.target}"))
        blocks += _comparison_blocks(comp, figures, [
            (f"transfer_{comp.target}", f"Fine-tuned top-1 on {comp.target}: contrast-pretrained against "
                                        "reference-pretrained, with the fitted line and y = x."),
        ])
        blocks.append(("table", ["model", comp.x_name, comp.y_name],
                       [[m, fmt_value(comp.x.get(m), comp.x_scale), fmt_value(comp.y.get(m), comp.y_scale)]
                        for m in analysis.order if m in comp.x or m in comp.y]))
    if not analysis.transfer:
        blocks.append(("h2", "Transfer"))
        blocks.append(("p", "No transfer runs (role 'transfer') were given, so nothing is said about transfer."))
    if analysis.notes:
        blocks.append(("h2", "Data notes"))
        blocks.append(("ul", list(analysis.notes)))
    blocks.append(("h2", "Method"))
    blocks.append(("p", "Kendall tau-b (ties handled) with its exact or asymptotic p-value and Spearman rho "
                        "from scipy.stats; least-squares fits with scipy.stats.linregress; relative improvement = "
                        "top-1 / the baseline's top-1 on the same dataset; steps = change from each model to the "
                        "next in publication order (year). Percentile bootstrap over per-model means, resampling "
                        "seeds within each model and/or the models themselves. All numbers are in stats.json; the "
                        "runs are in results.csv."))
    return blocks


# ---------------------------------------------------------------------------------------------- renderers
def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(blocks: Sequence[Block], base: Path) -> str:
    lines: list[str] = []
    for block in blocks:
        kind = block[0]
        if kind in ("h1", "h2", "h3"):
            lines += ["#" * int(kind[1]) + " " + block[1], ""]
        elif kind == "p":
            lines += [block[1], ""]
        elif kind in ("weak", "ok", "caveat"):
            lines += [("> **Caution.** " if kind == "weak" else "> ") + block[1], ""]
        elif kind == "ul":
            lines += [f"- {item}" for item in block[1]] + [""]
        elif kind == "table":
            headers, rows = block[1], block[2]
            lines.append("| " + " | ".join(_md_cell(h) for h in headers) + " |")
            lines.append("|" + "|".join("---" if i == 0 else "---:" for i in range(len(headers))) + "|")
            lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
            lines.append("")
        elif kind == "img":
            rel = Path(block[1]).relative_to(base).as_posix()
            lines += [f"![{block[2]}]({rel})", "", f"*{block[2]}*", ""]
    return "\n".join(lines).rstrip() + "\n"


def render_html(blocks: Sequence[Block], title: str) -> str:
    esc = html.escape
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>{esc(title)}</title>", f"<style>{CSS}</style></head><body>"]
    for block in blocks:
        kind = block[0]
        if kind in ("h1", "h2", "h3"):
            parts.append(f"<{kind}>{esc(block[1])}</{kind}>")
        elif kind == "p":
            parts.append(f"<p>{esc(block[1])}</p>")
        elif kind in ("weak", "ok", "caveat"):
            parts.append(f'<p class="{kind}">{esc(block[1])}</p>')
        elif kind == "ul":
            parts.append("<ul>" + "".join(f"<li>{esc(i)}</li>" for i in block[1]) + "</ul>")
        elif kind == "table":
            head = "".join(f"<th>{esc(h)}</th>" for h in block[1])
            body = "".join("<tr>" + "".join(f"<td>{esc(str(c))}</td>" for c in row) + "</tr>" for row in block[2])
            parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        elif kind == "img":
            data = base64.b64encode(Path(block[1]).read_bytes()).decode("ascii")
            parts.append(f'<figure><img alt="{esc(block[2])}" src="data:image/png;base64,{data}">'
                         f"<figcaption>{esc(block[2])}</figcaption></figure>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_report(
    analysis: Analysis,
    out_dir: str | Path,
    *,
    title: str | None = None,
    config: dict[str, Any] | None = None,
    inputs: dict[str, str] | None = None,
) -> dict[str, Path]:
    """Write results.csv, stats.json, plots/*.png, report.md, report.html and manifest.json into `out_dir`.

    Each file is written atomically; the returned mapping names them (plots as `plot_<name>`).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {"results": write_results_csv(out / "results.csv", analysis.rows)}
    data = analysis.to_dict()
    data.pop("rows")
    data["n_runs"] = len(analysis.rows)
    write_json(out / "stats.json", data)
    paths["stats"] = out / "stats.json"
    figures = plots.render_all(analysis, out)
    paths.update({f"plot_{k}": v for k, v in figures.items()})
    blocks = build_blocks(analysis, figures, title)
    heading = blocks[0][1]
    write_text(out / "report.md", render_markdown(blocks, out))
    write_text(out / "report.html", render_html(blocks, heading))
    paths["report_md"] = out / "report.md"
    paths["report_html"] = out / "report.html"
    paths["manifest"] = write_manifest(out, config if config is not None else analysis.settings, inputs,
                                       outputs=sorted(p.relative_to(out).as_posix() for p in paths.values()))
    log.info("report written to %s", out)
    return paths
