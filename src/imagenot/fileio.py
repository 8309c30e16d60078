"""Atomic writes and run manifests.

Every artefact goes through a temporary file in the target directory and `os.replace`, so a crash leaves
either the old file or the new one, never a torn one; readers of later stages can then trust that a file
which exists is complete.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import IO, Any


def _umask() -> int:
    """The process umask (read by setting and restoring it: POSIX has no getter)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_path(path: Path, directory: bool = False) -> None:
    """Flush `path` (a file, or a folder's entries) to stable storage; a no-op where the OS cannot."""
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str | None = None, durable: bool = True) -> Iterator[Path]:
    """Yield a temporary path next to `path`; it replaces `path` only if the block succeeds.

    The file gets the mode any new file gets under the user's umask (mkstemp's 0600 would hide reports and
    dataset cards from colleagues on a shared cluster), and it is fsynced, renamed, and its folder fsynced
    before the block counts as done, so a power loss right after cannot leave an empty file in its place.
    `durable=False` skips the two fsyncs (about 10 ms a file on a busy disk): only for files derived from
    another output and checked against it when reused (e.g. thousands of small SVGs cut out of a corpus).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=suffix if suffix is not None else path.suffix + ".tmp", dir=path.parent
    )
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        os.chmod(tmp_path, 0o666 & ~_umask())
        yield tmp_path
        if durable and tmp_path.is_file():
            _fsync_path(tmp_path)
        os.replace(tmp_path, path)
        if durable:
            _fsync_path(path.parent, directory=True)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO[Any]]:
    """Open a temporary file that atomically replaces `path` when the block exits cleanly."""
    if "b" in mode:
        encoding = None
    with atomic_path(path) as tmp, open(tmp, mode, encoding=encoding) as fh:
        yield fh
        fh.flush()


def write_text(path: str | Path, text: str) -> None:
    with atomic_open(path, "w") as fh:
        fh.write(text)


def write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_open(path, "wb") as fh:
        fh.write(data)


def write_json(path: str | Path, obj: Any, indent: int = 2) -> None:
    write_text(path, json.dumps(obj, indent=indent, sort_keys=False, default=str) + "\n")


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def json_digest(obj: Any, length: int | None = None) -> str:
    """sha256 of `obj` as canonical JSON (sorted keys): the identity of a set of settings, for resume keys."""
    digest = hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()
    return digest[:length] if length else digest


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def git_revision(cwd: str | Path | None = None) -> str | None:
    """The source checkout's revision (with '-dirty'), or None outside a git checkout."""
    cwd = Path(cwd) if cwd else Path(__file__).resolve().parent
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd, capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()
        return rev + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


_PACKAGES = ("imagenot", "torch", "torchvision", "numpy", "pyarrow", "nltk", "sentence-transformers",
             "img2dataset", "webdataset", "scipy", "ray")


def package_versions(names: tuple[str, ...] = _PACKAGES) -> dict[str, str]:
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def environment(device: str | None = None) -> dict[str, Any]:
    """What a reader needs to know to trust or repeat a result: versions, revision, host, device."""
    env: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "host": socket.gethostname(),
        "cpu_count": os.cpu_count(),
        "packages": package_versions(),
        "git_revision": git_revision(),
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "argv": sys.argv,
    }
    if device is not None:
        env["device"] = device
    return env


def write_manifest(
    directory: str | Path, config: dict[str, Any], inputs: dict[str, str] | None = None, **extra: Any
) -> Path:
    """Write `manifest.json` with the resolved config, environment and input hashes."""
    path = Path(directory) / "manifest.json"
    write_json(path, {"config": config, "environment": environment(), "inputs": inputs or {}, **extra})
    return path
