"""`imagenot download`: selected rows -> fetched, cleaned, deduplicated, split, sharded dataset with a card.

Stages and what makes a rerun cheap:
1. fetch (img2dataset, or direct reads for local corpora) and clean, per fetch shard of `fetch_shard_size`
   rows: a shard whose `stats/fetch-NNNNN.json` exists is done and is never fetched again; a source id that
   repeats an earlier row is fetched once (the repeat is removed as `duplicate_source_id`);
2. global decisions over all shards (`decide`: text filter, dedup, splits, class minimum), cheap because
   they read fingerprints only;
3. output shards, written through per-output-shard buckets so memory stays bounded at LAION scale, then the
   card (`card.build_card`), written last: its presence marks the folder complete. A complete folder is
   confirmed without work when `dataset.json` records the same plan, and its `_work/` staging folder is
   removed (kept with `keep_raw`).

A folder built from other inputs is refused unless `force`; a full disk is an error naming the folder, with
no partial file left (every output is written atomically), and the rerun resumes.
"""

from __future__ import annotations

import contextlib
import logging
import math
import shlex
import shutil
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from imagenot import __version__, datacard, safepath
from imagenot.config import to_dict, to_record
from imagenot.download import card as card_mod
from imagenot.download.against import check_reference, load_reference
from imagenot.download.clean import (
    CLEAN_FORMAT,
    CLEAN_SCHEMA,
    FACES_COLUMN,
    CleanOptions,
    CleanTask,
    run_clean_task,
)
from imagenot.download.config import DISTRIBUTORS, ENCODE_FORMATS, FETCHERS, TEXT_FILTERS, DownloadConfig
from imagenot.download.decide import DUPLICATE_SOURCE_ID, decide, removed_table
from imagenot.download.fetch import done_fetch_shards, drop_broken_fetch_shards, run_img2dataset, shard_name
from imagenot.download.matches import Selection, check_urls, read_selection
from imagenot.download.outputs import write_outputs
from imagenot.errors import ImagenotError, InputError, disk_full_is_an_error
from imagenot.fileio import atomic_path, json_digest, read_json, sha256_file, write_json, write_manifest
from imagenot.lock import locks_output
from imagenot.progress import pool_map
from imagenot.wordnet.classes import write_classes

log = logging.getLogger(__name__)

# Settings that only change how fast a dataset is built (or how a failure is bounded), not the plan; the
# inputs' paths are not in the plan either: their sha256 is (a relative and an absolute path are one input).
_NOT_IN_PLAN = ("processes", "threads", "distributor", "keep_raw", "timeout", "retries", "out", "fetcher",
                "force", "max_response_mb", "matches", "classes")
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
    if cfg.text_filter not in TEXT_FILTERS:
        problems.append(f"text_filter {cfg.text_filter!r} unknown; known: {', '.join(TEXT_FILTERS)}")
    if not 0.0 < cfg.text_filter_fraction <= 1.0:
        problems.append(f"text_filter_fraction {cfg.text_filter_fraction} must be in (0, 1]")
    elif cfg.text_filter_fraction < 1.0 and cfg.text_filter != "count":
        problems.append("text_filter_fraction below 1 only makes sense with --text-filter count (drop must read "
                        "every image)")
    if cfg.image_size < 8:
        problems.append(f"image_size must be at least 8, got {cfg.image_size}")
    if cfg.processes < 1 or cfg.threads < 1:
        problems.append("processes and threads must be at least 1")
    if cfg.fetch_shard_size < 1 or cfg.shard_size < 1:
        problems.append("fetch_shard_size and shard_size must be at least 1")
    if cfg.timeout <= 0:
        problems.append(f"timeout must be positive, got {cfg.timeout}")
    if not cfg.max_response_mb > 0:
        problems.append(f"max_response_mb must be positive, got {cfg.max_response_mb}")
    if not 0.0 <= cfg.val_fraction < 1.0:
        problems.append(f"val_fraction must be in [0, 1), got {cfg.val_fraction}")
    if cfg.near_dup_distance > 63:
        problems.append(f"near_dup_distance must be at most 63, got {cfg.near_dup_distance}")
    if problems:
        raise ImagenotError("; ".join(problems))
    if cfg.text_filter != "off":
        from imagenot.download.ocr import check_available

        check_available()
    for spec in cfg.against:
        check_reference(spec)


