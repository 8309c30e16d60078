"""The image-text corpora by name: one table of column maps, recognition from a shard's columns, and the
safety and metadata filters each corpus states.

A researcher names the corpus (`--schema laion2b`), not its columns, and must never get an unfiltered corpus
silently: LAION-2B's parquet has no `NSFW` column (its safety is `punsafe`, a probability), so mining it with
LAION-400M's column names used to keep every row. Each schema says where its safety judgement lives and in
which form: a categorical column kept by value (LAION-400M `NSFW == "UNLIKELY"`) or a numeric score kept below
a maximum (`punsafe`, COYO's `nsfw_score_opennsfw2`). A corpus without any safety column (DataComp CommonPool,
whose NSFW images were removed before release) is mined only when the user says so with `--keep-nsfw`.

Corpora as released (docs/scaling.md gives the sources). LAION-400M and the standard LAION-5B collections
(`laion2B-en`, `laion2B-multi`, `laion1B-nolang`) share one layout: `SAMPLE_ID, URL, TEXT, HEIGHT, WIDTH,
LICENSE, (LANGUAGE,) NSFW, similarity`, NSFW categorical. The `-joined` LAION-5B collections carry `URL, TEXT,
WIDTH, HEIGHT, similarity, hash, punsafe, pwatermark (, LANGUAGE)`, punsafe a probability; Re-LAION-5B
(LAION 2024, gated; `research` and `research-safe`, the latter without rows whose punsafe > 0.45) is read with
that joined layout. DataComp CommonPool `uid, url, text, original_width, original_height,
clip_b32_similarity_score, clip_l14_similarity_score, face_bboxes, sha256`; COYO-700M `id, url, text, width,
height, image_phash, text_length, word_count, num_tokens_bert, num_tokens_gpt, num_faces, clip_similarity_vitb32,
clip_similarity_vitl14, nsfw_score_opennsfw2, nsfw_score_gantman, watermark_score, aesthetic_score_laion_v2`.

Columns cannot tell LAION-400M from a standard laion2B-en shard, nor the joined collections from Re-LAION-5B:
`--schema auto` then resolves to a layout whose name says so (`laion400m-or-laion2b-en`, ...), logs a warning
and records the candidates in provenance; `--schema` names the corpus exactly.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from imagenot.errors import InputError

log = logging.getLogger(__name__)

# Default maximum of a numeric safety score (a probability that the image is unsafe). Stable Diffusion 2
# was trained on LAION-5B filtered at punsafe 0.1 ("conservative"), and open_nsfw's authors read scores below
# 0.2 as safe with high probability; 0.1 sits inside both. docs/scaling.md, "Safety defaults".
DEFAULT_SAFETY_MAX = 0.1


@dataclass(frozen=True)
class CorpusSchema:
    """Where a corpus keeps each field mining uses; None: the corpus has no such column."""

    name: str
    url: str
    caption: str
    id: str | None = None
    width: str | None = None
    height: str | None = None
    safety: str | None = None
    safety_kind: str | None = None  # "categorical" (kept by value) or "score" (kept below a maximum)
    safe_values: tuple[str, ...] = ()  # categorical: the values that are kept
    watermark: str | None = None  # a watermark probability (optional filter)
    clip_score: str | None = None  # the corpus's own image-text CLIP similarity
    signature: tuple[str, ...] = ()  # columns that identify the schema: all present...
    signature_any: tuple[str, ...] = ()  # ...and at least one of these (when given)
    no_safety_reason: str = ""  # why a corpus without a safety column may still be mined (shown in errors)
    description: str = ""
    faces: str | None = None  # face bounding boxes (DataComp): carried into the matches, blurred at download
    candidates: tuple[str, ...] = ()  # recognised by auto: the corpora these columns may be (empty: exact)

    def fields(self) -> dict[str, str | None]:
        return {"id": self.id, "url": self.url, "caption": self.caption, "width": self.width,
                "height": self.height, "safety": self.safety, "watermark": self.watermark,
                "clip_score": self.clip_score, "faces": self.faces}


_STANDARD = dict(url="URL", caption="TEXT", id="SAMPLE_ID", width="WIDTH", height="HEIGHT", safety="NSFW",
                 safety_kind="categorical", safe_values=("UNLIKELY",), clip_score="similarity",
                 signature=("URL", "TEXT"), signature_any=("SAMPLE_ID", "NSFW"))
_JOINED = dict(url="URL", caption="TEXT", id="hash", width="WIDTH", height="HEIGHT", safety="punsafe",
               safety_kind="score", watermark="pwatermark", clip_score="similarity", signature=("URL", "TEXT"),
               signature_any=("punsafe", "pwatermark", "hash"))
_RELAION = ("Re-LAION-5B (LAION 2024, gated): LAION-5B's joined metadata after LAION's removals, which LAION "
            "counts against LAION-5B's 5.85B pairs")


def _schema(name: str, base: dict[str, Any], description: str, **extra: Any) -> CorpusSchema:
    return CorpusSchema(name, **base, description=description, **extra)


SCHEMAS: dict[str, CorpusSchema] = {s.name: s for s in (
    _schema("laion400m", _STANDARD, "LAION-400M metadata (NSFW: UNLIKELY / UNSURE / NSFW from CLIP embeddings)"),
    _schema("laion2b-en", _STANDARD, "LAION-5B laion2B-en, standard layout (NSFW categorical, like LAION-400M)"),
    _schema("laion2b-multi", _STANDARD, "LAION-5B laion2B-multi, standard layout (+ LANGUAGE)"),
    _schema("laion1b-nolang", _STANDARD, "LAION-5B laion1B-nolang, standard layout"),
    _schema("laion2b-en-joined", _JOINED, "LAION-5B laion2B-en-joined (punsafe, pwatermark: probabilities)"),
    _schema("laion2b-multi-joined", _JOINED, "LAION-5B laion2B-multi-joined (+ LANGUAGE)"),
    _schema("laion1b-nolang-joined", _JOINED, "LAION-5B laion1B-nolang-joined"),
    _schema("relaion5b-research", _JOINED, _RELAION + "; research variant (relaion2B-en-research, "
            "relaion2B-multi-research, relaion1B-nolang-research)"),
    _schema("relaion5b-research-safe", _JOINED, _RELAION + "; research-safe variant: LAION also removed every "
            "row with punsafe > 0.45 (relaion2B-en-research-safe, ...)"),
    CorpusSchema(
        "datacomp", url="url", caption="text", id="uid", width="original_width", height="original_height",
        clip_score="clip_l14_similarity_score", signature=("uid", "url", "text"), faces="face_bboxes",
        no_safety_reason="DataComp CommonPool has no safety column: its NSFW images were removed before "
        "release; pass --keep-nsfw to accept that filtering",
        description="DataComp CommonPool metadata (face_bboxes: faces blurred at download)"),
    CorpusSchema(
        "coyo", url="url", caption="text", id="id", width="width", height="height",
        safety="nsfw_score_opennsfw2", safety_kind="score", watermark="watermark_score",
        clip_score="clip_similarity_vitb32", signature=("id", "url", "text", "clip_similarity_vitb32"),
        description="COYO-700M metadata (nsfw_score_opennsfw2, watermark_score: probabilities)"),
)}
# Earlier names, kept so configs and commands keep working (a warning names the exact one).
ALIASES = {"laion2b": "laion2b-en-joined"}
# What `--schema auto` resolves to where columns cannot tell corpora apart: the layout, named by its candidates.
AMBIGUOUS: dict[str, CorpusSchema] = {s.name: s for s in (
    _schema("laion400m-or-laion2b-en", _STANDARD, "standard LAION layout without LANGUAGE: LAION-400M or a "
            "standard laion2B-en shard (same columns, same NSFW rule)",
            candidates=("laion400m", "laion2b-en")),
    _schema("laion2b-multi-or-laion1b-nolang", _STANDARD, "standard LAION-5B layout with LANGUAGE",
            candidates=("laion2b-multi", "laion1b-nolang")),
    _schema("laion5b-joined", _JOINED, "LAION-5B joined layout (hash, punsafe, pwatermark): a -joined collection "
            "or Re-LAION-5B", candidates=("laion2b-en-joined", "laion2b-multi-joined", "laion1b-nolang-joined",
                                          "relaion5b-research", "relaion5b-research-safe")),
)}
SCHEMA_NAMES = ("auto", *SCHEMAS, *ALIASES)
# Our own conversion of the Open Clip Art Library (mining/openclipart.py): a curated clip-art collection.
OPENCLIPART = CorpusSchema(
    "openclipart", url="URL", caption="TEXT", id="SAMPLE_ID",
    no_safety_reason="the Open Clip Art Library is a curated public clip-art collection",
    description="the Open Clip Art Library converted by imagenot")
# Our own conversion of @iconify/json (mining/iconify.py): open icon sets, licences filtered per set.
ICONIFY = CorpusSchema(
    "iconify", url="URL", caption="TEXT", id="SAMPLE_ID",
    no_safety_reason="@iconify/json is a curated collection of open icon sets",
    description="the @iconify/json icon sets converted by imagenot")
BUILTIN = {s.name: s for s in (OPENCLIPART, ICONIFY)}


def builtin_schema(names: Sequence[str]) -> CorpusSchema:
    """The schema of imagenot's own conversions (they share their columns), named after the corpora mined."""
    if len(names) == 1:
        return BUILTIN[names[0]]
    return replace(OPENCLIPART, name="+".join(names), no_safety_reason="curated collections converted by "
                   "imagenot", description=" and ".join(BUILTIN[n].description for n in names))

