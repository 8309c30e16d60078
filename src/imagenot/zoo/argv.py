"""The `imagenot ...` arguments of one zoo run, generated from its config: what the zoo starts side by side
(imagenot.zoo.parallel) and what it prints for torchrun and Slurm (imagenot.zoo.run), so both run exactly
what the serial zoo would."""

from __future__ import annotations

import dataclasses
from typing import Any

from imagenot.evaluation.config import EvaluateConfig


def job_argv(job: Any) -> list[str]:
    """`imagenot ...` arguments that run `job` (a zoo.run.Job) exactly: its config as flags."""
    from imagenot.cli_options import config_argv

    cfg = job.config
    if isinstance(cfg, EvaluateConfig):
        return ["evaluate", *config_argv(cfg)]
    command = "finetune" if job.kind == "finetune" else "train"
    resume = [] if cfg.force else ["--resume"]  # a forced job replaces the run in its folder
    return [command, *config_argv(dataclasses.replace(cfg, resume=False, progress=True)), *resume]


def forced(job: Any) -> Any:
    """`job` set to replace the run made with other settings in its folder (`--force`): what both the serial
    and the side-by-side zoo rerun. Evaluations and published records have no checkpoint to resume from."""
    cfg = job.config
    no_resume = {"resume": False} if hasattr(cfg, "resume") else {}
    return dataclasses.replace(job, config=dataclasses.replace(cfg, force=True, **no_resume))