def _in_ocr_sample(cfg: DownloadConfig, row: int) -> bool:
    """Whether row `row` is OCR'd: every row, or a seeded, stable sample of `text_filter_fraction` of them."""
    if cfg.text_filter_fraction >= 1.0:
        return True
    h = int(json_digest([cfg.seed, "ocr", row], 12), 16) / float(16**12)
    return h < cfg.text_filter_fraction


def clean_options(cfg: DownloadConfig) -> CleanOptions:
    return CleanOptions(cfg.image_size, cfg.encode_format, cfg.encode_quality, cfg.min_image_size,
                        cfg.max_image_pixels, cfg.max_aspect_ratio, ocr=cfg.text_filter != "off")


class _Layout:
    def __init__(self, out: Path) -> None:
        self.out = out
        self.work = out / "_work"
        self.fetch = self.work / "fetch"
        self.clean = self.work / "clean"
        self.stats = out / "stats"
        self.state = self.work / "state.json"
        self.input = self.work / "input.parquet"
        self.card = datacard.card_path(out)

    def clean_path(self, shard: int) -> Path:
        return self.clean / f"{shard_name(shard)}.parquet"

    def fetch_stats(self, shard: int) -> Path:
        return self.stats / f"fetch-{shard_name(shard)}.json"


def _refuse_other_inputs(lay: _Layout, cfg: DownloadConfig, inputs: dict[str, str]) -> None:
    """Never replace a dataset made from other inputs (or write into a foreign folder) without --force."""
    out = lay.out
    if not out.exists():
        return
    if not out.is_dir():
        raise InputError("--out exists and is not a folder", out)
    if not any(out.iterdir()):
        return
    if cfg.force:  # --force rewrites the folder: never when it is or holds an input, or the working folder
        safepath.check_removable(out, [cfg.matches, cfg.classes, *(safepath.spec_path(a) for a in cfg.against)])
        return
    recorded: dict[str, Any] | None = None
    manifest = lay.out / "manifest.json"
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError, AttributeError):
        if lay.state.is_file():
            recorded = read_json(lay.state)["inputs"]
        elif lay.card.is_file():
            src = (datacard.read_card_if_any(lay.out) or {})["source"]
            recorded = {"selected.parquet": src["matches_sha256"], "classes.tsv": src["classes_sha256"]}
        elif manifest.is_file():
            recorded = dict(read_json(manifest)["inputs"])
    ours = lay.work.is_dir() or lay.card.is_file() or any(lay.stats.glob("fetch-*.json"))
    if recorded is None and not ours:
        raise ImagenotError(f"{out} exists, is not empty and is not a dataset folder made by `imagenot "
                            "download`; choose another --out (or pass --force to write into it anyway)")
    if recorded is not None and recorded != inputs:
        changed = [k for k in inputs if recorded.get(k) != inputs[k]]
        raise ImagenotError(
            f"{out} holds a dataset built from other inputs ({' and '.join(changed)} differ from "
            f"{cfg.matches}); downloading into it would replace it. Choose another --out, or pass --force to "
            "replace it")


def _prepare_work(lay: _Layout, cfg: DownloadConfig, inputs: dict[str, str], blurs_faces: bool = False) -> None:
    """Reuse finished fetch/clean shards only if they were made from the same inputs and settings; with
    --force, nothing staged before is reused (whatever an earlier or concurrent run left there)."""
    if cfg.force:
        shutil.rmtree(lay.work, ignore_errors=True)
        for p in lay.stats.glob("fetch-*.json"):
            p.unlink()
    d = to_dict(cfg)
    fetch_key = json_digest({"inputs": inputs, **{k: d[k] for k in _FETCH_KEYS}})
    ocr = cfg.text_filter != "off"
    clean_key = json_digest({**{k: d[k] for k in _CLEAN_KEYS}, "ocr": ocr,
                             "ocr_fraction": cfg.text_filter_fraction if ocr else None,
                             **({"ocr_terms": cfg.text_filter_terms} if ocr else {}),
                             **({"blur_faces": True} if blurs_faces else {}),
                             "format": CLEAN_FORMAT})
    state = None
    if lay.state.is_file():
        try:
            state = read_json(lay.state)
        except ValueError:
            state = None
    if state is None or state.get("fetch_key") != fetch_key:
        if state is not None:
            log.warning("%s was started from other inputs or fetch settings: starting it afresh", lay.out)
        shutil.rmtree(lay.work, ignore_errors=True)
        for p in lay.stats.glob("fetch-*.json"):
            p.unlink()
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


