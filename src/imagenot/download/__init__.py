"""Dataset materialisation: fetch, clean, deduplicate, split and shard selected rows, with a dataset card.

Public API: `run_download(DownloadConfig)`, `run_export(ExportConfig)`, and the readers the dataset
registry uses, `iter_samples(dataset_dir, split)` and `load_split_arrays(dataset_dir, split, size)`.
Heavy modules are imported on first use so that `imagenot --help` stays fast.
"""

from __future__ import annotations

from typing import Any

from imagenot.download.config import DownloadConfig, ExportConfig

__all__ = ["DownloadConfig", "ExportConfig", "run_download", "run_export", "iter_samples", "load_split_arrays",
           "class_names"]


def __getattr__(name: str) -> Any:
    if name == "run_download":
        from imagenot.download.pipeline import run_download

        return run_download
    if name == "run_export":
        from imagenot.download.export import run_export

        return run_export
    if name in ("iter_samples", "load_split_arrays", "class_names"):
        from imagenot.download import shards

        return getattr(shards, name)
    raise AttributeError(name)
