"""`imagenot download`: selected rows -> fetched, cleaned, deduplicated, split, sharded dataset with a card.

Stages and what makes a rerun cheap:
1. fetch (img2dataset, or direct reads for local corpora) and clean, per fetch shard of `fetch_shard_size`
   rows: a shard whose `stats/fetch-NNNNN.json` exists is done and is never fetched again;
2. global decisions over all shards (dedup, splits, class minimum), cheap because they read fingerprints only;
3. output shards, written through per-output-shard buckets so memory stays bounded at LAION scale, and
   skipped entirely when `dataset.json` already records the same plan.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import multiprocessing
import shlex
import shutil
import time
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from imagenot import __version__
from imagenot.config import to_dict
from imagenot.download import card as card_mod
from imagenot.download.against import load_reference
from imagenot.download.clean import FETCH_REASONS, CleanOptions, clean_task
from imagenot.download.config import DISTRIBUTORS, ENCODE_FORMATS, FETCHERS, DownloadConfig
from imagenot.download.dedup import Candidate, dedup
from imagenot.download.fetch import done_fetch_shards, run_img2dataset, shard_name
from imagenot.download.inputs import Selection, check_urls, read_selection
from imagenot.download.shards import SPLITS, write_split_shards
from imagenot.download.splits import assign_splits
from imagenot.errors import ImagenotError
from imagenot.fileio import atomic_path, read_json, sha256_file, write_json, write_manifest
from imagenot.wordnet.classes import ClassRow, write_classes

log = logging.getLogger(__name__)

# Settings that only change how fast a dataset is built, not what is in it.
_SPEED_ONLY = ("processes", "threads", "distributor", "keep_raw", "timeout", "retries", "out", "fetcher")
_FETCH_KEYS = ("fetch_shard_size",)
_CLEAN_KEYS = ("image_size", "encode_format", "encode_quality", "min_image_size", "max_image_pixels",
               "max_aspect_ratio")


def _check_config(cfg: DownloadConfig) -> None:
    problems = []
    if not cfg.matches:
        problems.append("--matches is required")
    if not cfg.out:
        problems.append("--out is required")
    if cfg.fetcher not in FETCHERS:
        problems.append(f"fetcher {cfg.fetcher!r} unknown; known: {', '.join(FETCHERS)}")
    if cfg.distributor not in DISTRIBUTORS:
        problems.append(f"distributor {cfg.distributor!r} unknown; known: {', '.join(DISTRIBUTORS)}")
    if cfg.encode_format not in ENCODE_FORMATS:
        problems.append(f"encode_format {cfg.encode_format!r} unknown; known: {', '.join(ENCODE_FORMATS)}")
    if cfg.image_size < 8:
        problems.append(f"image_size must be at least 8, got {cfg.image_size}")
    if cfg.processes < 1 or cfg.threads < 1:
        problems.append("processes and threads must be at least 1")
    if cfg.fetch_shard_size < 1 or cfg.shard_size < 1:
        problems.append("fetch_shard_size and shard_size must be at least 1")
    if not 0.0 <= cfg.val_fraction < 1.0:
        problems.append(f"val_fraction must be in [0, 1), got {cfg.val_fraction}")
    if cfg.near_dup_distance > 63:
        problems.append(f"near_dup_distance must be at most 63, got {cfg.near_dup_distance}")
    if problems:
        raise ImagenotError("; ".join(problems))


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def clean_options(cfg: DownloadConfig) -> CleanOptions:
    return CleanOptions(cfg.image_size, cfg.encode_format, cfg.encode_quality, cfg.min_image_size,
                        cfg.max_image_pixels, cfg.max_aspect_ratio)


class _Layout:
    def __init__(self, out: Path) -> None:
        self.out = out
        self.work = out / "_work"
        self.fetch = self.work / "fetch"
        self.clean = self.work / "clean"
        self.stats = out / "stats"
        self.state = self.work / "state.json"
        self.input = self.work / "input.parquet"

    def clean_path(self, shard: int) -> Path:
        return self.clean / f"{shard_name(shard)}.parquet"

    def fetch_stats(self, shard: int) -> Path:
        return self.stats / f"fetch-{shard_name(shard)}.json"


def _prepare_work(lay: _Layout, cfg: DownloadConfig, inputs: dict[str, str]) -> None:
    """Reuse finished fetch/clean shards only if they were made from the same inputs and settings."""
    d = to_dict(cfg)
    fetch_key = _digest({"inputs": inputs, **{k: d[k] for k in _FETCH_KEYS}})
    clean_key = _digest({k: d[k] for k in _CLEAN_KEYS})
    if lay.state.is_file():
        state = read_json(lay.state)
        if state.get("fetch_key") != fetch_key:
            log.warning("%s was built from other inputs or fetch settings: starting it afresh", lay.out)
            for p in (lay.work, lay.stats):
                shutil.rmtree(p, ignore_errors=True)
            (lay.out / "dataset.json").unlink(missing_ok=True)
        elif state.get("clean_key") != clean_key:
            log.warning("image settings changed: cleaning again%s",
                        "" if cfg.keep_raw else " (and fetching again: raw images were not kept)")
            shutil.rmtree(lay.clean, ignore_errors=True)
            for p in lay.stats.glob("fetch-*.json"):
                p.unlink()
            if not cfg.keep_raw:
                shutil.rmtree(lay.fetch, ignore_errors=True)
    lay.work.mkdir(parents=True, exist_ok=True)
    lay.stats.mkdir(parents=True, exist_ok=True)
    write_json(lay.state, {"fetch_key": fetch_key, "clean_key": clean_key, "inputs": inputs})


def _fetch_and_clean(sel: Selection, cfg: DownloadConfig, lay: _Layout, fetcher: str) -> dict[str, Any]:
    n = sel.num_rows
    n_shards = max(1, math.ceil(n / cfg.fetch_shard_size))
    done = {s for s in range(n_shards) if lay.fetch_stats(s).is_file() and lay.clean_path(s).is_file()}
    pending = [s for s in range(n_shards) if s not in done]
    timing: dict[str, Any] = {"fetch_shards": n_shards, "already_done": len(done), "img2dataset_s": None}
    if not pending:
        log.info("all %d fetch shards already done", n_shards)
        return timing
    urls = sel.table["url"].to_pylist()
    opts = clean_options(cfg)
    lay.clean.mkdir(parents=True, exist_ok=True)
    tasks: list[tuple[Any, ...]] = []
    if fetcher == "img2dataset":
        if not lay.input.is_file():
            pq.write_table(sel.table.select(["row_id", "url", "caption"]), lay.input)
        need = [s for s in pending if s not in done_fetch_shards(lay.fetch)]
        if need:
            log.info("fetching %d shard(s) with img2dataset (%s, %d process(es) x %d threads)",
                     len(need), cfg.distributor, cfg.processes, cfg.threads)
            timing["img2dataset_s"] = round(run_img2dataset(
                lay.input, lay.fetch, processes=cfg.processes, threads=cfg.threads, timeout=cfg.timeout,
                retries=cfg.retries, shard_size=cfg.fetch_shard_size, distributor=cfg.distributor), 2)
        missing = [s for s in pending if not (lay.fetch / f"{shard_name(s)}.parquet").is_file()]
        if missing:
            raise ImagenotError(f"img2dataset did not finish fetch shard(s) {missing[:10]} in {lay.fetch}; "
                                "rerun the same command to retry them")
        for s in pending:
            lo, hi = s * cfg.fetch_shard_size, min(n, (s + 1) * cfg.fetch_shard_size)
            shard_urls = {i: urls[i] for i in range(lo, hi)}
            raw = lay.fetch / f"{shard_name(s)}.parquet"
            tasks.append(("img2dataset", s, str(raw), shard_urls, opts, str(lay.clean_path(s)),
                          str(lay.fetch_stats(s)), None if cfg.keep_raw else str(raw)))
    else:
        for s in pending:
            lo, hi = s * cfg.fetch_shard_size, min(n, (s + 1) * cfg.fetch_shard_size)
            rows = [(i, urls[i]) for i in range(lo, hi)]
            tasks.append(("direct", s, rows, {}, opts, str(lay.clean_path(s)), str(lay.fetch_stats(s)), None))
    t0 = time.perf_counter()
    workers = min(cfg.processes, len(tasks))
    bar = tqdm(total=len(tasks), desc="clean", unit="shard", disable=len(tasks) < 2)
    if workers <= 1:
        for t in tasks:
            clean_task(*t)
            bar.update()
    else:
        # spawn: the parent may hold threads (pyarrow, torch) that make fork unsafe
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            for fut in as_completed([pool.submit(clean_task, *t) for t in tasks]):
                fut.result()
                bar.update()
    bar.close()
    timing["clean_s"] = round(time.perf_counter() - t0, 2)
    return timing


def _gather(sel: Selection, cfg: DownloadConfig, lay: _Layout) -> tuple[pa.Table, dict[str, Counter]]:
    """Fingerprints and reasons of every selected row, in row order; the shard stats summed."""
    n_shards = max(1, math.ceil(sel.num_rows / cfg.fetch_shard_size))
    cols = ["row_id", "reason", "message", "conversion", "width", "height", "orig_width", "orig_height",
            "pixel_sha256", "phash"]
    parts = [pq.read_table(lay.clean_path(s), columns=cols) for s in range(n_shards)]
    table = pa.concat_tables(parts).sort_by("row_id")
    ids = table["row_id"].to_numpy()
    if len(ids) != sel.num_rows or not np.array_equal(ids, np.arange(sel.num_rows)):
        raise ImagenotError(f"cleaned shards in {lay.clean} do not cover the {sel.num_rows} selected rows "
                            f"exactly ({len(ids)} found); delete {lay.work} and rerun")
    totals: dict[str, Counter] = {"dropped": Counter(), "http_status": Counter(), "conversions": Counter()}
    for s in range(n_shards):
        st = read_json(lay.fetch_stats(s))
        for key in totals:
            totals[key].update(st.get(key, {}))
    return table, totals


def as_command(cfg: DownloadConfig) -> str:
    """The `imagenot download` command line for a config: the flags that differ from the defaults."""
    default = to_dict(DownloadConfig())
    parts = ["imagenot", "download"]
    for key, value in to_dict(cfg).items():
        if value == default[key]:
            continue
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            parts.append(flag if value else {"dedup": "--no-dedup"}.get(key, ""))
        elif isinstance(value, list):
            for v in value:
                parts += [flag, shlex.quote(str(v))]
        else:
            parts += [flag, shlex.quote(str(value))]
    return " ".join(p for p in parts if p)


def resolve_caps(cfg: DownloadConfig, mine_info: dict[str, Any]) -> dict[str, Any]:
    """Per-class caps: explicit settings win; else the selection's own (max_per_class, val_per_class)."""
    params = (mine_info.get("selection") or {}).get("params") or {}
    total, val = params.get("max_per_class"), params.get("val_per_class") or 0
    train_cap = (total - val) if total else None
    val_cap = val if val else None
    source = "selection.json" if params else None
    if cfg.max_train_per_class is not None:
        train_cap, source = (None if cfg.max_train_per_class < 0 else cfg.max_train_per_class), "config"
    if cfg.max_val_per_class is not None:
        val_cap, source = (None if cfg.max_val_per_class < 0 else cfg.max_val_per_class), "config"
    return {"train": train_cap, "val": val_cap, "source": source}


