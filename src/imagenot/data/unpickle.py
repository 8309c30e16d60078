"""A pickle reader that can only rebuild numpy arrays, for data files we did not write.

CIFAR-10 batches and animal-mnist's data are pickles; plain `pickle.load` on a downloaded file runs whatever
callable it names (`os.system` included). This Unpickler resolves only the handful of globals numpy needs to
rebuild arrays and dtypes, and refuses everything else before it is called.
"""

from __future__ import annotations

import io
import logging
import pickle
from pathlib import Path
from typing import Any

from imagenot.errors import InputError

log = logging.getLogger(__name__)

_ALLOWED = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    # protocol <= 2 pickles written by Python 3 store bytes (an array's buffer) as _codecs.encode(str, enc):
    # a pure function without side effects
    ("_codecs", "encode"),
}


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler whose `find_class` allows numpy array reconstruction only."""

    source: str = "<pickle>"

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise InputError(
            f"refusing to unpickle {module}.{name}: only numpy arrays are allowed in data pickles",
            path=self.source,
        )


def restricted_loads(data: bytes, source: str | Path = "<pickle>", encoding: str = "ASCII") -> Any:
    """Unpickle `data` allowing only numpy arrays, dtypes and builtin containers.

    `encoding="bytes"` reads Python 2 pickles such as CIFAR-10's batches (keys come back as bytes).
    """
    unpickler = RestrictedUnpickler(io.BytesIO(data), encoding=encoding)
    unpickler.source = str(source)
    try:
        return unpickler.load()
    except InputError:
        raise
    except Exception as exc:  # truncated or corrupt file
        raise InputError(f"cannot read pickle: {type(exc).__name__}: {exc}", path=source) from exc


def restricted_load_file(path: str | Path, encoding: str = "ASCII") -> Any:
    """Read a (possibly gzip-compressed) pickle file with `restricted_loads`."""
    import gzip

    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    return restricted_loads(raw, source=path, encoding=encoding)
