"""Wall time of `imagenot download` on local Open Clip Art PNGs (the demo corpus), as the demo would run it.

Builds a selected.parquet of N file:// rows (class = the corpus's top-level category folder, mapped to a
WordNet noun; a stand-in for `imagenot mine` output with the same schema), then materialises it.

    .venv/bin/python benchmarks/download_openclipart.py --n 2000 --processes 2 [--fetcher img2dataset]
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from imagenot.download import DownloadConfig, run_download
from imagenot.wordnet.classes import ClassRow, write_classes

ROOT = Path("/usr/share/openclipart/png")
# category folder -> (wnid, name); WordNet 3.0 offsets
CATEGORIES = {
    "animals": ("n00015388", "animal"), "buildings": ("n02913152", "building"),
    "food": ("n00021265", "food"), "people": ("n07942152", "people"),
    "plants": ("n00017222", "plant"), "transportation": ("n04473432", "transportation"),
    "electronics": ("n03278248", "electronic_equipment"), "signs_and_symbols": ("n06793231", "sign"),
}


def build_selection(folder: Path, n: int, seed: int = 0) -> Path:
    cats = [c for c in sorted(CATEGORIES) if (ROOT / c).is_dir()]
    files = {c: sorted((ROOT / c).rglob("*.png")) for c in cats}
    rows: dict[str, list] = {k: [] for k in ("source_id", "url", "caption", "wnid", "label", "lemma",
                                             "similarity", "split")}
    # round-robin over the categories until n rows (small categories run out first)
    picked: list[tuple[int, str, int, Path]] = []
    for j in range(max(len(v) for v in files.values())):
        for label, c in enumerate(cats):
            if j < len(files[c]) and len(picked) < n:
                picked.append((label, c, j, files[c][j]))
    for label, c, j, f in sorted(picked, key=lambda p: (p[0], p[2])):
        rows["source_id"].append(str(f.relative_to(ROOT)))
        rows["url"].append(f.as_uri())
        rows["caption"].append(f.stem.replace("_", " "))
        rows["wnid"].append(CATEGORIES[c][0])
        rows["label"].append(label)
        rows["lemma"].append(CATEGORIES[c][1])
        rows["similarity"].append(0.5)
        rows["split"].append("val" if j % 10 == 0 else "train")
    table = pa.table(rows).cast(pa.schema([("source_id", pa.string()), ("url", pa.string()),
                                           ("caption", pa.string()), ("wnid", pa.string()),
                                           ("label", pa.int32()), ("lemma", pa.string()),
                                           ("similarity", pa.float32()), ("split", pa.string())]))
    pq.write_table(table, folder / "selected.parquet")
    write_classes(folder / "classes.tsv", [
        ClassRow(i, CATEGORIES[c][0], CATEGORIES[c][1], (CATEGORIES[c][1],), "", "", "noun.Tops")
        for i, c in enumerate(cats)])
    return folder / "selected.parquet"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--fetcher", default="auto")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    work = Path(args.out or tempfile.mkdtemp(prefix="imagenot-dl-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    matches = build_selection(work, args.n)
    cfg = DownloadConfig(matches=str(matches), out=str(work / "dataset"), image_size=args.image_size,
                         processes=args.processes, allow_local=True, fetcher=args.fetcher, threads=8)
    t0 = time.perf_counter()
    card = run_download(cfg)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    run_download(cfg)
    again = time.perf_counter() - t0
    print(json.dumps({"rows": card["counts"]["selected"], "train": card["counts"]["train"],
                      "val": card["counts"]["val"], "removed": card["removed"], "fetcher": card["source"]["fetcher"],
                      "wall_s": round(first, 2), "rerun_s": round(again, 2), "timing": card["timing"],
                      "out": str(work / "dataset")}, indent=1))


if __name__ == "__main__":
    main()