def _plan_key(cfg: DownloadConfig, inputs: dict[str, str]) -> str:
    d = {k: v for k, v in to_dict(cfg).items() if k not in _SPEED_ONLY}
    return _digest({"inputs": inputs, "config": d, "version": __version__})


def _complete(lay: _Layout, plan: str) -> dict[str, Any] | None:
    path = lay.out / "dataset.json"
    if not path.is_file():
        return None
    try:
        card = read_json(path)
    except ValueError:
        return None
    if card.get("plan_sha256") != plan:
        return None
    for info in card.get("splits", {}).values():
        for s in info["shards"]:
            p = lay.out / s["file"]
            if not p.is_file() or p.stat().st_size != s["bytes"]:
                return None
    return card


def run_download(cfg: DownloadConfig, command: str | None = None) -> dict[str, Any]:
    """Build (or finish, or confirm) the dataset folder `cfg.out`; return its card."""
    _check_config(cfg)
    t_start = time.perf_counter()
    lay = _Layout(Path(cfg.out))
    sel = read_selection(cfg.matches, cfg.classes)
    schemes = check_urls(sel.table, cfg.allow_local, sel.matches_path)
    inputs = {"selected.parquet": sha256_file(sel.matches_path), "classes.tsv": sha256_file(sel.classes_path)}
    plan = _plan_key(cfg, inputs)
    done = _complete(lay, plan)
    if done is not None:
        log.info("%s is complete (same inputs and settings): nothing to do", lay.out)
        return done
    fetcher = cfg.fetcher
    if fetcher == "auto":
        local_only = all(s in ("file", "") for s in schemes)
        fetcher = "direct" if local_only else "img2dataset"
    if fetcher == "direct" and any(s in ("http", "https") for s in schemes):
        raise ImagenotError("fetcher 'direct' reads local files only; this selection has http(s) urls")
    _prepare_work(lay, cfg, inputs)
    (lay.out / "dataset.json").unlink(missing_ok=True)  # marks the folder incomplete until the end
    timing = _fetch_and_clean(sel, cfg, lay, fetcher)
    table, totals = _gather(sel, cfg, lay)

    # deduplication and contamination
    t0 = time.perf_counter()
    sim = sel.table["similarity"].to_pylist()
    reasons = table["reason"].to_pylist()
    hashes = table["pixel_sha256"].to_pylist()
    phashes = table["phash"].to_pylist()
    candidates = [
        Candidate(i, hashes[i], phashes[i], (-(sim[i] if sim[i] is not None else 0.0), i))
        for i in range(sel.num_rows) if reasons[i] is None
    ]
    references = [load_reference(spec, cfg.image_size, lay.work, cfg.processes) for spec in cfg.against]
    removals = dedup(candidates, cfg.near_dup_distance, references, within=cfg.dedup) if (
        cfg.dedup or references) else []
    timing["dedup_s"] = round(time.perf_counter() - t0, 2)
    source_ids = sel.table["source_id"].to_pylist()
    dedup_of: dict[int, tuple[str, str, int]] = {}
    for r in removals:
        other = r.duplicate_of
        if r.reason.startswith("duplicate"):
            other = source_ids[int(other)] or f"row {other}"
        dedup_of[r.row_id] = (r.reason, other, r.distance)
    kept = [reasons[i] is None and i not in dedup_of for i in range(sel.num_rows)]

    # splits, caps and the class minimum
    labels = sel.table["label"].to_pylist()
    caps = resolve_caps(cfg, sel.mine_info)
    split_of, class_report, capped = assign_splits(
        labels, sel.table["split"].to_pylist(), kept, seed=cfg.seed, val_fraction=cfg.val_fraction,
        min_per_class=cfg.min_per_class, min_val_per_class=cfg.min_val_per_class,
        keep_small=cfg.keep_small_classes, train_cap=caps["train"], val_cap=caps["val"])
    classes_by_label = {c.index: c for c in sel.classes}
    kept_labels = [lab for lab in sorted(classes_by_label)
                   if lab in class_report and class_report[lab].status != "dropped"]
    new_index = {lab: i for i, lab in enumerate(kept_labels)}
    if not kept_labels:
        raise ImagenotError(
            f"no class has {cfg.min_per_class} images after download (selected {sel.num_rows} rows, "
            f"{sum(kept)} usable); see {lay.stats} for failure reasons, or lower --min-per-class")

    # removed.parquet: every selected row not in the dataset, with its one reason
    removed_rows = _removed_table(sel, table, dedup_of, capped, split_of, class_report)
    with atomic_path(lay.out / "removed.parquet") as tmp:
        pq.write_table(removed_rows, tmp)

    # output shards
    t0 = time.perf_counter()
    final_classes = [ClassRow(new_index[lab], c.wnid, c.name, c.lemmas, c.definition, c.query, c.lexname)
                     for lab, c in ((lab, classes_by_label[lab]) for lab in kept_labels)]
    write_classes(lay.out / "classes.tsv", final_classes)
    splits_info, sheet, samples_index = _write_shards(sel, table, split_of, new_index, cfg, lay)
    timing["shards_s"] = round(time.perf_counter() - t0, 2)
    names = [f"{c.index} {c.name.replace('_', ' ')} ({c.wnid})" for c in final_classes]
    sheet_rows = {new_index[lab]: v for lab, v in sheet.items() if lab in new_index}
    sheet_rows = {k: v for k, v in sorted(sheet_rows.items())[: cfg.sheet_max_classes]}
    card_mod.write_contact_sheet(lay.out / "contact_sheet.png", sheet_rows, names, cfg.sheet_per_class)
    with atomic_path(lay.out / "samples.parquet") as tmp:
        pq.write_table(samples_index, tmp)

    removed_counts = Counter(removed_rows["reason"].to_pylist())
    counts = {
        "selected": sel.num_rows,
        "decoded": sum(1 for r in reasons if r is None),
        "after_dedup": sum(kept),
        "train": splits_info["train"]["count"],
        "val": splits_info["val"]["count"],
    }
    assert counts["train"] + counts["val"] + sum(removed_counts.values()) == sel.num_rows
    timing["total_s"] = round(time.perf_counter() - t_start, 2)
    dedup_counts = Counter(r.reason for r in removals)
    card = {
        "name": cfg.name or lay.out.resolve().name,
        "format": "webdataset",
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "tool": {"name": "imagenot", "version": __version__},
        "command": command or as_command(cfg),
        "rerun_command": f"imagenot download --config {shlex.quote(str(lay.out / 'config.json'))}",
        "image_size": cfg.image_size,
        "encode_format": cfg.encode_format,
        "resize": "shorter side resized to image_size, aspect ratio kept; centre crop at training time",
        "num_classes": len(final_classes),
        "classes": [
            {"index": new_index[lab], "wnid": classes_by_label[lab].wnid, "name": classes_by_label[lab].name,
             "source_label": lab, "train": class_report[lab].train, "val": class_report[lab].val,
             "status": class_report[lab].status}
            for lab in kept_labels
        ],
        "dropped_classes": [
            {"wnid": c.wnid, "name": c.name, "source_label": lab,
             "selected": class_report[lab].selected if lab in class_report else 0,
             "survived": class_report[lab].survived if lab in class_report else 0,
             "val": class_report[lab].val if lab in class_report else 0}
            for lab, c in sorted(classes_by_label.items()) if lab not in new_index
        ],
        "splits": splits_info,
        "counts": counts,
        "removed": dict(sorted(removed_counts.items())),
        "http_status": dict(sorted(totals["http_status"].items())),
        "conversions": dict(sorted(totals["conversions"].items())),
        "dedup": {"within": cfg.dedup, "near_dup_distance": cfg.near_dup_distance,
                  "against": list(cfg.against), "counts": dict(sorted(dedup_counts.items()))},
        "split": {"seed": cfg.seed, "val_fraction": cfg.val_fraction, "caps": caps,
                  "moved_to_val": sum(r.moved_to_val for r in class_report.values()),
                  "moved_to_train": sum(r.moved_to_train for r in class_report.values()),
                  "per_class": [r.to_dict() for _, r in sorted(class_report.items())]},
        "thresholds": {k: getattr(cfg, k) for k in (
            "min_image_size", "max_image_pixels", "max_aspect_ratio", "near_dup_distance", "min_per_class",
            "min_val_per_class", "keep_small_classes")},
        "mining": card_mod.mining_summary(sel.mine_info),
        "source": {"matches": str(sel.matches_path), "classes": str(sel.classes_path),
                   "matches_sha256": inputs["selected.parquet"], "classes_sha256": inputs["classes.tsv"],
                   "url_schemes": dict(schemes), "fetcher": fetcher},
        "timing": timing,
        "plan_sha256": plan,
    }
    card["mining"].pop("config", None)
    card["thresholds"]["similarity_threshold"] = card["mining"].get("similarity_threshold")
    card["encoder"] = card["mining"].get("encoder")
    card["corpus"] = card["mining"].get("corpus")
    write_json(lay.out / "config.json", to_dict(cfg))
    write_manifest(lay.out, to_dict(cfg), inputs, shards={
        s["file"]: s["sha256"] for info in splits_info.values() for s in info["shards"]})
    card_mod.write_readme(lay.out / "README.md", card)
    write_json(lay.out / "dataset.json", card)  # last: its presence marks the folder complete
    log.info("%s: %d classes, %d train, %d val (%d of %d rows removed) in %.1f s", lay.out, len(final_classes),
             counts["train"], counts["val"], sum(removed_counts.values()), sel.num_rows, timing["total_s"])
    return card


