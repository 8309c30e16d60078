"""One exception type for user-facing failures, so the CLI can print them without a traceback; and the one
way a full disk becomes such a failure (`disk_full_is_an_error`)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


class ImagenotError(Exception):
    """A problem with the user's input or environment, with a message that says what to do."""


class InputError(ImagenotError):
    """Bad input data: the message names the file and, where it applies, the line."""

    def __init__(self, message: str, path: object | None = None, line: int | None = None) -> None:
        where = ""
        if path is not None:
            where = f"{path}"
            if line is not None:
                where += f":{line}"
            where += ": "
        super().__init__(where + message)
        self.path = path
        self.line = line


class DiskFullError(ImagenotError):
    """The disk (or quota) holding an output ran out: the CLI exits 1 (not 2: nothing was wrong with the
    input), and rerunning the same command after freeing space resumes, since every output is atomic."""

    exit_status = 1


_SQLITE_FULL = 13  # sqlite's result code for "database or disk is full"
_SQLITE_IOERR = 10  # "disk I/O error": a full disk when the WAL or journal cannot grow
_NEARLY_FULL = 64 << 20


def _errno_full(code: object) -> bool:
    import errno

    return code in (errno.ENOSPC, errno.EDQUOT)


def nearly_full(folder: object) -> bool:
    """Whether the device holding `folder` (or its nearest existing parent) has less than 64 MiB free:
    for writers (torch's zip writer, sqlite's I/O errors) that report a full disk without an errno."""
    import shutil
    from pathlib import Path

    path = Path(str(folder)).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        return shutil.disk_usage(path).free < _NEARLY_FULL
    except OSError:
        return False


def full_disk_cause(exc: BaseException, folder: object | None = None) -> BaseException | None:
    """The exception in `exc`'s cause chain that says the disk is full, or None.

    Recognised: OSError ENOSPC/EDQUOT (plain writes, PIL, tarfile, pyarrow), sqlite's SQLITE_FULL (the
    embedding store), and sqlite's I/O error when the device holding `folder` is nearly full."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, OSError) and _errno_full(cur.errno):
            return cur
        code = getattr(cur, "sqlite_errorcode", None)
        if isinstance(code, int) and (code & 0xFF == _SQLITE_FULL or (
                code & 0xFF == _SQLITE_IOERR and folder is not None and nearly_full(folder))):
            return cur
        cur = cur.__cause__ or cur.__context__
    return None


def disk_full_message(exc: BaseException, folder: object | None = None,
                      rerun: str = "rerun the same command") -> str | None:
    """The user-facing message for a full disk (naming the folder and the file being written), or None."""
    cause = full_disk_cause(exc, folder)
    if cause is None:
        return None
    from pathlib import Path

    filename = getattr(cause, "filename", None)
    where = Path(str(folder)).absolute() if folder is not None else (filename or "the output folder")
    writing = f" (writing {filename})" if filename and folder is not None else ""
    return (f"no space left on the device holding {where}{writing}: free some space (or choose another output "
            f"folder) and {rerun}; what was finished is kept")


@contextlib.contextmanager
def disk_full_is_an_error(folder: object, rerun: str = "rerun the same command") -> Iterator[None]:
    """Turn a full disk inside the block into a DiskFullError naming `folder`: the one way every stage
    (mine, download, export, train) reports it. Every output is written atomically, so nothing partial is
    left, and a rerun resumes (`rerun` says how)."""
    try:
        yield
    except DiskFullError:
        raise
    except Exception as exc:
        message = disk_full_message(exc, folder, rerun)
        if message is None:
            raise
        raise DiskFullError(message) from exc
