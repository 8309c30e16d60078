"""`imagenot demo`: the embedded end-to-end demo."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="the whole study in miniature on embedded data (Fashion-MNIST vs Open Clip Art, Animal-MNIST)",
        description="Contrast classes for Fashion-MNIST, mining and materialisation of the Open Clip Art "
        "Library, six small architecture families trained on both, fine-tuned on Animal-MNIST, and the "
        "report. A rerun resumes: finished stages and runs are skipped.",
    )
    p.add_argument("--out", help="output folder (default demo-out)")
    p.add_argument("--quick", action="store_true", help="the same path with tiny budgets (a few minutes)")
    p.add_argument("--config", help="rerun from a demo config.json")
    p.add_argument("--epochs", type=int, help="pretraining epochs per run")
    p.add_argument("--seed", type=int)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from imagenot.config import resolve
    from imagenot.demo.config import PRESETS, DemoConfig
    from imagenot.demo.run import run_demo

    cfg = resolve(DemoConfig, presets=PRESETS, preset="quick" if args.quick else "default",
                  config_file=args.config, overrides={"out": args.out, "epochs": args.epochs, "seed": args.seed})
    run_demo(cfg)
    return 0
