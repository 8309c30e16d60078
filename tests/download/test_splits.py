"""Train/val assignment after failures: mining's split kept, lost val rows replaced, small classes handled."""

from __future__ import annotations

from collections import Counter

from imagenot.download.splits import assign_splits


def _run(labels, given, kept, **kw):
    args = {"seed": 0, "val_fraction": 0.2, "min_per_class": 5, "min_val_per_class": 1, "keep_small": False}
    args.update(kw)
    out, rep, capped = assign_splits(labels, given, kept, **args)
    return out, rep


def test_given_split_kept_and_lost_val_replaced_from_train() -> None:
    labels = [0] * 20 + [1] * 20
    given = ["val" if i % 5 == 0 else "train" for i in range(40)]  # 4 val per class
    kept = [True] * 40
    kept[0] = kept[5] = False  # class 0 loses two val rows
    kept[21] = False  # class 1 loses a train row
    out, rep = _run(labels, given, kept)
    for i in range(40):
        if not kept[i]:
            assert out[i] is None
        elif given[i] == "val":
            assert out[i] == "val"  # mining's val rows stay in val
    counts = Counter((labels[i], out[i]) for i in range(40) if out[i])
    assert counts == {(0, "val"): 4, (0, "train"): 14, (1, "val"): 4, (1, "train"): 15}
    assert rep[0].moved_to_val == 2 and rep[1].moved_to_val == 0
    # seeded: same seed, same rows moved; another seed moves others
    assert _run(labels, given, kept)[0] == out
    assert any(_run(labels, given, kept, seed=s)[0] != out for s in range(1, 6))


def test_no_split_given_is_stratified_by_fraction() -> None:
    labels = [0] * 30 + [1] * 10
    out, rep = _run(labels, [None] * 40, [True] * 40)
    counts = Counter((labels[i], out[i]) for i in range(40))
    assert counts == {(0, "val"): 6, (0, "train"): 24, (1, "val"): 2, (1, "train"): 8}


def test_small_classes_dropped_or_kept_with_flag() -> None:
    labels = [0] * 10 + [1] * 4
    given = [None] * 14
    kept = [True] * 14
    out, rep = _run(labels, given, kept)
    assert rep[1].status == "dropped" and all(out[i] is None for i in range(10, 14))
    out, rep = _run(labels, given, kept, keep_small=True)
    assert rep[1].status == "kept_below_minimum" and sum(1 for i in range(10, 14) if out[i]) == 4
    # a class that would need every image in val keeps one for train
    out, rep = _run([0, 0], ["val", "val"], [True, True], min_per_class=1)
    assert sorted(out) == ["train", "val"]


def test_caps_keep_the_first_survivors_and_refill_val_from_the_train_surplus() -> None:
    # mining oversampled: 14 rows, train first then val (4), caps 8 train + 3 val
    labels = [0] * 14
    given = ["train"] * 10 + ["val"] * 4
    kept = [True] * 14
    out, rep, capped = assign_splits(labels, given, kept, seed=0, val_fraction=0.1, min_per_class=1,
                                     min_val_per_class=1, keep_small=False, train_cap=8, val_cap=3)
    assert [out[i] for i in range(14)] == ["train"] * 8 + [None] * 2 + ["val"] * 3 + [None]
    assert capped == {8, 9, 13} and rep[0].over_cap == 3
    # three val rows fail: one comes from the train surplus (row 9, the lowest priority), none from the cap
    kept = [True] * 11 + [False] * 3
    out, rep, capped = assign_splits(labels, given, kept, seed=0, val_fraction=0.1, min_per_class=1,
                                     min_val_per_class=1, keep_small=False, train_cap=8, val_cap=3)
    assert [i for i in range(14) if out[i] == "val"] == [8, 9, 10]
    assert [i for i in range(14) if out[i] == "train"] == list(range(8)) and capped == set()


def test_mining_without_val_rows_gets_a_val_share() -> None:
    labels = [0] * 20
    out, rep = _run(labels, ["train"] * 20, [True] * 20)
    assert Counter(out) == {"train": 16, "val": 4} and rep[0].target_val == 4