def face_boxes(sel: Selection, cfg: DownloadConfig) -> list[list[list[float]]] | None:
    """Per row, the face boxes to blur ([x0, y0, x1, y1] relative to the image), or None when no row has any
    or --no-blur-faces."""
    if not cfg.blur_faces or sel.corpus is None or FACES_COLUMN not in sel.corpus.column_names:
        return None
    return [list(b or []) for b in sel.corpus[FACES_COLUMN].to_pylist()]


def _fetch_rows(sel: Selection) -> list[int]:
    """Row ids to fetch, in row order: every row except repeats of an earlier source id."""
    return [i for i in range(sel.num_rows) if i not in sel.duplicates]


def _n_fetch_shards(cfg: DownloadConfig, n_rows: int) -> int:
    return max(1, math.ceil(n_rows / cfg.fetch_shard_size))


def _fetch_and_clean(sel: Selection, cfg: DownloadConfig, lay: _Layout, fetcher: str,
                     rows: list[int]) -> dict[str, Any]:
    n_shards = _n_fetch_shards(cfg, len(rows))
    done = {s for s in range(n_shards) if lay.fetch_stats(s).is_file() and lay.clean_path(s).is_file()}
    pending = [s for s in range(n_shards) if s not in done]
    timing: dict[str, Any] = {"fetch_shards": n_shards, "already_done": len(done), "img2dataset_s": None}
    if not pending:
        log.info("all %d fetch shards already done", n_shards)
        return timing
    urls = sel.table["url"].to_pylist()
    labels = sel.table["label"].to_pylist()
    opts = clean_options(cfg)
    terms_of: dict[int, tuple[str, ...]] = {}
    if opts.ocr:
        from imagenot.download.ocr import class_terms

        terms_of = {c.index: class_terms(c, cfg.text_filter_terms) for c in sel.classes}
    faces_of = face_boxes(sel, cfg)

    def shard_rows(s: int) -> list[int]:
        return rows[s * cfg.fetch_shard_size:(s + 1) * cfg.fetch_shard_size]

    def terms(ids: list[int]) -> dict[int, tuple[str, ...]] | None:
        if not opts.ocr:
            return None
        return {i: terms_of[labels[i]] for i in ids if _in_ocr_sample(cfg, i)}

    def faces(ids: list[int]) -> dict[int, list[list[float]]] | None:
        return {i: faces_of[i] for i in ids if faces_of[i]} if faces_of else None

    lay.clean.mkdir(parents=True, exist_ok=True)
    tasks: list[CleanTask] = []
    if fetcher == "img2dataset":
        if not lay.input.is_file():
            with atomic_path(lay.input) as tmp:
                pq.write_table(sel.table.take(pa.array(rows, pa.int64())).select(["row_id", "url", "caption"]),
                               tmp)
        drop_broken_fetch_shards(lay.fetch, pending)  # torn by a kill or a second process: fetched again
        need = [s for s in pending if s not in done_fetch_shards(lay.fetch)]
        if need:
            log.info("fetching %d shard(s) with img2dataset (%s, %d process(es) x %d threads)",
                     len(need), cfg.distributor, cfg.processes, cfg.threads)
            timing["img2dataset_s"] = round(run_img2dataset(
                lay.input, lay.fetch, processes=cfg.processes, threads=cfg.threads, timeout=cfg.timeout,
                retries=cfg.retries, shard_size=cfg.fetch_shard_size, distributor=cfg.distributor,
                max_bytes=int(cfg.max_response_mb * 1_000_000)), 2)
        missing = [s for s in pending if not (lay.fetch / f"{shard_name(s)}.parquet").is_file()]
        if missing:
            raise ImagenotError(f"img2dataset did not finish fetch shard(s) {missing[:10]} in {lay.fetch} (see "
                                f"{lay.work / 'img2dataset.log'}); rerun the same command to retry them")
        for s in pending:
            ids = shard_rows(s)
            raw = lay.fetch / f"{shard_name(s)}.parquet"
            tasks.append(CleanTask("img2dataset", s, str(raw), {i: urls[i] for i in ids}, opts,
                                   str(lay.clean_path(s)), str(lay.fetch_stats(s)),
                                   None if cfg.keep_raw else str(raw), terms(ids), faces(ids)))
    else:
        for s in pending:
            ids = shard_rows(s)
            tasks.append(CleanTask("direct", s, [(i, urls[i]) for i in ids], {}, opts, str(lay.clean_path(s)),
                                   str(lay.fetch_stats(s)), None, terms(ids), faces(ids)))
    t0 = time.perf_counter()
    for _ in pool_map(run_clean_task, tasks, workers=min(cfg.processes, len(tasks)), desc="clean",
                      unit="shard"):
        pass
    timing["clean_s"] = round(time.perf_counter() - t0, 2)
    return timing


