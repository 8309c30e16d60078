"""The `imagenot report` configuration: where the results come from and how to read them."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class ReportConfig:
    """Inputs and options of one report; written resolved as `config.json` so `--config` reruns it.

    Exactly one of `runs` (run directories searched for result.json) and `results` (a CSV) is given. With
    `wide`, `results` has one accuracy column per dataset (`reference_col`, `contrast_col`) and `reference` /
    `contrast` rename those datasets; otherwise they choose which datasets play the two roles when the rows
    carry none. `scales` holds `DATASET=percent|fraction|ratio` declarations (default: detected).
    """

    out: str = "report"
    runs: tuple[str, ...] = ()
    results: str | None = None
    wide: bool = False
    model_col: str = "model"
    reference_col: str | None = None
    contrast_col: str | None = None
    year_col: str | None = None
    family_col: str | None = None
    reference: str | None = None
    contrast: str | None = None
    baseline: str | None = None
    scales: tuple[str, ...] = ()
    bootstrap: str = "auto"
    n_boot: int = 2000
    confidence: float = 0.95
    seed: int = 0
    duplicates: str = "error"
    title: str | None = None
