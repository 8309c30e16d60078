"""`predictions.parquet`: one row per evaluated image, the file contract between evaluating runs and analysis.

Why per-example predictions: a model's accuracy on a few hundred validation images carries a binomial error of
several points, and two models evaluated on the same images are paired (McNemar, paired bootstrap). Aggregate
accuracies cannot say whether a flipped pair is real; the rows can. Every run that evaluates (train, finetune,
evaluate) writes this file for its final evaluation, and `imagenot report` reads it when present.

Columns (one row per validation image, sorted by `index`):

    index    int64          position of the image in the split (stable across models and process counts)
    key      string         the sample's id (webdataset key, file path relative to the split, or `#<index>`)
    label    int32          the true class index
    top5     list<int32>    the (up to) five highest-scoring classes, best first
    correct  bool           top5[0] == label
    p_label  float32        softmax probability of the true class

File metadata (`imagenot.predictions` key, JSON): dataset, split, num_classes, n, and `split_digest`, a hash of
the (index, key, label) columns, so that two runs can be checked to have seen the same validation set without
comparing every row.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from imagenot.errors import InputError

log = logging.getLogger(__name__)

FILENAME = "predictions.parquet"
META_KEY = b"imagenot.predictions"
COLUMNS = ("index", "key", "label", "top5", "correct", "p_label")


def schema() -> Any:
    import pyarrow as pa

    return pa.schema([
        ("index", pa.int64()),
        ("key", pa.string()),
        ("label", pa.int32()),
        ("top5", pa.list_(pa.int32())),
        ("correct", pa.bool_()),
        ("p_label", pa.float32()),
    ])


def split_digest(index: Sequence[int] | np.ndarray, keys: Sequence[str], labels: Sequence[int] | np.ndarray) -> str:
    """A hash of which images, under which ids, with which labels: equal digests mean the same split."""
    h = hashlib.sha256()
    idx = np.asarray(index, dtype=np.int64)
    lab = np.asarray(labels, dtype=np.int64)
    order = np.argsort(idx, kind="stable")
    h.update(idx[order].tobytes())
    h.update(lab[order].tobytes())
    for i in order:
        h.update(str(keys[int(i)]).encode("utf-8", "surrogatepass") + b"\0")
    return h.hexdigest()


def write_predictions(
    path: str | Path,
    *,
    index: Sequence[int] | np.ndarray,
    keys: Sequence[str],
    labels: Sequence[int] | np.ndarray,
    top5: np.ndarray,
    p_label: Sequence[float] | np.ndarray,
    meta: dict[str, Any] | None = None,
) -> Path:
    """Write the rows (sorted by index, atomically); `top5` is an int array [n, k] with k <= 5, best first."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from imagenot.fileio import atomic_path

    idx = np.asarray(index, dtype=np.int64)
    lab = np.asarray(labels, dtype=np.int64)
    top = np.asarray(top5, dtype=np.int32)
    prob = np.asarray(p_label, dtype=np.float32)
    n = idx.shape[0]
    if not (lab.shape == (n,) and prob.shape == (n,) and len(keys) == n and top.ndim == 2 and top.shape[0] == n):
        raise ValueError(f"predictions: inconsistent lengths (index {n}, labels {lab.shape}, keys {len(keys)}, "
                         f"top5 {top.shape}, p_label {prob.shape})")
    if len(np.unique(idx)) != n:
        raise ValueError("predictions: duplicate index values (an image counted twice)")
    order = np.argsort(idx, kind="stable")
    k = top.shape[1]
    flat = pa.array(top[order].reshape(-1), type=pa.int32())
    offsets = pa.array(np.arange(0, (n + 1) * k, k, dtype=np.int32), type=pa.int32())
    table = pa.table({
        "index": pa.array(idx[order]),
        "key": pa.array([str(keys[int(i)]) for i in order], type=pa.string()),
        "label": pa.array(lab[order].astype(np.int32)),
        "top5": pa.ListArray.from_arrays(offsets, flat),
        "correct": pa.array(top[order, 0] == lab[order] if k else np.zeros(n, dtype=bool)),
        "p_label": pa.array(prob[order]),
    }, schema=schema())
    info = {**(meta or {}), "n": int(n), "split_digest": split_digest(idx, keys, lab)}
    table = table.replace_schema_metadata({META_KEY: json.dumps(info, sort_keys=True).encode()})
    path = Path(path)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    return path


def read_predictions(path: str | Path) -> tuple[Any, dict[str, Any]]:
    """(pyarrow Table with exactly COLUMNS, metadata dict); a file that is not one is an InputError."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise InputError(f"not a readable predictions file: {exc}", path=path) from exc
    missing = [c for c in COLUMNS if c not in table.column_names]
    if missing:
        raise InputError(f"predictions file lacks column(s) {', '.join(missing)}; found "
                         f"{', '.join(table.column_names)}", path=path)
    raw = (table.schema.metadata or {}).get(META_KEY)
    try:
        meta = json.loads(raw) if raw else {}
    except json.JSONDecodeError:
        meta = {}
    if "split_digest" not in meta:
        meta["split_digest"] = split_digest(table.column("index").to_numpy(), table.column("key").to_pylist(),
                                            table.column("label").to_numpy())
    return table.select(list(COLUMNS)), meta
