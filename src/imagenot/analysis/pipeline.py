"""`run_report`: config in, report folder out (what `imagenot report` and the demo call)."""

from __future__ import annotations

import logging
from pathlib import Path

from imagenot.analysis.comparison import analyze
from imagenot.analysis.config import ReportConfig
from imagenot.analysis.report import write_report
from imagenot.analysis.results import Row, collect_results, read_results_csv, read_wide_csv
from imagenot.config import ConfigError, to_dict
from imagenot.fileio import sha256_file, write_json

log = logging.getLogger(__name__)

BOOTSTRAP_MODES = ("auto", "seeds", "models", "both")
DUPLICATE_POLICIES = ("error", "first", "last")


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
        else:
            rows = read_results_csv(path)
        return rows, {str(path): sha256_file(path)}
    rows = collect_results(cfg.runs)
    return rows, {str(r["source"]): sha256_file(r["source"]) for r in rows}


def run_report(cfg: ReportConfig) -> dict[str, Path]:
    """Read the results, analyse them and write the report folder; returns the written paths."""
    if cfg.bootstrap not in BOOTSTRAP_MODES:
        raise ConfigError(f"bootstrap {cfg.bootstrap!r}: known {', '.join(BOOTSTRAP_MODES)}")
    if cfg.duplicates not in DUPLICATE_POLICIES:
        raise ConfigError(f"duplicates {cfg.duplicates!r}: known {', '.join(DUPLICATE_POLICIES)}")
    if cfg.n_boot < 100:
        raise ConfigError(f"n_boot {cfg.n_boot}: use at least 100 resamples")
    if not 0 < cfg.confidence < 1:
        raise ConfigError(f"confidence {cfg.confidence}: must be between 0 and 1")
    rows, inputs = load_rows(cfg)
    wide = cfg.wide and cfg.results
    analysis = analyze(
        rows,
        reference=None if wide else cfg.reference,
        contrast=None if wide else cfg.contrast,
        baseline=cfg.baseline, scales=_scales(cfg.scales), bootstrap=cfg.bootstrap, n_boot=cfg.n_boot,
        confidence=cfg.confidence, seed=cfg.seed, duplicates=cfg.duplicates,
    )
    out = Path(cfg.out)
    config = to_dict(cfg)
    paths = write_report(analysis, out, title=cfg.title, config=config, inputs=inputs)
    write_json(out / "config.json", config)
    paths["config"] = out / "config.json"
    return paths
