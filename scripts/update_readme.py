"""Copy a finished demo's own account into the README: its summary (rendered again from summary.json, so
every name in it is escaped whatever summary.md holds) between the demo markers, and its scatter plot as
docs/demo_scatter.png. The README's demo section is therefore always what a demo produced.

    python scripts/update_readme.py demo-out
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from imagenot.demo.summary import BEGIN, END, render  # noqa: E402
from imagenot.errors import ImagenotError  # noqa: E402
from imagenot.fileio import read_json, write_bytes, write_text  # noqa: E402


def update(demo: Path, readme: Path, docs: Path) -> int:
    """Put `demo`'s summary between the markers of `readme` and its scatter plot in `docs`; 0 on success."""
    summary = demo / "summary.json"
    scatter = demo / "report" / "plots" / "scatter.png"
    if not summary.is_file() or not scatter.is_file():
        print(f"{demo}: no summary.json or report/plots/scatter.png; run `imagenot demo --out {demo}` first",
              file=sys.stderr)
        return 2
    try:  # rendered again, not copied: a summary.md edited (or crafted) by hand cannot put raw HTML in the README
        block = render(read_json(summary)).strip()
    except (ImagenotError, ValueError, TypeError, KeyError, AttributeError) as exc:
        print(f"{summary}: not a summary written by `imagenot demo` ({exc})", file=sys.stderr)
        return 2
    text = readme.read_text(encoding="utf-8")
    if BEGIN not in text or END not in text:
        print(f"{readme}: the demo markers are missing ({BEGIN!r} ... {END!r})", file=sys.stderr)
        return 2
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    write_text(readme, head + block + tail)
    docs.mkdir(parents=True, exist_ok=True)
    write_bytes(docs / "demo_scatter.png", scatter.read_bytes())
    print(f"{readme.name} demo section and {docs.name}/demo_scatter.png updated from {demo}")
    return 0


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    return update(Path(argv[0]), REPO / "README.md", REPO / "docs")


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
