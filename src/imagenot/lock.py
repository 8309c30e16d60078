"""The output-folder lock: one process writes an output folder at a time.

Two `train` runs (or two `download`s, `mine`s, `export`s, zoos) into one folder would each overwrite the
other's files and both report success. Every stage that writes a folder therefore holds an exclusive
`fcntl.flock` on a lock file beside it, `PARENT/.FOLDER.imagenot-lock`, while it runs (`output_lock`). Beside,
not inside: the folder's own contents stay what the stage writes (an "is it empty" check, `--force` clearing
it, export swapping a new tree into its place, none of them see or remove the lock), and a stage that fails
before writing anything leaves no folder behind. Where the parent is not writable, the lock file goes into
the (existing) folder instead, as `.imagenot.lock`. The kernel releases a flock when its
holder exits for any reason, so a lock file left by a killed process (SIGKILL, OOM, a preempted job) holds no
lock and is simply taken over; there is no stale-lock timeout to guess. The file records who holds it (pid,
host, command, start time) so the second process's error names the holder.

The lock is reentrant within a process (a zoo running its training runs in-process, a demo running stages),
and the lock file is removed when the holder releases it. Locks
on a network file system are only as good as its flock (NFSv4 and Lustre honour it across hosts).
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import fcntl
import functools
import json
import logging
import os
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from imagenot.errors import InputError

log = logging.getLogger(__name__)

LOCK_NAME = ".imagenot.lock"
SUFFIX = ".imagenot-lock"

F = TypeVar("F", bound=Callable[..., Any])
_NO_LOCK = -1  # where no lock can be taken (read-only place, no flock): the stage runs, with a warning
_CANNOT_LOCK = {errno.EROFS, errno.EPERM, errno.EACCES, errno.ENOLCK, errno.ENOTSUP, errno.EOPNOTSUPP}

_held: dict[str, tuple[int, int, Path]] = {}  # resolved folder -> (fd, depth, lock file) of this process
_made: dict[str, list[Path]] = {}  # resolved folder -> missing parents the lock file needed (made by it)
_guard = threading.Lock()


class FolderLockedError(InputError):
    """Another process is writing the output folder."""


def lock_path(folder: str | Path) -> Path:
    """Where the lock of `folder` lives: beside it, or inside it when the parent is not writable."""
    folder = Path(folder).absolute()
    beside = folder.parent / f".{folder.name}{SUFFIX}"
    if folder.is_dir() and not os.access(folder.parent, os.W_OK) and os.access(folder, os.W_OK):
        return folder / LOCK_NAME
    return beside


def _holder_text(path: Path) -> str:
    """Who holds the lock, as the lock file says (best effort: the holder may be writing it right now)."""
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "another process (its details are not readable)"
    if not isinstance(info, dict):
        return "another process"
    command = " ".join(str(a) for a in info.get("command") or []) or "?"
    return (f"pid {info.get('pid', '?')} on {info.get('host', '?')}, started {info.get('started', '?')}: "
            f"{command}")


def _record(fd: int, command: list[str] | None) -> None:
    """Write the holder's details into the (locked) lock file; it is the lock's inode, so not atomically."""
    info = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "command": list(command) if command is not None else list(sys.argv),
        "started": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    data = (json.dumps(info) + "\n").encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)


def _acquire(folder: Path, path: Path, command: list[str] | None) -> int:
    """Open and flock the lock file; retry when the file was replaced between the open and the flock."""
    with contextlib.suppress(OSError):  # a parent that cannot be made fails below, with the lock file's path
        path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
        except OSError as exc:
            if exc.errno in _CANNOT_LOCK:  # a read-only place: nobody writes there, nothing to guard
                log.warning("%s: cannot create the lock file %s (%s); going on without the output-folder lock",
                            folder, path, exc.strerror)
                return _NO_LOCK
            raise InputError(f"cannot create the lock file ({exc.strerror or exc})", path=path) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise FolderLockedError(
                    f"{folder} is being written by {_holder_text(path)}. Wait for it to finish, stop it, or "
                    "choose another output folder") from None
            if exc.errno in _CANNOT_LOCK:  # a file system without flock (some network mounts)
                log.warning("%s: the file system cannot lock %s (%s); going on without the output-folder lock",
                            folder, path, exc.strerror)
                return _NO_LOCK
            raise InputError(f"cannot lock the output folder ({exc.strerror or exc})", path=path) from exc
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # the previous holder removed the file after we opened it: lock the new one
    if os.fstat(fd).st_size:
        log.info("%s: taking over the lock left by %s (no longer running)", folder, _holder_text(path))
    _record(fd, command)
    return fd


def _release(path: Path, fd: int) -> None:
    if fd == _NO_LOCK:
        return
    with contextlib.suppress(FileNotFoundError):
        path.unlink()  # while still holding it: an opener that raced us retries on a new file
    os.close(fd)


@contextlib.contextmanager
def output_lock(folder: str | Path, command: list[str] | None = None) -> Iterator[Path]:
    """Hold the exclusive lock of output folder `folder` for the block (the folder itself is not created).

    A second process gets a `FolderLockedError` at once, naming the holder. `command` is recorded for that
    message (default: this process's argv). The same process may nest locks on one folder.
    """
    folder = Path(folder)
    key = str(folder.resolve())
    with _guard:
        held = _held.get(key)
        if held is not None:
            _held[key] = (held[0], held[1] + 1, held[2])
        else:
            path = lock_path(folder)
            # folders the lock file needs that do not exist yet: removed again on release when the stage left
            # them empty (a stage refused before writing anything leaves no trace)
            _made[key] = [p for p in (path.parent, *path.parent.parents) if not p.exists()]
            _held[key] = (_acquire(folder, path, command), 1, path)
    try:
        yield folder
    finally:
        with _guard:
            fd, depth, path = _held[key]
            if depth > 1:
                _held[key] = (fd, depth - 1, path)
            else:
                del _held[key]
                _release(path, fd)
                for made in _made.pop(key, []):  # deepest first
                    with contextlib.suppress(OSError):
                        made.rmdir()


def locks_output(out_of: Callable[..., str | Path | None]) -> Callable[[F], F]:
    """Decorate a stage's entry function so it runs holding the lock of its output folder.

    `out_of` gets the function's arguments and returns the folder (None or empty: nothing to lock, e.g. a
    config error the function itself reports).
    """

    def wrap(func: F) -> F:
        @functools.wraps(func)
        def locked(*args: Any, **kwargs: Any) -> Any:
            folder = out_of(*args, **kwargs)
            if not folder:
                return func(*args, **kwargs)
            with output_lock(folder):
                return func(*args, **kwargs)

        return locked  # type: ignore[return-value]

    return wrap
