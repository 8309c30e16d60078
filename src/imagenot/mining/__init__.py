"""Caption mining: corpus readers, LAIONet lemma matching, caption-query similarity and class selection.

Public API: `mine(MineConfig)`, `run_select(SelectConfig)`, `write_openclipart_corpus`, `LemmaMatcher`.
Submodules import pyarrow, numpy and pyahocorasick; the encoder (torch) loads only when embedding.
"""

from __future__ import annotations

from typing import Any

__all__ = ["MineConfig", "SelectConfig", "mine", "run_select", "write_openclipart_corpus", "LemmaMatcher"]


def __getattr__(name: str) -> Any:
    # Lazy: `imagenot --help` imports the CLI module only.
    if name in ("mine", "run_select"):
        from imagenot.mining import pipeline

        return getattr(pipeline, name)
    if name in ("MineConfig", "SelectConfig"):
        from imagenot.mining import config

        return getattr(config, name)
    if name == "write_openclipart_corpus":
        from imagenot.mining.openclipart import write_openclipart_corpus

        return write_openclipart_corpus
    if name == "LemmaMatcher":
        from imagenot.mining.matcher import LemmaMatcher

        return LemmaMatcher
    raise AttributeError(name)