def _gather(sel: Selection, cfg: DownloadConfig, lay: _Layout,
            rows: list[int]) -> tuple[pa.Table, dict[str, Counter[str]]]:
    """Fingerprints and reasons of every selected row, in row order (repeated source ids included, with
    their reason); the shard stats summed."""
    n_shards = _n_fetch_shards(cfg, len(rows))
    cols = ["row_id", "reason", "message", "conversion", "width", "height", "orig_width", "orig_height",
            "pixel_sha256", "phash", "text_match"]
    parts = [pq.read_table(lay.clean_path(s), columns=cols) for s in range(n_shards)]
    table = pa.concat_tables(parts).sort_by("row_id")
    if not np.array_equal(table["row_id"].to_numpy(), np.asarray(rows, dtype=np.int64)):
        raise ImagenotError(f"cleaned shards in {lay.clean} do not cover the {len(rows)} rows to fetch exactly "
                            f"({table.num_rows} found); delete {lay.work} and rerun")
    if sel.duplicates:
        schema = CLEAN_SCHEMA.remove(CLEAN_SCHEMA.get_field_index("image"))
        dup_ids = sorted(sel.duplicates)
        dup = {name: pa.nulls(len(dup_ids), schema.field(name).type) for name in schema.names}
        dup["row_id"] = pa.array(dup_ids, pa.int64())
        dup["reason"] = pa.array([DUPLICATE_SOURCE_ID] * len(dup_ids), pa.string())
        dup["message"] = pa.array([f"same source_id as row {sel.duplicates[i]} (fetched once)" for i in dup_ids],
                                  pa.string())
        table = pa.concat_tables([table, pa.table(dup, schema=schema).select(cols)]).sort_by("row_id")
    totals: dict[str, Counter[str]] = {k: Counter() for k in ("dropped", "http_status", "conversions",
                                                              "text_filter")}
    for s in range(n_shards):
        st = read_json(lay.fetch_stats(s))
        for key in totals:
            totals[key].update(st.get(key, {}))
    return table, totals


def as_command(cfg: DownloadConfig) -> str:
    """The `imagenot download` command line for a config: the flags that differ from the defaults."""
    default = to_dict(DownloadConfig())
    parts = ["imagenot", "download"]
    for key, value in to_record(cfg).items():
        if value == default[key]:
            continue
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            parts.append(flag if value else "--no-" + key.replace("_", "-"))
        elif isinstance(value, list):
            for v in value:
                parts += [flag, shlex.quote(str(v))]
        else:
            parts += [flag, shlex.quote(str(value))]
    return " ".join(parts)


def _plan_key(cfg: DownloadConfig, inputs: dict[str, str]) -> str:
    d = {k: v for k, v in to_dict(cfg).items() if k not in _NOT_IN_PLAN}
    return json_digest({"inputs": inputs, "config": d, "version": __version__})


def _complete(lay: _Layout, plan: str) -> dict[str, Any] | None:
    card = datacard.read_card_if_any(lay.out)
    if card is None:
        return None
    if card.get("plan_sha256") != plan:
        return None
    for info in card.get("splits", {}).values():
        for s in info["shards"]:
            p = lay.out / s["file"]
            if not safepath.is_within(p, lay.out) or not p.is_file() or p.stat().st_size != s["bytes"]:
                return None
    return card


def _finish(lay: _Layout, cfg: DownloadConfig) -> None:
    """A complete folder needs no staging: `_work/` goes (unless the raw bytes are to be kept)."""
    if not cfg.keep_raw and lay.work.is_dir():
        shutil.rmtree(lay.work, ignore_errors=True)


