"""`imagenot demo`: the embedded end-to-end demo."""

from __future__ import annotations

import argparse

from imagenot.cli_options import add_stage_parser, config_from_args
from imagenot.demo.config import PRESETS, DemoConfig

EXAMPLES = (
    "imagenot demo                      # the study in miniature, about ten minutes on 2 CPU cores",
    "imagenot demo --quick --out /tmp/demo-quick   # the same path with tiny budgets (a few minutes)",
    "imagenot demo --config demo-out/config.json --epochs 5   # rerun with one setting changed",
)


def _quick(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quick", action="store_true", default=False,
                   help="the same path with tiny budgets (the 'quick' preset)")


def register(sub: argparse._SubParsersAction) -> None:
    p = add_stage_parser(
        sub, "demo", DemoConfig,
        help="the whole study in miniature on embedded data (Fashion-MNIST vs Open Clip Art, Animal-MNIST)",
        description="Contrast classes for Fashion-MNIST, mining and materialisation of the Open Clip Art "
        "Library, six small architecture families trained on both, fine-tuned on Animal-MNIST, and the "
        "report. A rerun resumes: finished stages and runs are skipped.",
        examples=EXAMPLES, presets=PRESETS, extra=_quick,
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from imagenot.demo.run import run_demo

    cfg = config_from_args(DemoConfig, args, presets=PRESETS, preset="quick" if args.quick else "default")
    run_demo(cfg)
    return 0
