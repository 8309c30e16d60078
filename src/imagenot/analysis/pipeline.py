"""`run_report`: config in, report folder out (what `imagenot report` and the demo call)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from imagenot.analysis.comparison import analyze
from imagenot.analysis.config import ReportConfig
from imagenot.analysis.labels import human_column_name
from imagenot.analysis.outdir import check_target
from imagenot.analysis.report import write_report
from imagenot.analysis.results import Row, collect_results, read_results_csv, read_wide_csv
from imagenot.config import ConfigError, to_record
from imagenot.fileio import sha256_file
from imagenot.lock import locks_output

log = logging.getLogger(__name__)

BOOTSTRAP_MODES = ("auto", "seeds", "models", "both")
DUPLICATE_POLICIES = ("error", "first", "last")
PREDICTION_MODES = ("auto", "off")


def _scales(items: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        name, sep, scale = item.rpartition("=")
        if not sep or not name:
            raise ConfigError(f"scale {item!r}: expected DATASET=percent|fraction|ratio")
        out[name] = scale
    return out


def load_rows(cfg: ReportConfig) -> tuple[list[Row], dict[str, str]]:
    """The rows the config points at, and the sha256 of every file read (for the manifest)."""
    if bool(cfg.runs) == bool(cfg.results):
        raise ConfigError("give either run directories (--runs) or a results CSV (--results), not both or neither")
    if cfg.results:
        path = Path(cfg.results)
        if cfg.wide:
            if not cfg.reference_col or not cfg.contrast_col:
                raise ConfigError("--wide needs --reference-col and --contrast-col")
            rows = read_wide_csv(path, model_col=cfg.model_col, reference_col=cfg.reference_col,
                                 contrast_col=cfg.contrast_col, year_col=cfg.year_col, family_col=cfg.family_col,
                                 reference_name=cfg.reference, contrast_name=cfg.contrast)
            # titles, axes and tables say "ImageNot (ratio to AlexNet)", not imagenot_ratio_to_alexnet
            models = list(dict.fromkeys(r["model"] for r in rows))
            names = {cfg.reference_col: cfg.reference or human_column_name(cfg.reference_col, models),
                     cfg.contrast_col: cfg.contrast or human_column_name(cfg.contrast_col, models)}
            for r in rows:
                r["dataset"] = names.get(r["dataset"], r["dataset"])
        else:
            rows = read_results_csv(path)
        return rows, {str(path): sha256_file(path)}
    rows = collect_results(cfg.runs)
    return rows, {str(r["origin"]): sha256_file(r["origin"]) for r in rows}


@locks_output(lambda cfg, *args, **kwargs: cfg.out)
def run_report(cfg: ReportConfig) -> dict[str, Path]:
    """Read the results, analyse them and write the report folder; returns the written paths.

    Everything is validated (settings, the output folder, every input value) before anything is written, and
    the folder is swapped in only when complete, so a refused or failed report leaves no trace.
    """
    if cfg.predictions not in PREDICTION_MODES:
        raise ConfigError(f"predictions {cfg.predictions!r}: known {', '.join(PREDICTION_MODES)}")
    if cfg.n_perm < 1000:
        raise ConfigError(f"n_perm {cfg.n_perm}: use at least 1000 random orders")
    if not 0 < cfg.power < 1:
        raise ConfigError(f"power {cfg.power}: must be between 0 and 1")
    if cfg.bootstrap not in BOOTSTRAP_MODES:
        raise ConfigError(f"bootstrap {cfg.bootstrap!r}: known {', '.join(BOOTSTRAP_MODES)}")
    if cfg.duplicates not in DUPLICATE_POLICIES:
        raise ConfigError(f"duplicates {cfg.duplicates!r}: known {', '.join(DUPLICATE_POLICIES)}")
    if cfg.n_boot < 100:
        raise ConfigError(f"n_boot {cfg.n_boot}: use at least 100 resamples")
    if not 0 < cfg.confidence < 1:
        raise ConfigError(f"confidence {cfg.confidence}: must be between 0 and 1")
    check_target(cfg.out)
    rows, inputs = load_rows(cfg)
    wide = cfg.wide and cfg.results
    analysis = analyze(
        rows,
        reference=None if wide else cfg.reference,
        contrast=None if wide else cfg.contrast,
        baseline=cfg.baseline, scales=_scales(cfg.scales), bootstrap=cfg.bootstrap, n_boot=cfg.n_boot,
        confidence=cfg.confidence, seed=cfg.seed, duplicates=cfg.duplicates, predictions=cfg.predictions,
        n_perm=cfg.n_perm, power=cfg.power,
    )
    inputs.update({path: sha256_file(path) for path in analysis_inputs(analysis)})
    # config.json with absolute paths, so `--config REPORT/config.json` replays from any directory
    for extra in (cfg.audit, cfg.plateau):
        if extra and Path(extra).is_file():
            inputs[str(extra)] = sha256_file(extra)
    return write_report(analysis, Path(cfg.out), title=cfg.title, config=to_record(cfg), inputs=inputs,
                        audit=cfg.audit, plateau=cfg.plateau)


def analysis_inputs(analysis: Any) -> list[str]:
    """The predictions files the analysis read (recorded with their hashes in the manifest)."""
    seen: list[str] = []
    for comp in analysis.comparisons:
        for ev in (comp.evidence_x, comp.evidence_y):
            if ev is not None:
                seen += [f for f in ev.files if f not in seen]
    return seen
