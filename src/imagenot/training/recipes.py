"""Training recipes: named, frozen hyper-parameter sets, and the one table of per-model exceptions.

A model-ranking study is only as fair as its recipes. `uniform` gives every architecture the same recipe (the
study's default); `torchvision` reproduces the recipes of torchvision's references/classification README so
that a reader can check how much a ranking owes to tuning. Every deviation from a base recipe for a particular
model lives in `OVERRIDES`, one table, each row quoting the README command it reproduces (`source`), so that
the table can be audited against the README (tests/training/test_recipes.py parses the quoted flags) instead
of being scattered through code branches.

Conventions follow torchvision's `train.py`:

* schedules are stated in epochs (`--lr-step-size 30` of `--epochs 90`, `--lr-warmup-epochs 5`), and the
  torchvision rows change the lr once per epoch (`lr_update="epoch"`, as train.py steps its scheduler);
  the `uniform` recipe instead warms up over a fraction of the run and decays smoothly per step, so that it
  means the same for a 3-epoch CPU run and a 600-epoch cluster run;
* `batch_size` is the global batch over all processes (the README's per-GPU `--batch-size` times its 8
  GPUs); the lr is stated for `reference_batch_size` and scaled to the actual global batch (`lr_scaling`);
* `norm_weight_decay` / `bias_weight_decay` of None mean "same as weight_decay", train.py's default;
* EMA (`ema_decay`, `ema_steps`) uses train.py's adjustment: the model is averaged every `ema_steps`
  optimizer steps (counted over the run; train.py counts within each epoch) with decay
  `1 - min(1, (1 - ema_decay) * global_batch * ema_steps / epochs)`, restarting during warm-up;
* image sizes and interpolations of None mean "the model's torchvision weights decide"
  (`imagenot.models.weights.transform_defaults`), so a recipe row only states what its command states.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from imagenot.config import ConfigError, check_choices, from_dict, option, to_dict

Optimizer = Literal["sgd", "adamw", "rmsprop"]
Schedule = Literal["cosine", "linear", "step", "exponential", "constant"]
Augment = Literal["crop_flip", "flip", "none"]
LrScaling = Literal["linear", "sqrt", "none"]
AutoAugment = Literal["ta_wide", "ra", "augmix", "imagenet", "cifar10", "svhn"]
Interpolation = Literal["bilinear", "bicubic", "nearest"]


@dataclass(frozen=True)
class Recipe:
    name: str = option("uniform", help="recipe name (uniform, uniform-small, torchvision, finetune, "
                                                "finetune-linear)")
    optimizer: Optimizer = option("adamw", help="sgd, adamw or rmsprop (torchvision's --opt)")
    lr: float = option(2e-3, help="peak learning rate at reference_batch_size (scaled to the actual batch)")
    reference_batch_size: int = option(256, help="global batch the lr is stated for")
    lr_scaling: LrScaling = option("sqrt", help="how the lr follows the global batch: linear, sqrt or none")
    momentum: float = option(0.9, help="SGD / RMSprop momentum")
    nesterov: bool = option(False, help="Nesterov momentum for SGD")
    betas: tuple[float, ...] = option((0.9, 0.999), help="AdamW betas")
    rmsprop_alpha: float = option(0.9, help="RMSprop smoothing constant (train.py: 0.9)")
    rmsprop_eps: float = option(0.0316, help="RMSprop epsilon (train.py: 0.0316)")
    weight_decay: float = option(0.05, help="weight decay of weights (torchvision's --wd)")
    norm_weight_decay: float | None = option(
        0.0, help="weight decay of normalisation-layer parameters (and other 1-D non-bias parameters); "
                  "None: weight_decay (torchvision's default)")
    bias_weight_decay: float | None = option(0.0, help="weight decay of biases; None: weight_decay")
    schedule: Schedule = option("cosine", help="lr schedule after warm-up: cosine, linear (to final_lr_factor), step, "
                                                     "exponential, constant")
    lr_update: Literal["step", "epoch"] = option(
        "step", help="change the lr every optimizer step (smooth) or once per epoch (torchvision's train.py)")
    warmup_epochs: float = option(0.0, help="linear lr warm-up length in epochs (torchvision's --lr-warmup-epochs)")
    warmup_fraction: float = option(
        0.05, help="linear lr warm-up as a fraction of the run (used when warmup_epochs is 0)")
    warmup_start_factor: float = option(0.01, help="lr factor at the start of warm-up (--lr-warmup-decay)")
    lr_step_size: int = option(30, help="step schedule: multiply the lr by lr_gamma every this many epochs")
    lr_gamma: float = option(0.1, help="step / exponential schedule: lr factor per step / per epoch")
    final_lr_factor: float = option(0.0, help="cosine / linear schedule: lr at the end as a fraction of the "
                                                                 "peak")
    label_smoothing: float = option(0.1, help="label smoothing of the cross-entropy loss")
    clip_grad_norm: float | None = option(None, help="clip the gradient norm to this value (None: off)")
    ema_decay: float | None = option(None, help="EMA of weights with this decay (torchvision's "
                                                "--model-ema-decay; None: no EMA)")
    ema_steps: int = option(32, help="EMA update every this many optimizer steps (--model-ema-steps)")
    dropout: float | None = option(None, help="set every dropout layer's p (None: the model's own)")
    augment: Augment = option("crop_flip", help="batched pipeline: crop with padding + flip, flip, or none")
    crop_padding: int = option(4, help="batched pipeline: padding of the random crop, px")
    auto_augment: AutoAugment | None = option(
        None, help="per-sample pipeline: auto-augment policy (ta_wide, ra, augmix, imagenet, cifar10, svhn)")
    ra_magnitude: int = option(9, help="RandAugment magnitude (torchvision's --ra-magnitude)")
    augmix_severity: int = option(3, help="AugMix severity (torchvision's --augmix-severity)")
    random_erase: float = option(0.0, help="per-sample pipeline: RandomErasing probability")
    mixup_alpha: float = option(0.0, help="batch MixUp alpha (0: off)")
    cutmix_alpha: float = option(0.0, help="batch CutMix alpha (0: off); with MixUp one of the two per batch")
    ra_reps: int = option(1, help="repeated augmentation: each sampled image this many times per epoch "
                                  "(torchvision's --ra-sampler --ra-reps; 1: off)")
    train_crop_size: int | None = option(None, help="RandomResizedCrop size (None: the model's weights')")
    val_resize_size: int | None = option(None, help="evaluation Resize of the shorter side (None: weights')")
    val_crop_size: int | None = option(None, help="evaluation CenterCrop size (None: the weights')")
    train_interpolation: Interpolation | None = option(None, help="training resize interpolation (None: bilinear)")
    val_interpolation: Interpolation | None = option(None, help="evaluation resize interpolation "
                                                                "(None: the weights')")
    epochs: int = option(10, help="epochs")
    batch_size: int = option(128, help="global batch size")
    source: str = option("", help="where the recipe comes from (the README command a torchvision row quotes)")

    def __post_init__(self) -> None:
        check_choices(self, prefix=f"recipe {self.name}: ")  # optimizer, schedule, augment, ... (the Literals)
        if not self.lr > 0 or self.epochs < 1 or self.batch_size < 1:
            raise ConfigError(f"recipe {self.name}: lr, epochs and batch_size must be positive")
        if not 0 <= self.warmup_fraction < 1 or self.warmup_epochs < 0:
            raise ConfigError(f"recipe {self.name}: warmup_fraction must be in [0, 1), warmup_epochs >= 0")
        if self.lr_step_size < 1 or self.ema_steps < 1 or self.ra_reps < 1:
            raise ConfigError(f"recipe {self.name}: lr_step_size, ema_steps and ra_reps must be at least 1")
        if not 0 <= self.random_erase <= 1 or self.mixup_alpha < 0 or self.cutmix_alpha < 0:
            raise ConfigError(f"recipe {self.name}: random_erase must be in [0, 1], mixup/cutmix alpha >= 0")
        for fname in ("train_crop_size", "val_resize_size", "val_crop_size"):
            v = getattr(self, fname)
            if v is not None and v < 1:
                raise ConfigError(f"recipe {self.name}: {fname} must be positive, got {v}")
        if (self.val_crop_size is not None and self.val_resize_size is not None
                and self.val_crop_size > self.val_resize_size):
            raise ConfigError(f"recipe {self.name}: val_crop_size {self.val_crop_size} is larger than the "
                              f"resized image (val_resize_size {self.val_resize_size}); the centre crop would pad")

    def scaled_lr(self, global_batch: int) -> float:
        """The peak lr for this global batch size (the recipe states it for `reference_batch_size`)."""
        ratio = global_batch / self.reference_batch_size
        if self.lr_scaling == "linear":
            return self.lr * ratio
        if self.lr_scaling == "sqrt":
            return self.lr * math.sqrt(ratio)
        return self.lr

    def warmup_length(self, epochs: int) -> float:
        """Warm-up length in epochs."""
        return float(self.warmup_epochs) if self.warmup_epochs > 0 else self.warmup_fraction * epochs

    def lr_factor(self, epoch_pos: float, epochs: int) -> float:
        """Multiplier of the peak lr after `epoch_pos` epochs (fractional) of an `epochs`-epoch run.

        With `lr_update="epoch"` the position is floored to whole epochs, as train.py steps its schedulers
        once per epoch. After warm-up the main schedule counts epochs from the end of warm-up (train.py's
        SequentialLR), so a step schedule multiplies by `lr_gamma` at epochs warm + k * lr_step_size.
        """
        pos = math.floor(epoch_pos + 1e-9) if self.lr_update == "epoch" else float(epoch_pos)
        warm = self.warmup_length(epochs)
        if warm > 0 and pos < warm:
            return self.warmup_start_factor + (1 - self.warmup_start_factor) * pos / warm
        t = pos - warm
        if self.schedule == "cosine":
            span = max(epochs - warm, 1e-9)
            progress = min(t / span, 1.0)
            return self.final_lr_factor + (1 - self.final_lr_factor) * 0.5 * (1 + math.cos(math.pi * progress))
        if self.schedule == "linear":
            progress = min(t / max(epochs - warm, 1e-9), 1.0)
            return self.final_lr_factor + (1 - self.final_lr_factor) * (1 - progress)
        if self.schedule == "step":
            return self.lr_gamma ** math.floor(t / self.lr_step_size + 1e-9)
        if self.schedule == "exponential":
            return self.lr_gamma ** t
        return 1.0

    def ema_update_decay(self, global_batch: int, epochs: int) -> float:
        """The decay of one EMA update (every `ema_steps` steps), train.py's batch/epoch adjustment."""
        if self.ema_decay is None:
            raise ValueError("recipe has no EMA")
        adjust = global_batch * self.ema_steps / epochs
        alpha = min(1.0, (1.0 - self.ema_decay) * adjust)
        return 1.0 - alpha


