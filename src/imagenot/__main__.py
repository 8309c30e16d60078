"""`python -m imagenot`: Ctrl-C exits 130 at any moment, also while the CLI is still importing."""

import sys

try:
    from imagenot.cli import main

    status = main()
except KeyboardInterrupt:
    print("imagenot: interrupted; rerun the same command to resume", file=sys.stderr)
    status = 130
raise SystemExit(status)
