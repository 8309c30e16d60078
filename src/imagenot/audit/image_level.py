"""Image level: can a classifier tell which dataset an image comes from, and which plain statistic gives it away?

Both datasets are drawn in equal, seeded, class-stratified samples and brought to one size and channel count
(so that chance is one half and neither the pixel grid nor the channel count answers the question by itself),
split into a training and a held-out part stratified by dataset, and a small registry model is trained for a
few epochs on the CPU to say "reference" or "contrast". Its held-out accuracy comes with a Clopper-Pearson
interval. The same held-out part then measures one logistic regression per simple image statistic
(`image_stats`), so a reader can see whether colour, contrast or original size already explains the gap.
When reference and contrast are the same dataset the two samples are disjoint random halves of one draw: a
null check that should stay near one half.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from imagenot.audit.config import AuditConfig
from imagenot.audit.dataset_meta import SampleTable, wds_root
from imagenot.audit.image_stats import pixel_statistics, separability, size_statistics
from imagenot.errors import InputError
from imagenot.progress import Progress
from imagenot.stats import accuracy_interval

log = logging.getLogger(__name__)

MIN_IMAGES = 10  # per dataset: fewer cannot give a held-out part with a usable interval


@dataclass
class Drawn:
    """One side's sample: uint8 images `[n, C, S, S]`, their class labels and, where known, original
    (width, height) per image."""

    images: Any  # torch.Tensor
    labels: np.ndarray
    sizes: np.ndarray | None
    size_source: str | None

    def subset(self, idx: np.ndarray) -> Drawn:
        import torch

        return Drawn(self.images[torch.from_numpy(idx)], self.labels[idx],
                     None if self.sizes is None else self.sizes[idx], self.size_source)


@functools.lru_cache(maxsize=8)
def _load(spec: str, split: str, image_size: int | None, channels: int | None, limit: int | None, seed: int,
          stream: bool) -> Any:
    """One registry load, remembered for the rest of the audit (`clear_cache()` at its start): the checks,
    the draw and the size lookup all ask for the same few loads."""
    from imagenot.data import get_dataset

    return get_dataset(spec, split, image_size=image_size, channels=channels, limit=limit, seed=seed,
                       in_memory=False if stream else None)


def clear_cache() -> None:
    _load.cache_clear()


def _view(spec: str, cfg: AuditConfig, limit: int) -> Any:
    """The draw without decoding: a StreamingDataset for image files, the in-memory dataset for arrays."""
    return _load(spec, cfg.split, cfg.image_size, cfg.channels, limit, cfg.seed, True)


def count_images(spec: str, cfg: AuditConfig, limit: int) -> int:
    """How many images a draw of at most `limit` gets (file datasets are only indexed, not decoded)."""
    return len(_view(spec, cfg, limit))


def _original_sizes(spec: str, view: Any, split: str, seed: int, table: SampleTable | None
                    ) -> tuple[np.ndarray | None, str | None]:
    """(width, height) before resizing, in draw order: from the sample table (wds), the files' headers
    (imagefolder) or the arrays' native shape (registry datasets held as arrays)."""
    records = getattr(view, "records", None)
    if records is None:
        native = _load(spec, split, None, None, 1, seed, False)
        h, w = int(native.images.shape[-2]), int(native.images.shape[-1])
        return np.tile(np.array([[w, h]], dtype=np.int64), (len(view), 1)), "native array size"
    keys = list(records.keys)
    if wds_root(spec) is not None:
        if table is None:
            return None, None
        pos = table.index()
        ws, hs = table.columns["orig_width"], table.columns["orig_height"]
        out = []
        for k in keys:
            i = pos.get(k)
            if i is None or ws[i] is None or hs[i] is None:
                return None, None
            out.append((int(ws[i]), int(hs[i])))
        return np.asarray(out, dtype=np.int64).reshape(-1, 2), "samples' orig_width/orig_height"
    from PIL import Image, UnidentifiedImageError

    from imagenot.data.orientation import displayed_size

    out = []
    for i in range(len(keys)):
        try:
            with Image.open(records.files[int(records.file_ids[i])]) as im:  # header only
                out.append(displayed_size(im))
        except (OSError, UnidentifiedImageError):
            return None, None
    return np.asarray(out, dtype=np.int64).reshape(-1, 2), "image file headers"


def _draw(spec: str, cfg: AuditConfig, limit: int, table: SampleTable | None) -> Drawn:
    import torch

    view = _view(spec, cfg, limit)
    if getattr(view, "records", None) is None:
        ds = view  # arrays: already in memory
    else:
        ds = _load(spec, cfg.split, cfg.image_size, cfg.channels, limit, cfg.seed, False)
    images = ds.images if getattr(ds, "images", None) is not None else ds.get_batch(torch.arange(len(ds)))[0]
    sizes, source = _original_sizes(spec, view, cfg.split, cfg.seed, table)
    if sizes is not None and len(sizes) != len(images):
        log.warning("%s: %d original sizes for %d images; leaving sizes out", spec, len(sizes), len(images))
        sizes, source = None, None
    return Drawn(images, ds.labels.numpy().astype(np.int64), sizes, source)