# The fair default: one recipe for every architecture. AdamW because it trains every family of the study
# (AlexNet and VGG without batch norm included) stably from the same lr, which SGD at a single lr does not.
UNIFORM = Recipe(source="imagenot's uniform recipe (one recipe for every model)")

# The same idea for the small-input (32 px) variants on small datasets, chosen by the demo's budget sweep
# (scripts/demo_budget_sweep.py, docs/demo_budget.md) for every model alike, never per model: a short CPU budget
# wants a higher peak lr, a long warm-up (a quarter of the run, so AlexNet and VGG without batch norm start
# stably at that lr) and a linear decay to exactly 0, which at 30,000 Fashion-MNIST image-passes gave ResNet
# 87.2% where the cosine `uniform` gave 80.8%. Flip only: Fashion-MNIST's 28 px digits upscaled to 32 px lose
# more to a padded crop than they gain (84.2% with a 2 px crop).
UNIFORM_SMALL = dataclasses.replace(
    UNIFORM, name="uniform-small", lr=4e-3, reference_batch_size=128, warmup_fraction=0.25, schedule="linear",
    final_lr_factor=0.0, augment="flip",
    source="imagenot's uniform recipe for small-input models on small datasets (one recipe for every model; "
           "docs/demo_budget.md)")

# torchvision's references/classification README: "Except otherwise noted, all models have been trained on 8x
# V100 GPUs with the following parameters" (and train.py's argparse defaults for everything else).
TORCHVISION_DEFAULTS = Recipe(
    name="torchvision", optimizer="sgd", lr=0.1, reference_batch_size=256, lr_scaling="linear",
    momentum=0.9, weight_decay=1e-4, norm_weight_decay=None, bias_weight_decay=None, schedule="step",
    lr_update="epoch", warmup_epochs=0.0, warmup_fraction=0.0, warmup_start_factor=0.01, lr_step_size=30,
    lr_gamma=0.1, label_smoothing=0.0, ema_decay=None, ema_steps=32, epochs=90, batch_size=256,
    source="torchvision references/classification README defaults (8x V100 GPUs): --batch_size 32 --epochs 90 "
           "--lr 0.1 --momentum 0.9 --wd 1e-4 --lr-step-size 30 --lr-gamma 0.1",
)

