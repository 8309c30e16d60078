"""Statistics, plots and reports: do model rankings on the reference dataset survive on the contrast?

Library use (what `imagenot report` and the demo do)::

    from imagenot.analysis import collect_results, analyze, write_report
    rows = collect_results(["runs/"])          # or read_results_csv / read_wide_csv, or your own dicts
    analysis = analyze(rows, baseline="alexnet")
    paths = write_report(analysis, "report/")  # results.csv, models.csv, pairs.csv, stats.json, plots/, report.*

Runs that left a predictions.parquet (see `imagenot.predictions`) add what the test images support:
`analysis.main.evidence_x` / `evidence_y` (per-model intervals, pair tests, the supported order),
`analysis.main.flip_support` and `analysis.main.noise` (agreement statistics under each source of noise).

Names are imported lazily so that `imagenot --help` (which imports `imagenot.analysis.cli`) does not load
matplotlib and scipy.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Analysis": "imagenot.analysis.comparison",
    "Comparison": "imagenot.analysis.comparison",
    "analyze": "imagenot.analysis.comparison",
    "ReportConfig": "imagenot.analysis.config",
    "run_report": "imagenot.analysis.pipeline",
    "write_report": "imagenot.analysis.report",
    "RESULT_COLUMNS": "imagenot.analysis.results",
    "collect_results": "imagenot.analysis.results",
    "read_results_csv": "imagenot.analysis.results",
    "read_wide_csv": "imagenot.analysis.results",
    "write_results_csv": "imagenot.analysis.results",
    "DatasetInfo": "imagenot.analysis.comparison",
    "FlipSupport": "imagenot.analysis.uncertainty",
    "ModelAccuracy": "imagenot.analysis.uncertainty",
    "PairTest": "imagenot.analysis.uncertainty",
    "SideEvidence": "imagenot.analysis.uncertainty",
    "human_column_name": "imagenot.analysis.labels",
    "list_runs": "imagenot.analysis.runs_table",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'imagenot.analysis' has no attribute {name!r}")
