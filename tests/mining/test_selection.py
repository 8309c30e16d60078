"""Selection: top-N classes with at least K images, per-class cap (top or seeded random), train/val split."""

from __future__ import annotations

from collections import Counter

import pyarrow as pa
import pytest

from imagenot.errors import ImagenotError
from imagenot.mining.resolve import MATCH_SCHEMA
from imagenot.mining.selection import SelectionParams, select

from .mine_helpers import make_classes

CLASSES = make_classes([(f"c{i}", (f"lemma{i}",), f"thing {i}") for i in range(4)])
SIZES = {0: 30, 1: 12, 2: 50, 3: 4}  # images per class


def _matches(with_similarity: bool = True) -> pa.Table:
    rows = []
    for c, n in SIZES.items():
        for j in range(n):
            rows.append({"source_id": f"{c}-{j}", "url": f"http://x/{c}/{j}", "caption": f"lemma{c} {j}",
                         "wnid": CLASSES[c].wnid, "lemma": f"lemma{c}",
                         "similarity": (j / n) if with_similarity else None})
    return pa.Table.from_pylist(rows, schema=MATCH_SCHEMA)


def test_top_n_with_min_k_and_labels_follow_mined_order() -> None:
    final, sel, report = select(_matches(), CLASSES, SelectionParams(num_classes=2, min_matches_per_class=10), None)
    assert [c.wnid for c in final] == [CLASSES[0].wnid, CLASSES[2].wnid]  # the two largest, in mined order
    assert [c.index for c in final] == [0, 1]
    assert Counter(zip(sel["wnid"].to_pylist(), sel["label"].to_pylist())) == {
        (CLASSES[0].wnid, 0): 30, (CLASSES[2].wnid, 1): 50}
    assert report["classes_eligible"] == 3 and report["dropped_below_min"] == [CLASSES[3].wnid]


def test_threshold_is_strict() -> None:
    _, sel, report = select(_matches(), CLASSES, SelectionParams(), 0.5)
    per = {w: v["available"] for w, v in report["per_class"].items()}
    assert per[CLASSES[2].wnid] == 24  # j/50 > 0.5 for j = 26..49
    assert min(sel["similarity"].to_pylist()) > 0.5


def test_cap_top_keeps_the_most_similar_and_oversample_and_val() -> None:
    params = SelectionParams(max_per_class=10, cap="top", val_per_class=2, oversample=1.4, seed=3)
    _, sel, report = select(_matches(), CLASSES, params, None)
    c2 = report["per_class"][CLASSES[2].wnid]
    assert (c2["selected"], c2["val"], c2["train"]) == (14, 3, 11)  # ceil(10*1.4), ceil(2*1.4)
    rows = [r for r in sel.to_pylist() if r["wnid"] == CLASSES[2].wnid]
    assert sorted(r["similarity"] for r in rows) == pytest.approx(sorted(j / 50 for j in range(36, 50)))
    assert [r["split"] for r in rows] == ["train"] * 11 + ["val"] * 3
    train_sims = [r["similarity"] for r in rows if r["split"] == "train"]
    assert train_sims == sorted(train_sims, reverse=True)  # priority order within a split
    c3 = report["per_class"][CLASSES[3].wnid]
    assert c3["val"] == 2  # small class: at most half goes to val


def test_random_cap_is_seeded_and_per_class_stable() -> None:
    params = SelectionParams(max_per_class=5, cap="random", seed=1)
    a = select(_matches(), CLASSES, params, None)[1]
    b = select(_matches(), CLASSES, params, None)[1]
    c = select(_matches(), CLASSES, SelectionParams(max_per_class=5, cap="random", seed=2), None)[1]
    assert a.equals(b) and not a.equals(c)
    # dropping another class does not change this class's sample
    d = select(_matches(), CLASSES, SelectionParams(max_per_class=5, cap="random", seed=1, min_matches_per_class=13), None)[1]
    pick = lambda t, w: t.filter(pa.compute.equal(t["wnid"], w))["source_id"].to_pylist()  # noqa: E731
    assert pick(a, CLASSES[2].wnid) == pick(d, CLASSES[2].wnid)


def test_no_embed_top_cap_falls_back_to_seeded_order() -> None:
    _, sel, _ = select(_matches(False), CLASSES, SelectionParams(max_per_class=3), None)
    assert sel.num_rows == 3 * 4


def test_bad_parameters() -> None:
    with pytest.raises(ImagenotError, match="--cap"):
        select(_matches(), CLASSES, SelectionParams(cap="best"), None)
    with pytest.raises(ImagenotError, match="--oversample"):
        select(_matches(), CLASSES, SelectionParams(oversample=0.5), None)


def test_cap_top_breaks_ties_by_source_id_and_a_class_without_similarities_is_sampled() -> None:
    """One global sort orders every class: equal similarities go by source_id; a class whose rows have no
    similarity at all keeps the seeded random sample (its rows must not be ordered by source_id)."""
    rows = [{"source_id": sid, "url": f"http://x/{sid}", "caption": "lemma0", "wnid": CLASSES[0].wnid,
             "lemma": "lemma0", "similarity": sim}
            for sid, sim in [("e", 0.5), ("b", 0.5), ("d", 0.9), ("a", 0.5), ("c", None), ("f", 0.1)]]
    rows += [{"source_id": f"z{j:02d}", "url": f"http://y/{j}", "caption": "lemma1", "wnid": CLASSES[1].wnid,
              "lemma": "lemma1", "similarity": None} for j in range(40)]
    params = SelectionParams(max_per_class=4, cap="top", val_per_class=0, min_matches_per_class=1)
    _, sel, _ = select(pa.Table.from_pylist(rows, schema=MATCH_SCHEMA), CLASSES, params, None)
    got = sel.filter(pa.compute.equal(sel["wnid"], CLASSES[0].wnid))["source_id"].to_pylist()
    assert got == ["d", "a", "b", "e"]
    unscored = sel.filter(pa.compute.equal(sel["wnid"], CLASSES[1].wnid))["source_id"].to_pylist()
    assert len(unscored) == 4 and unscored != ["z00", "z01", "z02", "z03"]
