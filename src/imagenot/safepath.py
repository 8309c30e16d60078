"""Paths built from data, and removals of output folders, that cannot reach outside where they belong.

Names that come from data (a wnid or class name in a dataset card, a dataset, model or target name in a zoo
plan, a shard path in a card) become parts of file paths. A crafted or mistyped name such as `../x`, `/etc`
or `a\\b` would otherwise write, read or delete outside the folder it was meant for, so every such name goes
through `component` (one path component, or an `InputError` naming the value) and every path a file lists
(a card's shards) through `inside` (the resolved path, symlinks followed, must lie in its folder).

`check_removable` is the one check before a stage replaces or clears an existing output folder
(`--overwrite`, `--force`; the stages build the new folder aside and swap it in): it refuses when the folder
is or contains one of the command's inputs, or is the filesystem root, the home folder or the working folder
or one of its parents, so a mistyped `--out` cannot delete the data the command reads or a user's other
files.
"""

from __future__ import annotations

import hashlib
import logging
import re
import unicodedata
from collections.abc import Iterable
from pathlib import Path

from imagenot.errors import InputError
from imagenot.spec import Spec

log = logging.getLogger(__name__)

MAX_COMPONENT_BYTES = 255  # NAME_MAX of ext4, xfs, btrfs, APFS and NTFS (in bytes or UTF-16 units)
_HASH_CHARS = 10
_SLUG = re.compile(r"[^A-Za-z0-9._-]+")
_PLAIN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")


def _problem(value: str) -> str | None:
    """Why `value` cannot be one path component, or None when it can."""
    if not value or not value.strip():
        return "it is empty"
    if value in (".", ".."):
        return "it names a folder relative to its parent"
    if "/" in value or "\\" in value:
        return "it contains a path separator"
    if "\0" in value:
        return "it contains a NUL byte"
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        return "it contains a control character (newline, tab, ...)"
    if value.startswith("-"):
        return "it starts with '-' (it would read as an option in a command line)"
    if value != value.strip():
        return "it starts or ends with white space"
    return None


def component(value: object, what: str, *, shorten: bool = False) -> str:
    """`value` (a name from data) as one path component, or an InputError naming the value and `what` it is.

    Refused: empty, `.`/`..`, `/` or `\\`, NUL and control characters, a leading `-` (a folder named `-rf`
    turns a later `rm *` or a printed command into an option) and white space at either end (invisible in
    listings). Absolute paths are refused by the separator rule.

    A name over 255 bytes (UTF-8) cannot be a file name on common file systems. Names a user chose (a plan's
    dataset or model name) are refused, because a silently shortened run folder would no longer show the
    name the report prints; names that only label a folder (`shorten=True`: an exported class folder's
    display part) are cut on a character boundary and end in `~` plus a hash of the whole name, so two long
    names that share a prefix still get distinct, stable folders.
    """
    text = str(value)
    why = _problem(text)
    if why:
        raise InputError(f"{what} {text!r} cannot be a file or folder name: {why}")
    if len(text.encode("utf-8")) <= MAX_COMPONENT_BYTES:
        return text
    if not shorten:
        raise InputError(f"{what} {text[:60]!r}... is {len(text.encode('utf-8'))} bytes long; a file or folder "
                         f"name may have at most {MAX_COMPONENT_BYTES}: choose a shorter name")
    return shortened(text)


def shortened(text: str, limit: int = MAX_COMPONENT_BYTES) -> str:
    """`text` cut to at most `limit` UTF-8 bytes, ending in `~<hash of text>` when it had to be cut."""
    raw = text.encode("utf-8")
    if len(raw) <= limit:
        return text
    digest = hashlib.sha256(raw).hexdigest()[:_HASH_CHARS]
    head = raw[:limit - _HASH_CHARS - 1].decode("utf-8", errors="ignore")
    return f"{head}~{digest}"


def slug(text: object, fallback: str = "x") -> str:
    """`text` reduced to letters, digits, `.`, `_` and `-` (others become `_`), for names that only label
    a file (a plot per transfer target, a cache per reference spec): always a safe component, never empty,
    never `.`/`..`, never over the length limit (shortened with a hash)."""
    safe = _SLUG.sub("_", str(text)).strip("_.-") or fallback
    return shortened(safe)


