"""report.md and a self-contained report.html that lead with the answer and say how far it can be trusted.

The first screen holds a one-sentence verdict and the scatter with every model's interval on both axes; then
the models with their validation sizes, chance levels and training budgets; then which differences the test
images support (flips on both datasets, one, or neither); then the agreement statistics with each source of
noise on its own; details (how scales were read, notes, method) come last. Every sentence quotes the number it
rests on, and every caveat the analysis found is printed, not softened.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from imagenot.analysis import context, plots
from imagenot.analysis.blocks import (
    Block,
    Figure,
    Heading,
    Paragraph,
    bullets,
    render_html,
    render_markdown,
    table,
)
from imagenot.analysis.comparison import Analysis, Comparison
from imagenot.analysis.outdir import replaced_folder
from imagenot.analysis.results import write_results_csv
from imagenot.analysis.tables import (
    datasets_table,
    fits_table,
    flip_support_table,
    flips_table,
    models_table,
    noise_blocks,
    relative_tables,
    stats_table,
    transfer_table,
    write_models_csv,
    write_pairs_csv,
)
from imagenot.analysis.wording import (
    boot_phrase,
    comparison_findings,
    flip_sentence,
    mdd_sentence,
    order_sentence,
    published_sentence,
    scatter_caption,
    verdict,
)
from imagenot.fileio import write_json, write_manifest, write_text

log = logging.getLogger(__name__)


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
        blocks.append(bullets([flip_sentence(f, comp.x_name, comp.y_name) for f in comp.flip_support]))
        blocks.append(flip_support_table(comp))
    for ev in paired_sides:
        blocks.append(Paragraph(order_sentence(ev)))
    mdd = [s for s in (mdd_sentence(ev, power) for ev in sides) if s]
    if mdd:
        blocks.append(bullets(mdd))
    if paired_sides:
        blocks.append(Paragraph("Every pair's difference, exact McNemar p (with several seeds, the sign test of the "
                                "per-image differences), Holm-adjusted p and paired-bootstrap interval is in "
                                "pairs.csv; every model's interval in models.csv.", "sub"))
    return blocks


def _agreement_blocks(comp: Comparison, figures: dict[str, Path], figure_keys: Sequence[tuple[str, str]]
                      ) -> list[Block]:
    """One comparison's agreement: findings, strength, statistics, noise, fits, flips, relative, figures."""
    blocks: list[Block] = [bullets(comparison_findings(comp))]
    blocks += _strength_blocks(comp)
    blocks += _statistics_blocks(comp)
    blocks += noise_blocks(comp)
    fits = fits_table(comp)
    if fits[1]:
        blocks.append(Heading(3, "Linear fits"))
        blocks.append(table(*fits))
        blocks.append(Paragraph("Fit of the second dataset on the first: raw units as given; logit and probit of "
                                "the accuracy as a fraction; ratio = accuracy / baseline accuracy on the same "
                                "dataset.", "sub"))
    if comp.order and comp.order["flips"]:
        blocks.append(Heading(3, "Pairs that flip"))
        blocks.append(flips_table(comp))
        blocks.append(Paragraph("Within seed noise: on at least one dataset the two models differ by less than "
                                "sqrt(sd_a^2 + sd_b^2) of their seeds, so the flip may not be real.", "sub"))
    if comp.relative:
        blocks.append(Heading(3, f"Relative improvement over {comp.relative['baseline']}"))
        blocks += relative_tables(comp)
    blocks += [Figure(figures[key], caption) for key, caption in figure_keys if key in figures]
    if comp.notes:
        blocks.append(Heading(3, "Notes"))
        blocks.append(bullets(list(comp.notes)))
    return blocks


def _statistics_blocks(comp: Comparison) -> list[Block]:
    """The agreement statistics table and how its intervals were made."""
    if not (comp.rank or comp.order):
        return []
    blocks: list[Block] = [Heading(3, "Statistics"), table(*stats_table(comp))]
    if comp.bootstrap:
        blocks.append(Paragraph(f"Intervals: {boot_phrase(comp.bootstrap)}; tau, slope and R^2 on the "
                                f"{comp.bootstrap['fit']} scale. Resamples where a statistic is undefined "
                                "are dropped (valid counts in stats.json).", "sub"))
    return blocks


MAIN_FIGURES = (
    ("scatter_logit", "The scatter on logit axes, with the logit-scale fit (accuracies near 0 or 100% spread "
                      "out, as in 'accuracy on the line' studies)."),
    ("bump", "Rank on each dataset (1 = best); models that change places are in red."),
)
METHOD = (
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
    "pair tests in pairs.csv.")


