"""Text from data, escaped for the outputs people open: Markdown, CSV, shell scripts, matplotlib plots.

Captions, class names and model names come from corpora, dataset folders and plans that someone else may
have written. Rendered raw, they act: `<img src=x onerror=...>` runs in a Markdown viewer, a `|` or newline
breaks a table, a cell starting with `=` is a formula in a spreadsheet, a newline in a Slurm option becomes
its own line of the batch script, and a `$` turns a plot title into mathtext (and crashes matplotlib on a
stray `_` or `^`). One function per output kind, used by every writer:

- `md` / `md_cell`: Markdown text and table cells (HTML escaped, `|` escaped, no link or image syntax,
  newlines folded to spaces).
- `csv_cell` / `csv_row` / `csv_unescape`: spreadsheet-injection guidance (OWASP): a text cell starting with
  `= + - @`, tab, CR or LF gets a leading `'`; so does one already starting with `'`, which makes the scheme
  reversible (`csv_unescape` strips exactly one leading `'`) and matches what a spreadsheet shows. Numbers
  are never touched, so `-0.5` stays a number.
- `shell_arg` / `shell_join` / `slurm_option`: shlex quoting; a value with a newline or NUL is refused.
- `mpl`: a data string for matplotlib with every `$` escaped, so it is never parsed as mathtext.
- `term`: a data string for a terminal line (`runs`, `datasets --show`, `models`): control characters shown as
  escapes, so a name cannot start a line of its own, move the cursor or send the terminal an escape sequence.
- `tsv_row`: one line of a tab-separated file (classes.tsv, class_folders.tsv, pool_counts.tsv). TSV has no
  quoting, so a tab, CR, LF or NUL in a value would shift its columns or split its row for every reader
  (the project's own, pandas, `cut`, a spreadsheet): such a value is refused with an InputError naming it
  and its column, never rewritten behind the user's back.
"""

from __future__ import annotations

import re
import shlex
import unicodedata
from collections.abc import Iterable
from typing import Any

from imagenot.errors import InputError

_NEWLINES = re.compile(r"[\r\n\x0b\x0c\x85\u2028\u2029]+")
_CSV_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n", "'")
_SLURM_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
_MD_ENTITIES = (("&", "&amp;"), ("<", "&lt;"), ("|", "&#124;"), ("](", "]&#40;"), ("][", "]&#91;"),
                ("]:", "]&#58;"))  # `&` first, so the entities added after it stay entities
_TSV_BREAKERS = {"\t": "a tab", "\r": "a carriage return", "\n": "a newline", "\0": "a NUL byte"}


def md(text: Any) -> str:
    """`text` as inert Markdown (prose or a table cell): `&`, `<` and `|` escaped, line breaks folded.

    `<` is what opens an HTML tag (`<img onerror>`, `<script>`) and `&` an entity, so escaping those two as
    HTML entities keeps any markup plain text in every renderer (GitHub, VS Code, pandoc); `>` alone opens
    nothing mid-line, and with line breaks folded data never starts a line (so `p > 0.05` stays readable).
    `|` becomes `&#124;`, so a value cannot add or shift table columns wherever it lands. A link or image
    needs `]` right before `(` (inline), `[` (reference) or `:` (definition); that character becomes an
    entity, so data cannot form one (`[x](javascript:...)`, or `![](https://tracker/pixel)` that a viewer
    fetches on opening the file) while brackets elsewhere (`[0.38, 1.00]`) stay as they are.
    """
    folded = _NEWLINES.sub(" ", str(text))
    for char, entity in _MD_ENTITIES:
        folded = folded.replace(char, entity)
    return folded


def md_cell(value: Any) -> str:
    """`value` as one Markdown table cell (the same escaping as `md`)."""
    return md(value)