def unique_slug(text: object, limit: int = MAX_COMPONENT_BYTES) -> str:
    """`text` unchanged when it already is a plain name (letters, digits, `.`, `_`, `-`, not starting with
    `.` or `-`, at most `limit` bytes); otherwise `slug(text)` cut short and ending in `~` plus a hash of the
    whole text.

    For names from data that label one file among many (an exported sample's key): unlike `slug`, two names
    that differ only in characters a file name cannot hold (`a/b` and `a_b`, `a b` and `a:b`) get distinct
    files, so one cannot silently replace the other; ordinary keys keep their names.
    """
    raw = str(text)
    if _PLAIN.fullmatch(raw) and len(raw.encode("utf-8")) <= limit:
        return raw
    digest = hashlib.sha256(raw.encode("utf-8")).hexdigest()[:_HASH_CHARS]
    safe = _SLUG.sub("_", raw).strip("_.-") or "x"  # ASCII only: cutting by characters cuts by bytes
    return f"{safe[:limit - _HASH_CHARS - 1]}~{digest}"


def inside(root: str | Path, relative: str | Path, what: str) -> Path:
    """`root / relative`, refused unless it lies inside `root` once both are resolved (symlinks followed).

    For paths a file lists relative to its own folder (a dataset card's shards): a listed `../x`, an
    absolute path or a symlink out of the folder would make a reader open files the folder does not hold.
    """
    rel = str(relative)
    if "\0" in rel:
        raise InputError(f"{what} {rel!r} contains a NUL byte", path=root)
    root_path = Path(root)
    path = root_path / rel
    real_root = root_path.resolve()
    real = path.resolve()
    if Path(rel).is_absolute() or not real.is_relative_to(real_root):
        raise InputError(f"{what} {rel!r} lies outside its folder {real_root}", path=root)
    return path


def is_within(path: str | Path, root: str | Path) -> bool:
    """Whether `path` lies in `root` once both are resolved (symlinks followed)."""
    return Path(path).resolve().is_relative_to(Path(root).resolve())


def _related(a: Path, b: Path) -> bool:
    return a == b or a.is_relative_to(b) or b.is_relative_to(a)


def spec_path(spec: str | None) -> str | None:
    """The path in a data or weights spec (`wds:PATH`, `run:DIR`, `file:PATH`, or a bare path), for
    `check_output`; a registry name comes back as itself (a relative path that rarely exists)."""
    if not spec:
        return None
    return Spec.parse(spec).path or spec


def check_output(out: str | Path, inputs: Iterable[str | Path | None], what: str = "--out", *,
                 allow_inside: bool = False) -> None:
    """Refuse an output folder that is, contains or lies inside one of `inputs` (resolved, symlinks followed).

    Writing into an input would mix outputs into data a later run reads; replacing an output that holds
    an input would delete that input. `allow_inside` accepts an output inside an input folder (a report
    folder under the runs it reads): replacing it deletes no input.
    """
    real_out = Path(out).resolve()
    for item in inputs:
        if item is None or str(item) == "":
            continue
        real_in = Path(item).resolve()
        if allow_inside and real_out != real_in and real_out.is_relative_to(real_in):
            continue
        if _related(real_out, real_in):
            relation = ("is" if real_out == real_in else
                        "lies inside" if real_out.is_relative_to(real_in) else "contains")
            raise InputError(f"{what} {out} {relation} the input {item}: choose an output folder apart from the "
                             "command's inputs")


def _protected() -> list[Path]:
    """Folders no removal may take: the filesystem root, the home folder and the working folder's parents."""
    cwd = Path.cwd().resolve()
    return [Path(cwd.anchor), Path.home().resolve(), cwd]


def check_removable(out: str | Path, inputs: Iterable[str | Path | None] = (), what: str = "--out") -> None:
    """Refuse (InputError) replacing `out` when that would delete an input or a folder a user lives in.

    Refused when `out` is or contains one of `inputs` (lying inside an input folder is fine: replacing it
    deletes no input), or is the filesystem root, the home folder, the working folder or one of its parents.
    """
    check_output(out, inputs, what, allow_inside=True)
    real = Path(out).resolve()
    for folder in _protected():
        if real == folder or folder.is_relative_to(real):
            where = "the folder" if real == folder else "a parent of"
            raise InputError(f"{what} {out} is {where} {folder}: refusing to delete it; choose a new output folder")