FINETUNE = Recipe(
    name="finetune", optimizer="adamw", lr=5e-4, reference_batch_size=256, lr_scaling="sqrt",
    weight_decay=1e-4, norm_weight_decay=0.0, schedule="cosine", warmup_fraction=0.1,
    label_smoothing=0.0, epochs=3, batch_size=128, source="imagenot's fine-tuning recipe",
)
# Only the new head trains: a higher lr, no decay.
FINETUNE_LINEAR = dataclasses.replace(FINETUNE, name="finetune-linear", lr=5e-3, weight_decay=0.0)

PRESETS: dict[str, Recipe] = {
    "uniform": UNIFORM,
    "uniform-small": UNIFORM_SMALL,
    "torchvision": TORCHVISION_DEFAULTS,
    "finetune": FINETUNE,
    "finetune-linear": FINETUNE_LINEAR,
}
RECIPE_NAMES: tuple[str, ...] = tuple(PRESETS)  # the preset names, in declaration order


@dataclass(frozen=True)
class Override:
    """One row: for `recipe` and models matching any glob in `models`, these field `changes`.

    `source` quotes the README command the row reproduces, verbatim; `substitute` gives values for its
    `$VARIABLES` per model glob (e.g. EfficientNet-V2's `$TRAIN_SIZE`); `from_weights` names size fields the
    README says to take from each model's weights entry rather than from the command; `note` says anything
    else a reader needs to check the row.
    """

    recipe: str
    models: tuple[str, ...]
    changes: Mapping[str, Any]
    source: str = ""
    substitute: Mapping[str, str] = dataclasses.field(default_factory=dict)
    from_weights: tuple[str, ...] = ()
    note: str = ""

    def matches(self, recipe: str, model: str) -> bool:
        return recipe == self.recipe and any(fnmatch.fnmatchcase(model, g) for g in self.models)


