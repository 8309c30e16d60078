"""Dataset materialisation: fetch, clean, deduplicate, split and shard selected rows, with a dataset card.

Public API: `run_download(DownloadConfig)` and `run_export(ExportConfig)`. Dataset folders are read through
`imagenot.data` (`get_dataset("wds:PATH", split)`, or `imagenot.data.readers.files` for the raw records),
which refuses incomplete folders. Heavy modules are imported on first use so that `imagenot --help` stays fast.
"""

from __future__ import annotations

from typing import Any

from imagenot.download.config import DownloadConfig, ExportConfig

__all__ = ["DownloadConfig", "ExportConfig", "run_download", "run_export"]


def __getattr__(name: str) -> Any:
    if name == "run_download":
        from imagenot.download.pipeline import run_download

        return run_download
    if name == "run_export":
        from imagenot.download.export import run_export

        return run_export
    raise AttributeError(name)