def draw_samples(cfg: AuditConfig, tables: dict[str, SampleTable | None]) -> tuple[Drawn, Drawn, bool]:
    """Equal samples of reference and contrast (disjoint halves of one draw when they are the same dataset).

    The larger side is cut down to the smaller one's count by the registry's own class-stratified rule, so
    each side keeps its class proportions.
    """
    from imagenot.data.dataset import subsample_indices

    assert cfg.reference and cfg.contrast
    want = cfg.samples_per_dataset
    if cfg.reference == cfg.contrast:
        whole = _draw(cfg.reference, cfg, 2 * want, tables.get(cfg.reference))
        n = len(whole.images) // 2
        if n < MIN_IMAGES:
            raise InputError(f"dataset {cfg.reference} ({cfg.split}) has {len(whole.images)} images; the image "
                             f"level needs at least {2 * MIN_IMAGES} to split into two halves")
        perm = np.random.default_rng(cfg.seed).permutation(len(whole.images))
        return whole.subset(np.sort(perm[:n])), whole.subset(np.sort(perm[n:2 * n])), True
    ref = _draw(cfg.reference, cfg, want, tables.get(cfg.reference))
    con = _draw(cfg.contrast, cfg, want, tables.get(cfg.contrast))
    for spec, d in ((cfg.reference, ref), (cfg.contrast, con)):
        if len(d.images) < MIN_IMAGES:
            raise InputError(f"dataset {spec} ({cfg.split}) has {len(d.images)} images; the image level needs "
                             f"at least {MIN_IMAGES} from each dataset")
    n = min(len(ref.images), len(con.images))
    ref, con = (d if len(d.images) == n else d.subset(subsample_indices(d.labels, n, None, cfg.seed))
                for d in (ref, con))
    return ref, con, False


