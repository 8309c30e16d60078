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
from imagenot.errors import ImagenotError, disk_full_message

# Order is the order shown in --help: the pipeline's order.
STAGE_MODULES = (
    "imagenot.wordnet.cli",
    "imagenot.mining.cli",
    "imagenot.download.cli",
    "imagenot.models.cli",
    "imagenot.data.cli",
    "imagenot.training.cli",
    "imagenot.transfer.cli",
    "imagenot.evaluation.cli",
    "imagenot.zoo.cli",
    "imagenot.audit.cli",
    "imagenot.analysis.cli",
    "imagenot.demo.cli",
)

log = logging.getLogger("imagenot")


def build_parser() -> argparse.ArgumentParser:
    from imagenot.cli_options import HelpFormatter, Parser, global_options

    parser = Parser(
        prog="imagenot",
        description="Contrast datasets and model-ranking studies (after ImageNot, Salaudeen & Hardt 2024).",
        epilog="Run `imagenot COMMAND --help` for a command's options and examples. Global options may come "
        "before or after the command.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"imagenot {__version__}")
    global_options(parser, suppress=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in STAGE_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and name.startswith(exc.name):  # stage not installed in this build
                continue
            raise
        module.register(sub)
    for subparser in sub.choices.values():  # stages whose parser is not generated get the globals too
        if "--log-level" not in subparser._option_string_actions:
            global_options(subparser, suppress=True)
    return parser


def _setup_logging(args: argparse.Namespace) -> None:
    from imagenot import progress

    if args.log_level:
        level = getattr(logging, args.log_level.upper())
    elif args.quiet:
        level = logging.WARNING
    else:
        level = logging.DEBUG if args.verbose else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    if args.quiet or args.no_progress:
        progress.set_enabled(False)


def main(argv: list[str] | None = None) -> int:
    """The CLI; Ctrl-C exits 130 at any moment, also while the parser and the stages are still loading."""
    try:
        return _main(argv)
    except KeyboardInterrupt:
        print("imagenot: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


def _main(argv: list[str] | None) -> int:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        rc = args.func(args)
    except ImagenotError as exc:
        print(f"imagenot {args.command}: error: {exc}", file=sys.stderr)
        return int(getattr(exc, "exit_status", 2))
    except KeyboardInterrupt:
        print(f"imagenot {args.command}: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `imagenot models | head`: the reader left; not an error of ours
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except Exception as exc:  # a full disk outside a stage's own `disk_full_is_an_error` block
        message = disk_full_message(exc)
        if message is None:
            raise
        print(f"imagenot {args.command}: error: {message}", file=sys.stderr)
        return 1
    return int(rc or 0)


if __name__ == "__main__":
    raise SystemExit(main())
