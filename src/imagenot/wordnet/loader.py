"""Offline WordNet 3.0 through NLTK.

NLTK reads WordNet only from `<root>/corpora/wordnet/` on `NLTK_DATA`, and Debian's `wordnet-base` lacks the
`lexnames` file NLTK needs. So, in order: use a WordNet already on NLTK's path; else build a readable copy
from Debian's files in the cache (adding `lexnames`, rebuilt from the `lexnames(5WN)` man page that
wordnet-base ships); else `nltk.download` where a network exists; else fail with install instructions.
"""

from __future__ import annotations

import functools
import gzip
import logging
import os
import re
import shutil
import warnings
from pathlib import Path
from typing import Any

from imagenot.errors import ImagenotError
from imagenot.fileio import atomic_path, write_text

log = logging.getLogger(__name__)

DEBIAN_WORDNET_DIR = Path("/usr/share/wordnet")
DEBIAN_LEXNAMES_MAN = Path("/usr/share/man/man5/lexnames.5WN.gz")
_REQUIRED = ("data.noun", "index.noun")
_INSTALL_HINT = (
    "WordNet 3.0 was not found. On Debian/Ubuntu: `apt-get install wordnet-base wordnet-sense-index`; "
    "elsewhere, with a network: `python -m nltk.downloader wordnet`; or point NLTK_DATA at a folder holding "
    "corpora/wordnet/."
)


class WordNetUnavailable(ImagenotError):
    pass


def cache_dir() -> Path:
    """Root of imagenot's cache (`$IMAGENOT_CACHE`, default `~/.cache/imagenot`)."""
    return Path(os.environ.get("IMAGENOT_CACHE", Path.home() / ".cache" / "imagenot")).expanduser()


def parse_lexnames_man(text: str) -> list[tuple[str, str, int]]:
    """The (number, name, syntactic category) table of the lexnames(5WN) troff page."""
    rows = []
    for line in text.splitlines():
        m = re.match(r"^(\d\d)\t(\w+\.\w+)\s*\t", line)
        if m:
            num, name = m.group(1), m.group(2)
            cat = {"noun": 1, "verb": 2, "adj": 3, "adv": 4}[name.split(".")[0]]
            rows.append((num, name, cat))
    return rows


def build_from_debian(
    dest_root: Path, wordnet_dir: Path = DEBIAN_WORDNET_DIR, lexnames_man: Path = DEBIAN_LEXNAMES_MAN
) -> Path:
    """Copy Debian's WordNet files to `<dest_root>/corpora/wordnet` with a rebuilt `lexnames`."""
    target = dest_root / "corpora" / "wordnet"
    if (target / "lexnames").exists() and all((target / f).exists() for f in _REQUIRED):
        return dest_root
    missing = [f for f in _REQUIRED if not (wordnet_dir / f).exists()]
    if missing:
        raise WordNetUnavailable(f"{wordnet_dir} lacks {', '.join(missing)}. {_INSTALL_HINT}")
    if (wordnet_dir / "lexnames").exists():
        lexnames = (wordnet_dir / "lexnames").read_text()
    else:
        if not lexnames_man.exists():
            raise WordNetUnavailable(f"{lexnames_man} is missing (part of wordnet-base). {_INSTALL_HINT}")
        rows = parse_lexnames_man(gzip.decompress(lexnames_man.read_bytes()).decode("utf-8", "replace"))
        if len(rows) != 45:
            raise WordNetUnavailable(f"expected 45 lexicographer files in {lexnames_man}, found {len(rows)}")
        lexnames = "".join(f"{n}\t{name}\t{cat}\n" for n, name, cat in rows)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Build in a temporary folder and rename, so a killed build never leaves a half-copied corpus.
    with atomic_path(target, suffix=".building") as tmp:
        tmp.unlink()
        tmp.mkdir()
        for f in wordnet_dir.iterdir():
            if f.is_file():
                shutil.copy2(f, tmp / f.name)
        write_text(tmp / "lexnames", lexnames)
        if target.exists():
            shutil.rmtree(target)
    log.info("built an NLTK-readable WordNet copy in %s", target)
    return dest_root


