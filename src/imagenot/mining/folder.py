"""Whose mine a folder holds: a rerun of the same mine resumes, another mine is refused without --force.

Matches are read back from `matches/*.parquet` as a whole, so a file left by another corpus's mine would be
mixed into the new selection. Shards of the same corpus are safe (their fingerprint redoes any that another
setting made), and a corpus may grow; what is not is a folder mined from other inputs (no corpus file in
common, or another class list) or holding matches of shards this corpus does not have. `mine_inputs.json`, written before the first
shard, records them (the corpus's shard files and the classes file's sha256), and any match file that is not
one of this corpus's shards is another mine's. `--force` removes the old mine's outputs first (never the
embedding store, which is keyed by text and encoder, nor a converted corpus in OUT/corpus).
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any

from imagenot.errors import ImagenotError
from imagenot.fileio import read_json, write_json
from imagenot.mining.corpus import Shard

log = logging.getLogger(__name__)

INPUTS = "mine_inputs.json"
# Everything `imagenot mine` (and `select` into the same folder) writes from matches.
OUTPUT_DIRS = ("matches", "pool", "histograms")
OUTPUT_FILES = ("mined_classes.tsv", "mine_stats.json", "selected.parquet", "classes.tsv", "selection.json",
                "config.json", "manifest.json", "select_config.json", "select_manifest.json", INPUTS)


def mine_inputs(shards: list[Shard], classes_sha256: str) -> dict[str, Any]:
    """The identity of a mine: the corpus files it reads (absolute, whole files) and its class list."""
    files = sorted({os.path.abspath(s.path) for s in shards})
    return {"corpus_files": files, "classes_sha256": classes_sha256}


def _foreign_matches(out: Path, shards: list[Shard]) -> list[str]:
    names = {s.name for s in shards}
    found = []
    for sub in ("matches", "pool/matches"):
        folder = out / sub
        if folder.is_dir():
            found += [f"{sub}/{p.name}" for p in sorted(folder.glob("*.parquet")) if p.stem not in names]
    return found


def _differences(recorded: dict[str, Any], ours: dict[str, Any]) -> list[str]:
    said = []
    theirs = recorded.get("corpus_files") or []
    if not set(theirs) & set(ours["corpus_files"]):  # a corpus that grew or lost a shard is still this one
        shown = ", ".join(theirs[:2]) + (" ..." if len(theirs) > 2 else "")
        said.append(f"another corpus ({shown or 'unknown files'})")
    if recorded.get("classes_sha256") != ours["classes_sha256"]:
        said.append("another class list")
    return said


def claim_mine_folder(out: Path, shards: list[Shard], classes_sha256: str, force: bool) -> None:
    """Refuse (or, with `force`, clear) a folder holding another mine; record this mine's inputs."""
    ours = mine_inputs(shards, classes_sha256)
    recorded: dict[str, Any] | None = None
    if (out / INPUTS).is_file():
        try:
            recorded = read_json(out / INPUTS)
        except (OSError, ValueError):
            recorded = {}
    why = _differences(recorded, ours) if recorded is not None else []
    foreign = _foreign_matches(out, shards)
    if foreign:
        why.append(f"matches of shards this corpus does not have ({', '.join(foreign[:3])}"
                   f"{' ...' if len(foreign) > 3 else ''})")
    if why and not force:
        raise ImagenotError(f"{out} holds the mine of {' and '.join(why)}; mining into it would mix its matches "
                            "into this selection. Choose another --out, or pass --force to remove that mine's "
                            "outputs first")
    if why:
        log.warning("%s: --force: removing the previous mine's outputs (%s)", out, "; ".join(why))
        for name in OUTPUT_DIRS:
            shutil.rmtree(out / name, ignore_errors=True)
        for name in OUTPUT_FILES:
            (out / name).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    if recorded != ours:
        write_json(out / INPUTS, ours)