# MineConfig field -> schema field, and the flag that maps it (for error messages).
COLUMN_FLAGS = {"text_col": "caption", "url_col": "url", "id_col": "id", "safety_col": "safety",
                "width_col": "width", "height_col": "height", "watermark_col": "watermark"}


@dataclass(frozen=True)
class SafetyRule:
    """How rows are judged safe: kept values of a categorical column, or a maximum of a numeric score."""

    column: str | None
    kind: str | None = None  # "categorical" | "score" | None (no filter)
    keep_values: tuple[str, ...] = ()
    max: float | None = None
    reason: str = ""  # when column is None: why no filter applies

    def describe(self) -> str:
        if self.column is None:
            return f"none ({self.reason})"
        if self.kind == "score":
            return f"{self.column} < {self.max:g}"
        return f"{self.column} in {{{', '.join(self.keep_values)}}}"

    def provenance(self, dropped: int) -> dict[str, Any]:
        out: dict[str, Any] = {"column": self.column, "rule": self.describe(), "dropped": dropped}
        if self.kind == "score":
            out["max"] = self.max
        elif self.kind == "categorical":
            out["keep_values"] = list(self.keep_values)
        return out


@dataclass(frozen=True)
class ResolvedSchema:
    """The schema a run uses: the named or detected one, with the user's column overrides applied."""

    schema: CorpusSchema
    detected: bool  # chosen by --schema auto
    safety: SafetyRule
    overrides: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.schema.name


