"""Training throughput: imagenot's trainer against a torchvision-references-style loop, on the CPU.

The baseline is written the way torchvision's references/classification/train.py trains: an ImageFolder of
PNG files on disk, a DataLoader with worker processes, per-sample PIL transforms (RandomCrop with padding,
RandomHorizontalFlip, PILToTensor, ConvertImageDtype, Normalize), and per-step loss/accuracy logging with
`.item()`. The contender is `imagenot.training.train` on `imagefolder:` of the same folder (decoded once into
memory as uint8, cropped and flipped in batches). Same model, data, batch size, optimizer (AdamW with the
uniform recipe's settings) and number of steps; both run in this process's torch threads.

    python benchmarks/train_bench.py                       # six small-input families at 32 px
    python benchmarks/train_bench.py --models resnet_s32 --seconds 10
    python benchmarks/train_bench.py --device cuda --models resnet50,vit_b_16 --image-size 224 --precision bf16

Prints one row per model: steps timed, images/s of each side (steady state: the first two steps of each side
are warm-up and not timed; the sides alternate `--repeats` times and each keeps its best rate, which damps
the noise of a shared machine), and the ratio trainer / baseline. Data-only rows (no model) show how much of a
step data handling takes on each side.

Full-size section (`--full-size`): real JPEGs of ImageNet-like size, made by re-encoding the Open Clip Art
PNGs (Debian openclipart-png; longer side at most 500 px, on white) into train/ and val/ class folders by
category. `imagenot train --model resnet18 --image-size S` (its per-sample pipeline: RandomResizedCrop + flip
in DataLoader workers, Resize + CenterCrop for evaluation) against a loop written the way torchvision's
reference trains (ImageFolder, PIL, RandomResizedCrop, 2 workers, per-step `.item()` logging), each in its own
process, same model, recipe (uniform: AdamW, warm-up + cosine, label smoothing), batch and epochs. Printed per
size: training images/s of the last epoch (steady state, evaluation excluded), peak memory of the process
and its loader workers (sum of PSS, sampled every 0.2 s) and top-1 after the epochs, each as a ratio.

    python benchmarks/train_bench.py --full-size                     # resnet18 at 224 and 128
    python benchmarks/train_bench.py --full-size --sizes 128 --epochs 3 --per-class 100
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

log = logging.getLogger("train_bench")

SIX = ("alexnet_s32", "vgg_s32", "resnet_s32", "densenet_s32", "efficientnet_s32", "convnext_s32")
WARMUP = 2


def write_image_folder(root: Path, n: int, size: int) -> tuple[str, Path]:
    """n PNGs (RGB, size x size) in class folders, from Fashion-MNIST (real data) or, failing that, synthetic."""
    from PIL import Image

    from imagenot.data import get_dataset

    try:
        ds = get_dataset("fashion-mnist", "train", image_size=size, channels=3, limit=n)
        source = "fashion-mnist"
    except Exception as exc:  # noqa: BLE001 - the benchmark still runs without the Debian package
        log.warning("fashion-mnist unavailable (%s); using synthetic images", exc)
        ds = get_dataset("synthetic", "train", image_size=size, n=n)
        source = "synthetic"
    folder = root / "images"
    for i, (img, label) in enumerate(zip(ds.images, ds.labels.tolist())):
        d = folder / f"class{label:02d}"
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img.permute(1, 2, 0).numpy()).save(d / f"{i:06d}.png")
    return source, folder


def accuracy(output: torch.Tensor, target: torch.Tensor, topk: tuple[int, ...] = (1, 5)) -> list[torch.Tensor]:
    """The references' top-k accuracy, computed every step as train.py does."""
    with torch.inference_mode():
        maxk = min(max(topk), output.shape[1])
        _, pred = output.topk(maxk, 1, True, True)
        correct = pred.t().eq(target[None])
        return [correct[: min(k, maxk)].flatten().sum(dtype=torch.float32) * (100.0 / target.size(0))
                for k in topk]


def reference_loader(folder: Path, batch: int, size: int, workers: int, seed: int):
    import torchvision
    from torchvision import transforms as T

    tf = T.Compose([
        T.RandomCrop(size, padding=4), T.RandomHorizontalFlip(), T.PILToTensor(),
        T.ConvertImageDtype(torch.float), T.Normalize(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)),
    ])
    ds = torchvision.datasets.ImageFolder(str(folder), transform=tf)
    g = torch.Generator().manual_seed(seed)
    return torch.utils.data.DataLoader(ds, batch_size=batch, sampler=torch.utils.data.RandomSampler(ds, generator=g),
                                       num_workers=workers, pin_memory=False, drop_last=True)


