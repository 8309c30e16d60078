"""`imagenot report` (results to a report folder) and `imagenot runs` (one line per run under a folder)."""

from __future__ import annotations

import argparse
import logging
import os
import sys

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "report",
        help="statistics, plots and a report: are model rankings kept on the contrast dataset?",
        description=(
            "Collect results (result.json files under --runs, or a --results CSV; --wide for one accuracy "
            "column per dataset such as a paper's table) and write results.csv, models.csv, pairs.csv, "
            "stats.json, plots/*.png, report.md and a self-contained report.html into --out. Runs that left a "
            "predictions.parquet get binomial intervals, exact McNemar tests and paired bootstraps."
        ),
        epilog=(
            "examples:\n"
            "  imagenot report --runs runs/ --out report\n"
            "  imagenot report --results paper_results.csv --wide --reference-col imagenet_top1 "
            "--contrast-col imagenot_ratio_to_alexnet"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    src = p.add_argument_group("input")
    src.add_argument("--runs", nargs="+", metavar="DIR", help="run directories (searched for result.json)")
    src.add_argument("--results", metavar="FILE", help="a results CSV (long format unless --wide)")
    src.add_argument("--wide", action="store_true", default=None,
                     help="--results has one accuracy column per dataset")
    src.add_argument("--model-col", help="wide: model name column (default: model)")
    src.add_argument("--reference-col", help="wide: reference accuracy column")
    src.add_argument("--contrast-col", help="wide: contrast accuracy column (may hold ratios to the baseline)")
    src.add_argument("--year-col", help="wide: publication year column (default: 'year' if present)")
    src.add_argument("--family-col", help="wide: model family column (default: 'family' if present)")
    src.add_argument("--config", metavar="FILE", help="rerun from a config.json written by an earlier report")
    ana = p.add_argument_group("analysis")
    ana.add_argument("--reference", metavar="NAME",
                     help="the reference dataset when runs carry no role (wide: its display name)")
    ana.add_argument("--contrast", metavar="NAME",
                     help="the contrast dataset when runs carry no role (wide: its display name)")
    ana.add_argument("--baseline", metavar="MODEL",
                     help="model for relative improvement (default: the AlexNet-family model)")
    ana.add_argument("--scale", dest="scales", action="append", metavar="DATASET=SCALE",
                     help="declare percent, fraction or ratio for a dataset (default: detected); repeatable")
    ana.add_argument("--bootstrap", choices=("auto", "seeds", "models", "both"),
                     help="what the bootstrap resamples (default auto: both when models have several seeds)")
    ana.add_argument("--n-boot", type=int, help="bootstrap resamples (default 2000)")
    ana.add_argument("--confidence", type=float, help="interval level (default 0.95)")
    ana.add_argument("--seed", type=int, help="bootstrap random seed (default 0)")
    ana.add_argument("--duplicates", choices=("error", "first", "last"),
                     help="conflicting duplicate runs: refuse (default) or keep the first/last")
    ana.add_argument("--predictions", choices=("auto", "off"),
                     help="auto (default): use each run's predictions.parquet for per-image statistics; off: "
                          "ignore them")
    ana.add_argument("--n-perm", type=int,
                     help="random orders for the permutation test of tau beyond 9 models (default 100000)")
    ana.add_argument("--power", type=float,
                     help="power of the smallest detectable difference stated per dataset (default 0.8)")
    out = p.add_argument_group("output")
    out.add_argument("--out", metavar="DIR", help="output folder (default: report)")
    out.add_argument("--title", help="report title")
    p.set_defaults(func=run)

    r = subparsers.add_parser(
        "runs",
        help="list the runs under a folder: model, dataset, role, seed, status, epochs, top-1, wall time",
        description=(
            "One line per run found under DIR (every folder with a config.json or result.json): finished (a "
            "result), partial (a checkpoint, no result: resume with --resume), failed (a config but neither, "
            "or an unreadable result)."
        ),
        epilog="examples:\n  imagenot runs demo-out/runs\n  imagenot runs runs/ --csv > runs.csv",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    r.add_argument("dir", metavar="DIR", help="folder searched recursively for run directories")
    fmt = r.add_mutually_exclusive_group()
    fmt.add_argument("--csv", action="store_true", help="CSV on stdout instead of a table")
    fmt.add_argument("--json", action="store_true", help="a JSON list on stdout instead of a table")
    r.set_defaults(func=run_runs)


def run_runs(args: argparse.Namespace) -> int:
    from imagenot.analysis.runs_table import format_csv, format_json, format_table, list_runs

    runs = list_runs(args.dir)
    if args.csv:
        text = format_csv(runs)
    elif args.json:
        text = format_json(runs) + "\n"
    elif not runs:
        text = f"no runs under {args.dir} (no folder with config.json or result.json)\n"
    else:
        text = format_table(runs) + "\n"
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:  # `imagenot runs DIR | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def run(args: argparse.Namespace) -> int:
    from imagenot.analysis.config import ReportConfig
    from imagenot.analysis.pipeline import run_report
    from imagenot.config import resolve

    overrides = {
        "out": args.out, "runs": tuple(args.runs) if args.runs else None, "results": args.results,
        "wide": args.wide, "model_col": args.model_col, "reference_col": args.reference_col,
        "contrast_col": args.contrast_col, "year_col": args.year_col, "family_col": args.family_col,
        "reference": args.reference, "contrast": args.contrast, "baseline": args.baseline,
        "scales": tuple(args.scales) if args.scales else None, "bootstrap": args.bootstrap,
        "n_boot": args.n_boot, "confidence": args.confidence, "seed": args.seed,
        "duplicates": args.duplicates, "title": args.title, "predictions": args.predictions,
        "n_perm": args.n_perm, "power": args.power,
    }
    if args.runs and args.results is None:
        overrides["results"] = None  # a --config that named a CSV is replaced by the runs given here
    cfg = resolve(ReportConfig, config_file=args.config, overrides=overrides)
    if args.runs and cfg.results:
        cfg = ReportConfig(**{**cfg.__dict__, "results": None, "wide": False})
    paths = run_report(cfg)
    print(f"report: {paths['report_html']}")
    print(f"        {paths['report_md']}")
    print(f"results: {paths['results']}  stats: {paths['stats']}")
    return 0
