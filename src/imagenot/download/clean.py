"""Decode, check, convert, resize and fingerprint one image; clean one fetched shard.

Every image that does not reach the dataset gets exactly one reason, so the per-shard stats add up to the
shard's row count and nothing is dropped silently. Conversions that keep an image (palette, CMYK, alpha,
grey, 16-bit) are counted too, because they change the pixels a model sees.

With the text-in-image filter on, every image that survives decoding is also read by Tesseract (`ocr`) and
the class term it shows, if any, is recorded (`text_match`); whether that removes the image is decided later,
over all shards, so `count` and `drop` share the same cleaned shards.

This module must stay light (PIL, numpy, imagehash, pyarrow): it is imported by worker processes.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import re
import time
import urllib.parse
import urllib.request
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import imagehash
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image, UnidentifiedImageError

from imagenot.data.orientation import upright
from imagenot.fileio import atomic_path, write_json

log = logging.getLogger(__name__)

# Reasons a row is dropped while fetching (the others of this module are decoding reasons).
FETCH_REASONS = ("missing_url", "http_error", "timeout", "redirect_loop", "redirect_refused", "response_too_large",
                 "connection_error", "file_not_found", "disallowed_by_robots", "download_error")

CLEAN_SCHEMA = pa.schema([
    ("row_id", pa.int64()),
    ("reason", pa.string()),  # null when the image was kept
    ("message", pa.string()),
    ("conversion", pa.string()),  # '+'-joined conversions applied, null if none
    ("image", pa.binary()),
    ("width", pa.int32()),
    ("height", pa.int32()),
    ("orig_width", pa.int32()),
    ("orig_height", pa.int32()),
    ("pixel_sha256", pa.string()),
    ("phash", pa.string()),  # 16 hex digits, imagehash.phash of the resized image
    ("text_match", pa.string()),  # with OCR: the class term found in the image's text, else null
])
CLEAN_FORMAT = 3  # bump when CLEAN_SCHEMA or the cleaning changes: older cleaned shards are cleaned again
# 3: images are stored upright (their EXIF orientation applied)
FACES_COLUMN = "face_bboxes"  # DataComp's face boxes, carried by mine as corpus_face_bboxes


@dataclass(frozen=True)
class CleanOptions:
    image_size: int = 64
    encode_format: str = "jpg"
    encode_quality: int = 95
    min_image_size: int = 10
    max_image_pixels: int = 89_478_485
    max_aspect_ratio: float = 10.0
    ocr: bool = False  # read the text in kept images (text-in-image filter)


@dataclass
class CleanResult:
    reason: str | None = None
    message: str | None = None
    conversion: str | None = None
    image: bytes | None = None
    width: int | None = None
    height: int | None = None
    orig_width: int | None = None
    orig_height: int | None = None
    pixel_sha256: str | None = None
    phash: str | None = None
    text_match: str | None = None
    ocr_error: str | None = None  # not a column: counted in the shard stats


def pixel_hash(im: Image.Image) -> str:
    """Hash of decoded pixels (RGB, or RGBA when the image has transparency) and size: equal for the same
    picture saved in different files or formats."""
    h = hashlib.sha256(f"{im.mode}:{im.width}x{im.height}:".encode())
    h.update(im.tobytes())
    return h.hexdigest()


def perceptual_hash(rgb: Image.Image) -> str:
    return str(imagehash.phash(rgb))


@contextlib.contextmanager
def _bomb_limit(max_pixels: int) -> Iterator[None]:
    # PIL's own guard reads the module global; make it agree with ours for the duration of one decode.
    old = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    finally:
        Image.MAX_IMAGE_PIXELS = old


def _on_white(im: Image.Image) -> Image.Image:
    white = Image.new("RGBA", im.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, im).convert("RGB")


def canonical(im: Image.Image) -> tuple[Image.Image, list[str]]:
    """RGB pixels, or RGBA for images with transparency, and the conversions that took (counted in stats).

    Transparency is flattened later, after resizing (PIL resizes RGBA with premultiplied alpha), which is
    several times cheaper than compositing a large clip-art canvas at full size.
    """
    mode = im.mode
    conv: list[str] = []
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info
    if mode == "P":
        conv.append("palette")
    elif mode == "CMYK":
        conv.append("cmyk")
    elif mode in ("L", "1", "LA", "La"):
        conv.append("grayscale")
    elif mode.startswith("I") or mode == "F":
        conv.append("high_bit_depth")
        arr = np.asarray(im, dtype=np.float64)
        scale = 255.0 / 65535.0 if mode.startswith("I") else 1.0
        im = Image.fromarray(np.clip(np.rint(arr * scale), 0, 255).astype(np.uint8), "L")
        has_alpha = False
    elif mode not in ("RGB", "RGBA", "RGBa"):
        conv.append(mode.lower())
    if has_alpha:
        conv.append("alpha")
        return (im if im.mode == "RGBA" else im.convert("RGBA")), conv
    return (im if im.mode == "RGB" else im.convert("RGB")), conv


def prepare(im: Image.Image, size: int) -> tuple[Image.Image, str, list[str]]:
    """(resized RGB image, pixel hash of the full-size canonical pixels, conversions)."""
    canon, conv = canonical(im)
    digest = pixel_hash(canon)
    small = resize_shorter(canon, size)
    if small.mode == "RGBA":
        small = _on_white(small)
    return small, digest, conv


def resize_shorter(im: Image.Image, size: int) -> Image.Image:
    """Shorter side to `size`, aspect ratio kept; the square crop is left to training-time augmentation."""
    w, h = im.size
    new = (size, max(size, round(h * size / w))) if w <= h else (max(size, round(w * size / h)), size)
    if new == (w, h):
        return im
    return im.resize(new, Image.Resampling.BICUBIC, reducing_gap=3.0)


def encode(im: Image.Image, fmt: str, quality: int) -> bytes:
    buf = io.BytesIO()
    if fmt == "jpg":
        im.save(buf, "JPEG", quality=quality)
    else:
        im.save(buf, "PNG", compress_level=6)
    return buf.getvalue()


def blur_faces(im: Image.Image, boxes: list[list[float]]) -> Image.Image:
    """The image with each box ([x0, y0, x1, y1], fractions of the size) blurred by img2dataset's own
    `BoundingBoxBlurrer` (the one DataComp's downloader uses: boxes grown by a tenth of their diagonal, a
    Gaussian blur blended in through a blurred mask). Imported here only: it brings OpenCV and albumentations."""
    from img2dataset.blurrer import BoundingBoxBlurrer

    rgb = im.convert("RGB")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # albumentations' deprecation notes about its own arguments
        out = BoundingBoxBlurrer()(np.asarray(rgb), boxes)
    return Image.fromarray(out, "RGB")


def is_svg(data: bytes) -> bool:
    """Whether the bytes are an SVG document (its root element within the first 4 KiB)."""
    head = data[:4096].lstrip().lower()
    return head.startswith(b"<svg") or (head.startswith((b"<?xml", b"<!--", b"<!doctype")) and b"<svg" in head)


def svg_aspect(data: bytes) -> float | None:
    """Width / height of an SVG document from its root's viewBox (or width and height in absolute units),
    read before rendering: cairo allocates the whole canvas, so a 1:100000 document rendered with its shorter
    side at `size` would ask for billions of pixels. None when the document does not say."""
    import re

    from defusedxml import ElementTree

    try:
        root = ElementTree.fromstring(data)
    except Exception:  # noqa: BLE001 - malformed or hostile XML: cairosvg refuses it too, as corrupt
        return None
    box = [float(v) for v in re.findall(r"-?[\d.]+(?:e-?\d+)?", root.get("viewBox") or "")]
    if len(box) == 4 and box[2] > 0 and box[3] > 0:
        return box[2] / box[3]
    sizes = [re.fullmatch(r"\s*([\d.]+(?:e-?\d+)?)\s*(px|pt|mm|cm|in|pc)?\s*", root.get(k) or "")
             for k in ("width", "height")]
    if all(sizes) and float(sizes[0][1]) > 0 and float(sizes[1][1]) > 0:  # type: ignore[index]
        return float(sizes[0][1]) / float(sizes[1][1])  # type: ignore[index]
    return None


def render_svg(data: bytes, size: int) -> bytes:
    """Render an SVG to an RGB PNG whose shorter side is `size`, on white, drawn at that size (not upscaled).

    Offline and safe: cairosvg parses with defusedxml and, without `unsafe`, fetches no external resource.
    Raises ImportError when cairosvg (or the cairo library it loads) is missing."""
    try:
        import cairosvg  # imported here: only SVG rows need it, and it loads libcairo
    except OSError as exc:  # cairocffi without the cairo library
        raise ImportError(str(exc)) from exc

    png = cairosvg.svg2png(bytestring=data, output_width=size, background_color="white")
    im = Image.open(io.BytesIO(png))
    if im.height < size:  # landscape: the height is the shorter side
        png = cairosvg.svg2png(bytestring=data, output_height=size, background_color="white")
        im = Image.open(io.BytesIO(png))
    buf = io.BytesIO()
    im.convert("RGB").save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def clean_image(data: bytes | None, opts: CleanOptions, terms: tuple[str, ...] = (),
                faces: list[list[float]] | None = None) -> CleanResult:
    """Decode `data` and return the resized, re-encoded image or the one reason it was dropped.

    SVG documents (the iconify corpus, local SVG files) are rendered at the dataset's image size first
    (conversion `svg`; the original size recorded is the rendered one). With `opts.ocr`, the kept image's
    text is searched for `terms` (its class's name and lemmas). `faces` (relative boxes) are blurred before
    anything else sees the pixels (conversion `faces_blurred`)."""
    if not data:
        return CleanResult("empty_file", "zero bytes")
    size: tuple[int, int] | None = None

    def fail(reason: str, message: str) -> CleanResult:
        w0, h0 = size if size else (None, None)
        return CleanResult(reason, message[:300], orig_width=w0, orig_height=h0)

    svg = is_svg(data)
    if svg:
        aspect = svg_aspect(data)
        if aspect is not None:
            long = max(aspect, 1 / aspect)
            if long > opts.max_aspect_ratio:
                return fail("extreme_aspect_ratio", f"svg aspect {long:.0f}:1 > {opts.max_aspect_ratio}:1")
            if opts.image_size * opts.image_size * long > opts.max_image_pixels:
                return fail("decompression_bomb", f"svg rendered at {opts.image_size} px would exceed "
                            f"{opts.max_image_pixels} pixels")
        try:
            data = render_svg(data, opts.image_size)
        except ImportError as exc:
            return fail("svg_unsupported", f"cannot render SVG without cairosvg and libcairo2 ({exc}); "
                        "scripts/setup.sh installs them")
        except Exception as exc:  # noqa: BLE001 - cairosvg raises many kinds on a malformed document
            return fail("corrupt", f"svg: {type(exc).__name__}: {exc}")
    try:
        with _bomb_limit(opts.max_image_pixels):
            im = Image.open(io.BytesIO(data))
            size = w, h = im.size
            if w * h > opts.max_image_pixels:
                return fail("decompression_bomb", f"{w}x{h} > {opts.max_image_pixels} pixels")
            if min(w, h) < opts.min_image_size:
                return fail("too_small", f"{w}x{h} < {opts.min_image_size} px")
            if max(w, h) / min(w, h) > opts.max_aspect_ratio:
                return fail("extreme_aspect_ratio", f"{w}x{h} > {opts.max_aspect_ratio}:1")
            if im.format == "JPEG" and im.mode in ("RGB", "L"):
                # libjpeg can decode at 1/2..1/8 scale: much faster for large photos, same final size.
                scale = opts.image_size / min(w, h)
                im.draft(im.mode, (max(1, int(w * scale) + 1), max(1, int(h * scale) + 1)))
            im.load()
            if faces:  # boxes are fractions of the image as stored (img2dataset decodes without EXIF): blur first
                blurred = blur_faces(im, faces)
                blurred.info.update(im.info)  # the EXIF orientation travels on, for `upright`
                im = blurred
            turned = upright(im)  # stored as it displays: EXIF orientation applied, then the tag is gone
            rotated = turned is not im
            if turned.size != im.size:  # turned by 90 degrees: the original size as displayed
                w, h = h, w
            im = turned
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        return fail("decompression_bomb", str(exc))
    except UnidentifiedImageError as exc:
        return fail("not_an_image", str(exc))
    except OSError as exc:
        msg = str(exc)
        low = msg.lower()
        return fail("truncated" if "truncat" in low else "corrupt", msg)
    except (SyntaxError, ValueError, TypeError, IndexError, EOFError, MemoryError) as exc:
        return fail("corrupt", f"{type(exc).__name__}: {exc}")
    res = CleanResult(orig_width=w, orig_height=h)
    try:
        small, digest, conv = prepare(im, opts.image_size)
    except (OSError, ValueError) as exc:
        return fail("corrupt", f"conversion failed: {exc}")
    if rotated:
        conv.insert(0, "exif_orientation")
    res.conversion = "+".join([*(["svg"] if svg else []), *conv, *(["faces_blurred"] if faces else [])]) or None
    res.pixel_sha256 = digest
    res.width, res.height = small.size
    res.phash = perceptual_hash(small)
    res.image = encode(small, opts.encode_format, opts.encode_quality)
    if opts.ocr and terms:
        canon, _ = canonical(im)  # full size: text in a 64 px thumbnail is rarely legible
        _read_text(res, _on_white(canon) if canon.mode == "RGBA" else canon, terms)
    return res


def _read_text(res: CleanResult, im: Image.Image, terms: tuple[str, ...]) -> None:
    from imagenot.download import ocr

    try:
        res.text_match = ocr.find_term(ocr.recognise(im), terms)
    except RuntimeError as exc:  # pytesseract: a tesseract failure or its timeout; the image is kept
        res.ocr_error = str(exc)[:200]


_HTTP = re.compile(r"HTTP Error (\d{3})")


def fetch_reason(message: str, url: str | None) -> str:
    """Map img2dataset's (urllib's) error text to a stable reason name."""
    if not url:
        return "missing_url"
    low = message.lower()
    if "redirect refused" in low or ("redirection to url" in low and "not allowed" in low):
        return "redirect_refused"  # to file:// (urllib) or to anything but http(s) (http_fetch)
    if "response too large" in low:
        return "response_too_large"
    if "redirect" in low and ("infinite loop" in low or "redirection" in low or "redirect error" in low):
        return "redirect_loop"
    if _HTTP.search(message):
        return "http_error"
    if "timed out" in low or "timeout" in low:
        return "timeout"
    if "x-robots-tag" in low:
        return "disallowed_by_robots"
    if "no such file" in low or "errno 2" in low:
        return "file_not_found"
    if any(s in low for s in ("connection", "errno 111", "name or service", "remote end closed",
                              "reset by peer", "unreachable", "ssl", "certificate")):
        return "connection_error"
    return "download_error"


def http_status(message: str | None) -> int | None:
    m = _HTTP.search(message or "")
    return int(m.group(1)) if m else None


def read_local(url: str) -> tuple[bytes | None, str | None, str | None]:
    """Read a file:// url; (bytes, reason, message)."""
    if not url:
        return None, "missing_url", "empty url"
    path = urllib.request.url2pathname(urllib.parse.urlparse(url).path)
    try:
        return Path(path).read_bytes(), None, None
    except FileNotFoundError as exc:
        return None, "file_not_found", str(exc)
    except OSError as exc:
        return None, "download_error", str(exc)