def build_blocks(analysis: Analysis, figures: dict[str, Path], title: str | None = None,
                 out_dir: Path | None = None, audit: str | Path | None = None,
                 plateau: str | Path | None = None) -> list[Block]:
    """The report, verdict first. `out_dir` is the report's final folder (for links to dataset cards);
    `audit` and `plateau` are optional files of other stages (see imagenot.analysis.context)."""
    folder = out_dir or Path.cwd()
    power = float(analysis.settings.get("power", 0.8))
    context_notes: list[str] = []
    blocks = _lead_blocks(analysis, figures, title)
    blocks += _models_and_datasets_blocks(analysis, folder, audit, plateau, context_notes)
    blocks.append(Heading(2, "Which differences are real"))
    blocks += evidence_blocks(analysis.main, power)
    blocks.append(Heading(2, "Agreement between the rankings"))
    blocks += _agreement_blocks(analysis.main, figures, [
        *MAIN_FIGURES, ("relative", f"Top-1 relative to {analysis.baseline} on each dataset, in publication order.")])
    blocks += _transfer_blocks(analysis, figures, power)
    blocks += _details_blocks(analysis, context_notes)
    return blocks


def _lead_blocks(analysis: Analysis, figures: dict[str, Path], title: str | None) -> list[Block]:
    """The first screen: title, verdict, where published numbers came from, the scatter."""
    blocks: list[Block] = [Heading(1, title or f"Do model rankings survive the contrast? {analysis.contrast} vs "
                                                f"{analysis.reference}")]
    blocks.append(Paragraph(verdict(analysis), "verdict"))
    published = published_sentence(analysis)
    if published:
        blocks.append(Paragraph(published, "sub"))
    if "scatter" in figures:
        blocks.append(Figure(figures["scatter"], scatter_caption(analysis), lead=True))
    return blocks


def _models_and_datasets_blocks(analysis: Analysis, folder: Path, audit: str | Path | None,
                                plateau: str | Path | None, context_notes: list[str]) -> list[Block]:
    """The models table, the datasets table and what other stages' files say (card, sweep, audit)."""
    blocks: list[Block] = [Heading(2, "Models and datasets")]
    blocks += models_table(analysis)
    known = [i for i in analysis.datasets.values() if i.n_val_range or i.chance or i.epochs or i.train_images
             or i.specs or i.source != "trained"]
    if known:
        blocks += datasets_table(analysis, folder)
    else:
        blocks.append(Paragraph("The results give no validation sizes, chance levels or training budgets.", "sub"))
    text_filter = context.text_filter_lines(analysis)
    if text_filter:
        blocks.append(bullets(text_filter))
    blocks += context.plateau_blocks(plateau, analysis, context_notes)
    blocks += context.audit_blocks(audit, folder, context_notes)
    return blocks


def _transfer_blocks(analysis: Analysis, figures: dict[str, Path], power: float) -> list[Block]:
    """One section per transfer target, or a sentence saying there is none."""
    if not analysis.transfer:
        return [Heading(2, "Transfer"),
                Paragraph("No transfer runs (role 'transfer') were given, so nothing is said about transfer.")]
    blocks: list[Block] = []
    for comp in analysis.transfer:
        blocks.append(Heading(2, f"Transfer to {comp.target}"))
        blocks += _agreement_blocks(comp, figures, [
            (f"transfer_{comp.target}", f"Fine-tuned top-1 on {comp.target}: contrast-pretrained against "
                                        "reference-pretrained, with the fitted line and y = x."),
        ])
        if any(ev is not None and ev.paired for ev in (comp.evidence_x, comp.evidence_y)):
            blocks.append(Heading(3, "Which differences are real"))
            blocks += evidence_blocks(comp, power)
        blocks.append(transfer_table(analysis, comp))
    return blocks


def _details_blocks(analysis: Analysis, context_notes: list[str]) -> list[Block]:
    """What was read and how: runs, seeds, scales, data notes and the method."""
    n_runs = len(analysis.rows)
    seeds = sorted({r["seed"] for r in analysis.rows if r["seed"] is not None})
    seed_text = f"seeds {', '.join(map(str, seeds))}" if seeds else "no seeds recorded"
    blocks: list[Block] = [Heading(2, "Details")]
    blocks.append(Paragraph(f"{n_runs} results of {len(analysis.order)} models; reference {analysis.reference}, "
                            f"contrast {analysis.contrast}; baseline {analysis.baseline or 'none'}; {seed_text}."))
    blocks.append(bullets([f"{d}: read as {s['scale']} ({s['reason']})" for d, s in analysis.scales.items()]))
    if analysis.notes or context_notes:
        blocks.append(Heading(3, "Data notes"))
        blocks.append(bullets([*analysis.notes, *context_notes]))
    blocks.append(Heading(3, "Method"))
    blocks.append(Paragraph(METHOD))
    return blocks


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
        data["verdict"] = verdict(analysis)  # the sentence report.md leads with, for summaries of the report
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