def _removed_table(sel: Selection, table: pa.Table, dedup_of: dict[int, tuple[str, str, int]],
                   capped: set[int], split_of: list[str | None], class_report: dict) -> pa.Table:
    reasons = table["reason"].to_pylist()
    messages = table["message"].to_pylist()
    labels = sel.table["label"].to_pylist()
    out: dict[str, list[Any]] = defaultdict(list)
    for i in range(sel.num_rows):
        stage = reason = msg = other = None
        dist = None
        if reasons[i] is not None:
            stage = "fetch" if reasons[i] in FETCH_REASONS else "decode"
            reason, msg = reasons[i], messages[i]
        elif i in dedup_of:
            reason, other, dist = dedup_of[i]
            stage = "contamination" if reason.startswith("contamination") else "dedup"
        elif i in capped:
            stage, reason = "cap", "over_cap"
            msg = "the class already has its share of higher-priority images"
        elif split_of[i] is None:
            stage, reason = "class", "class_below_minimum"
            rep = class_report[labels[i]]
            msg = f"class kept {rep.survived} images ({rep.val} val)"
        else:
            continue
        out["row_id"].append(i)
        out["stage"].append(stage)
        out["reason"].append(reason)
        out["message"].append(msg)
        out["duplicate_of"].append(other)
        out["distance"].append(dist)
    idx = pa.array(out["row_id"], pa.int64())
    base = sel.table.take(idx).select(["row_id", "source_id", "url", "wnid", "label", "split"])
    return (base.append_column("stage", pa.array(out["stage"], pa.string()))
            .append_column("reason", pa.array(out["reason"], pa.string()))
            .append_column("message", pa.array(out["message"], pa.string()))
            .append_column("duplicate_of", pa.array(out["duplicate_of"], pa.string()))
            .append_column("distance", pa.array(out["distance"], pa.int32())))