@locks_output(lambda cfg, *args, **kwargs: cfg.out)
def run_download(cfg: DownloadConfig, command: str | None = None) -> dict[str, Any]:
    """Build (or finish, or confirm) the dataset folder `cfg.out`; return its card."""
    _check_config(cfg)
    lay = _Layout(Path(cfg.out))
    sel = read_selection(cfg.matches, cfg.classes)
    schemes = check_urls(sel.table, cfg.allow_local, sel.matches_path)
    inputs = {"selected.parquet": sha256_file(sel.matches_path), "classes.tsv": sha256_file(sel.classes_path)}
    plan = _plan_key(cfg, inputs)
    done = None if cfg.force else _complete(lay, plan)  # --force always starts clean
    if done is not None:
        log.info("%s is complete (same inputs and settings): nothing to do", lay.out)
        _finish(lay, cfg)
        return done
    _refuse_other_inputs(lay, cfg, inputs)
    fetcher = cfg.fetcher
    if fetcher == "auto":
        local_only = all(s in ("file", "") for s in schemes)
        fetcher = "direct" if local_only else "img2dataset"
    if fetcher == "direct" and any(s in ("http", "https") for s in schemes):
        raise ImagenotError("fetcher 'direct' reads local files only; this selection has http(s) urls")
    with disk_full_is_an_error(lay.out):
        return _build(sel, cfg, lay, fetcher, inputs, schemes, plan, command or as_command(cfg))


def _build(sel: Selection, cfg: DownloadConfig, lay: _Layout, fetcher: str, inputs: dict[str, str],
           schemes: Counter[str], plan: str, command: str) -> dict[str, Any]:
    t_start = time.perf_counter()
    _prepare_work(lay, cfg, inputs, face_boxes(sel, cfg) is not None)
    lay.card.unlink(missing_ok=True)  # marks the folder incomplete until the end
    rows = _fetch_rows(sel)
    timing = _fetch_and_clean(sel, cfg, lay, fetcher, rows)
    table, totals = _gather(sel, cfg, lay, rows)

    t0 = time.perf_counter()
    references = [load_reference(spec, cfg.image_size, lay.work, cfg.processes) for spec in cfg.against]
    decision = decide(sel, table, cfg, references)
    timing["dedup_s"] = round(time.perf_counter() - t0, 2)

    t0 = time.perf_counter()
    removed = removed_table(sel, decision)
    with atomic_path(lay.out / "removed.parquet") as tmp:
        pq.write_table(removed, tmp)
    write_classes(lay.out / "classes.tsv", decision.final_classes)
    clean_shards = [lay.clean_path(i) for i in range(_n_fetch_shards(cfg, sel.num_rows - len(sel.duplicates)))]
    splits_info = write_outputs(sel, table, decision, cfg, out=lay.out, work=lay.work, stats=lay.stats,
                                clean_shards=clean_shards)
    timing["shards_s"] = round(time.perf_counter() - t0, 2)
    removed_counts = Counter(removed["reason"].to_pylist())
    decoded = sum(1 for r in table["reason"].to_pylist() if r is None)
    assert splits_info["train"]["count"] + splits_info["val"]["count"] + removed.num_rows == sel.num_rows
    timing["total_s"] = round(time.perf_counter() - t_start, 2)
    card = card_mod.build_card(cfg, sel, decision, splits_info=splits_info, removed=removed_counts,
                               totals=totals, decoded=decoded, timing=timing, inputs=inputs, schemes=schemes,
                               fetcher=fetcher, plan=plan, command=command, out=lay.out)
    write_json(lay.out / "config.json", to_record(cfg))  # absolute paths: replays from any directory
    shard_list = [s for info in splits_info.values() for s in info["shards"]]
    write_manifest(lay.out, to_record(cfg), inputs, shards={s["file"]: s["sha256"] for s in shard_list})
    datacard.write_readme(lay.out, card)
    from imagenot.data.readers.files import wds_record_verified

    wds_record_verified(lay.out, shard_list)
    datacard.write_card(lay.out, card)  # last: its presence marks the folder complete
    _finish(lay, cfg)
    log.info("%s: %d classes, %d train, %d val (%d of %d rows removed) in %.1f s", lay.out,
             len(decision.final_classes), splits_info["train"]["count"], splits_info["val"]["count"],
             removed.num_rows, sel.num_rows, timing["total_s"])
    return card
