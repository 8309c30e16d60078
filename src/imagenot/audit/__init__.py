"""`imagenot audit`: how unlike the contrast dataset is from the reference, at the class, image and label level.

Public API::

    from imagenot.audit import AuditConfig, run_audit

    audit = run_audit(AuditConfig(reference="fashion-mnist", contrast="wds:demo-out/clipart-not",
                                  contrast_run="demo-out/runs/clipart-not/resnet_s32/seed0", out="demo-out/audit"))
    audit["summary"]  # {"class_level": {...}, "image_level": {...}, "label_level": {...}}, None where not run

See `imagenot.audit.pipeline` for the files written.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {"AuditConfig": "config", "run_audit": "pipeline", "prepare": "pipeline"}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"imagenot.audit.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'imagenot.audit' has no attribute {name!r}")
