"""CPU training as issue 23 made it: the bf16 path against fp32, and zoo runs side by side against one by one.

Part 1, kernels: for each small-input family, training steps (forward, backward, AdamW) at batch 128 on
32-px images, one thread, in this process: fp32 (contiguous) against the path `precision: auto` takes on a
CPU with native bf16 (bf16 autocast, channels_last, grouped convolutions in fp32; imagenot.training.precision).
Rates are images per CPU-second of this process (time.process_time), which a shared machine disturbs less
than wall time; the sides alternate per model after warm-up steps. Printed: the rate of each side and the
ratio bf16 / fp32 per model, and overall (total images / total CPU-seconds over the six).

Part 2, the zoo: a tiny plan (4 models on synthetic data) run one after another (`parallel: 1`, one thread
per run) and side by side (`parallel: auto`: one single-threaded process per core); wall time of each and the
ratio. Both include what each mode pays to start: the side-by-side zoo starts one `python -m imagenot` process
per run (interpreter, torch import, data) inside the timed span, the serial zoo imports once.

    python benchmarks/cpu_bench.py                  # both parts (about 3-4 minutes on 2 cores)
    python benchmarks/cpu_bench.py --steps 3 --no-zoo
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

SIX = ("alexnet_s32", "vgg_s32", "resnet_s32", "densenet_s32", "efficientnet_s32", "convnext_s32")
ZOO_MODELS = ("alexnet_s32", "resnet_s32", "densenet_s32", "convnext_s32")


def step_rate(name: str, bf16: bool, steps: int, warmup: int, batch: int = 128) -> float:
    """Images per CPU-second of `steps` training steps after `warmup` untimed ones."""
    from imagenot.models import get_model
    from imagenot.training.precision import Numerics, prepare_model

    torch.manual_seed(0)
    model = get_model(name, 10)
    numerics = Numerics("bf16" if bf16 else "fp32", channels_last=bf16, fp32_grouped_convs=bf16)
    prepare_model(model, numerics)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    crit = nn.CrossEntropyLoss()
    x = torch.randn(batch, 3, 32, 32).contiguous(memory_format=numerics.memory_format)
    y = torch.randint(0, 10, (batch,))
    cpu = 0.0
    for i in range(warmup + steps):
        t0 = time.process_time()
        with numerics.autocast(torch.device("cpu")):
            loss = crit(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i >= warmup:
            cpu += time.process_time() - t0
    return steps * batch / cpu


def kernels(steps: int, warmup: int) -> None:
    print(f"{'model':<18} {'fp32 img/CPU-s':>15} {'bf16 img/CPU-s':>15} {'bf16/fp32':>10}")
    tot = {"fp32": 0.0, "bf16": 0.0}
    for name in SIX:
        fp32 = step_rate(name, False, steps, warmup)
        bf16 = step_rate(name, True, steps, warmup)
        images = steps * 128
        tot["fp32"] += images / fp32
        tot["bf16"] += images / bf16
        print(f"{name:<18} {fp32:>15.0f} {bf16:>15.0f} {bf16 / fp32:>9.2f}x", flush=True)
    print(f"{'overall':<18} {'':>15} {'':>15} {tot['fp32'] / tot['bf16']:>9.2f}x  (CPU-seconds fp32 / bf16)")


def zoo(epochs: int, limit: int) -> None:
    from imagenot.zoo import plan_from_mapping, run_zoo

    base = {"models": list(ZOO_MODELS), "seeds": [0], "epochs": epochs, "batch_size": 128, "limit": limit,
            "progress": False, "device": "cpu",
            "datasets": [{"spec": "synthetic", "name": "synth", "options": {"num_classes": 10, "n": limit}}]}
    walls = {}
    with tempfile.TemporaryDirectory() as tmp:
        for mode, extra in (("one by one", {"parallel": 1, "threads": 1}), ("side by side", {"parallel": "auto"})):
            t0 = time.perf_counter()
            run_zoo(plan_from_mapping({**base, **extra, "out": str(Path(tmp) / mode.replace(" ", "-"))}))
            walls[mode] = time.perf_counter() - t0
            print(f"zoo {mode:<13} {walls[mode]:7.1f} s wall", flush=True)
    print(f"zoo speed-up side by side / one by one: {walls['one by one'] / walls['side by side']:.2f}x "
          f"({len(ZOO_MODELS)} runs, {epochs} epoch(s) of {limit} images each)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=4, help="timed training steps per model and side")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    ap.add_argument("--zoo-epochs", type=int, default=2)
    ap.add_argument("--zoo-limit", type=int, default=1024, help="images per split of the zoo's runs")
    ap.add_argument("--no-zoo", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    from imagenot.training.precision import cpu_bf16_support

    native, why = cpu_bf16_support()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, {torch.backends.cpu.get_cpu_capability()}, native bf16: {native} ({why})")
    kernels(args.steps, args.warmup)
    if not args.no_zoo:
        zoo(args.zoo_epochs, args.zoo_limit)


if __name__ == "__main__":
    main()