def baseline(model_name: str, folder: Path, batch: int, size: int, steps: int, workers: int, device: str,
             precision: str) -> float:
    """images/s of the references-style loop over `steps` timed steps."""
    from imagenot.models import get_model
    from imagenot.training.optim import build_optimizer
    from imagenot.training.recipes import get_recipe

    loader = reference_loader(folder, batch, size, workers, seed=0)
    model = get_model(model_name, len(loader.dataset.classes), input_size=size).to(device)
    recipe = get_recipe("uniform", model_name)
    opt = build_optimizer(model, recipe, recipe.scaled_lr(batch))
    crit = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
    autocast = (torch.autocast(device, dtype=torch.bfloat16) if precision == "bf16" else contextlib.nullcontext())
    model.train()
    done, t_start, logged = 0, None, []
    while True:
        for image, target in loader:
            if done == WARMUP:
                if device == "cuda":
                    torch.cuda.synchronize()
                t_start = time.perf_counter()
            image, target = image.to(device), target.to(device)
            with autocast:
                output = model(image)
                loss = crit(output, target)
            opt.zero_grad()
            loss.backward()
            opt.step()
            acc1, acc5 = accuracy(output, target)
            logged.append((loss.item(), acc1.item(), acc5.item()))  # MetricLogger.update(loss=loss.item())
            done += 1
            if done == WARMUP + steps:
                if device == "cuda":
                    torch.cuda.synchronize()
                return steps * batch / (time.perf_counter() - t_start)


def trainer(model_name: str, folder: Path, batch: int, size: int, steps: int, device: str, precision: str,
            out: Path) -> float:
    """images/s of imagenot's trainer: a run of WARMUP + steps steps; warm-up steps timed separately."""
    import json

    from imagenot.training.trainer import TrainConfig, train

    # Two epochs of half the steps each: the first warms up (first-touch allocations, like the baseline's
    # untimed first steps), the second's images_per_s (training steps only, not evaluation) is the rate.
    n_train = max(3, steps // 2) * batch
    cfg = TrainConfig(model=model_name, dataset=f"imagefolder:{folder}", out=str(out), epochs=2,
                      batch_size=batch, image_size=size, progress=False, device=device, precision=precision,
                      limit=int(n_train / 0.8) + 8, force=True, dataset_options={"val_fraction": 0.2})
    train(cfg)
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    return float(rows[-1]["images_per_s"])


def data_only(folder: Path, batch: int, size: int, steps: int, workers: int) -> tuple[float, float]:
    """images/s of the two input pipelines alone (no model): DataLoader+PIL vs in-memory uint8 batches."""
    from imagenot.data import BatchLoader, crop_flip, get_dataset, sample_params, to_float_normalized

    loader = reference_loader(folder, batch, size, workers, seed=1)
    it, n, t0 = iter(loader), 0, None
    while n < steps + WARMUP:
        try:
            next(it)
        except StopIteration:
            it = iter(loader)
            continue
        n += 1
        if n == WARMUP:
            t0 = time.perf_counter()
    ref = steps * batch / (time.perf_counter() - t0)
    ds = get_dataset(f"imagefolder:{folder}", "train", image_size=size, val_fraction=0.2)
    bl = BatchLoader(ds, batch, shuffle=True, seed=0)
    g = torch.Generator().manual_seed(0)
    n, t0 = 0, time.perf_counter()
    while n < steps:
        for xb, _ in bl:
            to_float_normalized(crop_flip(xb, sample_params(len(xb), g), 4))
            n += 1
            if n == steps:
                break
    ours = steps * batch / (time.perf_counter() - t0)
    return ref, ours


def step_seconds(model_name: str, batch: int, size: int, device: str) -> float:
    """Seconds of one forward+backward (for sizing the runs to about --seconds per side)."""
    from imagenot.models import get_model

    model = get_model(model_name, 10, input_size=size).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.randn(batch, 3, size, size, device=device)
    y = torch.randint(0, 10, (batch,), device=device)
    times = []
    for _ in range(3):
        t = time.perf_counter()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        opt.zero_grad()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return min(times[1:])


# ---------------------------------------------------------------------------------------- full-size section
CLIPART = Path("/usr/share/openclipart/png")


def write_clipart_jpegs(root: Path, classes: int, per_class: int, val_fraction: float = 0.2,
                        max_side: int = 500) -> tuple[Path, dict[str, int]]:
    """JPEG class folders from the Open Clip Art PNGs: the `classes` largest categories, `per_class` each."""
    from PIL import Image

    cats = sorted((d for d in CLIPART.iterdir() if d.is_dir()), key=lambda d: -len(list(d.rglob("*.png"))))
    counts = {"train": 0, "val": 0}
    for cat in cats[:classes]:
        files = sorted(cat.rglob("*.png"))
        kept = 0
        for f in files:
            if kept == per_class:
                break
            with Image.open(f) as im:
                if im.width * im.height > 20_000_000:  # PIL's bomb limit; a handful of posters
                    continue
                im = im.convert("RGBA")
                im.thumbnail((max_side, max_side), Image.Resampling.BICUBIC)
                rgb = Image.new("RGB", im.size, (255, 255, 255))
                rgb.paste(im, mask=im.getchannel("A"))
            split = "val" if kept < per_class * val_fraction else "train"
            out = root / split / cat.name / f"{kept:04d}_{f.stem}.jpg"  # stems repeat across subfolders
            out.parent.mkdir(parents=True, exist_ok=True)
            rgb.save(out, quality=90)
            counts[split] += 1
            kept += 1
    return root, counts


def peak_pss_mb(proc: Any, interval: float = 0.2) -> float:
    """Wait for `proc` and return the peak of the summed PSS of it and its descendants (MB)."""
    peak = 0.0
    while proc.poll() is None:
        peak = max(peak, _tree_pss_kb(proc.pid) / 1024)
        time.sleep(interval)
    return peak


def _tree_pss_kb(pid: int) -> float:
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d.name))
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        todo.extend(children.get(p, []))
        try:
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += float(line.split()[1])
        except OSError:
            pass
    return total


