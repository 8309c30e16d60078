"""The `imagenot report` configuration: where the results come from and how to read them."""

from __future__ import annotations

import dataclasses
from typing import Literal

from imagenot.config import option


@dataclasses.dataclass(frozen=True)
class ReportConfig:
    """Inputs and options of one report; written resolved as `config.json` so `--config` reruns it.

    Exactly one of `runs` (run directories searched for result.json) and `results` (a CSV) is given. With
    `wide`, `results` has one accuracy column per dataset (`reference_col`, `contrast_col`) and `reference` /
    `contrast` rename those datasets; otherwise they choose which datasets play the two roles when the rows
    carry none. `scales` holds `DATASET=percent|fraction|ratio` declarations (default: detected).
    """

    out: str = option("report", help="report folder to write (replaced as a whole when the report is complete; "
                                     "a folder that is not a report is refused)", metavar="DIR", path="dir",
                      group="output")
    runs: tuple[str, ...] = option((), help="run directories, searched recursively for result.json (and the "
                                            "predictions.parquet beside it)", metavar="DIR", path=True,
                                   group="input", nargs="+")
    results: str | None = option(None, help="a results CSV instead of run directories (long format: model, "
                                            "dataset, top1, ...; or one column per dataset with --wide; default: none, give --runs "
                                            "or --results)",
                                 metavar="FILE", path=True, group="input")
    wide: bool = option(False, help="--results has one accuracy column per dataset, like a paper's table",
                        group="input")
    model_col: str = option("model", help="wide table: the column with model names", group="input")
    reference_col: str | None = option(None, help="wide table: the reference dataset's accuracy column (required with --wide)",
                                       group="input")
    contrast_col: str | None = option(None, help="wide table: the contrast dataset's column (may hold ratios "
                                                 "to the baseline, e.g. imagenot_ratio_to_alexnet; required with --wide)",
                                  group="input")
    year_col: str | None = option(None, help="wide table: publication year column (default: 'year' if present); "
                                             "models are compared in publication order", group="input")
    family_col: str | None = option(None, help="wide table: model family column (default: 'family' if present)",
                                    group="input")
    reference: str | None = option(None, help="the reference dataset when runs carry no role (wide: its display "
                                              "name; default: a readable form of the column name)",
                                   metavar="NAME", group="analysis")
    contrast: str | None = option(None, help="the contrast dataset when runs carry no role (wide: its display "
                                             "name; default: the runs' roles, or a readable column name)", metavar="NAME", group="analysis")
    baseline: str | None = option(None, help="model the relative improvement divides by (default: the "
                                             "AlexNet-family model, as in the paper)", metavar="MODEL",
                                  group="analysis")
    scales: tuple[str, ...] = option((), help="declare how a dataset's numbers are expressed, "
                                              "DATASET=percent|fraction|ratio (default: detected and stated)",
                                     metavar="DATASET=SCALE", group="analysis", repeat=True,
                                     flag="--scale")
    bootstrap: Literal["auto", "seeds", "models", "both"] = option(
        "auto", help="what the headline bootstrap of tau, slope and R^2 resamples (auto: seeds and models when "
                     "models have several seeds, else models); every source is also reported on its own",
        group="analysis")
    n_boot: int = option(2000, help="bootstrap resamples (at least 100)", group="analysis")
    confidence: float = option(0.95, help="interval level; 1 - confidence is the significance level of the "
                                          "pair tests", group="analysis")
    seed: int = option(0, help="random seed of the bootstraps and the Monte Carlo permutation test",
                       group="analysis")
    duplicates: Literal["error", "first", "last"] = option(
        "error", help="two results for the same model, dataset and seed that disagree: refuse, or keep the "
                      "first or last", group="analysis")
    predictions: Literal["auto", "off"] = option(
        "auto", help="auto: use each run's predictions.parquet for binomial intervals, McNemar tests, paired "
                     "bootstraps and image resampling (runs without one fall back to today's statistics); "
                     "off: ignore them", group="analysis")
    n_perm: int = option(100_000, help="random orders of the permutation test of Kendall tau beyond 9 models "
                                       "(up to 9 every order is enumerated, exactly)", group="analysis")
    power: float = option(0.8, help="power for the smallest detectable difference stated for the validation "
                                    "size", group="analysis")
    title: str | None = option(None, help="report title (default: which datasets are compared)", group="output")
    audit: str | None = option(None, help="an audit.json of `imagenot audit` for these datasets, summarised in "
                               "the report (default: none)", metavar="FILE", path=True, group="input")
    plateau: str | None = option(None, help="a budget sweep's plateaus (JSON {'plateau': {'reference'|'contrast': "
                                 "{model: {'top1': ...}}}}): the report states each model's distance to its "
                                 "plateau (default: none)", metavar="FILE", path=True, group="input")
