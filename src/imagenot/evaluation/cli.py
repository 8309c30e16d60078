"""`imagenot evaluate`: weights on a dataset split, or published accuracies, into a run folder."""

from __future__ import annotations

import argparse

from imagenot.cli_options import add_stage_parser, config_from_args
from imagenot.evaluation.config import EvaluateConfig

EXAMPLES = (
    "imagenot evaluate --model resnet152 --published --out runs/imagenet-1k/resnet152/published",
    "imagenot evaluate --model resnet50 --init torchvision:resnet50.IMAGENET1K_V2 "
    "--dataset imagefolder:/data/imagenet --out runs/imagenet-1k/resnet50/v2",
    "imagenot evaluate --model resnet_s32 --init run:runs/clipart-not/resnet_s32/seed0 "
    "--dataset wds:clipart-not --out evals/resnet_s32",
)


def register(sub: argparse._SubParsersAction) -> None:
    p = add_stage_parser(
        sub, "evaluate", EvaluateConfig,
        help="evaluate weights on a dataset, or record torchvision's published accuracies (a run folder)",
        description="Evaluate any weights (torchvision's published ones, a finished run, a state_dict file) on "
        "a split with the model's own evaluation transforms (resize + centre crop at the sizes of its torchvision "
        "weights), and write a run folder like `imagenot train`: config.json, manifest.json, result.json (role, "
        "top-1/5, the weights' identity and sha256) and predictions.parquet. With --published, record "
        "torchvision's published ImageNet-1K acc@1/acc@5 from the weights' metadata instead (offline; "
        "result.json says source: published).",
        examples=EXAMPLES,
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from imagenot.config import ConfigError

    cfg = config_from_args(EvaluateConfig, args)
    if not cfg.model or not cfg.out:
        raise ConfigError("evaluate needs --model and --out")
    if cfg.published:
        from imagenot.evaluation.published import write_published_run

        result = write_published_run(cfg)
        print(f"{cfg.model}: published {result['weights']} top-1 {result['top1']:.3f}%, top-5 "
              f"{result['top5']:.3f}% (ImageNet-1K) -> {cfg.out}")
        return 0
    from imagenot.evaluation.run import evaluate_weights

    if not cfg.dataset:
        raise ConfigError("evaluate needs --dataset (or --published for torchvision's published accuracies)")
    result = evaluate_weights(cfg)
    print(f"{cfg.model} ({result['weights']['identity'] or cfg.init}) on {result['dataset']}: top-1 "
          f"{result['top1']:.2f}%, top-5 {result['top5']:.2f}% over {result['val_images']} images -> {cfg.out}")
    return 0
