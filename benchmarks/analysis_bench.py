"""Speed of the test-image statistics: the image bootstrap against a plain resampling loop, and whole reports.

    .venv/bin/python benchmarks/analysis_bench.py                  # 9 models x 50,000 images x 2000 resamples
    .venv/bin/python benchmarks/analysis_bench.py --images 10000   # quicker

1. Bootstrap core: per-model accuracies of 2000 image resamples, paired across 9 runs. The baseline draws n
   image indices per resample and averages each run's correctness over them (what one writes first: numpy,
   one resample per iteration); imagenot draws multinomial counts over the distinct correctness patterns
   (`imagenot.analysis.paired.bootstrap_accuracies`). Both are timed in this process on the same matrix; the
   baseline on --baseline-draws resamples, scaled to the full count. The two agree in distribution (printed:
   the largest difference of the per-run standard deviations, which should be at Monte Carlo noise).
2. `analyze` + `write_report` on a generated zoo of 9 models whose runs wrote predictions.parquet with
   --images validation images per dataset: reading the files, 2 x 36 McNemar tests and paired bootstraps,
   the three noise sources, plots and the report.
3. The demo-sized case: 6 models x 3 seeds, 10,000 reference and 300 contrast images.
Rates are wall-clock seconds on this machine (a shared 2-core box gives noisy figures; the ratio is the point).
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

import numpy as np

from imagenot.analysis import paired
from imagenot.analysis.comparison import analyze
from imagenot.analysis.report import write_report
from imagenot.analysis.results import collect_results
from imagenot.predictions import FILENAME, write_predictions


def correlated_hits(n: int, accuracies: list[float], rng: np.random.Generator) -> np.ndarray:
    """(n, runs) correctness: runs agree on easy and hard images, as real models do."""
    difficulty = rng.random(n)
    out = np.zeros((n, len(accuracies)), dtype=bool)
    for j, acc in enumerate(accuracies):
        score = difficulty + 0.2 * rng.normal(size=n)
        out[np.argsort(score)[: int(round(acc * n))], j] = True
    return out


def baseline_bootstrap(correct: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    n = correct.shape[0]
    c = correct.astype(np.float64)
    out = np.empty((n_boot, correct.shape[1]))
    for b in range(n_boot):
        out[b] = c[rng.integers(0, n, size=n)].mean(axis=0)
    return out


def bench_core(n: int, models: int, n_boot: int, baseline_draws: int) -> dict[str, float]:
    rng = np.random.default_rng(0)
    correct = correlated_hits(n, list(np.linspace(0.55, 0.85, models)), rng)
    t0 = time.perf_counter()
    fast = paired.bootstrap_accuracies(correct, n_boot, np.random.default_rng(1))
    fast_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    slow = baseline_bootstrap(correct, baseline_draws, np.random.default_rng(2))
    slow_s = (time.perf_counter() - t0) * n_boot / baseline_draws
    return {
        "images": n, "runs": models, "resamples": n_boot,
        "patterns": int(paired.correctness_patterns(correct)[0].shape[0]),
        "imagenot_s": round(fast_s, 3), "baseline_s_scaled": round(slow_s, 2),
        "ratio_baseline_vs_imagenot": round(slow_s / fast_s, 1),
        "max_sd_difference_pts": round(float(np.max(np.abs(fast.std(axis=0) - slow.std(axis=0)))) * 100, 3),
    }


def write_zoo(root: Path, sizes: dict[str, int], models: int, seeds: int, rng: np.random.Generator) -> None:
    for dataset, n in sizes.items():
        role = "reference" if dataset == "ref" else "contrast"
        base = 0.85 if role == "reference" else 0.55
        accs = [base - 0.03 * (models - 1 - j) for j in range(models)]
        for s in range(seeds):
            hits = correlated_hits(n, [a + 0.004 * s for a in accs], rng)
            for j in range(models):
                run = root / f"m{j}-{dataset}-{s}"
                run.mkdir(parents=True)
                labels = np.arange(n) % 10
                top1 = np.where(hits[:, j], labels, (labels + 1) % 10)
                write_predictions(run / FILENAME, index=np.arange(n), keys=[f"k{i}" for i in range(n)],
                                  labels=labels, top5=np.column_stack([top1] + [(top1 + k) % 10 for k in range(1, 5)]),
                                  p_label=np.full(n, 0.5, dtype=np.float32))
                (run / "result.json").write_text(json.dumps({
                    "model": f"m{j}", "year": 2010 + j, "dataset": dataset, "role": role, "seed": s,
                    "top1": 100.0 * hits[:, j].mean(), "val_images": n, "num_classes": 10}))


def bench_report(sizes: dict[str, int], models: int, seeds: int, n_boot: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "runs"
        write_zoo(root, sizes, models, seeds, np.random.default_rng(3))
        t0 = time.perf_counter()
        rows = collect_results([root])
        analysis = analyze(rows, n_boot=n_boot)
        analyze_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        write_report(analysis, Path(tmp) / "report")
        write_s = time.perf_counter() - t0
    return {"models": models, "seeds": seeds, **{f"images_{k}": v for k, v in sizes.items()},
            "resamples": n_boot, "analyze_s": round(analyze_s, 2), "write_report_s": round(write_s, 2),
            "total_s": round(analyze_s + write_s, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=50_000)
    ap.add_argument("--models", type=int, default=9)
    ap.add_argument("--n-boot", type=int, default=2000)
    ap.add_argument("--baseline-draws", type=int, default=200)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    print(json.dumps({"bootstrap_core": bench_core(args.images, args.models, args.n_boot, args.baseline_draws)},
                     indent=2))
    print(json.dumps({"zoo_report": bench_report({"ref": args.images, "con": args.images}, args.models, 1,
                                                 args.n_boot)}, indent=2))
    print(json.dumps({"demo_sized_report": bench_report({"ref": 10_000, "con": 300}, 6, 3, args.n_boot)},
                     indent=2))


if __name__ == "__main__":
    main()
