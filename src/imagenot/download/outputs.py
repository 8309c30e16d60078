"""The dataset's files once every row is decided: the shards, the contact sheet and samples.parquet.

Each split is shuffled (seeded) and bucketed by output shard on disk, so memory stays bounded at LAION scale:
images stream from the cleaned fetch shards into one Arrow file per output shard, and only one output shard
is ever held in memory. Each sample's json carries what an auditor needs (caption, url, similarity, source
id, lemma, fingerprints, original size, conversion; `text_in_image` with the text filter; `corpus` with the
corpus columns mining kept).
"""

from __future__ import annotations

import logging
import math
import shutil
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from imagenot.download.card import write_contact_sheet
from imagenot.download.config import DownloadConfig
from imagenot.download.decide import Decision
from imagenot.download.matches import Selection
from imagenot.download.shards import SPLITS, write_split_shards
from imagenot.fileio import atomic_path
from imagenot.progress import progress

log = logging.getLogger(__name__)


def sample_key(row_id: int) -> str:
    return f"{row_id:09d}"


def write_outputs(sel: Selection, table: pa.Table, d: Decision, cfg: DownloadConfig, *, out: Path, work: Path,
                  stats: Path, clean_shards: list[Path]) -> dict[str, Any]:
    """The shards (with their stats), contact_sheet.png and samples.parquet; returns the card's splits.

    `table`: every row's cleaned fingerprints (row order); `clean_shards`: the cleaned fetch shards, which
    hold the images."""
    splits_info, sheet, samples_index = _write_shards(sel, table, d, cfg, out, work, stats, clean_shards)
    names = [f"{c.index} {c.name.replace('_', ' ')} ({c.wnid})" for c in d.final_classes]
    sheet_rows = {d.new_index[lab]: v for lab, v in sheet.items() if lab in d.new_index}
    sheet_rows = {k: v for k, v in sorted(sheet_rows.items())[: cfg.sheet_max_classes]}
    write_contact_sheet(out / "contact_sheet.png", sheet_rows, names, cfg.sheet_per_class)
    with atomic_path(out / "samples.parquet") as tmp:
        pq.write_table(samples_index, tmp)
    return splits_info


def _write_shards(sel: Selection, table: pa.Table, d: Decision, cfg: DownloadConfig, out: Path, work: Path,
                  stats: Path, clean_shards: list[Path]) -> tuple[dict[str, Any], dict[int, list[bytes]], pa.Table]:
    """Shuffle each split (seeded), bucket rows by output shard on disk, then write each bucket as a tar.

    Buckets keep memory bounded: images stream from the cleaned fetch shards into one Arrow file per
    output shard, and only one output shard is ever held in memory.
    """
    labels = sel.table["label"].to_pylist()
    new_index = d.new_index
    position: dict[int, tuple[str, int]] = {}
    n_buckets: dict[str, int] = {}
    for split in SPLITS:
        rows = [i for i, s in enumerate(d.split_of) if s == split and labels[i] in new_index]
        order = np.random.default_rng([cfg.seed, SPLITS.index(split), 7]).permutation(len(rows))
        for pos, j in enumerate(order):
            position[rows[j]] = (split, pos)
        n_buckets[split] = max(1, math.ceil(len(rows) / cfg.shard_size))
    bucket_dir = work / "buckets"
    shutil.rmtree(bucket_dir, ignore_errors=True)
    bucket_dir.mkdir(parents=True)
    schema = pa.schema([("row_id", pa.int64()), ("pos", pa.int64()), ("image", pa.binary())])
    writers: dict[tuple[str, int], pa.ipc.RecordBatchStreamWriter] = {}
    sheet: dict[int, list[bytes]] = defaultdict(list)
    try:
        for path in progress(clean_shards, desc="bucket", unit="shard"):
            part = pq.read_table(path, columns=["row_id", "reason", "image"])
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
    finally:
        for w in writers.values():
            w.close()
    t = sel.table
    meta_cols = {c: t[c].to_pylist() for c in ("source_id", "url", "caption", "wnid", "lemma", "similarity")}
    fp = {c: table[c].to_pylist() for c in ("pixel_sha256", "phash", "orig_width", "orig_height",
                                             "conversion", "text_match")}
    corpus = sel.corpus_values()
    ocr = cfg.text_filter != "off"
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
                    if ocr:
                        meta["text_in_image"] = fp["text_match"][rid]
                    if corpus is not None:
                        meta["corpus"] = corpus[rid]
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

        shards = write_split_shards(out, split, samples(), shard_size=cfg.shard_size, stats_dir=stats,
                                    encode_format=cfg.encode_format)
        splits_info[split] = {"count": sum(s["samples"] for s in shards), "shards": shards}
    shutil.rmtree(bucket_dir, ignore_errors=True)
    schema_idx = pa.schema([("key", pa.string()), ("split", pa.string()), ("shard", pa.string()),
                            ("row_id", pa.int64()), ("label", pa.int32()), ("wnid", pa.string()),
                            ("source_id", pa.string()), ("url", pa.string()), ("similarity", pa.float32()),
                            ("pixel_sha256", pa.string()), ("phash", pa.string())])
    index = pa.table({k: index_rows.get(k, []) for k in schema_idx.names}, schema=schema_idx)
    return splits_info, dict(sheet), index