def md_tree(obj: Any) -> Any:
    """`obj` (a JSON-like record: dicts, lists, strings, numbers) with every string, keys too, through `md`.

    For report templates that interpolate many fields of a record: escaping the record once means no
    field can be missed; numbers and None pass through unchanged.
    """
    if isinstance(obj, str):
        return md(obj)
    if isinstance(obj, dict):
        return {md(k) if isinstance(k, str) else k: md_tree(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(md_tree(v) for v in obj)
    return obj


def md_href(href: Any) -> str:
    """A relative link target for Markdown or HTML: percent-encoded, so spaces, parentheses or `|` cannot end
    it, and `:` too, so a folder named `javascript:...` stays a relative path instead of a URL scheme."""
    from urllib.parse import quote

    return quote(str(href), safe="/#.-_~")


def md_code(text: Any, table: bool = False) -> str:
    """`text` inside a Markdown code span (paths, commands): newlines folded, the fence long enough.

    A code span shows its content literally in every renderer (no HTML), so only a backtick run inside the
    text needs a longer fence; in a table cell (`table=True`) a `|` is escaped as GFM asks.
    """
    body = _NEWLINES.sub(" ", str(text))
    if table:
        body = body.replace("|", "\\|")
    longest = max((len(m) for m in re.findall(r"`+", body)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if body.startswith("`") or body.endswith("`") or longest else ""
    return f"{fence}{pad}{body}{pad}{fence}"


def md_row(values: Iterable[Any]) -> str:
    """One Markdown table row of escaped cells."""
    return "| " + " | ".join(md_cell(v) for v in values) + " |"


def csv_cell(value: Any) -> Any:
    """A CSV cell neutralised for spreadsheets: text starting with `= + - @`, tab, CR or `'` gets a `'`.

    Only strings are touched: numbers (floats, ints, bools, None) are written as they are. A carriage
    return becomes a newline: Python's csv writer quotes a field with `\n` but not one with a lone `\r`,
    which would otherwise end the row for every reader.
    """
    if not isinstance(value, str):
        return value
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    return "'" + value if value.startswith(_CSV_TRIGGERS) else value


def csv_row(values: Iterable[Any]) -> list[Any]:
    """`csv_cell` over a row."""
    return [csv_cell(v) for v in values]


def csv_unescape(text: str) -> str:
    """Undo `csv_cell` on a cell read back from a CSV this project wrote."""
    return text[1:] if text.startswith("'") else text


def shell_arg(value: Any, what: str = "value") -> str:
    """`value` quoted for a POSIX shell; refused when it holds a newline or NUL (it would end the line)."""
    text = str(value)
    if "\0" in text or _NEWLINES.search(text):
        raise InputError(f"{what} {text!r} contains a line break or NUL byte; it cannot go into a script line")
    return shlex.quote(text)


def shell_join(argv: Iterable[Any], what: str = "command argument") -> str:
    """A command line: each argument through `shell_arg`."""
    return " ".join(shell_arg(a, what) for a in argv)


def slurm_option(key: Any, value: Any) -> str:
    """`#SBATCH --key=value` with the key checked (letters, digits, `-`, `_`) and the value quoted.

    sbatch splits `#SBATCH` lines with shell-like quoting, so a quoted value keeps its spaces and a newline
    (refused) cannot start a line of its own.
    """
    name = str(key)
    if not _SLURM_KEY.match(name):
        raise InputError(f"Slurm option name {name!r} is not an option name (letters, digits, '-', '_')")
    return f"#SBATCH --{name}={shell_arg(value, f'Slurm option {name}')}"


def mpl(text: Any) -> str:
    """A data string for a matplotlib title, label, tick label, legend or annotation, shown literally.

    matplotlib reads text between two unescaped `$` as mathtext (where `_`, `^` and `\\` are commands, and a
    malformed expression raises at draw time). Escaping every `$` as `\\$` leaves no math span, and
    matplotlib renders `\\$` outside math as `$`, so the text appears exactly as given.
    """
    return str(text).replace("$", r"\$")


def mpl_all(texts: Iterable[Any]) -> list[str]:
    """`mpl` over tick labels or legend entries."""
    return [mpl(t) for t in texts]


def term(text: Any) -> str:
    """`text` for one line of a terminal table: control and line-separator characters as `\\x1b`, `\\n`, ...

    A name from data printed raw could end the line (a forged row), return the cursor over what was printed
    (`\\r`) or carry an ANSI/OSC escape sequence the terminal obeys (colours, title, clipboard); shown as
    escapes, it reads as what it is. Everything else, non-ASCII letters included, is printed as it is.
    """
    return "".join(ch.encode("unicode_escape").decode("ascii") if _unprintable(ch) else ch for ch in str(text))


def _unprintable(ch: str) -> bool:
    return unicodedata.category(ch) in ("Cc", "Zl", "Zp")  # Cc: C0, DEL and C1 (the 8-bit CSI among them)


def tsv_field(value: Any, column: str = "value", where: str = "a TSV file") -> str:
    """`value` as one field of a tab-separated line, or an InputError naming the value and its column.

    Refusal rather than escaping: the files are read by tools that know no escape (pandas, `cut`, a
    spreadsheet), and no name or definition needs a tab or a line break.
    """
    text = str(value)
    for char, name in _TSV_BREAKERS.items():
        if char in text:
            raise InputError(f"{column} {text!r} contains {name}; it cannot be a field of {where} (tab-separated, "
                             "one row per line): remove it from the value")
    return text


def tsv_row(values: Iterable[Any], columns: Iterable[str] | None = None, where: str = "a TSV file") -> str:
    """One line (newline included) of a tab-separated file; each value through `tsv_field`.

    `columns` (the header, in order) names the column of a refused value in the message.
    """
    names = list(columns or ())
    return "\t".join(tsv_field(v, names[i] if i < len(names) else "value", where)
                     for i, v in enumerate(values)) + "\n"