_TV_RA = {"ra_reps": 4}
_TV_EMA = {"ema_decay": 0.99998, "ema_steps": 32}
_TV_WARM5 = {"warmup_epochs": 5.0, "warmup_start_factor": 0.01}

# Every exception to a recipe for a particular model, first match wins. `changes` restate, as Recipe fields,
# exactly the flags of `source` that differ from TORCHVISION_DEFAULTS (batch sizes are the per-GPU
# --batch-size times --nproc_per_node). Keep this the only place where models differ.
OVERRIDES: tuple[Override, ...] = (
    Override(
        "torchvision", ("alexnet", "vgg11", "vgg13", "vgg16", "vgg19"), {"lr": 0.01},
        source="torchrun --nproc_per_node=8 train.py --model $MODEL --lr 1e-2",
        note="README 'AlexNet and VGG': no batch norm, so the default --lr 0.1 is too high; vgg*_bn use the "
             "defaults",
    ),
    Override(
        "torchvision", ("inception_v3",), {},
        source="torchrun --nproc_per_node=8 train.py --model inception_v3 --test-only "
               "--weights Inception_V3_Weights.IMAGENET1K_V1",
        note="README 'Inception V3': weights ported from the paper, no training command; it trains with the "
             "defaults and is evaluated at its weights' sizes (342/299)",
    ),
    Override(
        "torchvision", ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152"), {},
        source="torchrun --nproc_per_node=8 train.py --model $MODEL",
    ),
    Override(
        "torchvision", ("densenet121", "densenet161", "densenet169", "densenet201"), {},
        source="--batch_size 32 --epochs 90 --lr 0.1 --momentum 0.9 --wd 1e-4 --lr-step-size 30 --lr-gamma 0.1",
        note="the README has no DenseNet section: its table of defaults ('Except otherwise noted, all models "
             "have been trained on 8x V100 GPUs with the following parameters') applies",
    ),
    Override(
        "torchvision", ("mobilenet_v2",),
        {"epochs": 300, "lr": 0.045, "weight_decay": 4e-5, "lr_step_size": 1, "lr_gamma": 0.98},
        source="torchrun --nproc_per_node=8 train.py --model mobilenet_v2 --epochs 300 --lr 0.045 --wd 0.00004 "
               "--lr-step-size 1 --lr-gamma 0.98",
    ),
    Override(
        "torchvision", ("mobilenet_v3_large", "mobilenet_v3_small"),
        {"epochs": 600, "optimizer": "rmsprop", "batch_size": 1024, "reference_batch_size": 1024, "lr": 0.064,
         "weight_decay": 1e-5, "lr_step_size": 2, "lr_gamma": 0.973, "auto_augment": "imagenet",
         "random_erase": 0.2},
        source="torchrun --nproc_per_node=8 train.py --model $MODEL --epochs 600 --opt rmsprop --batch-size 128 "
               "--lr 0.064 --wd 0.00001 --lr-step-size 2 --lr-gamma 0.973 --auto-augment imagenet "
               "--random-erase 0.2",
        note="README: then the parameters of the last 3 checkpoints that improved Acc@1 were averaged (not "
             "reproduced)",
    ),
    *(
        Override(
            "torchvision", (model,),
            {"batch_size": 1024, "reference_batch_size": 1024, "lr": 0.5, "schedule": "cosine", **_TV_WARM5,
             "auto_augment": "ta_wide", "epochs": 600, "random_erase": 0.1, "label_smoothing": 0.1,
             "mixup_alpha": 0.2, "cutmix_alpha": 1.0, "weight_decay": 2e-5, "norm_weight_decay": 0.0,
             "train_crop_size": train, **_TV_EMA, "val_crop_size": val, "val_resize_size": val, **_TV_RA},
            source="torchrun --nproc_per_node=8 train.py --model $MODEL --batch-size 128 --lr 0.5 "
                   "--lr-scheduler cosineannealinglr --lr-warmup-epochs 5 --lr-warmup-method linear "
                   "--auto-augment ta_wide --epochs 600 --random-erase 0.1 --label-smoothing 0.1 "
                   "--mixup-alpha 0.2 --cutmix-alpha 1.0 --weight-decay 0.00002 --norm-weight-decay 0.0 "
                   "--train-crop-size $TRAIN_SIZE --model-ema --val-crop-size $EVAL_SIZE "
                   "--val-resize-size $EVAL_SIZE --ra-sampler --ra-reps 4",
            substitute={"TRAIN_SIZE": str(train), "EVAL_SIZE": str(val)},
            note=note,
        )
        for model, train, val, note in (
            ("efficientnet_v2_s", 300, 384, "README: the Small variant had a $TRAIN_SIZE of 300 and $EVAL_SIZE 384"),
            ("efficientnet_v2_m", 384, 480, "README: the Medium variant 384 and 480"),
            ("efficientnet_v2_l", 384, 480,
             "README: the Large variant's weights are ported from the paper; trained here with the V2 command "
             "at the paper's final training size 384 and its weights' evaluation size 480"),
        )
    ),
    *(
        Override(
            "torchvision", (model,),
            {"epochs": 300, "batch_size": 4096, "reference_batch_size": 4096, "optimizer": "adamw",
             "lr": 0.003, "weight_decay": 0.3, "schedule": "cosine", "warmup_epochs": 30.0,
             "warmup_start_factor": 0.033, "label_smoothing": 0.11, "mixup_alpha": 0.2, "auto_augment": policy,
             "clip_grad_norm": 1.0, "ra_reps": 3, "cutmix_alpha": 1.0, **_TV_EMA},
            source=f"torchrun --nproc_per_node=8 train.py --model {model} --epochs 300 --batch-size 512 --opt "
                   f"adamw --lr 0.003 --wd 0.3 --lr-scheduler cosineannealinglr --lr-warmup-method linear "
                   f"--lr-warmup-epochs 30 --lr-warmup-decay 0.033 --amp --label-smoothing 0.11 "
                   f"--mixup-alpha 0.2 --auto-augment {policy} --clip-grad-norm 1 --ra-sampler "
                   f"--cutmix-alpha 1.0 --model-ema",
            note="README: --ra-sampler without --ra-reps repeats 3 times (train.py's default)",
        )
        for model, policy in (("vit_b_16", "ra"), ("vit_b_32", "imagenet"), ("vit_l_32", "ra"))
    ),
    Override(
        "torchvision", ("vit_l_16",),
        {"epochs": 600, "batch_size": 1024, "reference_batch_size": 1024, "lr": 0.5, "schedule": "cosine",
         **_TV_WARM5, "label_smoothing": 0.1, "mixup_alpha": 0.2, "auto_augment": "ta_wide",
         "random_erase": 0.1, "weight_decay": 2e-5, "norm_weight_decay": 0.0, "clip_grad_norm": 1.0,
         "ra_reps": 3, "cutmix_alpha": 1.0, **_TV_EMA, "val_resize_size": 232},
        source="torchrun --nproc_per_node=8 train.py --model vit_l_16 --epochs 600 --batch-size 128 --lr 0.5 "
               "--lr-scheduler cosineannealinglr --lr-warmup-method linear --lr-warmup-epochs 5 "
               "--label-smoothing 0.1 --mixup-alpha 0.2 --auto-augment ta_wide --random-erase 0.1 "
               "--weight-decay 0.00002 --norm-weight-decay 0.0 --clip-grad-norm 1 --ra-sampler "
               "--cutmix-alpha 1.0 --model-ema --val-resize-size 232",
    ),
    Override(
        "torchvision", ("convnext_tiny", "convnext_small", "convnext_base", "convnext_large"),
        {"batch_size": 1024, "reference_batch_size": 1024, "optimizer": "adamw", "lr": 1e-3,
         "schedule": "cosine", **_TV_WARM5, "auto_augment": "ta_wide", "epochs": 600, "random_erase": 0.1,
         "label_smoothing": 0.1, "mixup_alpha": 0.2, "cutmix_alpha": 1.0, "weight_decay": 0.05,
         "norm_weight_decay": 0.0, "train_crop_size": 176, **_TV_EMA, **_TV_RA},
        source="torchrun --nproc_per_node=8 train.py --model $MODEL --batch-size 128 --opt adamw --lr 1e-3 "
               "--lr-scheduler cosineannealinglr --lr-warmup-epochs 5 --lr-warmup-method linear "
               "--auto-augment ta_wide --epochs 600 --random-erase 0.1 --label-smoothing 0.1 --mixup-alpha 0.2 "
               "--cutmix-alpha 1.0 --weight-decay 0.05 --norm-weight-decay 0.0 --train-crop-size 176 "
               "--model-ema --val-resize-size 232 --ra-sampler --ra-reps 4",
        from_weights=("val_resize_size",),
        note="README: 'each variant had its --val-resize-size optimized in a post-training step, see their "
             "Weights entry for their exact value' (convnext_large: 232, as the command)",
    ),
)

