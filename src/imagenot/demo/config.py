"""The demo's configuration: one frozen dataclass, with `default` and `quick` presets.

Every setting is checked when the config is built (before any stage runs), so a bad value fails in a second
rather than after minutes of mining.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from imagenot.config import ConfigError, check_choices, option

SMALL_MODELS = ("alexnet_s32", "vgg_s32", "resnet_s32", "densenet_s32", "efficientnet_s32", "convnext_s32")


@dataclass(frozen=True)
class DemoConfig:
    out: str = option("demo-out", help="output folder: every stage writes below it", path="dir")
    seed: int = option(0, help="seed of selection, splits and subsampling")
    seeds: tuple[int, ...] = option((0,), help="training seeds of every run (several: the report measures the "
                                    "seed-to-seed spread beside the test-image noise)", group="training")
    # contrast classes (SPEC section 6: WordNet nouns disjoint from Fashion-MNIST's classes)
    reference_classes: str = option("fashion-mnist", help="the reference class set the contrast avoids",
                                    group="contrast classes")
    root: str | None = option("physical_entity.n.01", help="only hyponyms of this synset become classes",
                              group="contrast classes")
    exclude_hierarchy: bool = option(True, help="a stricter contrast than the released ImageNot list: no "
                                     "ancestors or descendants of reference classes", group="contrast classes")
    # mining the Open Clip Art Library and/or the @iconify/json icon sets
    corpus: Literal["openclipart", "iconify", "openclipart+iconify"] = option(
        "iconify", help="the image-text corpus: the Open Clip Art Library, the @iconify/json icon sets "
        "(permissive licences only, rendered from SVG), or both mined together (Open Clip Art alone gives about "
        "21 classes, too few validation images to rank six models)", group="mining")
    encoder: str = option("all-MiniLM-L6-v2", help="text encoder for the caption-query similarity",
                          group="mining")
    threshold: float | None = option(None, help="similarity threshold (default: the encoder's, 0.35 for MiniLM)",
                                     group="mining")
    num_classes: int = option(40, help="at most this many contrast classes", group="mining")
    class_choice: Literal["most", "random"] = option(
        "random", help="which classes: a seeded random draw among those with at least min_per_class images (the "
        "classes with the most icons are interface words: cursor, chevron, sort), or the most images",
        group="mining")
    min_per_class: int = option(100, help="candidate images a class needs before download (and to be drawn)",
                                group="mining")
    max_per_class: int = option(250, help="cap on candidate images per class", group="mining")
    val_per_class: int = option(20, help="validation images per class (at most half a class): 40 classes give "
                                "800, enough to tell models about 5 points apart", group="mining")
    # materialisation
    image_size: int = option(32, help="shorter side of the stored images (px)", group="download")
    near_dup_distance: int = option(2, help="phash Hamming distance for near duplicates (-1: off)",
                                    group="download")
    min_images_per_class: int = option(15, help="images a class needs after download", group="download")
    text_filter: Literal["off", "count"] = option("count", help="count the images LAIONet's text-in-image filter "
                                                  "would remove (Tesseract OCR), on a sample", group="download")
    text_filter_fraction: float = option(0.05, help="share of the images OCR'd for the count (OCR costs about "
                                         "0.1 s an image: at 15% it was most of the download stage; 5% of the "
                                         "demo's icons is about 360 images)", group="download")
    # training
    models: tuple[str, ...] = option(SMALL_MODELS, help="registry models of the zoo", group="training")
    recipe: str = option("uniform-small", help="training recipe, one for every model (chosen by the budget sweep: "
                         "docs/demo_budget.md)", group="training")
    epochs: int = option(4, help="pretraining epochs on the reference (60,000 images; docs/demo_budget.md gives "
                         "what 4x the epochs add)", group="training")
    contrast_epochs: int = option(24, help="pretraining epochs on the contrast (about 6,000 images: the small "
                                  "set needs many passes; with 6, at the earlier widths, the models were 4 to 41 "
                                  "points below 4x)", group="training")
    batch_size: int = option(128, help="global batch size", group="training")
    reference: str = option("fashion-mnist", help="the reference dataset spec", group="training")
    reference_limit_per_class: int | None = option(None, help="reference training images per class (default: all "
                                                   "6,000; validation: the whole Fashion-MNIST test set)",
                                                   group="training")
    reference_val_limit: int | None = option(None, help="at most this many reference validation images "
                                             "(default: all 10,000 test images)", group="training")
    finetune_epochs: int = option(2, help="fine-tuning epochs on the transfer target", group="transfer")
    finetune_mode: Literal["full", "linear"] = option("full", help="full or linear fine-tuning",
                                                      group="transfer")
    transfer: str = option("animal-mnist", help="the transfer target dataset spec", group="transfer")
    transfer_limit_per_class: int = option(200, help="transfer training images per class", group="transfer")
    threads: int | None = option(None, help="torch CPU threads (default: torch's choice, the core count)",
                                 group="training")
    audit: bool = option(True, help="run `imagenot audit` on the two datasets (class, image and label level) "
                         "and show it in the report", group="audit")
    audit_samples: int = option(1000, help="images per dataset for the audit's 'which dataset?' classifier",
                                group="audit")

    def __post_init__(self) -> None:
        positive = ("num_classes", "min_per_class", "max_per_class", "image_size", "min_images_per_class",
                    "epochs", "contrast_epochs", "batch_size", "reference_limit_per_class", "finetune_epochs",
                    "transfer_limit_per_class")
        bad = [f"{name}={getattr(self, name)}" for name in positive
               if getattr(self, name) is not None and getattr(self, name) < 1]
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
        check_choices(self)  # corpus, text_filter, finetune_mode
        if not self.models:
            raise ConfigError("the demo needs at least one model")
        if not self.seeds:
            raise ConfigError("the demo needs at least one training seed")
        if not 0.0 < self.text_filter_fraction <= 1.0:
            raise ConfigError(f"text_filter_fraction {self.text_filter_fraction} must be in (0, 1]")
        if self.reference_val_limit is not None and self.reference_val_limit < 1:
            raise ConfigError(f"reference_val_limit must be at least 1, got {self.reference_val_limit}")


PRESETS: dict[str, dict[str, object]] = {
    "default": {},
    # The same path with tiny budgets: what the test suite runs end to end. Open Clip Art mines in seconds where
    # the icon sets' captions take minutes to encode on a first run.
    "quick": {
        "corpus": "openclipart", "class_choice": "most", "num_classes": 8, "min_per_class": 20, "max_per_class": 40,
        "epochs": 1, "contrast_epochs": 1, "reference_limit_per_class": 40, "finetune_epochs": 1,
        "transfer_limit_per_class": 20, "reference_val_limit": 1000, "text_filter": "off", "audit_samples": 150,
        "val_per_class": 10,
    },
}
