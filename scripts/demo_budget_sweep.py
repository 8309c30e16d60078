"""The demo's training budget, measured: does the demo rank architectures, or how fast they start learning?

Trains each of the demo's small-input models on the reference (Fashion-MNIST, a ladder of images per class x
epochs, always validated on the whole 10,000-image test set) and on the contrast dataset a demo built
(clipart-not, a ladder of epochs), with the demo's recipe, batch and input size, and writes:

    OUT/runs/...                   one run per point (resumable: a rerun skips finished points)
    OUT/budget.json                every point's top-1, its cost in training images, and each model's plateau
    docs/demo_budget.md, .png      the table and the curves (with --docs)
    src/imagenot/demo/budget.json  the plateaus the demo's report compares against (with --docs)

The plateau of a model is its accuracy at the largest budget of the ladder. Run it on a quiet 2-core machine
(about 100 minutes of training with the default ladders), after `imagenot demo --out DEMO` has built clipart-not:

    python scripts/demo_budget_sweep.py --demo-out demo-out --out /tmp/budget --docs
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from imagenot.demo.config import DemoConfig  # noqa: E402
from imagenot.fileio import write_json, write_text  # noqa: E402

log = logging.getLogger("demo_budget_sweep")


def _ladder(text: str) -> list[tuple[int, int]]:
    out = []
    for item in text.split(","):
        n, _, e = item.partition(":")
        out.append((int(n), int(e)))
    return out


def run_point(out: Path, model: str, dataset: str, options: dict, epochs: int, seed: int, threads: int,
              batch: int) -> dict:
    from imagenot.training.config import TrainConfig
    from imagenot.training.trainer import train

    tag = "-".join(f"{k.split('.')[-1]}{v}" for k, v in sorted(options.items())) or "all"
    run = out / "runs" / dataset.split(":")[0].replace("wds", "contrast") / model / f"{tag}-e{epochs}-s{seed}"
    cfg = TrainConfig(model=model, dataset=dataset, out=str(run), epochs=epochs, batch_size=batch, seed=seed,
                      image_size=32, dataset_options=options, threads=threads, progress=False, resume=True,
                      eval_every=epochs)
    t0 = time.perf_counter()
    result = train(cfg)
    return {"model": model, "dataset": dataset, "options": options, "epochs": epochs, "seed": seed,
            "top1": result["top1"], "train_images": result["train_images"], "val_images": result["val_images"],
            "cost_images": result["train_images"] * epochs, "wall_s": result.get("wall_time_s"),
            "this_session_s": time.perf_counter() - t0}


def plateaus(points: list[dict], key: str) -> dict[str, dict]:
    """Per model, the point with the largest cost (its plateau estimate)."""
    best: dict[str, dict] = {}
    for p in points:
        if p["dataset_key"] != key:
            continue
        if p["model"] not in best or p["cost_images"] > best[p["model"]]["cost_images"]:
            best[p["model"]] = p
    return best


def _demo_budget_lines(result: dict, demo: DemoConfig) -> list[str]:
    """Where the demo's default budget sits on the two ladders, model by model."""
    budgets = {"reference": [demo.reference_limit_per_class, demo.epochs], "contrast": [0, demo.contrast_epochs]}
    lines = ["## The demo's budget", "",
             f"`imagenot demo` trains {demo.reference_limit_per_class} Fashion-MNIST images per class for "
             f"{demo.epochs} epochs and all of clipart-not for {demo.contrast_epochs} epochs, which fits its "
             "10-minute budget on 2 cores; the distance to each model's plateau at that budget:", "",
             "| model | reference | plateau | distance | contrast | plateau | distance |", "|---|" + "---:|" * 6]
    for model in result["models"]:
        cells = []
        for key in ("reference", "contrast"):
            p = next((q for q in result["points"] if q["model"] == model and q["dataset_key"] == key
                      and list(q["budget"]) == budgets[key]), None)
            top = result["plateau"][key].get(model, {}).get("top1")
            if p is None or top is None:
                cells += ["-", "-" if top is None else f"{top:.1f}", "-"]
            else:
                cells += [f"{p['top1']:.1f}", f"{top:.1f}", f"{top - p['top1']:.1f}"]
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    lines.append("")
    from scipy.stats import kendalltau

    for key, name in (("reference", "Fashion-MNIST"), ("contrast", "clipart-not")):
        pairs = [(p["top1"], result["plateau"][key][p["model"]]["top1"]) for p in result["points"]
                 if p["dataset_key"] == key and list(p["budget"]) == budgets[key]
                 and p["model"] in result["plateau"][key]]
        if len(pairs) >= 3:
            at, top = zip(*pairs)
            tau = kendalltau(at, top).statistic
            lines.append(f"- {name}: models {min(t - a for a, t in pairs):.1f} to {max(t - a for a, t in pairs):.1f} "
                         f"points below their plateaus, which span {min(top):.1f} to {max(top):.1f}; Kendall tau "
                         f"between the ranking at the demo's budget and at the plateau: {tau:.2f}.")
    n, e = budgets["reference"]
    ladder = sorted({tuple(p["budget"]) for p in result["points"] if p["dataset_key"] == "reference"},
                    key=lambda b: b[0] * b[1])
    top_n, top_e = ladder[-1]
    lines += ["", f"The demo's reference budget ({n * e:,} image-passes per class) is {n * e / (top_n * top_e):.0%} of "
              f"the plateau's ({top_n * top_e:,}): its reference ranking is a ranking of models stopped early, "
              "which the report states model by model.", ""]
    return lines