def held_out_split(n_per_side: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train and test indices into the stacked [reference; contrast] sample, stratified by dataset."""
    rng = np.random.default_rng(seed + 1)
    n_test = min(max(1, round(n_per_side * test_fraction)), n_per_side - 1)
    train, test = [], []
    for side in (0, 1):
        idx = side * n_per_side + rng.permutation(n_per_side)
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def train_classifier(x: Any, y: Any, train: np.ndarray, test: np.ndarray, cfg: AuditConfig) -> dict[str, Any]:
    """Train `cfg.model` to tell y=0 from y=1 on `x[train]`; predictions and accuracy on `x[test]`.

    A small loop (AdamW, cosine schedule, crop and flip augmentation, seeded batches) stepped by the trainer's
    `optimizer_step`, normalised with the training part's own channel statistics.
    """
    import torch
    import torch.nn.functional as F

    from imagenot.data import augment, to_float_normalized
    from imagenot.models import check_input_size, get_model
    from imagenot.training.optim import optimizer_step

    check_input_size(cfg.model, cfg.image_size)
    torch.manual_seed(cfg.seed)
    model = get_model(cfg.model, 2, input_size=cfg.image_size)
    xtr, ytr = x[torch.from_numpy(train)], y[torch.from_numpy(train)]
    xf = xtr.to(torch.float32).div_(255.0)
    mean = xf.mean(dim=(0, 2, 3)).tolist()
    std = xf.std(dim=(0, 2, 3)).clamp_min(1e-3).tolist()
    del xf
    n = len(train)
    bs = min(cfg.batch_size, n)
    steps_per_epoch = max(1, math.ceil(n / bs))
    epochs = max(cfg.epochs, math.ceil(cfg.min_steps / steps_per_epoch))
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * steps_per_epoch)
    gen = torch.Generator().manual_seed(cfg.seed)
    history = []
    t0 = time.perf_counter()
    with Progress(epochs * steps_per_epoch, desc=f"dataset classifier ({cfg.model})", unit="step",
                  enabled=cfg.progress, logger=log) as bar:
        for epoch in range(epochs):
            model.train()
            perm = torch.randperm(n, generator=gen)
            loss_sum, correct, seen = 0.0, 0, 0
            for start in range(0, n, bs):
                idx = perm[start:start + bs]
                if len(idx) < 2:  # batch norm cannot train on one image
                    bar.update(1)
                    continue
                xb = augment(xtr[idx], gen, padding=cfg.augment_padding, flip=True, size=None, channels=3,
                             mean=mean, std=std)
                logits = model(xb)
                loss = F.cross_entropy(logits, ytr[idx])
                optimizer_step(loss, opt, sched)
                loss_sum += float(loss.detach()) * len(idx)
                correct += int((logits.argmax(1) == ytr[idx]).sum())
                seen += len(idx)
                bar.update(1)
            history.append({"epoch": epoch + 1, "train_loss": loss_sum / max(seen, 1),
                            "train_accuracy": correct / max(seen, 1)})
            bar.set_postfix(f"loss {history[-1]['train_loss']:.3f}")
    train_s = time.perf_counter() - t0
    model.eval()
    probs = []
    xte = x[torch.from_numpy(test)]
    with torch.no_grad():
        for start in range(0, len(test), 512):
            xb = to_float_normalized(xte[start:start + 512], size=None, channels=3, mean=mean, std=std)
            probs.append(torch.softmax(model(xb), dim=1)[:, 1])
    p_contrast = torch.cat(probs).numpy().astype(np.float64)
    pred = (p_contrast >= 0.5).astype(np.int64)
    return {"pred": pred, "p_contrast": p_contrast, "history": history, "train_seconds": train_s,
            "epochs": epochs, "steps": epochs * steps_per_epoch}


def image_level(cfg: AuditConfig, tables: dict[str, SampleTable | None], plots_dir: Path) -> dict[str, Any]:
    """The image-level section of audit.json (and its plots)."""
    import torch

    from imagenot.audit import plots
    from imagenot.models import model_info

    t0 = time.perf_counter()
    ref, con, same = draw_samples(cfg, tables)
    n = len(ref.images)
    x = torch.cat([ref.images, con.images])
    y = torch.cat([torch.zeros(n, dtype=torch.int64), torch.ones(n, dtype=torch.int64)])
    train, test = held_out_split(n, cfg.test_fraction, cfg.seed)
    draw_s = time.perf_counter() - t0
    res = train_classifier(x, y, train, test, cfg)
    y_test = y.numpy()[test]
    correct = int((res["pred"] == y_test).sum())
    clf = {
        "model": cfg.model, "family": model_info(cfg.model).family, "epochs": res["epochs"], "steps": res["steps"],
        "batch_size": cfg.batch_size, "lr": cfg.lr, "n_train": len(train),
        **accuracy_interval(correct, len(test), cfg.confidence),
        "per_dataset": {
            side: accuracy_interval(int((res["pred"][y_test == k] == k).sum()), int((y_test == k).sum()),
                                    cfg.confidence)
            for k, side in enumerate(("reference", "contrast"))
        },
        "history": res["history"], "train_seconds": round(res["train_seconds"], 2),
    }
    features = pixel_statistics(x.numpy())
    size_note = None
    if ref.sizes is not None and con.sizes is not None:
        features.update(size_statistics(np.concatenate([ref.sizes, con.sizes])))
    else:
        size_note = "original sizes not recorded for " + " and ".join(
            side for side, d in (("the reference", ref), ("the contrast", con)) if d.sizes is None)
    y_np = y.numpy()
    sep = separability(features, y_np, train, test, cfg.seed)
    per = {}
    for name, r in sep["per_statistic"].items():
        per[name] = {**accuracy_interval(r["correct"], r["n_test"], cfg.confidence),
                     **{k: v for k, v in r.items() if k not in ("correct", "n_test")}}
    together = sep["all_statistics"]
    together = None if together is None else accuracy_interval(together["correct"], together["n_test"],
                                                                cfg.confidence)
    best = max(per, key=lambda k: (per[k]["accuracy"], k)) if per else None
    plots_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "samples": plots.image_samples(plots_dir / "image_samples.png", ref.images, con.images,
                                       ("reference half", "contrast half") if same else ("reference", "contrast"),
                                       seed=cfg.seed),
        "statistics": plots.statistic_histograms(plots_dir / "image_statistics.png", features, y_np),
        "statistic_accuracy": plots.statistic_accuracy(plots_dir / "statistic_accuracy.png", per, clf),
    }
    return {
        "reference": {"spec": cfg.reference, "split": cfg.split, "drawn": n,
                      "original_size_source": ref.size_source},
        "contrast": {"spec": cfg.contrast, "split": cfg.split, "drawn": n, "original_size_source": con.size_source},
        "same_dataset": same,
        "image_size": cfg.image_size, "channels": cfg.channels, "chance": 0.5,
        "n_train": len(train), "n_test": len(test),
        "classifier": clf,
        "statistics": {"per_statistic": per, "all_statistics": together, "best": best, "note": size_note},
        "plots": {k: str(Path("plots") / Path(v).name) for k, v in files.items() if v},
        "seconds": round(time.perf_counter() - t0, 2), "draw_seconds": round(draw_s, 2),
    }


def image_summary(section: dict[str, Any] | None) -> dict[str, Any]:
    keys = ("accuracy", "ci_low", "ci_high", "n_test", "model", "best_statistic", "best_statistic_accuracy")
    if section is None:
        return dict.fromkeys(keys)
    clf = section["classifier"]
    best = section["statistics"]["best"]
    return {"accuracy": clf["accuracy"], "ci_low": clf["ci_low"], "ci_high": clf["ci_high"],
            "n_test": clf["n_test"], "model": clf["model"], "best_statistic": best,
            "best_statistic_accuracy": section["statistics"]["per_statistic"][best]["accuracy"] if best else None}