def reference_full_size(folder: Path, model_name: str, size: int, batch: int, epochs: int, workers: int,
                        out: Path) -> None:
    """The baseline, in its own process: torchvision's reference training loop, written out."""
    import json

    import torchvision
    from torchvision import transforms as T

    from imagenot.training.optim import build_optimizer, build_scheduler
    from imagenot.training.recipes import get_recipe

    torch.manual_seed(0)
    normalize = T.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
    resize = int(round(size * 256 / 224))
    train_ds = torchvision.datasets.ImageFolder(str(folder / "train"), T.Compose([
        T.RandomResizedCrop(size, antialias=True), T.RandomHorizontalFlip(), T.PILToTensor(),
        T.ConvertImageDtype(torch.float), normalize]))
    val_ds = torchvision.datasets.ImageFolder(str(folder / "val"), T.Compose([
        T.Resize(resize, antialias=True), T.CenterCrop(size), T.PILToTensor(), T.ConvertImageDtype(torch.float),
        normalize]))
    train_dl = torch.utils.data.DataLoader(train_ds, batch_size=batch, sampler=torch.utils.data.RandomSampler(train_ds),
                                           num_workers=workers, drop_last=True)
    val_dl = torch.utils.data.DataLoader(val_ds, batch_size=batch, num_workers=workers)
    model = getattr(torchvision.models, model_name)(weights=None, num_classes=len(train_ds.classes))
    recipe = get_recipe("uniform", model_name)
    opt = build_optimizer(model, recipe, recipe.scaled_lr(batch))
    sched = build_scheduler(opt, recipe, len(train_dl), epochs)
    crit = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
    rates, top1 = [], 0.0
    for _ in range(epochs):
        model.train()
        t0 = time.perf_counter()
        for image, target in train_dl:
            output = model(image)
            loss = crit(output, target)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            acc1, _ = accuracy(output, target)
            _ = (loss.item(), acc1.item())  # MetricLogger.update(loss=loss.item(), ...)
        rates.append(len(train_dl) * batch / (time.perf_counter() - t0))
        model.eval()
        correct = n = 0
        with torch.inference_mode():
            for image, target in val_dl:
                correct += int((model(image).argmax(1) == target).sum())
                n += len(target)
        top1 = 100.0 * correct / n
    out.write_text(json.dumps({"images_per_s": rates[-1], "top1": top1}))


