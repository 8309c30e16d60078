"""Per-sample metadata of a dataset folder made by `imagenot download`: caption, similarity, lemma, sizes.

`samples.parquet` indexes every sample (key, split, label, wnid, similarity, ...); the caption, the matched
lemma and the original image size travel in each sample's `json` member inside the shards. Columns that
`samples.parquet` holds are read from it (one columnar read); the rest come from one pass over the shards'
json members (`imagenot.data.readers.files.iter_wds_samples`, images left encoded).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imagenot import datacard
from imagenot.errors import InputError
from imagenot.progress import progress
from imagenot.spec import Spec

log = logging.getLogger(__name__)

COLUMNS = ("key", "split", "label", "wnid", "caption", "similarity", "lemma", "orig_width", "orig_height")
_FROM_JSON = ("caption", "similarity", "lemma", "wnid", "orig_width", "orig_height")


@dataclass
class SampleTable:
    """Column lists, one entry per sample, in shard order (train first, then val)."""

    columns: dict[str, list[Any]]

    def __len__(self) -> int:
        return len(self.columns["key"])

    def index(self) -> dict[str, int]:
        return {k: i for i, k in enumerate(self.columns["key"])}


def wds_root(spec: str | None) -> Path | None:
    """The folder of a `wds:PATH` spec, or None for any other spec."""
    if not spec:
        return None
    parsed = Spec.parse(spec)
    if parsed.kind != "wds" or not parsed.arg:
        return None
    return Path(parsed.arg).expanduser()


def is_download_folder(root: Path) -> bool:
    """A finished `imagenot download` folder: its card and class list are there."""
    return datacard.has_card(root) and (root / "classes.tsv").is_file()


def read_sample_table(root: Path, *, progress_enabled: bool = True) -> SampleTable:
    """Every sample's metadata (see `COLUMNS`); None where a sample does not record a field."""
    if not is_download_folder(root):
        raise InputError("not a dataset folder made by `imagenot download` (needs dataset.json and classes.tsv)",
                         root)
    have: dict[str, list[Any]] = {}
    parquet = root / "samples.parquet"
    if parquet.is_file():
        import pyarrow.parquet as pq

        names = pq.read_schema(parquet).names
        table = pq.read_table(parquet, columns=[c for c in COLUMNS if c in names])
        have = {c: table[c].to_pylist() for c in table.column_names}
    missing = [c for c in COLUMNS if c not in have]
    if not missing:
        return SampleTable({c: have[c] for c in COLUMNS})
    from imagenot.data.readers.files import iter_wds_samples

    cols: dict[str, list[Any]] = {c: [] for c in COLUMNS}
    card_splits = _card_splits(root)
    total = sum(int(info.get("count", 0)) for info in card_splits.values()) or None
    rows = ((split, s) for split in card_splits for s in iter_wds_samples(root, split))
    for split, s in progress(rows, total=total, desc="sample metadata", unit="sample", enabled=progress_enabled):
        meta = s["meta"] if isinstance(s["meta"], dict) else {}
        cols["key"].append(s["key"])
        cols["split"].append(split)
        cols["label"].append(int(s["label"]))
        for c in _FROM_JSON:
            cols[c].append(meta.get(c))
    if "key" in have and len(have["key"]) == len(cols["key"]):
        # samples.parquet's own columns win where it has them (same samples, matched by key)
        pos = {k: i for i, k in enumerate(have["key"])}
        order = [pos.get(k) for k in cols["key"]]
        if all(o is not None for o in order):
            for c, values in have.items():
                cols[c] = [values[o] for o in order]  # type: ignore[index]
    return SampleTable(cols)


def _card_splits(root: Path) -> dict[str, Any]:
    splits = datacard.read_card(root).get("splits", {})
    return {s: splits[s] for s in ("train", "val") if s in splits}


def sample_keys(spec: str, split: str, **options: Any) -> list[str] | None:
    """Sample keys of a dataset draw in the order `get_dataset(spec, split, **options)` returns the images
    (file paths for imagefolder, `__key__` for wds); None for datasets held as arrays.

    The same options select the same records whether the images stream or are decoded into memory, so the
    streaming view (which only indexes files) names the in-memory draw's samples.
    """
    from imagenot.data import get_dataset

    ds = get_dataset(spec, split, **{**options, "in_memory": False})
    records = getattr(ds, "records", None)
    return list(records.keys) if records is not None else None


def folder_fingerprint(root: Path) -> str:
    """Identity of a dataset folder for reusing finished levels: its card, class list and sample index."""
    h = hashlib.sha256(str(root.resolve()).encode())
    for name in (datacard.CARD, "classes.tsv", "samples.parquet"):
        p = root / name
        if p.is_file():
            st = p.stat()
            h.update(f"{name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()