def detect_schema(columns: Sequence[str]) -> CorpusSchema | None:
    """The first layout whose signature columns are all present (most specific first); where the layout is
    shared by several corpora, a schema whose `candidates` name them."""
    found = set(columns)
    multi = "LANGUAGE" in found
    order = (SCHEMAS["coyo"], SCHEMAS["datacomp"], AMBIGUOUS["laion5b-joined"],
             AMBIGUOUS["laion2b-multi-or-laion1b-nolang" if multi else "laion400m-or-laion2b-en"])
    for sch in order:
        if set(sch.signature) <= found and (not sch.signature_any or found & set(sch.signature_any)):
            return sch
    return None


def _signatures() -> str:
    return "; ".join(f"{s.name}: {', '.join(s.signature)}" + (f" and one of {'/'.join(s.signature_any)}"
                                                               if s.signature_any else "")
                     for s in SCHEMAS.values())


def _map_flags() -> str:
    return ", ".join("--" + k.replace("_", "-") for k in COLUMN_FLAGS)


def resolve_schema(
    columns: Sequence[str],
    where: str,
    *,
    schema: str = "auto",
    overrides: dict[str, str | None] | None = None,
    keep_nsfw: bool = False,
    safety_max: float = DEFAULT_SAFETY_MAX,
    safety_keep: tuple[str, ...] | None = None,
    is_numeric: Callable[[str], bool] | None = None,
    builtin: CorpusSchema | None = None,
) -> ResolvedSchema:
    """Choose the column map for a corpus from its first shard's columns and the user's settings.

    Raises InputError when the columns match no schema (listing them and the flags that map them), when a
    mapped required column is missing, or when no safety column exists and `keep_nsfw` is false."""
    given = {k: v for k, v in (overrides or {}).items() if v}
    if builtin is not None:
        base, detected = builtin, False
    elif schema != "auto":
        if schema in ALIASES:
            log.warning("--schema %s is the LAION-5B joined layout; name the collection exactly: %s (or "
                        "laion2b-multi-joined, laion1b-nolang-joined, relaion5b-research[-safe]; the standard "
                        "laion2B-en layout is laion2b-en)", schema, ALIASES[schema])
            schema = ALIASES[schema]
        if schema not in SCHEMAS:
            raise InputError(f"unknown --schema {schema!r}; known: {', '.join(SCHEMA_NAMES)}")
        base, detected = SCHEMAS[schema], False
    else:
        found = detect_schema(columns)
        if found is None:
            if "text_col" in given and "url_col" in given:
                base = CorpusSchema("custom", url=given["url_col"], caption=given["text_col"],
                                    description="columns mapped by the user")
            else:
                raise InputError(
                    f"the columns match no known corpus schema; found {', '.join(columns) or '(none)'}. "
                    f"Known: {_signatures()}. Name the schema with --schema, or map the columns with "
                    f"{_map_flags()} (--text-col and --url-col at least)", where)
        else:
            base = found
            if found.candidates:
                log.warning("%s: these columns are the layout of %s, which columns cannot tell apart; recorded "
                            "as %r. Name the corpus with --schema %s to record it exactly", where,
                            " or ".join(found.candidates), found.name, " / ".join(found.candidates))
        detected = True
    changes = {COLUMN_FLAGS[k]: v for k, v in given.items()}
    sch = replace(base, **changes) if changes else base
    missing = [f"{c} (--{flag.replace('_', '-')})" for flag, c in
               (("text_col", sch.caption), ("url_col", sch.url)) if c not in columns]
    if missing:
        raise InputError(f"missing column(s) {', '.join(missing)} for schema {sch.name}; found "
                         f"{', '.join(columns) or '(none)'} (map them with {_map_flags()})", where)
    if sch.id is not None and sch.id not in columns:
        log.info("%s: no id column %s; source ids will be <shard>:<row>", where, sch.id)
        sch = replace(sch, id=None)
    for name in ("width", "height", "watermark", "clip_score", "faces"):
        col = getattr(sch, name)
        if col is not None and col not in columns:
            sch = replace(sch, **{name: None})
    sch = replace(sch, safety=sch.safety if sch.safety in columns else None) if sch.safety else sch
    if keep_nsfw:
        rule = SafetyRule(None, reason="--keep-nsfw: safety not filtered")
    elif sch.safety is None:
        reason = sch.no_safety_reason
        wanted = given.get("safety_col") or base.safety
        if not reason:
            raise InputError(
                (f"no safety column {wanted!r}" if wanted else "no safety column") +
                f" in schema {sch.name}; found {', '.join(columns) or '(none)'}. Map the corpus's NSFW or "
                "unsafe-probability column with --safety-col, or pass --keep-nsfw to mine it unfiltered", where)
        if builtin is None:
            raise InputError(f"{reason}", where)
        rule = SafetyRule(None, reason=reason)
    else:
        kind = sch.safety_kind
        if "safety_col" in given or kind is None:  # a column the user mapped: its values decide
            numeric = not safety_keep and is_numeric is not None and is_numeric(sch.safety)
            kind = "score" if numeric else "categorical"
        if kind == "score":
            rule = SafetyRule(sch.safety, "score", max=safety_max)
        else:
            keep = tuple(safety_keep) if safety_keep else (sch.safe_values or ("UNLIKELY",))
            rule = SafetyRule(sch.safety, "categorical", keep_values=keep)
    return ResolvedSchema(sch, detected, rule, {k: v for k, v in given.items() if v})
