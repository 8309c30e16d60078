"""Helpers for the mining tests: hand-made class lists, small corpora, the stage CLI (no WordNet, no network)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from imagenot.wordnet.classes import ClassRow

# Real WordNet 3.0 noun offsets (entity, physical_entity, abstraction, thing, object, whole, congener,
# living_thing): stages refuse wnids that name no synset, so hand-made classes borrow these.
WNIDS = ("n00001740", "n00001930", "n00002137", "n00002452", "n00002684", "n00003553", "n00003993", "n00004258")


def make_classes(spec: list[tuple[str, tuple[str, ...], str]]) -> list[ClassRow]:
    """(name, lemmas, definition) -> ClassRows with hand-made names and lemmas on real wnids (WNIDS)."""
    return [ClassRow(i, WNIDS[i], name, lemmas, definition, f"{name} which is {definition}",
                     "noun.artifact") for i, (name, lemmas, definition) in enumerate(spec)]


ANIMALS = [
    ("dog", ("dog", "domestic dog"), "a member of the genus Canis that has been domesticated by man"),
    ("cat", ("cat", "house cat"), "a small domesticated feline mammal with soft fur"),
    ("hot dog", ("hot dog", "frankfurter"), "a smooth-textured sausage served on a bun"),
    ("New York", ("New York",), "the largest city in the United States"),
    ("sea", ("sea",), "a division of an ocean or a large body of salt water"),
]


def write_parquet(path: Path, texts: list, ids: list | None = None, nsfw: list | None = None,
                  urls: list | None = None, text_type: pa.DataType | None = None) -> Path:
    n = len(texts)
    cols = {
        "SAMPLE_ID": pa.array(ids if ids is not None else [f"{path.stem}-{i}" for i in range(n)], pa.string()),
        "URL": pa.array(urls if urls is not None else [f"https://example.org/{path.stem}/{i}.jpg" for i in range(n)]),
        "TEXT": pa.array(texts, text_type) if text_type else pa.array(texts),
        "NSFW": pa.array(nsfw if nsfw is not None else ["UNLIKELY"] * n),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(cols), path)
    return path


def run_cli(argv: list[str]) -> int:
    """Run `imagenot mine/select` through the stage's own CLI module (independent of other stages)."""
    from imagenot.errors import ImagenotError
    from imagenot.mining import cli

    parser = argparse.ArgumentParser(prog="imagenot")
    sub = parser.add_subparsers(dest="command")
    cli.register(sub)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ImagenotError as exc:
        raise SystemExit(f"imagenot {args.command}: error: {exc}") from exc
