"""The real corpora by name: each schema's columns, recognised by `--schema auto`, its safety rule counted,
kept columns and provenance in selected.parquet, and clear errors when a corpus has no safety column or an
unknown layout (nothing written then)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from imagenot.cli import main
from imagenot.fileio import read_json
from imagenot.mining.schemas import AMBIGUOUS, DEFAULT_SAFETY_MAX, SCHEMAS, detect_schema, resolve_schema
from imagenot.mining.selected import PROVENANCE_KEY

N = 10
CAPTIONS = ["a dog on the beach", "my cat", "the sea at night", "a dog", "New York!", "a cat", "a dog",
            "the sea", "a cat asleep", "frankfurter"]
SAFETY_SCORES = [0.01, 0.5, 0.09, 0.1, None, 0.0, 0.99, 0.05, 0.2, 0.02]  # < 0.1 kept: 0,2,5,7,9
KEPT_BY_SCORE = 5


def laion400m() -> pa.Table:
    return pa.table({
        "SAMPLE_ID": [str(100 + i) for i in range(N)], "URL": [f"https://x/{i}.jpg" for i in range(N)],
        "TEXT": CAPTIONS, "HEIGHT": [300] * N, "WIDTH": [400] * N, "LICENSE": ["?"] * N,
        "NSFW": ["UNLIKELY", "NSFW", "UNLIKELY", "UNSURE", None, "UNLIKELY", "UNLIKELY", "NSFW", "UNLIKELY",
                 "UNLIKELY"],
        "similarity": [0.3 + i / 100 for i in range(N)]})


def laion2b() -> pa.Table:
    return pa.table({
        "URL": [f"https://x/{i}.jpg" for i in range(N)], "TEXT": CAPTIONS,
        "WIDTH": [64, 800, 800, 800, 800, 800, 800, 800, 800, None], "HEIGHT": [600] * N,
        "similarity": [0.3 + i / 100 for i in range(N)], "hash": list(range(7000, 7000 + N)),
        "punsafe": SAFETY_SCORES, "pwatermark": [0.9, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, None]})


def datacomp() -> pa.Table:
    return pa.table({
        "uid": [f"u{i:03d}" for i in range(N)], "url": [f"https://x/{i}.jpg" for i in range(N)], "text": CAPTIONS,
        "original_width": [512] * N, "original_height": [512] * N,
        "clip_b32_similarity_score": [0.3] * N, "clip_l14_similarity_score": [0.28] * N,
        "face_bboxes": [[] for _ in range(N)], "sha256": ["0" * 64] * N})


def coyo() -> pa.Table:
    return pa.table({
        "id": list(range(N)), "url": [f"https://x/{i}.jpg" for i in range(N)], "text": CAPTIONS,
        "width": [640] * N, "height": [480] * N, "image_phash": ["f0f0"] * N, "text_length": [10] * N,
        "clip_similarity_vitb32": [0.31] * N, "clip_similarity_vitl14": [0.29] * N,
        "nsfw_score_opennsfw2": SAFETY_SCORES, "nsfw_score_gantman": [0.0] * N,
        "watermark_score": [0.2] * N, "aesthetic_score_laion_v2": [5.0] * N})


# (table, expected safety drops, expected matched single-class rows among the kept)
LAION400M_KEPT = [0, 2, 5, 6, 8, 9]  # NSFW == UNLIKELY


def _single_class(rows: list[int]) -> int:
    return len(rows)  # every caption above hits exactly one animal class


@pytest.mark.parametrize("name, make, flags, dropped, kept", [
    ("laion400m-or-laion2b-en", laion400m, [], N - len(LAION400M_KEPT), LAION400M_KEPT),
    ("laion5b-joined", laion2b, [], N - KEPT_BY_SCORE, [0, 2, 5, 7, 9]),
    ("coyo", coyo, [], N - KEPT_BY_SCORE, [0, 2, 5, 7, 9]),
    ("datacomp", datacomp, ["--keep-nsfw"], 0, list(range(N))),
])
def test_auto_recognises_each_schema_and_counts_its_safety_filter(tmp_path: Path, animal_classes: Path, capsys,
                                                                  name, make, flags, dropped, kept) -> None:
    corpus = tmp_path / "corpus" / "part-0.parquet"
    corpus.parent.mkdir()
    pq.write_table(make(), corpus)
    out = tmp_path / "out"
    rc = main(["mine", "--corpus", str(corpus), "--classes", str(animal_classes), "--out", str(out), "--no-embed",
               "--workers", "1", "--schema", "auto", *flags])
    assert rc == 0
    assert f"schema {name}" in capsys.readouterr().out
    stats = read_json(out / "mine_stats.json")
    assert stats["schema"] == name
    assert stats["safety_dropped"] == dropped
    assert stats["matched"] == len(kept)
    sel = pq.read_table(out / "selected.parquet")
    assert sorted(sel["caption"].to_pylist()) == sorted(CAPTIONS[i] for i in kept)
    prov = json.loads(sel.schema.metadata[PROVENANCE_KEY])
    assert prov["schema"] == name and prov["schema_detected"] is True
    assert prov["safety"]["dropped"] == dropped
    if name == "laion400m-or-laion2b-en":
        assert prov["safety"]["keep_values"] == ["UNLIKELY"] and prov["safety"]["column"] == "NSFW"
    elif name == "datacomp":
        assert prov["safety"]["column"] is None and "keep-nsfw" in prov["safety"]["rule"]
    else:
        assert prov["safety"]["max"] == DEFAULT_SAFETY_MAX
        assert prov["safety"]["column"] == {**SCHEMAS, **AMBIGUOUS}[name].safety
    assert stats["provenance"] == prov
    ids = sel["source_id"].to_pylist()
    if name == "laion5b-joined":
        assert set(ids) <= {str(7000 + i) for i in range(N)}  # LAION-2B's `hash` is the id


def test_filters_and_kept_columns_travel_into_selected(tmp_path: Path, animal_classes: Path) -> None:
    corpus = tmp_path / "l2b.parquet"
    pq.write_table(laion2b(), corpus)
    out = tmp_path / "out"
    assert main(["mine", "--corpus", str(corpus), "--classes", str(animal_classes), "--out", str(out),
                 "--no-embed", "--workers", "1", "--schema", "laion2b-en-joined", "--keep-columns", "similarity,pwatermark",
                 "--watermark-max", "0.5", "--min-image-size", "100", "--safety-max", "0.3"]) == 0
    stats = read_json(out / "mine_stats.json")
    # punsafe < 0.3 keeps rows 0, 2, 3, 5, 7, 8, 9 (row 4 has no score: dropped)
    assert stats["safety_dropped"] == 3
    assert stats["watermark_dropped"] == 1  # row 0 (0.9); row 9's missing score is kept
    assert stats["small_image_dropped"] == 0  # row 0 (64 px wide) already left with its watermark
    sel = pq.read_table(out / "selected.parquet")
    rows = {r["source_id"]: r for r in sel.to_pylist()}
    assert sorted(rows) == ["7002", "7003", "7005", "7007", "7008", "7009"]
    assert rows["7003"]["corpus_similarity"] == pytest.approx(0.33)
    assert rows["7003"]["corpus_pwatermark"] == pytest.approx(0.1)
    assert rows["7009"]["corpus_pwatermark"] is None
    prov = json.loads(sel.schema.metadata[PROVENANCE_KEY])
    assert prov["schema_detected"] is False
    assert prov["kept_columns"] == ["corpus_similarity", "corpus_pwatermark"]
    assert prov["filters"]["watermark"] == {"rule": "pwatermark < 0.5 (missing score kept)", "dropped": 1}
    assert prov["filters"]["min_image_size"]["dropped"] == 0
    assert prov["safety"] == {"column": "punsafe", "rule": "punsafe < 0.3", "max": 0.3, "dropped": 3}
    assert prov["corpus"] == str(corpus) and prov["threshold"] is None and prov["encoder"] is None
    # the image-size filter alone drops the 64-px image
    out2 = tmp_path / "out2"
    main(["mine", "--corpus", str(corpus), "--classes", str(animal_classes), "--out", str(out2), "--no-embed",
          "--workers", "1", "--min-image-size", "100", "--safety-max", "1"])
    assert read_json(out2 / "mine_stats.json")["small_image_dropped"] == 1


def test_csv_corpus_with_numeric_safety_scores(tmp_path: Path, animal_classes: Path) -> None:
    corpus = tmp_path / "l2b.csv"
    pacsv.write_csv(laion2b(), corpus)
    out = tmp_path / "out"
    assert main(["mine", "--corpus", str(corpus), "--classes", str(animal_classes), "--out", str(out),
                 "--no-embed", "--workers", "1"]) == 0
    stats = read_json(out / "mine_stats.json")
    assert stats["schema"] == "laion5b-joined" and stats["safety_dropped"] == N - KEPT_BY_SCORE


def test_no_safety_column_is_an_error_not_a_warning(tmp_path: Path, animal_classes: Path, capsys) -> None:
    corpus = tmp_path / "c.parquet"
    pq.write_table(laion400m().drop_columns(["NSFW"]), corpus)
    out = tmp_path / "out"
    argv = ["mine", "--corpus", str(corpus), "--classes", str(animal_classes), "--out", str(out), "--no-embed"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "no safety column 'NSFW' in schema laion400m-or-laion2b-en" in err and "--keep-nsfw" in err and "--safety-col" in err
    assert not out.exists()
    # DataComp has none by design: the error says why and what to pass
    pq.write_table(datacomp(), corpus)
    assert main(argv) == 2
    assert "DataComp CommonPool has no safety column" in capsys.readouterr().err
    assert not out.exists()
    assert main([*argv, "--keep-nsfw", "--workers", "1"]) == 0


def test_unknown_schema_lists_the_columns_and_the_flags(tmp_path: Path, animal_classes: Path, capsys) -> None:
    corpus = tmp_path / "c.parquet"
    pq.write_table(pa.table({"caption": CAPTIONS, "link": [f"https://x/{i}" for i in range(N)],
                             "unsafe": [0.0] * N}), corpus)
    out = tmp_path / "out"
    argv = ["mine", "--corpus", str(corpus), "--classes", str(animal_classes), "--out", str(out), "--no-embed",
            "--workers", "1"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "found caption, link, unsafe" in err
    assert "--text-col" in err and "--url-col" in err and "--safety-col" in err and "--schema" in err
    assert not out.exists()
    # mapped by hand: a numeric safety column is a score kept below --safety-max
    assert main([*argv, "--text-col", "caption", "--url-col", "link", "--safety-col", "unsafe"]) == 0
    stats = read_json(out / "mine_stats.json")
    assert stats["schema"] == "custom" and stats["provenance"]["safety"]["rule"] == "unsafe < 0.1"
    # a named schema that does not fit says which of its columns are missing
    assert main([*argv, "--schema", "coyo", "--out", str(tmp_path / "o2")]) == 2
    assert "missing column(s) text (--text-col), url (--url-col) for schema coyo" in capsys.readouterr().err


def test_detection_order_prefers_the_specific_schema() -> None:
    assert detect_schema(laion2b().column_names).name == "laion5b-joined"
    assert detect_schema([*laion2b().column_names, "LANGUAGE"]).name == "laion5b-joined"  # -multi-joined
    assert detect_schema(laion400m().column_names).name == "laion400m-or-laion2b-en"
    assert detect_schema([*laion400m().column_names, "LANGUAGE"]).name == "laion2b-multi-or-laion1b-nolang"
    assert detect_schema(coyo().column_names).name == "coyo"
    assert detect_schema(datacomp().column_names).name == "datacomp"
    assert detect_schema(["TEXT", "URL"]) is None


# The columns each corpus is published with (dataset cards; docs/scaling.md), written as a small shard.
STANDARD = ["SAMPLE_ID", "URL", "TEXT", "HEIGHT", "WIDTH", "LICENSE", "NSFW", "similarity"]
JOINED = ["URL", "TEXT", "WIDTH", "HEIGHT", "similarity", "hash", "punsafe", "pwatermark"]
PUBLISHED = {
    "laion400m": STANDARD, "laion2b-en": STANDARD, "laion2b-multi": [*STANDARD[:6], "LANGUAGE", *STANDARD[6:]],
    "laion1b-nolang": [*STANDARD[:6], "LANGUAGE", *STANDARD[6:]],
    "laion2b-en-joined": JOINED, "laion2b-multi-joined": [*JOINED, "LANGUAGE"],
    "laion1b-nolang-joined": [*JOINED, "LANGUAGE"], "relaion5b-research": JOINED,
    "relaion5b-research-safe": JOINED,
    "datacomp": datacomp().column_names, "coyo": coyo().column_names,
}


def _published_shard(name: str) -> pa.Table:
    if name in ("datacomp", "coyo"):
        return {"datacomp": datacomp, "coyo": coyo}[name]()
    source = {**laion400m().to_pydict(), **laion2b().to_pydict(), "LANGUAGE": ["en"] * N}
    return pa.table({c: source[c] for c in PUBLISHED[name]})


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_each_named_layout_resolves_on_a_shard_with_its_published_columns(tmp_path: Path, animal_classes: Path,
                                                                         name: str) -> None:
    assert sorted(PUBLISHED) == sorted(SCHEMAS)
    corpus = tmp_path / "part-00000.parquet"
    pq.write_table(_published_shard(name), corpus)
    out = tmp_path / "out"
    assert main(["mine", "--corpus", str(corpus), "--classes", str(animal_classes), "--out", str(out),
                 "--no-embed", "--workers", "1", "--schema", name,
                 *(["--keep-nsfw"] if name == "datacomp" else [])]) == 0
    stats = read_json(out / "mine_stats.json")
    prov = stats["provenance"]
    assert stats["schema"] == prov["schema"] == name and "schema_candidates" not in prov
    sch = SCHEMAS[name]
    assert prov["safety"]["column"] == (None if name == "datacomp" else sch.safety)
    expected_drop = {"NSFW": N - len(LAION400M_KEPT), "punsafe": N - KEPT_BY_SCORE,
                     "nsfw_score_opennsfw2": N - KEPT_BY_SCORE, None: 0}[sch.safety]
    assert stats["safety_dropped"] == expected_drop
    if name == "datacomp":  # face boxes travel with the rows, for the download's blurring
        assert "corpus_face_bboxes" in pq.read_table(out / "selected.parquet").column_names


@pytest.mark.parametrize("make, extra, ambiguous", [
    (laion400m, [], "laion400m-or-laion2b-en"),
    (laion400m, ["LANGUAGE"], "laion2b-multi-or-laion1b-nolang"),
    (laion2b, [], "laion5b-joined"),
])
def test_auto_says_when_columns_cannot_tell_corpora_apart(tmp_path: Path, animal_classes: Path, caplog, make,
                                                          extra, ambiguous) -> None:
    table = make()
    for c in extra:
        table = table.append_column(c, pa.array(["en"] * N))
    corpus = tmp_path / "part-00000.parquet"
    pq.write_table(table, corpus)
    out = tmp_path / "out"
    with caplog.at_level("WARNING", logger="imagenot.mining.schemas"):
        assert main(["mine", "--corpus", str(corpus), "--classes", str(animal_classes), "--out", str(out),
                     "--no-embed", "--workers", "1"]) == 0
    candidates = AMBIGUOUS[ambiguous].candidates
    assert f"recorded as '{ambiguous}'" in caplog.text and " or ".join(candidates) in caplog.text
    prov = json.loads(pq.read_table(out / "selected.parquet").schema.metadata[PROVENANCE_KEY])
    assert prov["schema"] == ambiguous and prov["schema_candidates"] == list(candidates)
    assert "cannot tell" in prov["schema_note"] and "--schema" in prov["schema_note"]
    # naming the corpus records it exactly, without a word
    caplog.clear()
    with caplog.at_level("WARNING", logger="imagenot.mining.schemas"):
        assert main(["mine", "--corpus", str(corpus), "--classes", str(animal_classes), "--out",
                     str(tmp_path / "named"), "--no-embed", "--workers", "1", "--schema", candidates[-1]]) == 0
    assert "cannot tell" not in caplog.text
    assert read_json(tmp_path / "named" / "mine_stats.json")["provenance"]["schema"] == candidates[-1]


def test_the_old_laion2b_name_is_the_joined_layout_with_a_word(caplog) -> None:
    with caplog.at_level("WARNING", logger="imagenot.mining.schemas"):
        res = resolve_schema(JOINED, "x.parquet", schema="laion2b")
    assert res.name == "laion2b-en-joined" and "laion2b-en-joined" in caplog.text and "laion2b-en)" in caplog.text
