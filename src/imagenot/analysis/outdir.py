"""Write a report folder as a whole: built next to its place, swapped in only when every file is written.

A report that fails halfway (a plot that cannot be drawn, a full disk, a kill) must leave the previous report
as it was, not a folder whose report.html disagrees with its stats.json. Files inside are still written
atomically, so even the swap's two renames never expose a torn file.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from imagenot import safepath
from imagenot.errors import ImagenotError

log = logging.getLogger(__name__)

REPORT_MARKERS = ("manifest.json", "report.md", "report.html", "stats.json")
"""A folder holding any of these is taken for an earlier report and may be replaced."""


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def check_target(target: str | Path, markers: Sequence[str] = REPORT_MARKERS) -> Path:
    """Refuse a target that is a file, or a non-empty folder that is not an earlier output of the same kind."""
    path = Path(os.path.abspath(target))
    if path.exists() and not path.is_dir():
        raise ImagenotError(f"{target}: exists and is not a folder; choose another --out")
    if path.is_dir() and any(path.iterdir()) and not any((path / m).exists() for m in markers):
        raise ImagenotError(f"{target}: a folder that is not a report (no {', '.join(markers)}); it would be "
                            "replaced as a whole, so choose another --out or an empty folder")
    return path


@contextlib.contextmanager
def replaced_folder(target: str | Path, markers: Sequence[str] = REPORT_MARKERS,
                    inputs: Iterable[str | Path] = ()) -> Iterator[Path]:
    """Yield an empty folder beside `target`; when the block succeeds it takes `target`'s place.

    On failure the new folder is removed and `target` is untouched. The folder gets the mode any new folder
    gets under the user's umask (mkdtemp's 0700 would hide the report from colleagues). A `target` that is
    or holds one of `inputs` (a run folder given as --out) is refused before anything is built.
    """
    final = check_target(target, markers)
    if final.exists():
        safepath.check_removable(final, inputs)
    final.parent.mkdir(parents=True, exist_ok=True)
    build = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".building", dir=final.parent))
    try:
        os.chmod(build, 0o777 & ~_umask())
        yield build
        old = None
        if final.exists():
            old = final.parent / f".{final.name}.old-{os.getpid()}-{time.time_ns()}"
            os.rename(final, old)
        os.rename(build, final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        raise