def sample_key(row_id: int) -> str:
    return f"{row_id:09d}"


def _write_shards(sel: Selection, table: pa.Table, split_of: list[str | None], new_index: dict[int, int],
                  cfg: DownloadConfig, lay: _Layout) -> tuple[dict[str, Any], dict[int, list[bytes]], pa.Table]:
    """Shuffle each split (seeded), bucket rows by output shard on disk, then write each bucket as a tar.

    Buckets keep memory bounded: images stream from the cleaned fetch shards into one Arrow file per
    output shard, and only one output shard is ever held in memory.
    """
    labels = sel.table["label"].to_pylist()
    position: dict[int, tuple[str, int]] = {}
    n_buckets: dict[str, int] = {}
    for split in SPLITS:
        rows = [i for i, s in enumerate(split_of) if s == split and labels[i] in new_index]
        order = np.random.default_rng([cfg.seed, SPLITS.index(split), 7]).permutation(len(rows))
        for pos, j in enumerate(order):
            position[rows[j]] = (split, pos)
        n_buckets[split] = max(1, math.ceil(len(rows) / cfg.shard_size))
    bucket_dir = lay.work / "buckets"
    shutil.rmtree(bucket_dir, ignore_errors=True)
    bucket_dir.mkdir(parents=True)
    schema = pa.schema([("row_id", pa.int64()), ("pos", pa.int64()), ("image", pa.binary())])
    writers: dict[tuple[str, int], pa.ipc.RecordBatchStreamWriter] = {}
    sheet: dict[int, list[bytes]] = defaultdict(list)
    n_shards = max(1, math.ceil(sel.num_rows / cfg.fetch_shard_size))
    for s in tqdm(range(n_shards), desc="bucket", unit="shard", disable=n_shards < 4, leave=False):
        part = pq.read_table(lay.clean_path(s), columns=["row_id", "reason", "image"])
        groups: dict[tuple[str, int], list[tuple[int, int, bytes]]] = defaultdict(list)
        for rid, reason, img in zip(part["row_id"].to_pylist(), part["reason"].to_pylist(),
                                    part["image"].to_pylist()):
            if reason is not None or rid not in position:
                continue
            split, pos = position[rid]
            groups[(split, pos // cfg.shard_size)].append((rid, pos, img))
            if split == "train" and len(sheet[labels[rid]]) < cfg.sheet_per_class:
                sheet[labels[rid]].append(img)
        for key, items in groups.items():
            if key not in writers:
                sink = pa.OSFile(str(bucket_dir / f"{key[0]}-{key[1]:06d}.arrow"), "wb")
                writers[key] = pa.ipc.new_stream(sink, schema)
            r, p, im = zip(*items)
            writers[key].write_batch(pa.record_batch([pa.array(r, pa.int64()), pa.array(p, pa.int64()),
                                                      pa.array(im, pa.binary())], schema=schema))
    for w in writers.values():
        w.close()
    t = sel.table
    meta_cols = {c: t[c].to_pylist() for c in ("source_id", "url", "caption", "wnid", "lemma", "similarity")}
    fp = {c: table[c].to_pylist() for c in ("pixel_sha256", "phash", "orig_width", "orig_height",
                                             "conversion")}
    splits_info: dict[str, Any] = {}
    index_rows: dict[str, list[Any]] = defaultdict(list)
    for split in SPLITS:
        def samples(split: str = split) -> Any:
            for b in range(n_buckets[split]):
                path = bucket_dir / f"{split}-{b:06d}.arrow"
                if not path.is_file():
                    continue
                with pa.OSFile(str(path), "rb") as f:
                    bt = pa.ipc.open_stream(f).read_all().sort_by("pos")
                for rid, img in zip(bt["row_id"].to_pylist(), bt["image"].to_pylist()):
                    sim = meta_cols["similarity"][rid]
                    meta = {
                        "wnid": meta_cols["wnid"][rid], "caption": meta_cols["caption"][rid],
                        "url": meta_cols["url"][rid],
                        "similarity": None if sim is None else round(float(sim), 6),
                        "source_id": meta_cols["source_id"][rid], "lemma": meta_cols["lemma"][rid],
                        "label": new_index[labels[rid]], "source_label": labels[rid],
                        "pixel_sha256": fp["pixel_sha256"][rid], "phash": fp["phash"][rid],
                        "orig_width": fp["orig_width"][rid], "orig_height": fp["orig_height"][rid],
                        "conversion": fp["conversion"][rid],
                    }
                    index_rows["key"].append(sample_key(rid))
                    index_rows["split"].append(split)
                    index_rows["shard"].append(f"{split}-{b:06d}.tar")
                    index_rows["row_id"].append(rid)
                    index_rows["label"].append(new_index[labels[rid]])
                    for k in ("wnid", "source_id", "url"):
                        index_rows[k].append(meta[k])
                    index_rows["similarity"].append(sim)
                    index_rows["pixel_sha256"].append(meta["pixel_sha256"])
                    index_rows["phash"].append(meta["phash"])
                    yield {"key": sample_key(rid), "image": img, "label": new_index[labels[rid]], "meta": meta}

        shards = write_split_shards(lay.out, split, samples(), shard_size=cfg.shard_size, stats_dir=lay.stats,
                                    encode_format=cfg.encode_format)
        splits_info[split] = {"count": sum(s["samples"] for s in shards), "shards": shards}
    shutil.rmtree(bucket_dir, ignore_errors=True)
    schema_idx = pa.schema([("key", pa.string()), ("split", pa.string()), ("shard", pa.string()),
                            ("row_id", pa.int64()), ("label", pa.int32()), ("wnid", pa.string()),
                            ("source_id", pa.string()), ("url", pa.string()), ("similarity", pa.float32()),
                            ("pixel_sha256", pa.string()), ("phash", pa.string())])
    index = pa.table({k: index_rows.get(k, []) for k in schema_idx.names}, schema=schema_idx)
    return splits_info, dict(sheet), index