def full_size_section(args: argparse.Namespace) -> None:
    import json
    import subprocess

    with tempfile.TemporaryDirectory(prefix="train_bench_full_") as tmp:
        tmp_path = Path(tmp)
        t = time.perf_counter()
        folder, counts = write_clipart_jpegs(tmp_path / "clipart", args.classes, args.per_class)
        print(f"# {counts['train']} train + {counts['val']} val JPEGs ({args.classes} Open Clip Art categories, "
              f"longer side <= 500 px) written in {time.perf_counter() - t:.0f} s; {args.full_model}, batch "
              f"{args.batch_size}, {args.epochs} epochs, {args.workers} loader workers, "
              f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}", flush=True)
        print(f"{'size':>5} {'baseline img/s':>15} {'imagenot img/s':>15} {'ratio':>6} {'base MB':>8} "
              f"{'ours MB':>8} {'ratio':>6} {'base top1':>9} {'ours top1':>9}", flush=True)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1] / "src"),
                                                             os.environ.get("PYTHONPATH", "")])}
        for size in [int(v) for v in args.sizes.split(",")]:
            ref_out = tmp_path / f"ref{size}.json"
            ref = subprocess.Popen([sys.executable, __file__, "--_reference-child", str(folder), str(size),
                                    str(ref_out), "--batch-size", str(args.batch_size), "--epochs",
                                    str(args.epochs), "--workers", str(args.workers), "--full-model",
                                    args.full_model], env=env)
            ref_mb = peak_pss_mb(ref)
            assert ref.returncode == 0, "baseline failed"
            run = tmp_path / f"run{size}"
            ours = subprocess.Popen([sys.executable, "-m", "imagenot", "train", "--model", args.full_model,
                                     "--dataset", f"imagefolder:{folder}", "--image-size", str(size), "--epochs",
                                     str(args.epochs), "--batch-size", str(args.batch_size), "--workers",
                                     str(args.workers), "--out", str(run), "--no-progress"], env=env,
                                    stdout=subprocess.DEVNULL)
            our_mb = peak_pss_mb(ours)
            assert ours.returncode == 0, "imagenot train failed"
            base = json.loads(ref_out.read_text())
            last = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
            print(f"{size:>5} {base['images_per_s']:>15.1f} {last['images_per_s']:>15.1f} "
                  f"{last['images_per_s'] / base['images_per_s']:>5.2f}x {ref_mb:>8.0f} {our_mb:>8.0f} "
                  f"{our_mb / ref_mb:>5.2f}x {base['top1']:>9.1f} {last['top1']:>9.1f}", flush=True)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "--_reference-child":
        folder, size, out = argv[1:4]
        q = argparse.ArgumentParser()
        q.add_argument("--batch-size", type=int)
        q.add_argument("--epochs", type=int)
        q.add_argument("--workers", type=int)
        q.add_argument("--full-model")
        a = q.parse_args(argv[4:])
        reference_full_size(Path(folder), a.full_model, int(size), a.batch_size, a.epochs, a.workers, Path(out))
        return 0
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--full-size", action="store_true", help="the full-size section (real JPEGs, resnet18)")
    p.add_argument("--full-model", default="resnet18")
    p.add_argument("--sizes", default="224,128", help="full-size section: input sizes")
    p.add_argument("--epochs", type=int, default=2, help="full-size section: epochs per side")
    p.add_argument("--classes", type=int, default=8, help="full-size section: clip-art categories")
    p.add_argument("--per-class", type=int, default=150, help="full-size section: images per category")
    p.add_argument("--models", default=",".join(SIX))
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--seconds", type=float, default=20.0, help="timed seconds per model per side (about)")
    p.add_argument("--max-steps", type=int, default=40)
    p.add_argument("--repeats", type=int, default=2,
                   help="alternate the two sides this many times and keep each side's best rate (shared CPUs)")
    p.add_argument("--workers", type=int, default=2, help="baseline DataLoader workers")
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.full_size:
        if args.batch_size == 128 and "--batch-size" not in argv:
            args.batch_size = 32
        full_size_section(args)
        return 0
    models = [m for m in args.models.split(",") if m]
    with tempfile.TemporaryDirectory(prefix="train_bench_") as tmp:
        tmp_path = Path(tmp)
        os.environ["IMAGENOT_CACHE"] = str(tmp_path / "cache")
        steps_needed = {m: max(6, min(args.max_steps, int(args.seconds / args.repeats / step_seconds(
            m, args.batch_size, args.image_size, args.device)))) for m in models}
        n_images = int(max(steps_needed.values()) * args.batch_size / 0.8) + 64
        t = time.perf_counter()
        source, folder = write_image_folder(tmp_path, n_images, args.image_size)
        print(f"# {n_images} PNGs of {source} at {args.image_size} px written in {time.perf_counter() - t:.1f} s; "
              f"batch {args.batch_size}, device {args.device}, {torch.get_num_threads()} torch threads, "
              f"baseline workers {args.workers}", flush=True)
        ref_data, our_data = data_only(folder, args.batch_size, args.image_size, 10, args.workers)
        print(f"# data only (no model): DataLoader+PIL {ref_data:.0f} img/s, in-memory uint8 batches "
              f"{our_data:.0f} img/s ({our_data / ref_data:.1f}x)", flush=True)
        print(f"{'model':<18} {'steps':>5} {'baseline img/s':>15} {'imagenot img/s':>15} {'ratio':>6}")
        for m in models:
            steps = steps_needed[m]
            b = o = 0.0
            for _ in range(args.repeats):
                b = max(b, baseline(m, folder, args.batch_size, args.image_size, steps, args.workers, args.device,
                                    args.precision))
                o = max(o, trainer(m, folder, args.batch_size, args.image_size, steps, args.device,
                                   args.precision, tmp_path / "runs" / m))
            print(f"{m:<18} {steps:>5} {b:>15.1f} {o:>15.1f} {o / b:>5.2f}x", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
