"""Simple per-image statistics, and how well each one alone tells the two datasets apart.

A CNN that separates two datasets says *that* they differ; a logistic regression on one number per image
(mean colour, saturation, contrast, histogram entropy, original size) says *how*: when a single statistic
already reaches the CNN's accuracy, the datasets differ in something as plain as colour or size.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

DESCRIPTIONS = {
    "mean_red": "mean of the red channel (0-1)",
    "mean_green": "mean of the green channel (0-1)",
    "mean_blue": "mean of the blue channel (0-1)",
    "mean_grey": "mean brightness (0-1)",
    "saturation": "mean HSV saturation, (max - min) / max over the channels (0 for gray images)",
    "brightness_std": "standard deviation of brightness (ITU-R 601 luma) within the image",
    "grey_entropy": "entropy (bits) of the image's 256-bin brightness histogram",
    "original_shorter_side": "shorter side (px) of the image as it was before resizing",
    "original_aspect": "width / height of the image as it was before resizing",
}


def pixel_statistics(images: np.ndarray, batch: int = 2048) -> dict[str, np.ndarray]:
    """Statistics of uint8 images `[N, C, H, W]` (C = 1 or 3), one float64 value per image each."""
    n, c = int(images.shape[0]), int(images.shape[1])
    names = (["mean_red", "mean_green", "mean_blue", "saturation"] if c == 3 else ["mean_grey"]) + [
        "brightness_std", "grey_entropy"]
    out = {k: np.empty(n, dtype=np.float64) for k in names}
    for start in range(0, n, batch):
        x = images[start:start + batch].astype(np.float32) / 255.0
        sl = slice(start, start + len(x))
        if c == 3:
            for i, k in enumerate(("mean_red", "mean_green", "mean_blue")):
                out[k][sl] = x[:, i].mean(axis=(1, 2))
            mx, mn = x.max(axis=1), x.min(axis=1)
            sat = np.where(mx > 0, (mx - mn) / np.maximum(mx, 1e-12), 0.0)
            out["saturation"][sl] = sat.mean(axis=(1, 2))
            grey = 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]
        else:
            grey = x[:, 0]
            out["mean_grey"][sl] = grey.mean(axis=(1, 2))
        out["brightness_std"][sl] = grey.reshape(len(x), -1).std(axis=1)
        levels = np.clip(np.rint(grey * 255.0), 0, 255).astype(np.int64).reshape(len(x), -1)
        rows = np.arange(len(x), dtype=np.int64)[:, None] * 256
        counts = np.bincount((levels + rows).ravel(), minlength=256 * len(x)).reshape(len(x), 256)
        p = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            out["grey_entropy"][sl] = -np.where(p > 0, p * np.log2(p), 0.0).sum(axis=1)
    return out


def size_statistics(sizes: np.ndarray) -> dict[str, np.ndarray]:
    """From original (width, height) pairs `[N, 2]`: the shorter side and the aspect ratio."""
    w, h = sizes[:, 0].astype(np.float64), sizes[:, 1].astype(np.float64)
    return {"original_shorter_side": np.minimum(w, h), "original_aspect": w / np.maximum(h, 1.0)}


def separability(features: dict[str, np.ndarray], y: np.ndarray, train: np.ndarray, test: np.ndarray,
                 seed: int = 0) -> dict[str, Any]:
    """Held-out accuracy of a logistic regression on each statistic alone and on all of them together.

    Features are standardised on the training part; `y` is 0 (reference) / 1 (contrast); `train` and `test`
    index the same split the CNN used, so the accuracies are comparable with its own.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def fit(cols: Sequence[str]) -> dict[str, Any]:
        x = np.stack([features[c] for c in cols], axis=1)
        clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, random_state=seed))
        if np.ptp(x[train], axis=0).max() == 0:  # constant on the training part: nothing to learn
            majority = int(np.bincount(y[train], minlength=2).argmax())
            pred = np.full(len(test), majority)
        else:
            clf.fit(x[train], y[train])
            pred = clf.predict(x[test])
        return {"correct": int((pred == y[test]).sum()), "n_test": len(test)}

    per = {}
    for name in features:
        r = fit([name])
        ref, con = features[name][y == 0], features[name][y == 1]
        r.update(reference_mean=float(ref.mean()), reference_std=float(ref.std()),
                 contrast_mean=float(con.mean()), contrast_std=float(con.std()),
                 description=DESCRIPTIONS.get(name, name))
        per[name] = r
    together = fit(list(features)) if len(features) > 1 else None
    return {"per_statistic": per, "all_statistics": together}
