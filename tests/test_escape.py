"""Escaping of data for outputs people open: Markdown, CSV, shell and Slurm scripts, matplotlib text."""

from __future__ import annotations

import csv
import io
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from imagenot import escape
from imagenot.errors import InputError

NASTY = ["<img src=x onerror=alert(1)>", "a|b", "line\nbreak", "=HYPERLINK(\"http://x\",\"y\")", "+1", "-x",
         "@SUM(A1)", "\tlead", "\rlead", "'quoted", "$x_1^2$", "back`tick`s", "&amp;", "plain"]


def test_markdown_text_is_inert_and_keeps_its_table_shape() -> None:
    row = escape.md_row(["<img src=x onerror=alert(1)>", "a|b", "line\nbreak\r\nagain", "p > 0.05 & more"])
    assert "<img" not in row and "&lt;img src=x onerror=alert(1)>" in row
    assert row.count("|") == 5 and "\n" not in row and "line break again" in row
    assert "p > 0.05 &amp; more" in row
    tree = escape.md_tree({"name": "<b>x</b>", "n": -0.5, "items": ["a|b", 3, None], "<k>": ("y\nz",)})
    assert tree == {"name": "&lt;b>x&lt;/b>", "n": -0.5, "items": ["a&#124;b", 3, None], "&lt;k>": ("y z",)}


def test_markdown_renders_the_text_literally() -> None:
    """A CommonMark renderer shows the original characters and creates no element from the data."""
    markdown = pytest.importorskip("markdown_it")
    for value in NASTY:
        rendered = markdown.MarkdownIt("commonmark").enable("table").render(
            "| a | b |\n|---|---|\n" + escape.md_row([value, "end"]) + "\n")
        assert "<img" not in rendered and rendered.count("<td>") == 2, value
    html = markdown.MarkdownIt("commonmark").render(escape.md("<script>alert(1)</script>"))
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_markdown_data_forms_no_link_or_image() -> None:
    import html

    markdown = pytest.importorskip("markdown_it")
    render = markdown.MarkdownIt("commonmark").enable("table").render
    hostile = ["[click](javascript:alert(1))", "![](https://tracker.example/pixel.png?leak)", "[a][r] [b][]",
               "[r]: https://evil.example"]
    for value in hostile:
        paragraph = render(escape.md(value))
        assert "<a " not in paragraph and "<img" not in paragraph, value
        assert html.unescape(paragraph) == f"<p>{value}</p>\n"  # shown as the characters given
        table = render("| a |\n|---|\n" + escape.md_row([value]) + "\n")
        assert "<a " not in table and "<img" not in table, value
    assert escape.md("tau [0.38, 1.00]") == "tau [0.38, 1.00]"  # brackets that form nothing stay readable


def test_code_spans_cannot_be_closed_by_the_data() -> None:
    assert escape.md_code("imagenot download --out x") == "`imagenot download --out x`"
    code = escape.md_code("a`b` <img src=x onerror=1>")
    assert code.startswith("`` ") and code.endswith(" ``")
    assert escape.md_code("a|b", table=True) == "`a\\|b`" and escape.md_code("x\ny") == "`x y`"


def test_csv_cells_are_neutralised_and_read_back() -> None:
    values = [*NASTY, -0.5, 3, None, True]
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(escape.csv_row(values))
    cells = next(csv.reader(io.StringIO(buf.getvalue(), newline="")))
    for raw, cell in zip(values, cells):
        if isinstance(raw, str):
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r", "\n")), cell
            assert escape.csv_unescape(cell) == raw.replace("\r", "\n")  # a lone CR would end the row
    assert cells[len(NASTY):] == ["-0.5", "3", "", "True"]  # numbers stay numbers


def test_shell_values_are_quoted_and_line_breaks_refused(tmp_path: Path) -> None:
    argv = ["echo", "a b", "$(touch pwned)", "; rm -rf x", "it's"]
    line = escape.shell_join(argv)
    assert shlex.split(line) == argv
    out = subprocess.run(["bash", "-c", line], cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    assert out == "a b $(touch pwned) ; rm -rf x it's\n" and not (tmp_path / "pwned").exists()
    for bad in ("a\nb", "a\rb", "a\0b"):
        with pytest.raises(InputError, match="line break or NUL"):
            escape.shell_arg(bad, "plan value")
    assert escape.slurm_option("time", "01:00:00") == "#SBATCH --time=01:00:00"
    assert escape.slurm_option("comment", "two words; x") == "#SBATCH --comment='two words; x'"
    with pytest.raises(InputError, match="Slurm option partition"):
        escape.slurm_option("partition", "gpu\n#SBATCH --wrap=rm")
    with pytest.raises(InputError, match="not an option name"):
        escape.slurm_option("x\n#SBATCH --y", "1")


def test_matplotlib_shows_data_text_literally(tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = ["$x_1^2$", "cost $5 and $", "a_b^c", "$\\frac{$", "plain"]
    fig, ax = plt.subplots()
    ax.bar(range(len(names)), [1] * len(names), label=escape.mpl(names[0]))
    ax.set_xticks(range(len(names)), escape.mpl_all(names))
    ax.set_title(escape.mpl(names[3]))
    ax.annotate(escape.mpl(names[1]), (0, 1))
    ax.legend()
    fig.savefig(tmp_path / "ok.png")  # draws every text; mathtext would raise on "$\frac{"
    shown = [t.get_text() for t in ax.get_xticklabels()]
    for text, name in zip(shown, names):
        assert text == escape.mpl(name)
        assert ax.xaxis.get_major_ticks()[0].label1._preprocess_math(text) == (name, False)
    plt.close(fig)
    fig, ax = plt.subplots()
    ax.set_title(names[3])  # unescaped: the crash this helper prevents
    with pytest.raises(ValueError):
        fig.savefig(tmp_path / "bad.png")
    plt.close(fig)


def test_tsv_rows_keep_their_columns_or_are_refused() -> None:
    line = escape.tsv_row(["a b", 3, "<x> | $y$ =z", "'q'"], ["w", "n", "name", "q"], "t.tsv")
    assert line == "a b\t3\t<x> | $y$ =z\t'q'\n" and line[:-1].split("\t")[2] == "<x> | $y$ =z"
    for bad, what in (("a\tb", "a tab"), ("a\nb", "a newline"), ("a\rb", "a carriage return"),
                      ("a\0b", "a NUL byte")):
        with pytest.raises(InputError, match=re.escape(f"name {bad!r} contains {what}; it cannot be a field of t.tsv")):
            escape.tsv_row(["ok", bad], ["w", "name"], "t.tsv")


def test_terminal_text_shows_control_characters_as_escapes() -> None:
    assert escape.term("a\x1b[2Jb\nc\r\td\x7f\x9b\u2028é 日本") == "a\\x1b[2Jb\\nc\\r\\td\\x7f\\x9b\\u2028é 日本"
    assert escape.term(3) == "3" and escape.term("plain name-1") == "plain name-1"
