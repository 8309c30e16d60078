"""The demo's configuration: one frozen dataclass, with `default` and `quick` presets.

Every setting is checked when the config is built (before any stage runs), so a bad value fails in a second
rather than after minutes of mining.
"""

from __future__ import annotations

from dataclasses import dataclass

from imagenot.config import ConfigError, option

SMALL_MODELS = ("alexnet_s32", "vgg_s32", "resnet_s32", "densenet_s32", "efficientnet_s32", "convnext_s32")


@dataclass(frozen=True)
class DemoConfig:
    out: str = option("demo-out", help="output folder: every stage writes below it", path=True)
    seed: int = option(0, help="seed of selection, splits, subsampling and training")
    # contrast classes (SPEC section 6: WordNet nouns disjoint from Fashion-MNIST's classes)
    reference_classes: str = option("fashion-mnist", help="the reference class set the contrast avoids",
                                    group="contrast classes")
    root: str | None = option("physical_entity.n.01", help="only hyponyms of this synset become classes",
                              group="contrast classes")
    exclude_hierarchy: bool = option(True, help="a stricter contrast than the released ImageNot list: no "
                                     "ancestors or descendants of reference classes", group="contrast classes")
    # mining the Open Clip Art Library
    corpus: str = option("openclipart", help="the image-text corpus (the Open Clip Art Library)", group="mining")
    encoder: str = option("all-MiniLM-L6-v2", help="text encoder for the caption-query similarity",
                          group="mining")
    threshold: float | None = option(None, help="similarity threshold (default: the encoder's, 0.35 for MiniLM)",
                                     group="mining")
    num_classes: int = option(40, help="at most this many contrast classes", group="mining")
    min_per_class: int = option(20, help="candidate images a class needs before download", group="mining")
    max_per_class: int = option(200, help="cap on candidate images per class", group="mining")
    val_per_class: int = option(10, help="validation images per class", group="mining")
    # materialisation
    image_size: int = option(32, help="shorter side of the stored images (px)", group="download")
    near_dup_distance: int = option(2, help="phash Hamming distance for near duplicates (-1: off)",
                                    group="download")
    min_images_per_class: int = option(15, help="images a class needs after download", group="download")
    # training
    models: tuple[str, ...] = option(SMALL_MODELS, help="registry models of the zoo", group="training")
    recipe: str = option("uniform", help="training recipe (one recipe for every model)", group="training")
    epochs: int = option(3, help="pretraining epochs on the reference", group="training")
    contrast_epochs: int = option(15, help="pretraining epochs on the contrast (it is smaller: more passes for "
                                  "a comparable number of steps)", group="training")
    batch_size: int = option(128, help="global batch size", group="training")
    reference: str = option("fashion-mnist", help="the reference dataset spec", group="training")
    reference_limit_per_class: int = option(300, help="reference training images per class", group="training")
    finetune_epochs: int = option(2, help="fine-tuning epochs on the transfer target", group="transfer")
    finetune_mode: str = option("full", help="full or linear fine-tuning", group="transfer")
    transfer: str = option("animal-mnist", help="the transfer target dataset spec", group="transfer")
    transfer_limit_per_class: int = option(200, help="transfer training images per class", group="transfer")
    threads: int | None = option(None, help="torch CPU threads (default: torch's choice, the core count)",
                                 group="training")

    def __post_init__(self) -> None:
        positive = ("num_classes", "min_per_class", "max_per_class", "image_size", "min_images_per_class",
                    "epochs", "contrast_epochs", "batch_size", "reference_limit_per_class", "finetune_epochs",
                    "transfer_limit_per_class")
        bad = [f"{name}={getattr(self, name)}" for name in positive if getattr(self, name) < 1]
        if self.val_per_class < 0:
            bad.append(f"val_per_class={self.val_per_class}")
        if self.threads is not None and self.threads < 1:
            bad.append(f"threads={self.threads}")
        if bad:
            raise ConfigError(f"demo settings must be positive: {', '.join(bad)}")
        if self.threshold is not None and not -1.0 <= self.threshold <= 1.0:
            raise ConfigError(f"threshold {self.threshold} is not a cosine similarity (between -1 and 1)")
        if self.min_per_class > self.max_per_class:
            raise ConfigError(f"min_per_class {self.min_per_class} exceeds max_per_class {self.max_per_class}")
        if self.finetune_mode not in ("full", "linear"):
            raise ConfigError(f"finetune_mode {self.finetune_mode!r} not one of full, linear")
        if not self.models:
            raise ConfigError("the demo needs at least one model")


PRESETS: dict[str, dict[str, object]] = {
    "default": {},
    # The same path with tiny budgets: what the test suite runs end to end.
    "quick": {
        "num_classes": 8, "min_per_class": 20, "max_per_class": 40,
        "epochs": 1, "contrast_epochs": 1, "reference_limit_per_class": 40, "finetune_epochs": 1,
        "transfer_limit_per_class": 20,
    },
}
