"""The report's building blocks and their two renderings (Markdown and self-contained HTML).

The report is built once as a list of blocks and rendered twice, so report.md and report.html cannot
disagree. Each block is a small frozen dataclass; a table cell is text or a `Link`.
"""

from __future__ import annotations

import base64
import dataclasses
import html
from collections.abc import Sequence
from pathlib import Path

from imagenot import escape

CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1000px;margin:1.2em auto;
padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.45em;border-bottom:2px solid #3b6ea8;padding-bottom:.15em;margin:.2em 0 .4em}
h2{font-size:1.25em;margin-top:1.8em;color:#2c4f7c}
h3{font-size:1.05em}
table{border-collapse:collapse;margin:.8em 0;font-size:.9em}
th,td{border:1px solid #d5d9de;padding:.3em .6em;text-align:right}
th{background:#eef2f7}
td:first-child,th:first-child{text-align:left}
tr:nth-child(even) td{background:#fafbfc}
figure{margin:1.2em 0}
figure img{max-width:100%;border:1px solid #e3e3e3}
figure.lead{margin:.4em 0 .6em;text-align:center}
figure.lead img{max-height:calc(100vh - 14em);width:auto}
figcaption{font-size:.88em;color:#555}
.verdict{font-size:1.12em;background:#eef3fa;border-left:5px solid #3b6ea8;padding:.45em .9em;margin:.3em 0}
.sub{font-size:.9em;color:#444;margin:.2em 0}
.weak{background:#fff4e5;border-left:4px solid #edae49;padding:.5em 1em}
.caveat{background:#f4f6f8;border-left:4px solid #8c9aab;padding:.5em 1em}
.ok{background:#eef7ee;border-left:4px solid #5a9a5a;padding:.5em 1em}
code{background:#f3f3f3;padding:0 .2em}
details{margin:1em 0}
summary{cursor:pointer;font-weight:bold;color:#2c4f7c}
"""

STYLES = ("verdict", "sub", "weak", "caveat", "ok")


@dataclasses.dataclass(frozen=True)
class Link:
    text: str
    href: str  # relative to the report folder


Cell = str | Link


@dataclasses.dataclass(frozen=True)
class Heading:
    level: int
    text: str


@dataclasses.dataclass(frozen=True)
class Paragraph:
    text: str
    style: str | None = None  # one of STYLES


@dataclasses.dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Table:
    headers: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]


@dataclasses.dataclass(frozen=True)
class Figure:
    path: Path
    caption: str
    lead: bool = False  # the report's first figure, sized to fit the first screen


@dataclasses.dataclass(frozen=True)
class Links:
    label: str
    links: tuple[Link, ...]


Block = Heading | Paragraph | Bullets | Table | Figure | Links


def table(headers: Sequence[str], rows: Sequence[Sequence[Cell]]) -> Table:
    return Table(tuple(headers), tuple(tuple(r) for r in rows))


def bullets(items: Sequence[str]) -> Bullets:
    return Bullets(tuple(items))


def _md_text(cell: Cell) -> str:
    """Text for report.md: every string goes through `escape.md` (names and paths come from data)."""
    if isinstance(cell, Link):
        return f"[{escape.md(cell.text)}]({escape.md_href(cell.href)})"
    return escape.md(cell)


def _md_cell(cell: Cell) -> str:
    return _md_text(cell)


def render_markdown(blocks: Sequence[Block], base: Path) -> str:
    lines: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            lines += ["#" * block.level + " " + _md_text(block.text), ""]
        elif isinstance(block, Paragraph):
            text = _md_text(block.text)
            if block.style == "verdict":
                lines += [f"**{text}**", ""]
            elif block.style in ("weak", "ok", "caveat"):
                lines += [("> **Caution.** " if block.style == "weak" else "> ") + text, ""]
            else:
                lines += [text, ""]
        elif isinstance(block, Bullets):
            lines += [f"- {_md_text(item)}" for item in block.items] + [""]
        elif isinstance(block, Table):
            lines.append("| " + " | ".join(_md_cell(h) for h in block.headers) + " |")
            lines.append("|" + "|".join("---" if i == 0 else "---:" for i in range(len(block.headers))) + "|")
            lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows]
            lines.append("")
        elif isinstance(block, Figure):
            rel = Path(block.path).relative_to(base).as_posix()
            caption = _md_text(block.caption)
            lines += [f"![{caption}]({escape.md_href(rel)})", "", f"*{caption}*", ""]
        elif isinstance(block, Links):
            lines += [_md_text(block.label) + " " + ", ".join(_md_text(link) for link in block.links), ""]
    return "\n".join(lines).rstrip() + "\n"


def _html_cell(cell: Cell) -> str:
    if isinstance(cell, Link):
        return f'<a href="{html.escape(escape.md_href(cell.href))}">{html.escape(cell.text)}</a>'
    return html.escape(str(cell))


def render_html(blocks: Sequence[Block], title: str) -> str:
    esc = html.escape
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>{esc(title)}</title>", f"<style>{CSS}</style></head><body>"]
    for block in blocks:
        if isinstance(block, Heading):
            parts.append(f"<h{block.level}>{esc(block.text)}</h{block.level}>")
        elif isinstance(block, Paragraph):
            cls = f' class="{block.style}"' if block.style else ""
            parts.append(f"<p{cls}>{esc(block.text)}</p>")
        elif isinstance(block, Bullets):
            parts.append("<ul>" + "".join(f"<li>{esc(i)}</li>" for i in block.items) + "</ul>")
        elif isinstance(block, Table):
            head = "".join(f"<th>{esc(h)}</th>" for h in block.headers)
            body = "".join("<tr>" + "".join(f"<td>{_html_cell(c)}</td>" for c in row) + "</tr>"
                           for row in block.rows)
            parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        elif isinstance(block, Figure):
            data = base64.b64encode(Path(block.path).read_bytes()).decode("ascii")
            cls = ' class="lead"' if block.lead else ""
            parts.append(f'<figure{cls}><img alt="{esc(block.caption)}" src="data:image/png;base64,{data}">'
                         f"<figcaption>{esc(block.caption)}</figcaption></figure>")
        elif isinstance(block, Links):
            parts.append(f"<p>{esc(block.label)} " + ", ".join(_html_cell(link) for link in block.links) + "</p>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
