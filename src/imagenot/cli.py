"""`imagenot` command line: a thin layer that hands each subcommand to its stage's `cli` module.

Each stage module exposes `register(subparsers)`; it must import nothing heavy (torch, ray) at module level
so that `imagenot --help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from imagenot import __version__
from imagenot.errors import ImagenotError

# Order is the order shown in --help: the pipeline's order.
STAGE_MODULES = (
    "imagenot.wordnet.cli",
    "imagenot.mining.cli",
    "imagenot.download.cli",
    "imagenot.models.cli",
    "imagenot.data.cli",
    "imagenot.training.cli",
    "imagenot.transfer.cli",
    "imagenot.audit.cli",
    "imagenot.analysis.cli",
    "imagenot.demo.cli",
)

log = logging.getLogger("imagenot")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="imagenot",
        description="Contrast datasets and model-ranking studies (after ImageNot, Salaudeen & Hardt 2024).",
    )
    parser.add_argument("--version", action="version", version=f"imagenot {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in STAGE_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and name.startswith(exc.name):  # stage not installed in this build
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose + 1, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        rc = args.func(args)
    except ImagenotError as exc:
        print(f"imagenot {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"imagenot {args.command}: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    return int(rc or 0)


if __name__ == "__main__":
    raise SystemExit(main())
