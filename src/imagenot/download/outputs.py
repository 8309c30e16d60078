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
from collections.abc import Iterator
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


BUCKET_SCHEMA = pa.schema([("row_id", pa.int64()), ("pos", pa.int64()), ("image", pa.binary())])
INDEX_SCHEMA = pa.schema([("key", pa.string()), ("split", pa.string()), ("shard", pa.string()),
                          ("row_id", pa.int64()), ("label", pa.int32()), ("wnid", pa.string()),
                          ("source_id", pa.string()), ("url", pa.string()), ("similarity", pa.float32()),
                          ("pixel_sha256", pa.string()), ("phash", pa.string())])  # samples.parquet


def _write_shards(sel: Selection, table: pa.Table, d: Decision, cfg: DownloadConfig, out: Path, work: Path,
                  stats: Path, clean_shards: list[Path]) -> tuple[dict[str, Any], dict[int, list[bytes]], pa.Table]:
    """Shuffle each split (seeded), bucket rows by output shard on disk, then write each bucket as a tar.

    Buckets keep memory bounded: images stream from the cleaned fetch shards into one Arrow file per
    output shard, and only one output shard is ever held in memory. Returns the card's splits, the contact
    sheet's images per (source) label and the samples.parquet table.
    """
    labels = sel.table["label"].to_pylist()
    position, n_buckets = _shuffle(d, labels, cfg)
    bucket_dir = work / "buckets"
    shutil.rmtree(bucket_dir, ignore_errors=True)
    bucket_dir.mkdir(parents=True)
    sheet = _fill_buckets(clean_shards, position, labels, cfg, bucket_dir)
    rows = _SampleRows(sel, table, d, cfg.text_filter != "off", labels)
    splits_info: dict[str, Any] = {}
    index_rows: dict[str, list[Any]] = defaultdict(list)
    for split in SPLITS:
        samples = _bucket_samples(bucket_dir, split, n_buckets[split], rows, index_rows)
        shards = write_split_shards(out, split, samples, shard_size=cfg.shard_size, stats_dir=stats,
                                    encode_format=cfg.encode_format)
        splits_info[split] = {"count": sum(s["samples"] for s in shards), "shards": shards}
    shutil.rmtree(bucket_dir, ignore_errors=True)
    index = pa.table({k: index_rows.get(k, []) for k in INDEX_SCHEMA.names}, schema=INDEX_SCHEMA)
    return splits_info, sheet, index


def _shuffle(d: Decision, labels: list[int], cfg: DownloadConfig) -> tuple[dict[int, tuple[str, int]],
                                                                          dict[str, int]]:
    """Each kept row's (split, position in its split's seeded shuffle), and each split's number of shards."""
    position: dict[int, tuple[str, int]] = {}
    n_buckets: dict[str, int] = {}
    for split in SPLITS:
        rows = [i for i, s in enumerate(d.split_of) if s == split and labels[i] in d.new_index]
        order = np.random.default_rng([cfg.seed, SPLITS.index(split), 7]).permutation(len(rows))
        for pos, j in enumerate(order):
            position[rows[j]] = (split, pos)
        n_buckets[split] = max(1, math.ceil(len(rows) / cfg.shard_size))
    return position, n_buckets


def _fill_buckets(clean_shards: list[Path], position: dict[int, tuple[str, int]], labels: list[int],
                  cfg: DownloadConfig, bucket_dir: Path) -> dict[int, list[bytes]]:
    """Stream the kept images from the cleaned fetch shards into one Arrow file per output shard
    (`<split>-<shard>.arrow`); returns the first training images of each label, for the contact sheet."""
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
                    writers[key] = pa.ipc.new_stream(sink, BUCKET_SCHEMA)
                r, p, im = zip(*items)
                writers[key].write_batch(pa.record_batch([pa.array(r, pa.int64()), pa.array(p, pa.int64()),
                                                          pa.array(im, pa.binary())], schema=BUCKET_SCHEMA))
    finally:
        for w in writers.values():
            w.close()
    return dict(sheet)


class _SampleRows:
    """Per selected row, what its sample's json says and what samples.parquet lists (columns read once)."""

    def __init__(self, sel: Selection, table: pa.Table, d: Decision, ocr: bool, labels: list[int]) -> None:
        t = sel.table
        self.cols = {c: t[c].to_pylist() for c in ("source_id", "url", "caption", "wnid", "lemma", "similarity")}
        self.fp = {c: table[c].to_pylist() for c in ("pixel_sha256", "phash", "orig_width", "orig_height",
                                                      "conversion", "text_match")}
        self.corpus = sel.corpus_values()
        self.ocr = ocr
        self.labels = labels
        self.new_index = d.new_index

    def meta(self, rid: int) -> dict[str, Any]:
        """The sample's json (key order as always written)."""
        cols, fp = self.cols, self.fp
        sim = cols["similarity"][rid]
        meta = {
            "wnid": cols["wnid"][rid], "caption": cols["caption"][rid], "url": cols["url"][rid],
            "similarity": None if sim is None else round(float(sim), 6),
            "source_id": cols["source_id"][rid], "lemma": cols["lemma"][rid],
            "label": self.new_index[self.labels[rid]], "source_label": self.labels[rid],
            "pixel_sha256": fp["pixel_sha256"][rid], "phash": fp["phash"][rid],
            "orig_width": fp["orig_width"][rid], "orig_height": fp["orig_height"][rid],
            "conversion": fp["conversion"][rid],
        }
        if self.ocr:
            meta["text_in_image"] = fp["text_match"][rid]
        if self.corpus is not None:
            meta["corpus"] = self.corpus[rid]
        return meta

    def index(self, index_rows: dict[str, list[Any]], rid: int, split: str, shard: str,
              meta: dict[str, Any]) -> None:
        """Append the sample's samples.parquet row (INDEX_SCHEMA) to `index_rows`."""
        index_rows["key"].append(sample_key(rid))
        index_rows["split"].append(split)
        index_rows["shard"].append(shard)
        index_rows["row_id"].append(rid)
        index_rows["label"].append(meta["label"])
        for k in ("wnid", "source_id", "url"):
            index_rows[k].append(meta[k])
        index_rows["similarity"].append(self.cols["similarity"][rid])
        index_rows["pixel_sha256"].append(meta["pixel_sha256"])
        index_rows["phash"].append(meta["phash"])


def _bucket_samples(bucket_dir: Path, split: str, n_buckets: int, rows: _SampleRows,
                    index_rows: dict[str, list[Any]]) -> Iterator[dict[str, Any]]:
    """A split's samples in shuffled order, one bucket in memory at a time; each is listed in `index_rows`."""
    for b in range(n_buckets):
        path = bucket_dir / f"{split}-{b:06d}.arrow"
        if not path.is_file():
            continue
        with pa.OSFile(str(path), "rb") as f:
            bt = pa.ipc.open_stream(f).read_all().sort_by("pos")
        for rid, img in zip(bt["row_id"].to_pylist(), bt["image"].to_pylist()):
            meta = rows.meta(rid)
            rows.index(index_rows, rid, split, f"{split}-{b:06d}.tar", meta)
            yield {"key": sample_key(rid), "image": img, "label": meta["label"], "meta": meta}
