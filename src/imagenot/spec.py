"""`kind:ARG` spec strings, parsed in one place: dataset specs (`wds:PATH`, `imagefolder:PATH`, `cifar10:PATH`,
`fashion-mnist`), weight sources (`scratch`, `run:DIR`, `torchvision:<model>.<WEIGHTS>`, `file:PATH`), built-in
corpora (`openclipart:SVG_DIR`), zoo plan and audit specs.

A spec is a kind, optionally followed by `:` and an argument. Every stage used to split these itself
(`text.partition(":")`), with two rules for whether the argument is a filesystem path that disagreed; `Spec`
is the one value type and `Spec.path` the one rule:

    the argument is a path unless it is empty, the kind names no path (`NON_PATH_KINDS`: weights names,
    urls, synthetic options) or the argument is a url's `//host/...`.

A bare name (no colon: `fashion-mnist`, `scratch`, or a bare folder) has no argument, hence no path; the
call sites that take a bare folder as well fall back to the text themselves (`spec.path or text`).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from imagenot.errors import InputError

log = logging.getLogger(__name__)

# Kinds whose argument is not a filesystem path (`torchvision:resnet152.IMAGENET1K_V1`, urls, synthetic options).
NON_PATH_KINDS = frozenset({"torchvision", "http", "https", "s3", "gs", "hf", "synthetic"})
# Dataset kinds whose argument is a dataset folder named after the dataset (`wds:/data/imagenot-1k`).
FOLDER_KINDS = ("wds", "imagefolder")


class SpecError(InputError):
    """A spec whose kind is not one of those the caller accepts."""


@dataclass(frozen=True)
class Spec:
    """A parsed `kind[:ARG]` spec: `kind` without surrounding blanks, `arg` as written (None without a colon,
    "" after a bare `kind:`). `str()` gives the spec back (`str(Spec.parse(t)) == t` for a `t` without blanks
    around its kind)."""

    kind: str
    arg: str | None = None

    @classmethod
    def parse(cls, text: str, kinds: Collection[str] | None = None) -> Spec:
        """Split `text` at its first colon; with `kinds`, a kind outside them is a SpecError naming them."""
        kind, sep, arg = str(text).partition(":")
        spec = cls(kind.strip(), arg if sep else None)
        if kinds is not None and spec.kind not in kinds:
            raise SpecError(f"unknown kind {spec.kind!r} in {text!r}; known: {', '.join(kinds)}")
        return spec

    def __str__(self) -> str:
        return self.kind if self.arg is None else f"{self.kind}:{self.arg}"

    @property
    def path(self) -> str | None:
        """The filesystem path the spec names (the module docstring's rule), or None."""
        if not self.arg or self.kind.lower() in NON_PATH_KINDS or self.arg.startswith("//"):
            return None
        return self.arg

    def with_arg(self, arg: str | None) -> Spec:
        """The same kind with another argument (an absolute path in place of a relative one)."""
        return dataclasses.replace(self, arg=arg)


def dataset_display_name(text: str) -> str:
    """`wds:/data/imagenot-1k` -> `imagenot-1k`, `cifar10:/x` -> `cifar10`, `fashion-mnist` -> itself: the name
    a run records for its dataset when none is given."""
    spec = Spec.parse(text)
    if spec.kind in FOLDER_KINDS and spec.arg:
        return Path(spec.arg.rstrip("/")).name or spec.kind
    return spec.kind
