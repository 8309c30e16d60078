"""The demo's training budget, measured: does the demo rank architectures, or how fast they start learning?

Runs the demo's own zoo (its models, recipe, batch, input size, data and side-by-side scheduling) on the reference
(all of Fashion-MNIST) and on the contrast a demo built, at multiples of the demo's epochs (default 1x, 2x and
4x), and writes:

    OUT/x<k>/...                   the runs of each multiple (resumable: a rerun skips finished runs)
    OUT/budget.json                every run's top-1 with its 95% interval, and each model's distance to 4x
    docs/demo_budget.md, .png      the table and the curves (with --docs)
    src/imagenot/demo/budget.json  the 4x figures the demo's report compares against (with --docs)

A model is "at its plateau" at the demo's budget when 4x the epochs gain at most 1 point on the reference and
stay inside the 95% interval of its demo-budget figure on the contrast (whose validation split is small). With
--reuse-demo-runs the 1x runs are the demo's own (DEMO_OUT/runs: the same plan, so the zoo finds them finished,
and the numbers the demo reports are the ones the sweep measured). On a quiet 2-core machine the default sweep
takes about 7 times the demo's zoo stage:

    python scripts/demo_budget_sweep.py --demo-out demo-out --out /tmp/budget --docs
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from imagenot.demo.config import DemoConfig  # noqa: E402
from imagenot.fileio import read_json, write_json, write_text  # noqa: E402

log = logging.getLogger("demo_budget_sweep")
ROLES = (("reference", "fashion-mnist", "Fashion-MNIST"), ("contrast", "clipart-not", "clipart-not"))
REFERENCE_TOLERANCE = 1.0  # points: the reference's plateau criterion (10,000 test images: intervals of about 0.6)


def sweep_plan(demo: DemoConfig, demo_out: Path, out: Path, multiple: int) -> Any:
    """The demo's zoo plan with every pretraining epoch count times `multiple`, without the fine-tunes."""
    from imagenot.demo.run import DemoPaths, zoo_plan

    plan = zoo_plan(demo, DemoPaths(demo_out))
    datasets = tuple(dataclasses.replace(d, epochs=None if d.epochs is None else d.epochs * multiple)
                     for d in plan.datasets)
    return dataclasses.replace(plan, out=str(out), epochs=(plan.epochs or 1) * multiple, datasets=datasets,
                               transfer=(), progress=False)


def finished(plan: Any) -> list[dict[str, Any]]:
    """The results of the plan's runs that have finished (--collect-only)."""
    from imagenot import rundir
    from imagenot.zoo.run import jobs

    done = [rundir.read_result(j.run_dir) for j in jobs(plan) if rundir.is_finished(j.run_dir)]
    log.info("%s: %d finished run(s)", plan.out, len(done))
    return done


def interval(top1: float, n: int) -> tuple[float, float]:
    """95% Clopper-Pearson interval of a top-1 (%) on n validation images, in % (the report's own interval)."""
    from imagenot.stats import clopper_pearson

    low, high = clopper_pearson(round(top1 * n / 100), n)
    return 100 * low, 100 * high


def collect(results: list[dict[str, Any]], multiple: int) -> list[dict[str, Any]]:
    points = []
    for r in results:
        if r.get("role") not in ("reference", "contrast") or r.get("top1") is None:
            continue
        lo, hi = interval(r["top1"], r["val_images"])
        points.append({"model": r["model"], "role": r["role"], "multiple": multiple, "epochs": r.get("epochs"),
                       "top1": r["top1"], "ci_low": lo, "ci_high": hi, "train_images": r.get("train_images"),
                       "val_images": r.get("val_images"), "wall_s": r.get("wall_time_s")})
    return points


