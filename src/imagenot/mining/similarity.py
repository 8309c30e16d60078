"""Caption-query similarity: cosine of the L2-normalised embeddings of a caption and its class's query.

LAIONet keeps a matched caption only if its embedding is close enough to the class's query text
("<name> which is <definition>"); this is what filters "a cat 6 cable" out of the feline class. The cost at
LAION scale is the encoder, so no text is encoded twice: class queries are encoded lazily (only classes that
are hit: a pool has 80,000 synsets), identical captions in a shard once, and with an embedding store
(`store.py`) never again in any later shard, pass or run. Thresholds are per encoder (`encoders.py`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from imagenot.mining.embed import EncoderSpec, TextEncoder, load_text_encoder
from imagenot.mining.store import EmbeddingStore

log = logging.getLogger(__name__)


def open_store(spec: EncoderSpec, encoder: TextEncoder) -> EmbeddingStore | None:
    if not spec.store:
        return None
    return EmbeddingStore(spec.store, encoder.identity, encoder.dim, encoder.describe)


class Scorer:
    """Cosine similarity of captions to class queries, encoding each distinct text at most once."""

    def __init__(self, encoder: TextEncoder, queries: Sequence[str], store: EmbeddingStore | None = None,
                 memory_cache: int = 200_000) -> None:
        self.encoder = encoder
        self.store = store
        self.queries = list(queries)
        self._query_emb: dict[int, np.ndarray] = {}
        self._memory: dict[str, np.ndarray] = {}  # without a store: recent captions, oldest dropped first
        self._memory_size = memory_cache if store is None else 0
        self.encoded_captions = 0
        self.encoded_queries = 0
        self.stored_captions_reused = 0

    @classmethod
    def from_spec(cls, spec: EncoderSpec, queries: Sequence[str]) -> Scorer:
        encoder = load_text_encoder(spec)
        return cls(encoder, queries, open_store(spec, encoder))

    def _lookup_or_encode(self, texts: list[str]) -> tuple[np.ndarray, int, int]:
        """(embeddings, encoded, reused from the store) for distinct texts."""
        if self.store is None:
            todo = [t for t in texts if t not in self._memory]
            if todo:
                emb = self.encoder.encode(todo)
                self._memory.update(zip(todo, emb))
                while len(self._memory) > max(self._memory_size, len(texts)):
                    del self._memory[next(iter(self._memory))]
            return (np.stack([self._memory[t] for t in texts]) if texts else
                    np.zeros((0, self.encoder.dim), np.float32)), len(todo), 0
        found, out = self.store.get(texts)
        missing = np.nonzero(~found)[0]
        if len(missing):
            out[missing] = self.encoder.encode([texts[i] for i in missing], on_batch=self.store.put)
        return out, int(len(missing)), int(found.sum())

    def query_embeddings(self, classes: np.ndarray) -> np.ndarray:
        """Embeddings of the queries of `classes` (encoded on first use only)."""
        missing = sorted({int(c) for c in np.unique(classes)} - self._query_emb.keys())
        if missing:
            emb, encoded, _ = self._lookup_or_encode([self.queries[c] for c in missing])
            self.encoded_queries += encoded
            self._query_emb.update(zip(missing, emb))
        if len(classes) == 0:
            return np.zeros((0, self.encoder.dim), dtype=np.float32)
        return np.stack([self._query_emb[int(c)] for c in classes])

    def caption_embeddings(self, captions: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(distinct caption embeddings, index of each caption into them)."""
        index: dict[str, int] = {}
        inverse = np.empty(len(captions), dtype=np.int64)
        for i, c in enumerate(captions):
            inverse[i] = index.setdefault(c, len(index))
        emb, encoded, reused = self._lookup_or_encode(list(index))
        self.encoded_captions += encoded
        self.stored_captions_reused += reused
        return emb, inverse

    def pair_similarity(self, captions: Sequence[str], caption_of_pair: np.ndarray,
                        class_of_pair: np.ndarray) -> np.ndarray:
        """Similarity for (caption, class) pairs; a caption with several candidate classes is encoded once."""
        if len(class_of_pair) == 0:
            return np.zeros(0, dtype=np.float32)
        emb, inverse = self.caption_embeddings(captions)
        q = self.query_embeddings(class_of_pair)
        c = emb[inverse[caption_of_pair]]
        self.flush()
        return np.einsum("ij,ij->i", c, q).astype(np.float32)

    def flush(self) -> None:
        """Write what this shard encoded into the store as one part file (called once per shard)."""
        if self.store is not None:
            self.store.flush()
