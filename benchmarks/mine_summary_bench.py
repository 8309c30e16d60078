"""Benchmark of the part of `imagenot mine` that reads the matches after the scan: the summary (per-class counts,
duplicates across shards, above-threshold counts: mine_stats.json) and the similarity histograms and quantiles
(histograms/*.png, quantiles.json), at growing sizes: peak RSS and wall time per size.

It reuses the synthetic matches folders of benchmarks/select_bench.py (1000 classes, LAION-length urls and
captions, about 1% duplicates; built once into /tmp/imagenot-select-bench when missing). Each run is a fresh
Python process reporting its own peak RSS (getrusage RUSAGE_SELF, DuckDB's threads included): the bounded path
(`selection.open_matches` + `pipeline.summarize` + `histograms.write_histograms`, DuckDB within the default
--selection-memory-mb) and, as the baseline in the same run, the in-memory code it replaced
(tests/mining/mine_reference.py over select_reference.read_matches), on sizes up to --baseline-max. The
outputs of both are compared (summary numbers, quantiles.json and every PNG byte for byte).

    .venv/bin/python benchmarks/mine_summary_bench.py                   # 1M and 4M, baseline on both
    .venv/bin/python benchmarks/mine_summary_bench.py --sizes 200000    # quicker
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from select_bench import REPO, build

THRESHOLD = 0.3

# One fresh process: the summary and histograms of one mine folder; prints peak RSS (MB) and seconds as JSON.
CHILD = """
import importlib.util, json, resource, sys, time
from pathlib import Path
sys.path.insert(0, {src!r})
from imagenot.fileio import write_json
from imagenot.wordnet.classes import read_classes
folder, out = Path({mine!r}), Path({out!r})
classes = read_classes(folder / "mined_classes.tsv")
names = {{c.wnid: c.name for c in classes}}
t0 = time.perf_counter()
if {old!r}:
    def load(name):
        spec = importlib.util.spec_from_file_location(name, str(Path({tests!r}) / (name + ".py")))
        mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod); return mod
    sel, ref = load("select_reference"), load("mine_reference")
    matches, dups = sel.read_matches(folder / "matches")
    summary = ref.reference_summary(matches, dups, names, {threshold!r})
    ref.plot_histograms(matches, names, {threshold!r}, out / "histograms", 100)
    write_json(out / "histograms" / "quantiles.json", ref.similarity_quantiles(matches, names))
else:
    from imagenot.mining.histograms import write_histograms
    from imagenot.mining.passes import PassResult
    from imagenot.mining.pipeline import summarize
    from imagenot.mining.selection import open_matches
    import pyarrow.parquet as pq
    raw = sum(pq.read_metadata(f).num_rows for f in (folder / "matches").glob("*.parquet"))
    with open_matches(folder / "matches", out) as query:
        stats = summarize(PassResult(shard_stats={{"all": {{"matched": raw}}}}), query, classes, {threshold!r})
        write_histograms(query, query.class_matches(), names, {threshold!r}, out / "histograms", 100)
    summary = {{k: stats[k] for k in ("duplicate_ids", "below_threshold", "classes_with_matches", "per_class")}}
seconds = time.perf_counter() - t0
write_json(out / "summary.json", summary)
print(json.dumps({{"rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "seconds": seconds}}))
"""


def run(folder: Path, old: bool) -> dict[str, float]:
    out = folder / ("summary-old" if old else "summary-new")
    code = CHILD.format(src=str(REPO / "src"), tests=str(REPO / "tests" / "mining"), mine=str(folder),
                        out=str(out), old=old, threshold=THRESHOLD)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                         env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    if res.returncode:
        sys.exit(f"summary failed on {folder}:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def same_outputs(folder: Path) -> bool:
    new, old = folder / "summary-new", folder / "summary-old"
    files = sorted(p.relative_to(old) for p in old.rglob("*") if p.is_file())
    return files == sorted(p.relative_to(new) for p in new.rglob("*") if p.is_file()) and all(
        (new / f).read_bytes() == (old / f).read_bytes() for f in files)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 4_000_000])
    ap.add_argument("--baseline-max", type=int, default=4_000_000, help="run the in-memory code up to this size")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/imagenot-select-bench"))
    args = ap.parse_args()
    results: dict[int, dict[str, dict[str, float]]] = {}
    for rows in sorted(args.sizes):  # the bounded path first: a run right after a multi-GB one measures the machine
        results[rows] = {"new": run(build(args.cache, rows), old=False)}
        print(f"{rows:>11,} rows: new {results[rows]['new']}", flush=True)
    for rows in sorted(r for r in args.sizes if r <= args.baseline_max):
        folder = build(args.cache, rows)
        results[rows]["old"] = run(folder, old=True)
        results[rows]["old"]["same_outputs"] = same_outputs(folder)
        print(f"{rows:>11,} rows: old {results[rows]['old']}", flush=True)
    print(f"\nload average {os.getloadavg()[0]:.1f}; {os.cpu_count()} cores")
    print(f"{'rows':>11} | {'new MB':>7} | {'new s':>7} | {'old MB':>7} | {'old s':>7} | same outputs")
    for rows in sorted(results):
        r, old = results[rows], results[rows].get("old")
        print(f"{rows:>11,} | {r['new']['rss_mb']:>7.0f} | {r['new']['seconds']:>7.1f} | "
              + (f"{old['rss_mb']:>7.0f} | {old['seconds']:>7.1f} | {old['same_outputs']}" if old
                 else f"{'-':>7} | {'-':>7} | -"))
    sizes = sorted(results)
    if len(sizes) > 1:
        lo, hi = results[sizes[0]]["new"], results[sizes[-1]]["new"]
        print(f"new peak RSS {sizes[-1]:,} / {sizes[0]:,}: {hi['rss_mb'] / lo['rss_mb']:.2f}x")
    for rows in sizes:
        if "old" in results[rows]:
            o, n = results[rows]["old"], results[rows]["new"]
            print(f"{rows:,}: old / new peak RSS {o['rss_mb'] / n['rss_mb']:.2f}x, time {o['seconds'] / n['seconds']:.2f}x")


if __name__ == "__main__":
    main()