def distances(points: list[dict[str, Any]], multiples: list[int]) -> dict[str, dict[str, dict[str, Any]]]:
    """Per role and model: the demo's (1x) top-1, the top figure (largest multiple), the gain and the verdict."""
    lo_m, hi_m = min(multiples), max(multiples)
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for role, _, _ in ROLES:
        out[role] = {}
        for model in dict.fromkeys(p["model"] for p in points):
            at = {p["multiple"]: p for p in points if p["model"] == model and p["role"] == role}
            if hi_m not in at:
                continue
            top = at[hi_m]
            out[role][model] = {"top1": top["top1"], "multiple": hi_m, "epochs": top["epochs"]}
            if lo_m in at and lo_m != hi_m:  # a sweep still missing the demo's own runs has only the top figure
                base = at[lo_m]
                gain = top["top1"] - base["top1"]
                within = (gain <= REFERENCE_TOLERANCE if role == "reference"
                          else base["ci_low"] <= top["top1"] <= base["ci_high"])
                out[role][model].update(demo_top1=base["top1"], gain=round(gain, 2), at_plateau=within)
    return out


def kendall(points: list[dict[str, Any]], multiple: int) -> float | None:
    from scipy.stats import kendalltau

    at = {(p["role"], p["model"]): p["top1"] for p in points if p["multiple"] == multiple}
    models = [m for m in dict.fromkeys(p["model"] for p in points)
              if ("reference", m) in at and ("contrast", m) in at]
    if len(models) < 3:
        return None
    return float(kendalltau([at["reference", m] for m in models], [at["contrast", m] for m in models]).statistic)


