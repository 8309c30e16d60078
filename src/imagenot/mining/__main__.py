"""`python -m imagenot.mining mine|select ...`: the mining stage's CLI alone (what `imagenot mine` runs)."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from imagenot.errors import ImagenotError
from imagenot.mining import cli


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    parser = argparse.ArgumentParser(prog="python -m imagenot.mining")
    parser.add_argument("-v", "--verbose", action="count", default=0)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    cli.register(sub)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING - 10 * min(args.verbose, 2),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    try:
        return args.func(args)
    except ImagenotError as exc:
        print(f"imagenot {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
