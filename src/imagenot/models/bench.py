"""Time one SGD step (forward + backward + update) of registry models on the CPU.

`python -m imagenot.models.bench [NAMES...] [--batch 128] [--threads 2] [--steps 5]` prints, per model, its
parameters, forward MFLOPs per image, and the median wall and process (CPU) time of a step after one warm-up
step. The process time is the steadier figure on a machine shared with other jobs; with one thread it is the
model's compute cost alone.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time

log = logging.getLogger(__name__)


def step_times(name: str, batch: int = 128, steps: int = 5, num_classes: int = 10,
               input_size: int | None = None) -> tuple[float, float]:
    """(median wall seconds, median process seconds) of one SGD step at the model's input size."""
    import torch
    import torch.nn.functional as F

    from imagenot.models import get_model, model_info

    size = input_size or model_info(name).input_size
    torch.manual_seed(0)
    model = get_model(name, num_classes, input_size=size)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch, 3, size, size)
    y = torch.randint(0, num_classes, (batch,))
    walls, cpus = [], []
    for i in range(steps + 1):
        w0, c0 = time.perf_counter(), time.process_time()
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()
        if i:  # the first step allocates and picks kernels
            walls.append(time.perf_counter() - w0)
            cpus.append(time.process_time() - c0)
    return statistics.median(walls), statistics.median(cpus)


def main(argv: list[str] | None = None) -> int:
    import torch

    from imagenot.models import list_models, params_and_flops

    p = argparse.ArgumentParser(prog="python -m imagenot.models.bench", description=__doc__)
    p.add_argument("names", nargs="*", help="models (default: every small-input variant)")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=5)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    names = args.names or list_models(full_size=False)
    print(f"batch {args.batch}, {args.threads} thread(s), torch {torch.__version__}")
    print(f"{'model':<18} {'params':>8} {'MFLOPs':>8} {'wall s':>7} {'cpu s':>7}")
    for name in names:
        params, flops = params_and_flops(name, None, 10)
        wall, cpu = step_times(name, args.batch, args.steps)
        print(f"{name:<18} {params / 1e6:>7.2f}M {flops / 1e6:>8.1f} {wall:>7.3f} {cpu:>7.3f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
