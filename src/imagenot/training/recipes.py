"""Training recipes: named, frozen hyper-parameter sets.

A model-ranking study is only as fair as its recipes. `uniform` gives every architecture the same recipe (the
study's default); `torchvision` reproduces the per-family recipes of torchvision's
references/classification README so that a reader can check how much a ranking owes to tuning. Exceptions for
single models live in `OVERRIDES`, one table, so that every deviation from a recipe is visible in one place
instead of being scattered through code branches.

Schedules are stated relative to the run's length (warm-up and step milestones as fractions of all steps), so
a recipe means the same thing for a 3-epoch CPU run and a 600-epoch cluster run. Learning rates are stated
for `reference_batch_size` and scaled to the actual global batch (`lr_scaling`), as in Goyal et al. 2017.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from imagenot.config import ConfigError, from_dict, to_dict

OPTIMIZERS = ("sgd", "adamw", "rmsprop")
SCHEDULES = ("cosine", "step", "exponential", "constant")
AUGMENTS = ("crop_flip", "flip", "none")
LR_SCALINGS = ("linear", "sqrt", "none")


@dataclass(frozen=True)
class Recipe:
    name: str = "uniform"
    optimizer: str = "adamw"
    lr: float = 2e-3
    reference_batch_size: int = 256
    lr_scaling: str = "sqrt"
    momentum: float = 0.9
    nesterov: bool = False
    betas: tuple[float, ...] = (0.9, 0.999)
    rmsprop_alpha: float = 0.9
    rmsprop_eps: float = 0.0316
    weight_decay: float = 0.05
    # Weight decay for normalisation weights and all biases; 0 keeps them out of the decay (the usual choice).
    norm_weight_decay: float = 0.0
    schedule: str = "cosine"
    warmup_fraction: float = 0.05
    warmup_start_factor: float = 0.01
    step_milestones: tuple[float, ...] = (1 / 3, 2 / 3)
    step_gamma: float = 0.1
    # Cosine: lr at the end as a fraction of the peak; exponential: the same, reached by a smooth decay.
    final_lr_factor: float = 0.0
    label_smoothing: float = 0.1
    clip_grad_norm: float | None = None
    ema_decay: float | None = None
    ema_every_steps: int = 1
    # None keeps the model's own dropout; a number sets every nn.Dropout's p (0 removes dropout).
    dropout: float | None = None
    augment: str = "crop_flip"
    crop_padding: int = 4
    epochs: int = 10
    batch_size: int = 128

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"recipe {self.name}: optimizer {self.optimizer!r} not one of {OPTIMIZERS}")
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"recipe {self.name}: schedule {self.schedule!r} not one of {SCHEDULES}")
        if self.augment not in AUGMENTS:
            raise ConfigError(f"recipe {self.name}: augment {self.augment!r} not one of {AUGMENTS}")
        if self.lr_scaling not in LR_SCALINGS:
            raise ConfigError(f"recipe {self.name}: lr_scaling {self.lr_scaling!r} not one of {LR_SCALINGS}")
        if not self.lr > 0 or self.epochs < 1 or self.batch_size < 1:
            raise ConfigError(f"recipe {self.name}: lr, epochs and batch_size must be positive")
        if not 0 <= self.warmup_fraction < 1:
            raise ConfigError(f"recipe {self.name}: warmup_fraction must be in [0, 1)")

    def scaled_lr(self, global_batch: int) -> float:
        """The peak lr for this global batch size (the recipe states it for `reference_batch_size`)."""
        ratio = global_batch / self.reference_batch_size
        if self.lr_scaling == "linear":
            return self.lr * ratio
        if self.lr_scaling == "sqrt":
            return self.lr * math.sqrt(ratio)
        return self.lr

    def lr_factor(self, step: int, total_steps: int) -> float:
        """Multiplier of the peak lr at optimizer step `step` (0-based) of `total_steps`."""
        total = max(total_steps, 1)
        warm = int(round(self.warmup_fraction * total))
        if warm > 0 and step < warm:
            return self.warmup_start_factor + (1 - self.warmup_start_factor) * step / warm
        progress = (step - warm) / max(total - warm, 1)
        if self.schedule == "cosine":
            return self.final_lr_factor + (1 - self.final_lr_factor) * 0.5 * (1 + math.cos(math.pi * progress))
        if self.schedule == "step":
            passed = sum(1 for m in self.step_milestones if step / total >= m)
            return self.step_gamma**passed
        if self.schedule == "exponential":
            floor = max(self.final_lr_factor, 1e-8)
            return floor**progress
        return 1.0


# The fair default: one recipe for every architecture. AdamW because it trains every family of the study
# (AlexNet and VGG without batch norm included) stably from the same lr, which SGD at a single lr does not.
UNIFORM = Recipe()

_TV_SGD = Recipe(
    name="torchvision", optimizer="sgd", lr=0.1, reference_batch_size=256, lr_scaling="linear",
    momentum=0.9, weight_decay=1e-4, norm_weight_decay=1e-4, schedule="step", warmup_fraction=0.0,
    step_milestones=(1 / 3, 2 / 3), step_gamma=0.1, label_smoothing=0.0, epochs=90, batch_size=256,
)

# torchvision references/classification README, per family (lowercase family names).
TORCHVISION_FAMILIES: dict[str, Recipe] = {
    "resnet": _TV_SGD,
    "resnext": _TV_SGD,
    "wide_resnet": _TV_SGD,
    "densenet": _TV_SGD,
    "inception": _TV_SGD,
    "googlenet": _TV_SGD,
    "alexnet": dataclasses.replace(_TV_SGD, lr=0.01),
    "vgg": dataclasses.replace(_TV_SGD, lr=0.01),
    "mobilenet": dataclasses.replace(
        _TV_SGD, optimizer="rmsprop", lr=0.064, reference_batch_size=1024, weight_decay=1e-5,
        norm_weight_decay=1e-5, schedule="exponential", final_lr_factor=0.973**300, epochs=600,
        batch_size=128,
    ),
    "efficientnet": dataclasses.replace(
        _TV_SGD, lr=0.5, reference_batch_size=1024, weight_decay=2e-5, norm_weight_decay=0.0,
        schedule="cosine", warmup_fraction=5 / 600, label_smoothing=0.1, ema_decay=0.9999, epochs=600,
        batch_size=128,
    ),
    "convnext": Recipe(
        name="torchvision", optimizer="adamw", lr=1e-3, reference_batch_size=1024, lr_scaling="linear",
        weight_decay=0.05, norm_weight_decay=0.0, schedule="cosine", warmup_fraction=5 / 600,
        label_smoothing=0.1, ema_decay=0.9999, epochs=600, batch_size=128,
    ),
    "vit": Recipe(
        name="torchvision", optimizer="adamw", lr=3e-3, reference_batch_size=4096, lr_scaling="linear",
        weight_decay=0.3, norm_weight_decay=0.0, schedule="cosine", warmup_fraction=30 / 300,
        warmup_start_factor=0.033, label_smoothing=0.11, clip_grad_norm=1.0, ema_decay=0.99998, epochs=300,
        batch_size=512,
    ),
}

# The README's batch sizes are per GPU (x 8 GPUs, or more for ViT); the default global batch here is the one the
# learning rate was stated for, and another --batch-size rescales the lr (lr_scaling).
TORCHVISION_FAMILIES = {
    fam: dataclasses.replace(r, batch_size=r.reference_batch_size) for fam, r in TORCHVISION_FAMILIES.items()
}

FINETUNE = Recipe(
    name="finetune", optimizer="adamw", lr=5e-4, reference_batch_size=256, lr_scaling="sqrt",
    weight_decay=1e-4, norm_weight_decay=0.0, schedule="cosine", warmup_fraction=0.1,
    label_smoothing=0.0, epochs=3, batch_size=128,
)
# Only the new head trains: a higher lr, no decay.
FINETUNE_LINEAR = dataclasses.replace(FINETUNE, name="finetune-linear", lr=5e-3, weight_decay=0.0)

PRESETS: dict[str, Recipe] = {
    "uniform": UNIFORM,
    "finetune": FINETUNE,
    "finetune-linear": FINETUNE_LINEAR,
}
RECIPE_NAMES = ("uniform", "torchvision", "finetune", "finetune-linear")

# Every exception to a recipe for a particular model: (recipe name, model-name glob) -> field changes,
# applied in table order after the preset or family recipe. Keep this the only place where models differ.
OVERRIDES: tuple[tuple[str, str, Mapping[str, Any]], ...] = (
    # torchvision README: MobileNetV2 trains with SGD and a per-epoch exponential decay.
    ("torchvision", "mobilenet_v2*", {"optimizer": "sgd", "lr": 0.045, "reference_batch_size": 256,
                                      "weight_decay": 4e-5, "norm_weight_decay": 4e-5,
                                      "final_lr_factor": 0.98**300, "epochs": 300, "batch_size": 256}),
)


def _family_key(family: str) -> str:
    key = family.lower().replace("-", "_").replace(" ", "_")
    for name in sorted(TORCHVISION_FAMILIES, key=len, reverse=True):
        if key.startswith(name):
            return name
    return key


def get_recipe(
    name: str, model: str = "", family: str = "", overrides: Mapping[str, Any] | None = None
) -> Recipe:
    """The recipe `name` for `model` (of `family`), with the override table and then `overrides` applied."""
    if name == "torchvision":
        fam = _family_key(family or model)
        base = TORCHVISION_FAMILIES.get(fam)
        if base is None:
            base = _TV_SGD  # torchvision's train.py defaults
    elif name in PRESETS:
        base = PRESETS[name]
    else:
        raise ConfigError(f"unknown recipe {name!r}; known: {', '.join(RECIPE_NAMES)}")
    data = to_dict(base)
    for recipe_name, pattern, changes in OVERRIDES:
        if recipe_name == name and model and fnmatch.fnmatchcase(model, pattern):
            data.update(changes)
    if overrides:
        data.update(overrides)
    data["name"] = name
    return from_dict(Recipe, data)