@dataclass
class ShardStats:
    shard: int
    rows: int = 0
    kept: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    http_status: Counter[str] = field(default_factory=Counter)
    conversions: Counter[str] = field(default_factory=Counter)
    text: Counter[str] = field(default_factory=Counter)  # OCR: checked, text_in_image, ocr_errors
    fetch_s: float | None = None
    clean_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "shard": self.shard, "rows": self.rows, "kept": self.kept,
            "dropped": dict(sorted(self.reasons.items())),
            "http_status": dict(sorted(self.http_status.items())),
            "conversions": dict(sorted(self.conversions.items())),
            "text_filter": dict(sorted(self.text.items())),
            "fetch_s": self.fetch_s, "clean_s": round(self.clean_s, 3),
        }


FetchedRow = tuple[int, str | None, bytes | None, str | None, str | None]  # row_id, url, bytes, reason, msg


def iter_img2dataset_shard(path: Path, urls: dict[int, str | None]) -> Iterator[FetchedRow]:
    """Rows of one img2dataset parquet shard (written with disable_all_reencoding: the original bytes)."""
    table = pq.read_table(path)
    image_col = next(c for c in ("jpg", "png", "webp") if c in table.column_names)
    for batch in table.to_batches(max_chunksize=256):
        d = batch.to_pydict()
        for row_id, status, err, data in zip(d["row_id"], d["status"], d["error_message"], d[image_col]):
            url = urls.get(row_id)
            if status == "success" and data:
                yield row_id, url, data, None, None
            elif status == "success":
                yield row_id, url, None, "empty_file", "zero bytes"
            else:
                msg = err or status or "unknown error"
                yield row_id, url, None, fetch_reason(msg, url), msg


