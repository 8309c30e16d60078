"""Small, fast run settings shared by the trainer tests: 4-class synthetic data at 16 px, tiny batches."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from imagenot.training.trainer import TrainConfig

SYNTH = {"num_classes": 4}


def quick_config(out: Path, model: str = "alexnet_s32", **changes) -> TrainConfig:
    base = dict(model=model, dataset="synthetic", dataset_options=dict(SYNTH), out=str(out), epochs=2,
                batch_size=16, image_size=16, seed=0, threads=1, progress=False, deterministic=True)
    base.update(changes)
    return TrainConfig(**base)


def imagenot_cmd() -> list[str]:
    return [sys.executable, "-m", "imagenot"]


def subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    return env




def _class_image(rng, label: int, classes: int, size: tuple[int, int]):
    """A learnable image: the class's colour, a class-dependent stripe, noise; `size` is (width, height)."""
    import numpy as np

    w, h = size
    colour = np.array([(60 + 190 * ((label * 7 + c * 3) % classes) / max(classes - 1, 1)) for c in range(3)])
    img = np.empty((h, w, 3), np.float64)
    img[:] = colour
    img[:, int(w * label / classes): int(w * (label + 1) / classes)] *= 0.4
    img += rng.normal(0, 18, img.shape)
    return img.clip(0, 255).astype(np.uint8)


def write_image_folder(root: Path, per_class: dict[str, int], classes: int = 3, sizes=((40, 30), (56, 48)),
                       fmt: str = "png", seed: int = 0) -> Path:
    """root/<split>/c<k>/<i>.<fmt> images of learnable classes, sizes cycling through `sizes` (w, h)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    for split, n in per_class.items():
        for c in range(classes):
            d = root / split / f"c{c}"
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                img = _class_image(rng, c, classes, sizes[i % len(sizes)])
                Image.fromarray(img).save(d / f"{i:04d}.{fmt}", quality=92)
    return root


def write_wds(root: Path, per_split: dict[str, int], classes: int = 3, shard_size: int = 10,
              sizes=((40, 30), (36, 44), (48, 40)), seed: int = 0) -> Path:
    """A dataset folder like `imagenot download` writes: <split>-%06d.tar shards of jpg + cls, dataset.json."""
    import io
    import json

    import numpy as np
    import webdataset as wds
    from PIL import Image

    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    card = {"name": root.name, "classes": [f"class{c}" for c in range(classes)], "splits": {}}
    for split, n in per_split.items():
        with wds.ShardWriter(str(root / f"{split}-%06d.tar"), maxcount=shard_size, verbose=0) as sink:
            for i in range(n):
                label = int(rng.integers(classes))
                buf = io.BytesIO()
                Image.fromarray(_class_image(rng, label, classes, sizes[i % len(sizes)])).save(buf, "JPEG", quality=92)
                sink.write({"__key__": f"{split}{i:05d}", "jpg": buf.getvalue(), "cls": str(label).encode()})
        shards = sorted(p.name for p in root.glob(f"{split}-*.tar"))
        card["splits"][split] = {"count": n, "shards": [{"file": s} for s in shards]}
    (root / "dataset.json").write_text(json.dumps(card))
    return root
