"""The authors' released ImageNot class list, fetched once into the cache."""

from __future__ import annotations

import logging
import urllib.request
from pathlib import Path

from imagenot.errors import ImagenotError
from imagenot.fileio import write_bytes
from imagenot.wordnet.loader import cache_dir

log = logging.getLogger(__name__)

RELEASED_URL = "https://raw.githubusercontent.com/olawalesalaudeen/imagenot/main/imagenot_classes.txt"


def released_classes_path(url: str = RELEASED_URL, cache: Path | None = None, timeout: float = 30) -> Path:
    """Path of the released list in the cache, downloading it on first use."""
    dest = (cache or cache_dir()) / "imagenot_classes.txt"
    if dest.exists():
        return dest
    log.info("downloading the released ImageNot class list from %s", url)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - fixed https URL or a test's
            data = resp.read()
    except OSError as exc:
        raise ImagenotError(
            f"could not download {url} ({exc}); pass --wnids with a local copy of imagenot_classes.txt"
        ) from exc
    if not data.strip():
        raise ImagenotError(f"{url} returned an empty file")
    write_bytes(dest, data)
    return dest
