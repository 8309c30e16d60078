"""`imagenot report` (results to a report folder) and `imagenot runs` (one line per run under a folder)."""

from __future__ import annotations

import argparse
import logging
import os
import sys

log = logging.getLogger(__name__)


EXAMPLES = (
    "imagenot report --runs runs/ --out report",
    "imagenot report --runs runs/imagenet-1k runs/imagenot --reference imagenet-1k --contrast imagenot",
    "imagenot report --results paper_results.csv --wide --reference-col imagenet_top1 "
    "--contrast-col imagenot_ratio_to_alexnet",
)


def register(subparsers: argparse._SubParsersAction) -> None:
    from imagenot.analysis.config import ReportConfig
    from imagenot.cli_options import HelpFormatter, add_stage_parser

    p = add_stage_parser(
        subparsers, "report", ReportConfig,
        help="statistics, plots and a report: are model rankings kept on the contrast dataset?",
        description=(
            "Collect results (result.json files under --runs, or a --results CSV; --wide for one accuracy "
            "column per dataset such as a paper's table) and write results.csv, models.csv, pairs.csv, "
            "stats.json, plots/*.png, report.md and a self-contained report.html into --out. Runs that left a "
            "predictions.parquet get binomial intervals, exact McNemar tests and paired bootstraps."
        ),
        examples=EXAMPLES,
    )
    p.set_defaults(func=run)

    r = subparsers.add_parser(
        "runs",
        help="list the runs under a folder: model, dataset, role, seed, status, epochs, top-1, wall time",
        description=(
            "One line per run found under DIR (every folder with a config.json or result.json): finished (a "
            "result), partial (a checkpoint, no result: resume with --resume), failed (a config but neither, "
            "or an unreadable result)."
        ),
        epilog="examples:\n  imagenot runs demo-out/runs\n  imagenot runs runs/ --csv > runs.csv\n"
               "  imagenot runs runs/ --json | python -m json.tool",
        formatter_class=HelpFormatter,
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
    import dataclasses

    from imagenot.analysis.config import ReportConfig
    from imagenot.analysis.pipeline import run_report
    from imagenot.cli_options import config_from_args

    cfg = config_from_args(ReportConfig, args)
    if getattr(args, "runs", None) and cfg.results:
        # runs given here replace a --config's CSV input (a report reads one or the other)
        cfg = dataclasses.replace(cfg, results=None, wide=False)
    paths = run_report(cfg)
    print(f"report: {paths['report_html']}")
    print(f"        {paths['report_md']}")
    print(f"results: {paths['results']}  stats: {paths['stats']}")
    return 0
