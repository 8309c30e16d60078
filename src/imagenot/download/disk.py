"""A full disk during a long write is the user's problem to fix, not a traceback: say which folder is full."""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Iterator
from pathlib import Path

from imagenot.errors import ImagenotError


@contextlib.contextmanager
def disk_full_is_an_error(folder: Path) -> Iterator[None]:
    """OSError ENOSPC/EDQUOT (as pyarrow, PIL, tarfile and plain writes raise it) -> ImagenotError naming
    `folder`. Every output is written atomically, so nothing partial is left, and a rerun resumes."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        where = f" (writing {exc.filename})" if exc.filename else ""
        raise ImagenotError(f"no space left on the device holding {folder.resolve()}{where}: free some space (or "
                            "choose another output folder) and rerun the same command; what was finished is "
                            "kept") from None
