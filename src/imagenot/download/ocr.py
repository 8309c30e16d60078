"""LAIONet's last filter: drop an image whose recognised text names its class.

An image whose caption matched a lemma because the lemma is printed in the picture (a poster, a label, a
book cover) teaches a model to read, not to recognise the class; LAIONet removes such images as its final
step. Text is recognised with Tesseract (Debian `tesseract-ocr`, through `pytesseract`) in page segmentation
mode 11 (sparse text in any order: text in photos is not a page), on the full-size picture (transparent parts
on white, longer side at most `MAX_SIDE` px). The class's terms match the recognised text the way lemmas
match captions, as whole words after punctuation becomes spaces, but ignoring case (OCR gets case wrong
often). LAIONet's terms are the class name only, lower-cased (`name`, the default); `name+lemmas` also looks
for every lemma of the class (more images removed: a class's rarer synonyms printed in a picture).

OCR is slow (a tesseract process per image, 0.2-0.5 s), so it runs in the cleaning processes on the images
that survive decoding only, and only when `text_filter` is not `off`.
"""

from __future__ import annotations

import logging
import os
import shutil
import string

from PIL import Image

from imagenot.errors import ImagenotError
from imagenot.wordnet.classes import ClassRow

log = logging.getLogger(__name__)

MAX_SIDE = 1600
TESSERACT_CONFIG = "--psm 11"
TIMEOUT_S = 60
_PUNCT = str.maketrans({c: " " for c in string.punctuation})


def normalise(text: str) -> str:
    """Lower case, punctuation as spaces, single spaces, padded: `" " + term + " "` then finds whole words."""
    return " " + " ".join(text.lower().translate(_PUNCT).split()) + " "


TERM_SETS = ("name", "name+lemmas")


def class_terms(row: ClassRow, term_set: str = "name") -> tuple[str, ...]:
    """The terms looked for in the image's text, normalised, unique: the class name (LAIONet's), or the name
    and then every lemma (`name+lemmas`)."""
    if term_set not in TERM_SETS:
        raise ImagenotError(f"unknown text-filter term set {term_set!r}; known: {', '.join(TERM_SETS)}")
    seen: dict[str, None] = {}
    for t in (row.name, *(row.lemmas if term_set == "name+lemmas" else ())):
        n = normalise(t.replace("_", " ")).strip()
        if n:
            seen.setdefault(n, None)
    return tuple(seen)


def find_term(text: str, terms: tuple[str, ...]) -> str | None:
    """The first term that occurs in `text` as whole words, or None."""
    padded = normalise(text)
    for t in terms:
        if f" {t} " in padded:
            return t
    return None


def check_available() -> None:
    """Fail before any work when the filter is asked for but Tesseract is not installed."""
    try:
        import pytesseract  # noqa: F401
    except ImportError:
        raise ImagenotError("--text-filter needs pytesseract (pip install pytesseract)") from None
    if shutil.which("tesseract") is None:
        raise ImagenotError("--text-filter needs the tesseract program (Debian/Ubuntu: apt-get install "
                            "tesseract-ocr)")


def recognise(im: Image.Image) -> str:
    """Text Tesseract finds in an RGB or L image.

    Tesseract runs one OpenMP thread here (unless OMP_THREAD_LIMIT says otherwise): the parallelism is the
    cleaning processes, and several multi-threaded tesseracts on the same cores run at half speed."""
    import pytesseract

    if max(im.size) > MAX_SIDE:
        im = im.copy()
        im.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.BILINEAR)
    saved = os.environ.get("OMP_THREAD_LIMIT")
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    try:
        return pytesseract.image_to_string(im, config=TESSERACT_CONFIG, timeout=TIMEOUT_S)
    finally:
        if saved is None:
            os.environ.pop("OMP_THREAD_LIMIT", None)