def write_docs(result: dict[str, Any], demo: DemoConfig) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from imagenot import escape

    points, multiples = result["points"], result["multiples"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, (role, _, title) in zip(axes, ROLES):
        for model in result["models"]:
            pts = sorted((p for p in points if p["model"] == model and p["role"] == role),
                         key=lambda p: p["multiple"])
            xs = [p["multiple"] for p in pts]
            ax.errorbar(xs, [p["top1"] for p in pts], yerr=[[p["top1"] - p["ci_low"] for p in pts],
                                                            [p["ci_high"] - p["top1"] for p in pts]],
                        marker="o", capsize=3, label=escape.mpl(model))
        ax.set_xscale("log", base=2)
        ax.set_xticks(multiples, [f"{m}x" for m in multiples])
        val = next((p["val_images"] for p in points if p["role"] == role), "?")
        ax.set_title(f"{title} ({val:,} val images)" if isinstance(val, int) else title)
        ax.set_xlabel("the demo's epochs times")
        ax.set_ylabel("top-1 (%), 95% interval")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(REPO / "docs" / "demo_budget.png", dpi=110)
    write_text(REPO / "docs" / "demo_budget.md", "\n".join(doc_lines(result, demo)) + "\n")
    write_json(REPO / "src" / "imagenot" / "demo" / "budget.json", {
        "source": "scripts/demo_budget_sweep.py", "date": result["date"], "machine": result["machine"],
        "recipe": demo.recipe, "batch_size": demo.batch_size, "seed": result["seed"], "models": result["models"],
        "multiples": multiples, "epochs": result["epochs"], "plateau": result["plateau"],
        "kendall_tau": result["kendall_tau"],
    })


def doc_lines(result: dict[str, Any], demo: DemoConfig) -> list[str]:
    points, multiples, plateau = result["points"], result["multiples"], result["plateau"]
    top = max(multiples)
    lines = ["# The demo's training budget", "",
             f"Measured with `scripts/demo_budget_sweep.py` on {result['machine']} ({result['date']}): the demo's "
             f"own zoo (recipe `{demo.recipe}`, batch {demo.batch_size}, 32 px, seed {result['seed']}, the same "
             f"data) at {', '.join(f'{m}x' for m in multiples)} the demo's epochs, "
             f"{result['wall_s'] / 60:.0f} min of training in all. Top-1 (%) with 95% Clopper-Pearson intervals.",
             "", "![accuracy against training budget](demo_budget.png)", ""]
    for role, _, name in ROLES:
        val = next((p["val_images"] for p in points if p["role"] == role), 0)
        train = next((p["train_images"] for p in points if p["role"] == role), 0)
        epochs = result["epochs"][role]
        lines += [f"## {name}: {train:,} training images, {val:,} validation images", "",
                  "| model | " + " | ".join(f"{m}x ({epochs * m} ep)" for m in multiples) + f" | {top}x - 1x | "
                  "at plateau |", "|---|" + "---:|" * (len(multiples) + 1) + "---|"]
        for model in result["models"]:
            cells = []
            for m in multiples:
                p = next((q for q in points if q["model"] == model and q["role"] == role and q["multiple"] == m), None)
                cells.append(f"{p['top1']:.1f} [{p['ci_low']:.1f}, {p['ci_high']:.1f}]" if p else "-")
            d = plateau[role].get(model) or {}
            cells += [f"{d['gain']:+.1f}", "yes" if d["at_plateau"] else "no"] if "gain" in d else ["-", "-"]
            lines.append(f"| {model} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["## Verdict", "",
              f"At plateau means: {top}x the epochs gain at most {REFERENCE_TOLERANCE:.0f} point on Fashion-MNIST "
              f"(10,000 test images), and stay inside the 95% interval of the demo-budget figure on clipart-not.", ""]
    for role, _, name in ROLES:
        ok = [m for m, d in plateau[role].items() if d.get("at_plateau")]
        gains = [d["gain"] for d in plateau[role].values() if "gain" in d]
        if gains:
            lines.append(f"- {name}: {len(ok)} of {len(gains)} models at plateau; {top}x gains "
                         f"{min(gains):+.1f} to {max(gains):+.1f} points.")
    taus = result["kendall_tau"]
    lines.append("- Kendall tau between the Fashion-MNIST and the clipart-not ranking: "
                 + ", ".join(f"{m}x {taus[str(m)]:.2f}" for m in multiples if taus.get(str(m)) is not None) + ".")
    lines += ["", "The demo's report states each model's distance to its 4x figure from "
              "`src/imagenot/demo/budget.json`, written by this script.", ""]
    return lines


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--demo-out", required=True, help="a demo folder holding clipart-not/ (`imagenot demo` built it)")
    p.add_argument("--out", required=True, help="where the runs of the larger multiples and budget.json go")
    p.add_argument("--multiples", default="1,2,4", help="multiples of the demo's epochs (the largest is the plateau)")
    p.add_argument("--reuse-demo-runs", action="store_true",
                   help="the 1x runs are the demo's own (DEMO_OUT/runs), run there if missing")
    p.add_argument("--parallel", default="auto", help="runs side by side (the zoo's --parallel)")
    p.add_argument("--collect-only", action="store_true",
                   help="train nothing: tables, docs and budget.json from the runs already finished")
    p.add_argument("--docs", action="store_true", help="write docs/demo_budget.md/.png and demo/budget.json")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    demo_out = Path(args.demo_out).resolve()
    demo = demo_config(demo_out)
    if not (demo_out / "clipart-not" / "dataset.json").is_file():
        raise SystemExit(f"{demo_out / 'clipart-not'} is not a dataset folder: run `imagenot demo --out "
                         f"{args.demo_out}` first")
    from imagenot.zoo.run import run_zoo

    multiples = sorted({int(v) for v in args.multiples.split(",") if v})
    out = Path(args.out).resolve()
    points: list[dict[str, Any]] = []
    for m in sorted(multiples, reverse=True):  # the longest first: a sweep cut short still has its plateau
        where = demo_out / "runs" if m == 1 and args.reuse_demo_runs else out / f"x{m}"
        plan = dataclasses.replace(sweep_plan(demo, demo_out, where, m), parallel=args.parallel)
        log.info("%dx the demo's epochs into %s", m, where)
        points += collect(finished(plan) if args.collect_only else run_zoo(plan), m)
    plan = sweep_plan(demo, demo_out, out, 1)
    result = {
        "date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "seed": plan.seeds[0], "models": list(plan.models), "multiples": multiples, "points": points,
        "epochs": {d.role: d.epochs or plan.epochs for d in plan.datasets},
        "wall_s": sum(p["wall_s"] or 0.0 for p in points),
        "plateau": distances(points, multiples),
        "kendall_tau": {str(m): kendall(points, m) for m in multiples},
    }
    write_json(out / "budget.json", result)
    if args.docs:
        write_docs(result, demo)
    print("\n".join(doc_lines(result, demo)))
    return 0


def demo_config(demo_out: Path) -> DemoConfig:
    """The settings the demo in DEMO_OUT ran with (its config.json), else the defaults."""
    from imagenot.config import from_dict

    path = demo_out / "config.json"
    data = read_json(path) if path.is_file() else {}
    return from_dict(DemoConfig, {**data, "out": str(demo_out)})


if __name__ == "__main__":
    raise SystemExit(main())
