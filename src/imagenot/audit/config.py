"""The `imagenot audit` configuration: which two datasets (or class sets) to compare, and how hard to look."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Literal

from imagenot.config import ConfigError, option
from imagenot.spec import Spec

LEVELS = ("class", "image", "label")
Level = Literal["class", "image", "label"]
FilterBy = Literal["prune_by_noise_rate", "prune_by_class", "both", "confident_learning", "predicted_neq_given"]


@dataclasses.dataclass(frozen=True)
class AuditConfig:
    """How unlike the contrast dataset is from the reference, at the class, image and label level.

    Written resolved (paths absolute) as `config.json` in the output folder, so `--config` reruns it.
    """

    reference: str | None = option(
        None, metavar="SPEC",
        help="reference dataset, a data-registry spec (fashion-mnist, wds:PATH, imagefolder:PATH, ...); "
        "its images feed the image level and its classes the class level (default: none; required unless --reference-classes)", group="inputs", path="spec")
    contrast: str | None = option(
        None, metavar="SPEC",
        help="contrast dataset, a data-registry spec (typically wds:PATH made by `imagenot download`, whose "
        "captions and similarities feed the label level; default: none, required unless --contrast-classes)", group="inputs", path="spec")
    out: str = option("audit", path="dir", metavar="DIR",
                      help="output folder for audit.json, audit.md, plots/ and contact_sheet.png", group="inputs")
    reference_classes: str | None = option(
        None, metavar="SET",
        help="the reference's class set, overriding what the dataset says: a reference name (imagenet-1k, "
        "fashion-mnist), a classes.tsv, or a file of wnids; with both class sets and no datasets, only the "
        "class level runs (default: the reference dataset's own classes)", group="inputs")
    contrast_classes: str | None = option(
        None, metavar="SET",
        help="the contrast's class set, overriding what the dataset says (same forms as --reference-classes, "
        "e.g. the released imagenot_classes.txt; default: the contrast dataset's own classes)", group="inputs")
    contrast_run: str | None = option(
        None, path=True, metavar="RUN_DIR",
        help="a finished training run on the contrast dataset; its predictions on the validation split "
        "(out of sample) give the likely label errors by confident learning (default: none, no label-error check)", group="inputs")
    levels: tuple[Level, ...] = option(
        LEVELS, metavar="LEVEL,...",
        help="levels to run (class, image, label); a level whose inputs are missing is skipped with the "
        "reason in audit.json", group="inputs")
    # image level
    image_size: int = option(
        32, group="image level",
        help="common side (px) both datasets are resized and centre-cropped to for the image level, so that "
        "neither size nor aspect can be read off the classifier's input")
    channels: Literal[1, 3] = option(
        3, group="image level",
        help="common channel count for the image level (gray images are repeated to 3, colour turned gray for 1)")
    samples_per_dataset: int = option(
        1000, group="image level",
        help="images drawn from each dataset (class-stratified, seeded; fewer if either dataset has fewer): "
        "equal counts, so that chance is one half")
    split: Literal["train", "val"] = option(
        "train", group="image level", help="the split of both datasets the images come from")
    test_fraction: float = option(
        0.3, group="image level",
        help="share of the drawn images held out to measure the dataset classifier (stratified by dataset)")
    model: str = option("resnet_s32", group="image level", help="registry model of the 'which dataset?' classifier")
    epochs: int = option(
        3, group="image level",
        help="training epochs of the dataset classifier (a short CPU run); more when min_steps needs them")
    min_steps: int = option(
        60, group="image level",
        help="at least this many optimizer steps (small samples get more epochs): batch-norm statistics and a "
        "freshly initialised net need some steps before held-out predictions mean anything")
    batch_size: int = option(64, group="image level", help="batch size of the dataset classifier")
    lr: float = option(2e-3, group="image level",
                       help="AdamW learning rate of the dataset classifier (cosine schedule)")
    weight_decay: float = option(0.05, group="image level", help="AdamW weight decay of the dataset classifier")
    augment_padding: int = option(
        4, group="image level",
        help="random-crop padding (px) of the classifier's training augmentation (with flips); 0 for flips only")
    confidence: float = option(0.95, group="image level",
                               help="level of the Clopper-Pearson intervals around accuracies")
    # label level
    match_mode: Literal["laionet", "relaxed"] = option(
        "laionet", group="label level",
        help="caption matching rule for 'does the caption name another class?': laionet (the miner's rule) "
        "or relaxed (lower case, simple plurals)")
    sheet_classes: int = option(20, group="label level", help="classes shown in contact_sheet.png (the first by label)")
    sheet_per_class: int = option(4, group="label level", help="images per class in contact_sheet.png")
    caption_chars: int = option(80, group="label level",
                                help="captions in the contact sheet are cut to this many characters")
    filter_by: FilterBy = option("prune_by_noise_rate", group="label level",
                                 help="cleanlab find_label_issues method for the likely label errors")
    issue_examples: int = option(
        12, group="label level",
        help="likely label errors listed in audit.md and shown in contact_sheet.png (lowest probability of the "
        "given label first)")
    eval_batch_size: int = option(256, group="label level", help="batch size when evaluating the contrast run's model")
    # execution
    seed: int = option(0, group="execution",
                       help="seed of the image draws, the held-out split and the classifier's training")
    threads: int | None = option(None, group="execution", help="torch CPU threads (default: torch's choice)")
    progress: bool = option(
        True, group="execution", cli=False,
        help="progress bars (terminal) or rate lines (logs) on long loops; on the command line, the global "
        "--no-progress")
    force: bool = option(False, group="execution",
                         help="recompute every level instead of reusing finished ones in the output folder")

    def __post_init__(self) -> None:
        for name in ("image_size", "samples_per_dataset", "epochs", "min_steps", "batch_size", "sheet_classes",
                     "sheet_per_class", "caption_chars", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.issue_examples < 0 or self.augment_padding < 0:
            raise ConfigError("issue_examples and augment_padding must not be negative")
        if not 0.0 < self.test_fraction < 1.0:
            raise ConfigError(f"test_fraction must lie strictly between 0 and 1, got {self.test_fraction}")
        if not 0.0 < self.confidence < 1.0:
            raise ConfigError(f"confidence must lie strictly between 0 and 1, got {self.confidence}")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"threads must be at least 1, got {self.threads}")
        if not self.levels:
            raise ConfigError(f"levels: name at least one of {', '.join(LEVELS)}")


def absolute_spec(spec: str | None) -> str | None:
    """`wds:rel/path` -> `wds:/abs/path` (the registry's path-taking entries), other specs unchanged."""
    if spec is None:
        return None
    parsed = Spec.parse(spec)
    if parsed.path is None:
        return spec
    return str(parsed.with_arg(str(Path(parsed.path).expanduser().resolve())))


def _absolute_if_file(value: str | None) -> str | None:
    from imagenot.wordnet.references import REFERENCES

    if value is None or value in REFERENCES:
        return value
    p = Path(value).expanduser()
    return str(p.resolve()) if p.exists() else value


def absolute(cfg: AuditConfig) -> AuditConfig:
    """The same config with every path absolute (dataset specs' paths, --out, the run, class-set files), so
    that its config.json replays from any directory."""
    from imagenot.config import absolute_paths, from_dict, to_dict

    data = absolute_paths(AuditConfig, to_dict(cfg))
    data["reference_classes"] = _absolute_if_file(cfg.reference_classes)
    data["contrast_classes"] = _absolute_if_file(cfg.contrast_classes)
    return from_dict(AuditConfig, data)