def iter_local_rows(rows: Iterable[tuple[int, str | None]]) -> Iterator[FetchedRow]:
    for row_id, url in rows:
        data, reason, msg = read_local(url or "")
        yield row_id, url, data, reason, msg


def clean_rows(shard: int, rows: Iterable[FetchedRow], opts: CleanOptions, out_path: Path,
               stats_path: Path, fetch_s: float | None = None,
               terms: dict[int, tuple[str, ...]] | None = None,
               faces: dict[int, list[list[float]]] | None = None) -> dict[str, Any]:
    """Clean every fetched row of one shard; write its parquet, then its stats (the stats mark it done).

    `terms`: per row id, the class terms the text-in-image filter looks for (with `opts.ocr`)."""
    t0 = time.perf_counter()
    stats = ShardStats(shard, fetch_s=fetch_s)
    cols: dict[str, list[Any]] = {name: [] for name in CLEAN_SCHEMA.names}
    for row_id, _url, data, reason, msg in rows:
        if reason is None:
            row_terms = (terms or {}).get(row_id, ())
            res = clean_image(data, opts, row_terms, (faces or {}).get(row_id))
            if opts.ocr and res.reason is None and row_terms:  # OCR'd (all rows, or the count mode's sample)
                stats.text["checked"] += 1
                stats.text["text_in_image"] += res.text_match is not None
                stats.text["ocr_errors"] += res.ocr_error is not None
        else:
            res = CleanResult(reason, msg)
            code = http_status(msg) if reason == "http_error" else None
            if code is not None:
                stats.http_status[str(code)] += 1
        stats.rows += 1
        if res.reason is None:
            stats.kept += 1
            for c in (res.conversion or "").split("+"):
                if c:
                    stats.conversions[c] += 1
        else:
            stats.reasons[res.reason] += 1
        cols["row_id"].append(row_id)
        for name in CLEAN_SCHEMA.names[1:]:
            cols[name].append(getattr(res, name))
    stats.clean_s = time.perf_counter() - t0
    table = pa.table(cols, schema=CLEAN_SCHEMA)
    with atomic_path(out_path) as tmp:
        pq.write_table(table, tmp)
    summary = stats.to_dict()
    write_json(stats_path, summary)
    return summary


@dataclass(frozen=True)
class CleanTask:
    """One fetch shard to clean, as sent to a worker process."""

    kind: str  # "img2dataset" (source: its parquet shard) or "direct" (source: (row_id, file url) pairs)
    shard: int
    source: Any
    urls: dict[int, str | None]
    opts: CleanOptions
    out_path: str
    stats_path: str
    raw_to_delete: str | None = None
    terms: dict[int, tuple[str, ...]] | None = None
    faces: dict[int, list[list[float]]] | None = None  # row id -> face boxes to blur


def run_clean_task(task: CleanTask) -> dict[str, Any]:
    """Entry point for a worker process: one shard, from img2dataset output or local files."""
    t0 = time.perf_counter()
    if task.kind == "img2dataset":
        rows: Iterable[FetchedRow] = iter_img2dataset_shard(Path(task.source), task.urls)
        fetch_s = None
    else:
        rows = list(iter_local_rows(task.source))
        fetch_s = round(time.perf_counter() - t0, 3)
    summary = clean_rows(task.shard, rows, task.opts, Path(task.out_path), Path(task.stats_path), fetch_s,
                         task.terms, task.faces)
    if task.raw_to_delete:
        Path(task.raw_to_delete).unlink(missing_ok=True)
    return summary
