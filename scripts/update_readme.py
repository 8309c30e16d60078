"""Copy a finished demo's own account into the README: its summary.md between the demo markers, and its
scatter plot as docs/demo_scatter.png. The README's demo section is therefore always what a demo produced.

    python scripts/update_readme.py demo-out
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from imagenot.demo.summary import BEGIN, END  # noqa: E402
from imagenot.fileio import write_bytes, write_text  # noqa: E402


def update(demo: Path, readme: Path, docs: Path) -> int:
    """Put `demo`'s summary between the markers of `readme` and its scatter plot in `docs`; 0 on success."""
    summary = demo / "summary.md"
    scatter = demo / "report" / "plots" / "scatter.png"
    if not summary.is_file() or not scatter.is_file():
        print(f"{demo}: no summary.md or report/plots/scatter.png; run `imagenot demo --out {demo}` first",
              file=sys.stderr)
        return 2
    text = readme.read_text(encoding="utf-8")
    if BEGIN not in text or END not in text:
        print(f"{readme}: the demo markers are missing ({BEGIN!r} ... {END!r})", file=sys.stderr)
        return 2
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    block = summary.read_text(encoding="utf-8").strip()
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
