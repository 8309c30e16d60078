"""`imagenot evaluate`: any weights on any dataset split, or torchvision's published accuracies, as a run folder.

Why a stage of its own: the study's ImageNet column is torchvision's published IMAGENET1K_V1 accuracies, so a
reference side can come from published (or evaluated) weights instead of nine ImageNet trainings. An
evaluation writes a run directory like `imagenot train` does (config.json, manifest.json, result.json, and
predictions.parquet when it touched data), so `imagenot report`, `imagenot runs` and zoo plans treat it as
one more run.
"""
