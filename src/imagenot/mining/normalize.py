"""Caption clean-up in bulk: validation of a whole Arrow batch and the LAIONet text normalisation.

Per-caption Python (`str.translate`, a loop over rows) caps matching at a few hundred thousand captions per
second; LAION has billions. So a batch is checked with Arrow kernels, and the normalised text is built as one
buffer: every caption becomes `" " + caption + " \\x00"`, the buffer goes through one `bytes.translate`
(ASCII punctuation -> space) and is viewed as latin-1, so that byte offsets equal string offsets and a
pattern found by the automaton maps back to its caption with one `searchsorted`.

Why bytes are safe: UTF-8 keeps ASCII bytes for ASCII characters only (multi-byte sequences use bytes >= 0x80),
so translating ASCII punctuation bytes never touches a non-ASCII character, and a pattern that starts and ends
with a space can only match on character boundaries. The `\\x00` separator keeps a pattern from spanning two
captions (no pattern contains it).
"""

from __future__ import annotations

import logging
import string
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

log = logging.getLogger(__name__)

PUNCTUATION = string.punctuation  # the 32 ASCII punctuation characters LAIONet replaces
_BYTE_TABLE = bytes.maketrans(PUNCTUATION.encode("ascii"), b" " * len(PUNCTUATION))
_STR_TABLE = str.maketrans(PUNCTUATION, " " * len(PUNCTUATION))
SEPARATOR = "\x00"


def laionet_normalize(text: str) -> str:
    """The LAIONet rule for one caption (reference implementation; the bulk path must agree with it)."""
    return " " + text.translate(_STR_TABLE) + " "


def plain_text_type(t: pa.DataType) -> pa.DataType | None:
    """The plain Arrow type captions of type `t` are read as: string or binary for every text layout
    (string, large_string, string_view, their binary twins, and dictionary-encoded ones: what pandas
    categoricals become in parquet), None for a column that does not hold text (numbers, lists, dates...)."""
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return pa.string()
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_binary_view(t):
        return pa.binary()
    return None


def _plain(arr: pa.Array) -> pa.Array:
    """Dictionary-encoded and view columns as plain string/binary arrays (the kernels below need those)."""
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if pa.types.is_string_view(arr.type) or pa.types.is_binary_view(arr.type):
        arr = arr.cast(plain_text_type(arr.type))
    return arr


@dataclass
class CaptionCheck:
    """A batch's captions with every unusable one set to null, and why each was dropped."""

    text: pa.Array  # utf8, null where the caption is unusable
    null: int = 0
    empty: int = 0
    non_string: int = 0
    invalid_utf8: int = 0
    oversized: int = 0


def _as_utf8(arr: pa.Array) -> tuple[pa.Array, int]:
    """Cast binary/string to utf8; rows that are not valid UTF-8 become null (counted)."""
    if pa.types.is_large_string(arr.type):
        arr = arr.cast(pa.large_binary())
    if pa.types.is_string(arr.type):
        try:
            arr.validate(full=True)
            return arr, 0
        except pa.ArrowInvalid:
            arr = arr.view(pa.binary())
    try:
        return arr.cast(pa.string()), 0
    except pa.ArrowInvalid:
        pass
    # Rare slow path: some rows are not UTF-8. Find them one by one.
    values: list[str | None] = []
    bad = 0
    for b in arr.to_pylist():
        if b is None:
            values.append(None)
            continue
        try:
            values.append(b.decode("utf-8"))
        except UnicodeDecodeError:
            bad += 1
            values.append(None)
    return pa.array(values, pa.string()), bad


def check_captions(arr: pa.Array, max_bytes: int) -> CaptionCheck:
    """Keep only captions that are strings, valid UTF-8, not blank and at most `max_bytes` long."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    arr = _plain(arr)
    n = len(arr)
    t = arr.type
    if pa.types.is_null(t):
        return CaptionCheck(pa.nulls(n, pa.string()), null=n)
    null = arr.null_count
    if not (pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t)
            or pa.types.is_large_binary(t)):
        # A numeric or nested caption column: every non-null value is unusable.
        return CaptionCheck(pa.nulls(n, pa.string()), null=null, non_string=n - null)
    text, invalid = _as_utf8(arr)
    lengths = pc.binary_length(text)
    too_long = pc.fill_null(pc.greater(lengths, max_bytes), False)
    oversized = pc.sum(too_long).as_py() or 0
    blank = pc.fill_null(pc.utf8_is_space(text), False)  # true for whitespace-only strings, false for ""
    empty_mask = pc.or_(pc.fill_null(pc.equal(lengths, 0), False), blank)
    empty = pc.sum(pc.and_not(empty_mask, too_long)).as_py() or 0
    drop = pc.or_(too_long, empty_mask)
    if oversized or empty:
        text = pc.if_else(drop, pa.scalar(None, pa.string()), text)
    return CaptionCheck(text, null=null, empty=empty, invalid_utf8=invalid, oversized=oversized)


def normalized_buffer(text: pa.Array, lower: bool = False) -> tuple[str, np.ndarray]:
    """All captions of a batch as one normalised string and each caption's start offset.

    Returns `(joined, starts)`: `joined` holds `" " + normalised caption + " \\x00"` per row (empty for null
    rows), viewed as latin-1; `starts` has len(text) + 1 offsets, so the caption of a match ending at
    position p is `searchsorted(starts, p, 'right') - 1`.
    """
    if lower:
        text = pc.utf8_lower(text)
    padded = pc.binary_join_element_wise(" ", text, " " + SEPARATOR, "")
    if isinstance(padded, pa.ChunkedArray):
        padded = padded.combine_chunks()
    padded = padded.cast(pa.large_string())  # 64-bit offsets: a batch may exceed 2 GiB in theory
    _, off_buf, data_buf = padded.buffers()
    offsets = np.frombuffer(off_buf, dtype=np.int64)[padded.offset: padded.offset + len(padded) + 1]
    if data_buf is None or len(offsets) == 0:
        return "", np.zeros(len(padded) + 1, dtype=np.int64)
    start, end = int(offsets[0]), int(offsets[-1])
    raw = memoryview(data_buf)[start:end].tobytes()
    joined = raw.translate(_BYTE_TABLE).decode("latin-1")
    return joined, offsets - start