# A small-input variant under the torchvision recipe takes the row of its family's study architecture.
FAMILY_ROWS: dict[str, str] = {
    "alexnet": "alexnet", "vgg": "vgg19", "inception": "inception_v3", "resnet": "resnet152",
    "densenet": "densenet161", "mobilenet": "mobilenet_v3_large", "efficientnet": "efficientnet_v2_l",
    "vit": "vit_b_16", "convnext": "convnext_large",
}


def override_for(recipe: str, model: str, family: str = "") -> Override | None:
    """The table row that applies to `model` (of `family`) under `recipe`, or None."""
    for row in OVERRIDES:
        if model and row.matches(recipe, model):
            return row
    if not model or _is_full_size(model):
        return None  # full-size models without a row of their own take the recipe as it is
    key = (family or "").lower().replace("-", "_").replace(" ", "_")
    representative = FAMILY_ROWS.get(key)
    if representative:
        for row in OVERRIDES:
            if row.matches(recipe, representative):
                return row
    return None


def _is_full_size(model: str) -> bool:
    from imagenot.models.info import entry
    from imagenot.registry import UnknownNameError

    try:
        return bool(entry(model).info.full_size)
    except UnknownNameError:
        return True


def get_recipe(
    name: str, model: str = "", family: str = "", overrides: Mapping[str, Any] | None = None
) -> Recipe:
    """The recipe `name` for `model` (of `family`), with the override table and then `overrides` applied."""
    if name not in PRESETS:
        raise ConfigError(f"unknown recipe {name!r}; known: {', '.join(RECIPE_NAMES)}")
    data = to_dict(PRESETS[name])
    row = override_for(name, model, family)
    if row is not None:
        data.update(row.changes)
        data["source"] = row.source
    if overrides:
        data.update(overrides)
    data["name"] = name
    return from_dict(Recipe, data)
