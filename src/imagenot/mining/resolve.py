"""Candidates -> matches: one class per caption, with its similarity to the class query.

A caption with one candidate class keeps it. One with several (kept only for `--multi best` and for the first
pass over a class pool) goes to the candidate whose query is most similar to the caption; without an encoder
it goes to the candidate whose matched lemma names it as the most frequent WordNet sense ("first sense wins"),
or is dropped when no ranking is given.
The threshold is not applied here: matches keep every similarity, so `imagenot select` can re-threshold and
the histograms show the whole distribution.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from imagenot.mining.matcher import LemmaMatcher
from imagenot.mining.selected import CORPUS_PREFIX
from imagenot.mining.similarity import Scorer
from imagenot.wordnet.classes import ClassRow

log = logging.getLogger(__name__)

MATCH_SCHEMA = pa.schema([
    ("source_id", pa.string()), ("url", pa.string()), ("caption", pa.string()), ("wnid", pa.string()),
    ("lemma", pa.string()), ("similarity", pa.float32()),
])

# (class position, matched lemma text) -> rank; lower wins. Used without an encoder.
RankFn = Callable[[int, str], int]


def resolve_candidates(
    candidates: pa.Table,
    classes: Sequence[ClassRow],
    matcher: LemmaMatcher,
    scorer: Scorer | None = None,
    rank: RankFn | None = None,
) -> tuple[pa.Table, dict[str, int]]:
    """Assign each candidate row to one class; returns (MATCH_SCHEMA table, counters).

    With `rank` and no scorer (pool pass without an encoder) a caption may count for several classes."""
    n = candidates.num_rows
    stats = {"matched": 0, "multi_class_resolved": 0, "multi_class_unresolved": 0}
    if n == 0:
        return MATCH_SCHEMA.empty_table(), stats
    cls_list = candidates["classes"].combine_chunks()
    lem_list = candidates["lemmas"].combine_chunks()
    offsets = np.asarray(cls_list.offsets)
    pair_cls = np.asarray(cls_list.values, dtype=np.int32)
    pair_lem = np.asarray(lem_list.values, dtype=np.int32)
    counts = np.diff(offsets)
    pair_row = np.repeat(np.arange(n), counts)
    captions = candidates["caption"].to_pylist()
    if scorer is not None:
        sim = scorer.pair_similarity(captions, pair_row, pair_cls)
        # argmax within each row's segment: sort by (row, -sim) and take each row's first pair
        order = np.lexsort((-sim, pair_row))
        first = order[np.searchsorted(pair_row[order], np.arange(n), side="left")]
        chosen = first
        similarity = pa.array(sim[chosen], pa.float32())
        keep = np.ones(n, dtype=bool)
    else:
        similarity = pa.nulls(n, pa.float32())
        chosen = offsets[:-1].copy()
        keep = counts == 1
        multi_rows = np.nonzero(counts > 1)[0]
        if rank is not None and len(multi_rows):
            # First sense wins: a caption counts for every candidate that is the most frequent sense of the
            # lemma that hit it (its best rank); several rows per caption are possible here (pool pass only).
            extra_rows: list[int] = []
            extra_pairs: list[int] = []
            for r in multi_rows:
                lo, hi = offsets[r], offsets[r + 1]
                ranks = [rank(int(pair_cls[j]), matcher.lemma_text[pair_lem[j]]) for j in range(lo, hi)]
                best = min(ranks)
                winners = [lo + k for k, v in enumerate(ranks) if v == best]
                chosen[r] = winners[0]
                keep[r] = True
                extra_rows += [int(r)] * (len(winners) - 1)
                extra_pairs += winners[1:]
            if extra_rows:
                order = np.argsort(np.concatenate([np.arange(n), np.asarray(extra_rows)]), kind="stable")
                rows_all = np.concatenate([np.arange(n), np.asarray(extra_rows)])[order]
                chosen = np.concatenate([chosen, np.asarray(extra_pairs)])[order]
                keep = np.concatenate([keep, np.ones(len(extra_rows), dtype=bool)])[order]
                candidates = candidates.take(pa.array(rows_all))
                counts = counts[rows_all]
                n = len(rows_all)
                similarity = pa.nulls(n, pa.float32())
    multi = counts > 1
    stats["multi_class_resolved"] = int((multi & keep).sum())
    stats["multi_class_unresolved"] = int((multi & ~keep).sum())
    wnids = np.array([c.wnid for c in classes], dtype=object)
    lemma_text = np.array(matcher.lemma_text, dtype=object)
    table = pa.table({
        "source_id": candidates["source_id"],
        "url": candidates["url"],
        "caption": candidates["caption"],
        "wnid": pa.array(wnids[pair_cls[chosen]].tolist(), pa.string()),
        "lemma": pa.array(lemma_text[pair_lem[chosen]].tolist(), pa.string()),
        "similarity": similarity,
    }, schema=MATCH_SCHEMA)
    for name in candidates.column_names:
        if name.startswith(CORPUS_PREFIX):  # the corpus's own columns the user asked to keep
            table = table.append_column(name, candidates[name])
    if not keep.all():
        table = table.filter(pa.array(keep))
    stats["matched"] = table.num_rows
    return table, stats


def above(table: pa.Table, threshold: float | None) -> pa.Table:
    """Rows whose similarity is strictly above the threshold (all rows when there is no threshold or no
    similarity, i.e. --no-embed)."""
    if threshold is None or table.num_rows == 0 or table["similarity"].null_count == table.num_rows:
        return table
    return table.filter(pc.fill_null(pc.greater(table["similarity"], threshold), False))