def _reader_from_root(root: Path) -> Any:
    import nltk
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    # NLTK refuses corpus roots outside its data path (a path-security check), so register ours.
    if str(root) not in nltk.data.path:
        nltk.data.path.insert(0, str(root))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The multilingual functions")
        return WordNetCorpusReader(str(root / "corpora" / "wordnet"), None)


def _nltk_paths() -> list[Path]:
    paths = [Path(p) for p in os.environ.get("NLTK_DATA", "").split(os.pathsep) if p]
    try:
        import nltk

        paths += [Path(p) for p in nltk.data.path]
    except ImportError:
        pass
    return paths


@functools.lru_cache(maxsize=1)
def get_wordnet() -> Any:
    """The NLTK WordNet 3.0 corpus reader, found or built offline (cached per process)."""
    for root in _nltk_paths():
        if (root / "corpora" / "wordnet" / "lexnames").exists():
            log.debug("WordNet from NLTK path %s", root)
            return _check(_reader_from_root(root))
    cached = cache_dir() / "nltk_data"
    if DEBIAN_WORDNET_DIR.exists() or (cached / "corpora" / "wordnet" / "lexnames").exists():
        if not (cached / "corpora" / "wordnet" / "lexnames").exists():
            build_from_debian(cached)
        return _check(_reader_from_root(cached))
    try:
        import nltk

        if nltk.download("wordnet", download_dir=str(cached), quiet=True, raise_on_error=True):
            import zipfile

            zipped = cached / "corpora" / "wordnet.zip"
            if zipped.exists() and not (cached / "corpora" / "wordnet").exists():
                with zipfile.ZipFile(zipped) as zf:
                    zf.extractall(cached / "corpora")
            return _check(_reader_from_root(cached))
    except Exception as exc:  # noqa: BLE001 - any network failure means the same thing here
        log.debug("nltk.download failed: %s", exc)
    raise WordNetUnavailable(_INSTALL_HINT)


def _nltk_default_paths() -> list[Path]:
    """NLTK's search path without importing NLTK (its import pulls in scipy and scikit-learn: seconds)."""
    import sys

    if "nltk" in sys.modules:
        return _nltk_paths()
    roots = [Path(p) for p in os.environ.get("NLTK_DATA", "").split(os.pathsep) if p]
    prefix = Path(sys.prefix)
    roots += [Path.home() / "nltk_data", prefix / "nltk_data", prefix / "share" / "nltk_data",
              prefix / "lib" / "nltk_data", Path("/usr/share/nltk_data"), Path("/usr/local/share/nltk_data"),
              Path("/usr/lib/nltk_data"), Path("/usr/local/lib/nltk_data")]
    return roots


def data_noun_path() -> Path | None:
    """WordNet's data.noun file where `get_wordnet` would find it, without loading NLTK (or None)."""
    candidates = [root / "corpora" / "wordnet" / "data.noun" for root in _nltk_default_paths()]
    candidates += [cache_dir() / "nltk_data" / "corpora" / "wordnet" / "data.noun", DEBIAN_WORDNET_DIR / "data.noun"]
    return next((c for c in candidates if c.is_file()), None)


def unknown_noun_wnids(wnids: list[str]) -> list[str] | None:
    """The wnids that name no WordNet 3.0 noun synset; None when WordNet is not installed.

    A noun wnid is `n` + the synset's byte offset in data.noun, so each check is one seek and a 9-byte read:
    validating a 1000-class file costs microseconds instead of the 3 s of loading WordNet.
    """
    path = data_noun_path()
    if path is None:
        return None
    bad = []
    with open(path, "rb") as fh:
        for wnid in wnids:
            offset = int(wnid[1:]) if len(wnid) == 9 and wnid[0] == "n" and wnid[1:].isdigit() else -1
            if offset < 0:
                bad.append(wnid)
                continue
            fh.seek(offset)
            if fh.read(9) != f"{offset:08d} ".encode():
                bad.append(wnid)
    return bad


def _check(wn: Any) -> Any:
    version = wn.get_version()
    if version != "3.0":
        raise WordNetUnavailable(f"found WordNet {version}, imagenot needs 3.0 (wnids are 3.0 offsets)")
    return wn
