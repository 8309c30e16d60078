"""GPU input-pipeline benchmark: is imagenot's data-fed training rate within 10% of the synthetic-input rate?

One command, self-timed (it stops starting new measurements once `--budget` seconds are spent), prints a
table. resnet50 at 224 px, bf16 autocast, channels_last, AdamW (the uniform recipe), with and without
torch.compile:

* synthetic: the trainer's step (uint8 batch already on the GPU -> normalise -> forward/backward/step) in a
  loop, no data at all: the ceiling;
* jpeg/cpu-decode: `imagenot.training.train` on an imagefolder of real JPEGs of ImageNet-like size (the
  benchmark writes them: smooth random images, 500x375 and 375x500), its per-sample pipeline in DataLoader
  workers (decode + RandomResizedCrop + flip on the CPU), pinned uint8 batches;
* jpeg/gpu-decode: the same with `gpu_decode=True` (torchvision.io.decode_jpeg on the GPU, transforms there).

The data-fed rate is the last epoch's training images/s (evaluation excluded); ratio = data-fed / synthetic.

    python benchmarks/gpu_bench.py                  # on a CUDA machine, about 4-5 minutes
    python benchmarks/gpu_bench.py --dry-run        # any machine: tiny sizes on the CPU, checks it all runs
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch

log = logging.getLogger("gpu_bench")


def _write_one(args: tuple[str, int, int, int]) -> None:
    import numpy as np
    from PIL import Image

    path, seed, w, h = args
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (h // 25 + 2, w // 25 + 2, 3), dtype=np.uint8)
    img = Image.fromarray(coarse).resize((w, h), Image.Resampling.BICUBIC)
    noise = rng.integers(-12, 13, (h, w, 3))
    Image.fromarray(np.clip(np.asarray(img, dtype=np.int16) + noise, 0, 255).astype(np.uint8)).save(path, quality=90)


def write_jpegs(root: Path, n_train: int, n_val: int, classes: int, size: tuple[int, int]) -> Path:
    """ImageNet-like JPEGs (landscape and portrait) in train/ and val/ class folders, written in parallel."""
    jobs = []
    for split, n in (("train", n_train), ("val", n_val)):
        for i in range(n):
            d = root / split / f"c{i % classes:02d}"
            d.mkdir(parents=True, exist_ok=True)
            w, h = size if i % 2 == 0 else size[::-1]
            jobs.append((str(d / f"{i:06d}.jpg"), i + (0 if split == "train" else 10**7), w, h))
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        list(pool.map(_write_one, jobs, chunksize=64))
    return root


def synthetic_rate(model_name: str, size: int, batch: int, steps: int, device: torch.device, precision: str,
                   compile_model: bool, classes: int) -> float:
    """images/s of the trainer's step on a batch that is already on the device (no input pipeline)."""
    from imagenot.models import get_model
    from imagenot.training.evaluation import Normalize, autocast_for
    from imagenot.training.optim import build_optimizer
    from imagenot.training.recipes import get_recipe

    model = get_model(model_name, classes, input_size=size).to(device).to(memory_format=torch.channels_last)
    recipe = get_recipe("uniform", model_name)
    opt = build_optimizer(model, recipe, recipe.scaled_lr(batch))
    crit = torch.nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
    prep = Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)).to(device)
    fwd = torch.compile(model) if compile_model else model
    x8 = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8, device=device)
    y = torch.randint(0, classes, (batch,), device=device)
    autocast = autocast_for(device, precision)
    warmup = 3 if not compile_model else 5

    def step() -> None:
        x = prep(x8).contiguous(memory_format=torch.channels_last)
        with autocast:
            loss = crit(fwd(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(warmup):
        step()
    _sync(device)
    t = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    return steps * batch / (time.perf_counter() - t)


def fed_rate(model_name: str, folder: Path, size: int, batch: int, device: str, precision: str,
             compile_model: bool, gpu_decode: bool, workers: int, out: Path, epochs: int) -> float:
    """images/s of imagenot's trainer on the JPEG folder: the last epoch's training rate."""
    from imagenot.training.trainer import TrainConfig, train

    cfg = TrainConfig(model=model_name, dataset=f"imagefolder:{folder}", out=str(out), epochs=epochs,
                      batch_size=batch, image_size=size, device=device, precision=precision, compile=compile_model,
                      gpu_decode=gpu_decode, workers=workers, channels_last=True, progress=False, force=True,
                      dataset_options={"cache": False})
    train(cfg)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return float(rows[-1]["images_per_s"])


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dry-run", action="store_true", help="tiny sizes on the CPU (checks the script runs)")
    p.add_argument("--model", default="resnet50")
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--train-images", type=int, default=12800, help="JPEGs in train/ (one epoch of the fed runs)")
    p.add_argument("--val-images", type=int, default=512)
    p.add_argument("--epochs", type=int, default=2, help="epochs of each fed run (the last one is timed)")
    p.add_argument("--synthetic-steps", type=int, default=40)
    p.add_argument("--workers", type=int, default=None, help="loader workers (default: CPUs - 2)")
    p.add_argument("--budget", type=float, default=330.0, help="seconds; no new measurement starts after it")
    p.add_argument("--no-compile", action="store_true", help="skip the torch.compile rows")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    start = time.perf_counter()
    cuda = torch.cuda.is_available() and not args.dry_run
    if args.dry_run:
        args.model, args.image_size, args.batch_size = "resnet18", 64, 8
        args.train_images, args.val_images, args.synthetic_steps = 48, 16, 3
        args.no_compile = True
    device = torch.device("cuda" if cuda else "cpu")
    precision = "bf16" if cuda else "fp32"
    workers = args.workers if args.workers is not None else max(1, (os.cpu_count() or 2) - 2)
    if cuda:
        name = torch.cuda.get_device_name(0)
    else:
        name = "CPU (no CUDA device: " + ("dry run" if args.dry_run else "figures are not GPU figures") + ")"
    print(f"# {time.strftime('%Y-%m-%d %H:%M')} {name}; torch {torch.__version__}; {os.cpu_count()} CPUs, "
          f"{workers} loader workers; {args.model} at {args.image_size} px, batch {args.batch_size}, {precision}, "
          "channels_last", flush=True)
    rows: list[tuple[str, str, float | None]] = []
    with tempfile.TemporaryDirectory(prefix="gpu_bench_") as tmp:
        tmp_path = Path(tmp)
        os.environ.setdefault("IMAGENOT_CACHE", str(tmp_path / "cache"))
        t = time.perf_counter()
        size = (500, 375) if not args.dry_run else (120, 90)
        folder = write_jpegs(tmp_path / "jpegs", args.train_images, args.val_images, 10, size)
        print(f"# {args.train_images} + {args.val_images} JPEGs ({size[0]}x{size[1]} and portrait) written in "
              f"{time.perf_counter() - t:.0f} s", flush=True)
        compiles = [False] if args.no_compile else [False, True]
        for compile_model in compiles:
            tag = "compile" if compile_model else "eager"
            plan = [("synthetic", None), ("jpeg/cpu-decode", False), ("jpeg/gpu-decode", True)]
            for source, gpu_decode in plan:
                if time.perf_counter() - start > args.budget:
                    rows.append((tag, source, None))
                    continue
                t = time.perf_counter()
                if gpu_decode is None:
                    rate = synthetic_rate(args.model, args.image_size, args.batch_size, args.synthetic_steps,
                                          device, precision, compile_model, 10)
                else:
                    rate = fed_rate(args.model, folder, args.image_size, args.batch_size, device.type, precision,
                                    compile_model, gpu_decode, workers, tmp_path / f"run-{tag}-{gpu_decode}",
                                    args.epochs)
                rows.append((tag, source, rate))
                print(f"#   {tag} {source}: {rate:.1f} img/s ({time.perf_counter() - t:.0f} s)", flush=True)
    print(f"\n{'model':<10} {'input':<18} {'img/s':>9} {'of synthetic':>13}")
    for tag in ("eager", "compile"):
        synth = next((r for g, s, r in rows if g == tag and s == "synthetic"), None)
        for g, source, rate in rows:
            if g != tag:
                continue
            shown = f"{rate:9.1f}" if rate is not None else "  skipped"
            share = f"{rate / synth:12.0%}" if rate is not None and synth else " " * 12 + "-"
            print(f"{tag:<10} {source:<18} {shown} {share}")
    print(f"# total {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