def write_docs(result: dict, demo: DemoConfig) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    points = result["points"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, key, title in ((axes[0], "reference", "Fashion-MNIST (10,000 test images)"),
                           (axes[1], "contrast", f"clipart-not ({result['contrast_val_images']} val images)")):
        for model in result["models"]:
            pts = sorted((p for p in points if p["model"] == model and p["dataset_key"] == key),
                         key=lambda p: p["cost_images"])
            ax.plot([p["cost_images"] for p in pts], [p["top1"] for p in pts], marker="o", label=model)
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())  # the minor labels of a short log axis overlap
        demo_cost = (demo.reference_limit_per_class * demo.epochs * result["reference_classes"] if key == "reference"
                     else result["contrast_train_images"] * demo.contrast_epochs)
        if demo_cost:
            ax.axvline(demo_cost, color="0.4", linestyle="--", linewidth=1)
            ax.annotate("the demo's budget", (demo_cost, 0.02), xycoords=("data", "axes fraction"),
                        xytext=(4, 0), textcoords="offset points", fontsize=8, color="0.3")
        ax.set_xlabel("training images seen (images x epochs, log scale)")
        ax.set_ylabel("top-1 (%)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(REPO / "docs" / "demo_budget.png", dpi=110)
    lines = ["# The demo's training budget", "",
             f"Measured with `scripts/demo_budget_sweep.py` on {result['machine']} ({result['date']}), "
             f"{result['wall_s'] / 60:.0f} min of training in all; seed {result['seed']}, the demo's recipe "
             f"({demo.recipe}), batch {demo.batch_size}, 32 px. Each point is a complete run with its own "
             "schedule. The plateau is the largest budget of each ladder.", "",
             "![accuracy against training budget](demo_budget.png)", ""]
    for key, title in (("reference", "Fashion-MNIST, validated on the whole test set (10,000 images)"),
                       ("contrast", "clipart-not, every training image, validated on its val split")):
        budgets = sorted({tuple(p["budget"]) for p in points if p["dataset_key"] == key})
        header = "| model | " + " | ".join(f"{n}/class x {e} ep" if n else f"{e} ep" for n, e in budgets) + " |"
        lines += [f"## {title}", "", header, "|---|" + "---:|" * len(budgets)]
        for model in result["models"]:
            cells = []
            for b in budgets:
                p = next((q for q in points if q["model"] == model and q["dataset_key"] == key
                          and tuple(q["budget"]) == tuple(b)), None)
                cells.append(f"{p['top1']:.1f}" if p else "-")
            lines.append(f"| {model} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += _demo_budget_lines(result, demo)
    write_text(REPO / "docs" / "demo_budget.md", "\n".join(lines) + "\n")
    write_json(REPO / "src" / "imagenot" / "demo" / "budget.json", {
        "source": "scripts/demo_budget_sweep.py", "date": result["date"], "machine": result["machine"],
        "recipe": demo.recipe, "batch_size": demo.batch_size, "seed": result["seed"],
        "plateau": result["plateau"],
    })


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--demo-out", required=True, help="a demo folder holding clipart-not/")
    p.add_argument("--out", required=True, help="where the runs and budget.json go")
    p.add_argument("--models", default=",".join(DemoConfig().models))
    p.add_argument("--reference-ladder", default="300:3,1000:3,1000:4,2000:6,6000:8",
                   help="IMAGES_PER_CLASS:EPOCHS points on Fashion-MNIST")
    p.add_argument("--contrast-epochs", default="5,10,20,40,80,160", help="epochs on clipart-not")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--docs", action="store_true", help="write docs/demo_budget.md/.png and demo/budget.json")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    demo = DemoConfig()
    out = Path(args.out)
    contrast = Path(args.demo_out).resolve() / "clipart-not"
    if not (contrast / "dataset.json").is_file():
        raise SystemExit(f"{contrast} is not a dataset folder: run `imagenot demo --out {args.demo_out}` first")
    models = [m for m in args.models.split(",") if m]
    t0 = time.perf_counter()
    points: list[dict] = []
    for n, e in _ladder(args.reference_ladder):
        for model in models:
            pt = run_point(out, model, "fashion-mnist", {"train.limit_per_class": n}, e, args.seed, args.threads,
                           demo.batch_size)
            points.append({**pt, "dataset_key": "reference", "budget": [n, e]})
            log.info("%s fashion-mnist %d/class x %d: %.2f", model, n, e, pt["top1"])
    for e in [int(v) for v in args.contrast_epochs.split(",")]:
        for model in models:
            pt = run_point(out, model, f"wds:{contrast}", {}, e, args.seed, args.threads, demo.batch_size)
            points.append({**pt, "dataset_key": "contrast", "budget": [0, e]})
            log.info("%s clipart-not x %d: %.2f", model, e, pt["top1"])
    import platform

    result = {
        "date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "seed": args.seed, "models": models, "points": points,
        # Each run records its own training time, so a resumed sweep still reports what the whole ladder cost.
        "wall_s": sum(p["wall_s"] or 0.0 for p in points), "this_session_s": time.perf_counter() - t0,
        "contrast_val_images": next((p["val_images"] for p in points if p["dataset_key"] == "contrast"), None),
        "contrast_train_images": next((p["train_images"] for p in points if p["dataset_key"] == "contrast"), None),
        "reference_classes": 10,
        "plateau": {key: {m: {"top1": p["top1"], "budget": p["budget"]} for m, p in plateaus(points, key).items()}
                    for key in ("reference", "contrast")},
    }
    write_json(out / "budget.json", result)
    if args.docs:
        write_docs(result, demo)
    for key in ("reference", "contrast"):
        print(key, {m: round(v["top1"], 1) for m, v in result["plateau"][key].items()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
