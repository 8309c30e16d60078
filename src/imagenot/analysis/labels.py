"""Readable names for the column names of a paper's table (`report --wide`).

A wide table names its columns for machines (`imagenot_ratio_to_alexnet`); titles, axes and tables should say
"ImageNot (ratio to AlexNet)". Names that are not identifiers (they already contain spaces) are kept as given.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_WORDS = {
    "imagenet": "ImageNet", "imagenot": "ImageNot", "cifar10": "CIFAR-10", "cifar100": "CIFAR-100",
    "mnist": "MNIST", "top1": "top-1 (%)", "top5": "top-5 (%)", "acc": "accuracy", "acc1": "top-1 (%)",
    "acc5": "top-5 (%)", "v2": "V2", "in1k": "ImageNet-1k", "1k": "1k",
}


def _squash(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def _word(token: str) -> str:
    return _WORDS.get(token.lower(), token)


def human_column_name(column: str, models: Iterable[str] = ()) -> str:
    """`imagenot_ratio_to_alexnet` -> "ImageNot (ratio to AlexNet)", `imagenet_top1` -> "ImageNet top-1 (%)".

    The model after 'ratio_to' is spelled as the table spells it when one of `models` matches it.
    """
    if " " in column or not column:
        return column
    tokens = [t for t in re.split(r"[_]+", column) if t]
    if "ratio" in (t.lower() for t in tokens):
        i = [t.lower() for t in tokens].index("ratio")
        head = " ".join(_word(t) for t in tokens[:i]) or "value"
        rest = tokens[i + 1:]
        if rest and rest[0].lower() == "to":
            rest = rest[1:]
        if not rest:
            return f"{head} (ratio)"
        base = "_".join(rest)
        spelled = next((m for m in models if _squash(m) == _squash(base)), None)
        return f"{head} (ratio to {spelled or ' '.join(_word(t) for t in rest)})"
    return " ".join(_word(t) for t in tokens)
