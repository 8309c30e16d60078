"""The demo's configuration: one frozen dataclass, with `default` and `quick` presets."""

from __future__ import annotations

from dataclasses import dataclass

SMALL_MODELS = ("alexnet_s32", "vgg_s32", "resnet_s32", "densenet_s32", "efficientnet_s32", "convnext_s32")


@dataclass(frozen=True)
class DemoConfig:
    out: str = "demo-out"
    seed: int = 0
    # contrast classes (SPEC section 6: WordNet nouns disjoint from Fashion-MNIST's classes)
    reference_classes: str = "fashion-mnist"
    root: str | None = "physical_entity.n.01"
    exclude_hierarchy: bool = True  # a stricter contrast than the released ImageNot list: no garments at all
    # mining the Open Clip Art Library
    corpus: str = "openclipart"
    encoder: str = "all-MiniLM-L6-v2"
    threshold: float | None = None  # None: the encoder's default
    num_classes: int = 40
    min_per_class: int = 20
    max_per_class: int = 200
    val_per_class: int = 10
    # materialisation
    image_size: int = 32
    near_dup_distance: int = 2
    min_images_per_class: int = 15
    # training
    models: tuple[str, ...] = SMALL_MODELS
    recipe: str = "uniform"
    epochs: int = 3  # on the reference
    contrast_epochs: int = 15  # clipart-not is about 5x smaller: more passes for a comparable step count
    batch_size: int = 128
    reference: str = "fashion-mnist"
    reference_limit_per_class: int = 300
    finetune_epochs: int = 2
    finetune_mode: str = "full"
    transfer: str = "animal-mnist"
    transfer_limit_per_class: int = 200
    threads: int | None = None


PRESETS: dict[str, dict[str, object]] = {
    "default": {},
    # The same path with tiny budgets: what the test suite runs end to end.
    "quick": {
        "num_classes": 8, "min_per_class": 20, "max_per_class": 40,
        "epochs": 1, "contrast_epochs": 1, "reference_limit_per_class": 40, "finetune_epochs": 1,
        "transfer_limit_per_class": 20,
    },
}
