"""From result rows to the rows a comparison may use, and what they mean: the cleaning step of `analyze`.

Duplicates are counted once or refused, diverged and NaN runs set aside (with a note), rows that one dataset
name or one model's seeds would wrongly put together refused; the reference and contrast are picked, each
dataset's scale (percent, fraction, ratio) declared or detected and checked, models put in publication order
and the baseline found. Everything left out is said in a note.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from imagenot import rundir
from imagenot.analysis import stats
from imagenot.analysis.results import Row, normalize_row
from imagenot.errors import InputError

log = logging.getLogger(__name__)


def origin(row: Row) -> str:
    return row.get("origin") or row.get("run_dir") or "(row)"


def clean_rows(rows: Iterable[Mapping[str, Any]], duplicates: str, notes: list[str]) -> list[Row]:
    """Type rows, drop exact duplicates, refuse (or resolve) conflicting ones, and set NaN runs aside."""
    if duplicates not in ("error", "first", "last"):
        raise ValueError(f"unknown duplicates policy {duplicates!r}; known: error, first, last")
    typed = [normalize_row(r, r.get("origin")) for r in rows]
    kept: dict[tuple[Any, ...], Row] = {}
    exact = 0
    conflicts: list[tuple[Row, Row]] = []
    for row in typed:
        key = (row["model"], row["dataset"], row["role"], row["pretrain_dataset"], row["seed"])
        if key not in kept:
            kept[key] = row
            continue
        old = kept[key]
        same = all(
            (old[c] == row[c]) or (c == "top1" and math.isnan(old[c]) and math.isnan(row[c]))
            for c in ("top1", "top5", "epochs")
        )
        if same:
            exact += 1
            continue
        conflicts.append((old, row))
        if duplicates == "last":
            kept[key] = row
    if exact:
        notes.append(f"{exact} duplicate row(s) (same model, dataset, role, pretraining, seed and accuracy) "
                     "were counted once.")
    if conflicts:
        desc = "; ".join(
            f"{a['model']} on {a['dataset']} seed {a['seed']}: {a['top1']} ({origin(a)}) vs "
            f"{b['top1']} ({origin(b)})" for a, b in conflicts[:5]
        )
        if duplicates == "error":
            raise InputError(
                f"{len(conflicts)} conflicting duplicate run(s) (same model, dataset, role, pretraining and seed, "
                f"different results): {desc}. Remove one, give them distinct seeds, or choose a policy "
                "(--duplicates first|last)."
            )
        notes.append(f"{len(conflicts)} conflicting duplicate run(s); kept the {duplicates} of each: {desc}.")
    clean: list[Row] = []
    nan_runs: list[str] = []
    diverged: list[str] = []
    for row in kept.values():
        seed = "" if row["seed"] is None else f" seed {row['seed']}"
        if row.get("status") == "diverged":
            diverged.append(f"{row['model']} on {row['dataset']}{seed}")
        elif math.isnan(row["top1"]):
            nan_runs.append(f"{row['model']} on {row['dataset']}{seed}")
        else:
            clean.append(row)
    if diverged:
        notes.append(f"{len(diverged)} run(s) diverged (their loss became NaN or infinite) and were left out of "
                     f"the ranking: {', '.join(diverged)}.")
    if nan_runs:
        notes.append(f"{len(nan_runs)} run(s) without a top-1 accuracy (NaN: diverged or unfinished) were left "
                     f"out: {', '.join(nan_runs)}.")
    return clean


def check_same_experiment(rows: Sequence[Row], notes: list[str]) -> None:
    """Refuse rows that one dataset name or one model's seeds would wrongly put together.

    A dataset name with runs of different class counts holds different tasks (chance differs, so do the
    accuracies); the seeds of one model on one dataset are averaged as replicates, which they are only when
    their run fingerprints (imagenot.rundir.fingerprint) agree. Rows without a fingerprint (CSV tables, runs
    of older versions) cannot be checked: that is said when such rows are averaged.
    """
    by_dataset: dict[str, dict[int, list[Row]]] = {}
    for row in rows:
        if row.get("chance"):
            by_dataset.setdefault(row["dataset"], {}).setdefault(round(100.0 / row["chance"]), []).append(row)
    for name, counts in by_dataset.items():
        if len(counts) > 1:
            shown = "; ".join(f"{k} classes: {_runs_text(group)}" for k, group in sorted(counts.items()))
            raise InputError(f"dataset {name} holds runs with different class counts ({shown}): they are "
                             "different tasks under one name and cannot be ranked together. Give them distinct "
                             "dataset names (--dataset-name / the plan's name), or leave one out.")
    groups: dict[tuple[Any, ...], list[Row]] = {}
    for row in rows:
        groups.setdefault((row["dataset"], row["model"], row["role"], row["pretrain_dataset"]), []).append(row)
    unchecked = []
    for (dataset, model, _, _), group in groups.items():
        prints: dict[str, list[Row]] = {}
        for row in group:
            if row.get("fingerprint"):
                prints.setdefault(row["fingerprint"], []).append(row)
        if len(prints) > 1:
            shown = "; ".join(f"{fp}: {_runs_text(runs)}" for fp, runs in prints.items())
            raise InputError(f"{model} on {dataset}: its runs were made with different settings (run fingerprints "
                             f"{shown}{_settings_diff(list(prints.values()))}), so they are not seeds of one "
                             "experiment and are not averaged or ranked together. Report them under distinct "
                             "dataset names, or leave the others out.")
        if len(group) > 1 and any(not row.get("fingerprint") for row in group):
            unchecked.append(f"{model} on {dataset}")
    if unchecked:
        notes.append(f"Runs without a run fingerprint (tables, or runs of an older imagenot) were averaged over "
                     f"seeds without checking that their settings agree: {', '.join(unchecked)}.")


def _settings_diff(groups: list[list[Row]]) -> str:
    """The settings that differ between the first two groups' first runs (from their config.json; '' when
    either is not readable)."""
    configs = []
    for group in groups[:2]:
        run_dir = group[0].get("run_dir")
        try:
            config = rundir.read_config(run_dir) if run_dir else None
        except (OSError, ValueError):
            config = None
        if not isinstance(config, dict):
            return ""
        configs.append({k: v for k, v in config.items() if k not in rundir.FINGERPRINT_EXCLUDED})
    a, b = configs
    keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    return ("; settings that differ: " + ", ".join(f"{k} {a.get(k)!r} vs {b.get(k)!r}" for k in keys[:4])
            if keys else "")


def _runs_text(rows: Sequence[Row]) -> str:
    seeds = ", ".join("-" if r["seed"] is None else str(r["seed"]) for r in rows[:6])
    return f"{rows[0]['model']} seed(s) {seeds} ({origin(rows[0])}{' ...' if len(rows) > 1 else ''})"


def pick_dataset(role: str, name: str | None, datasets: Sequence[str], by_role: dict[str, list[str]]) -> str:
    if name is not None:
        if name not in datasets:
            raise InputError(f"no {role} dataset {name!r} among the runs; datasets: {', '.join(datasets) or '(none)'}")
        return name
    found = by_role.get(role, [])
    if len(found) == 1:
        return found[0]
    if not found:
        raise InputError(
            f"no run has role {role!r}; name the {role} dataset (--{role} NAME); datasets: {', '.join(datasets)}"
        )
    raise InputError(f"several datasets have role {role!r} ({', '.join(found)}); choose one with --{role} NAME")


def resolve_scale(dataset: str, values: list[float], declared: str) -> dict[str, str]:
    if declared == "auto":
        scale, reason = stats.detect_scale(values, dataset)
        return {"scale": scale, "reason": f"detected: {reason}", "declared": "auto"}
    if declared not in stats.SCALES:
        raise InputError(f"unknown scale {declared!r} for {dataset}; known: auto, {', '.join(stats.SCALES)}")
    if declared == "fraction" and values and max(values) > 1.0:
        raise InputError(f"{dataset} declared as fractions but has values above 1 (max {max(values)})")
    return {"scale": declared, "reason": "declared", "declared": declared}


_LIMITS = {"percent": (0.0, 100.0), "fraction": (0.0, 1.0)}


def check_values(rows: Iterable[Row], scales: Mapping[str, Mapping[str, str]]) -> None:
    """Refuse accuracies no run can have (inf, above 100 %, below 0, a ratio of 0 or less), naming the row.

    Clipping them would plot and rank a typo; a NaN top-1 never reaches here (it is a diverged run, noted).
    """
    for row in rows:
        info = scales[row["dataset"]]
        scale = info["scale"]
        for col in ("top1", "top5"):
            value = row[col]
            if value is None:
                continue
            if col == "top5" and math.isnan(value):
                row[col] = None
                continue
            where = f"{col} of {row['model']} on {row['dataset']}"
            if not math.isfinite(value):
                raise InputError(f"{where} is {value}: not a finite number", path=origin(row))
            if scale == "ratio":
                if value <= 0:
                    raise InputError(f"{where} is {value}: a ratio to a baseline must be above 0",
                                     path=origin(row))
                continue
            low, high = _LIMITS[scale]
            if not low <= value <= high:
                how = "declared" if info["declared"] != "auto" else info["reason"]
                raise InputError(f"{where} is {value}, outside [{low:g}, {high:g}] for a {scale} scale ({how}); "
                                 "correct the value or declare the scale (--scale DATASET=...)",
                                 path=origin(row))


BASELINE_HINT = "alexnet"


def find_baseline(requested: str | None, order: list[str], models: dict[str, dict[str, Any]],
                   notes: list[str]) -> str | None:
    if requested is not None:
        for m in order:
            if m.lower() == requested.lower():
                return m
        raise InputError(f"baseline model {requested!r} not found; models: {', '.join(order)}")
    exact = [m for m in order if m.lower() == BASELINE_HINT]
    if exact:
        return exact[0]
    hinted = [m for m in order if BASELINE_HINT in m.lower() or BASELINE_HINT in (models[m]["family"] or "").lower()]
    if hinted:
        return hinted[0]
    if order:
        notes.append(f"No AlexNet-family model: the baseline is the first model in publication order, {order[0]}.")
        return order[0]
    return None


def split_roles(trained: Sequence[Row], reference: str | None, contrast: str | None,
                notes: list[str]) -> tuple[str, str]:
    """The reference and contrast datasets: named, or the one dataset of each role; other datasets and
    roles that disagree with the names are noted."""
    datasets = list(dict.fromkeys(r["dataset"] for r in trained))
    by_role: dict[str, list[str]] = {}
    for r in trained:
        if r["role"] and r["dataset"] not in by_role.setdefault(r["role"], []):
            by_role[r["role"]].append(r["dataset"])
    ref = pick_dataset("reference", reference, datasets, by_role)
    con = pick_dataset("contrast", contrast, datasets, by_role)
    if ref == con:
        raise InputError(f"the reference and the contrast are the same dataset ({ref})")
    ignored = [d for d in datasets if d not in (ref, con)]
    if ignored:
        notes.append(f"Runs on other datasets were not compared: {', '.join(ignored)}.")
    mismatched = [r for r in trained if r["dataset"] in (ref, con) and r["role"]
                  and r["role"] != ("reference" if r["dataset"] == ref else "contrast")]
    if mismatched:
        notes.append(f"{len(mismatched)} run(s) carry a role that disagrees with the datasets named as reference "
                     "and contrast; the names were followed.")
    return ref, con


def publication_order(rows: Iterable[Row], notes: list[str]) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """Every model in publication order (year, then first appearance) with its family and year."""
    models: dict[str, dict[str, Any]] = {}
    for r in rows:
        info = models.setdefault(r["model"], {"family": None, "year": None, "first": len(models)})
        info["family"] = info["family"] or r["family"]
        if r["year"] is not None:
            if info["year"] is not None and info["year"] != r["year"]:
                notes.append(f"{r['model']} has two years ({info['year']}, {r['year']}); the first is used.")
            else:
                info["year"] = r["year"]
    order = sorted(models, key=lambda m: (models[m]["year"] is None, models[m]["year"] or 0, models[m]["first"]))
    no_year = [m for m in order if models[m]["year"] is None]
    if no_year:
        notes.append(f"No publication year for {', '.join(no_year)}: placed last, in input order.")
    return order, models


def read_scales(rows: list[Row], declared: Mapping[str, str], notes: list[str]) -> dict[str, dict[str, str]]:
    """Each dataset's scale (declared or detected), checked against its values; fractions are turned into
    percent in place (the contract's unit), ratios stay ratios."""
    scale_info: dict[str, dict[str, str]] = {}
    values_by_dataset: dict[str, list[float]] = {}
    for r in rows:
        values_by_dataset.setdefault(r["dataset"], []).append(r["top1"])
    for name, values in values_by_dataset.items():
        scale_info[name] = resolve_scale(name, values, declared.get(name, "auto"))
    unknown_scales = sorted(set(declared) - set(values_by_dataset))
    if unknown_scales:
        raise InputError(f"scale given for unknown dataset(s) {', '.join(unknown_scales)}; "
                         f"datasets: {', '.join(values_by_dataset)}")
    check_values(rows, scale_info)
    for r in rows:
        if scale_info[r["dataset"]]["scale"] == "fraction":
            r["top1"] = r["top1"] * 100.0
            if r["top5"] is not None:
                r["top5"] = r["top5"] * 100.0
    fractions = [d for d, s in scale_info.items() if s["scale"] == "fraction"]
    if fractions:
        notes.append(f"Accuracies of {', '.join(fractions)} were read as fractions and are shown in percent.")
    return scale_info
