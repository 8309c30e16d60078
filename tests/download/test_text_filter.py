"""LAIONet's text-in-image filter (Tesseract OCR): images showing their own class name are counted exactly,
and removed only in drop mode; another class's name or any other text is not a match."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from PIL import Image, ImageDraw, ImageFont

from imagenot.download import DownloadConfig, run_download
from imagenot.download.ocr import class_terms, find_term, normalise
from imagenot.fileio import read_json
from imagenot.wordnet.classes import ClassRow

from .conftest import make_image, write_selection

needs_tesseract = pytest.mark.skipif(shutil.which("tesseract") is None, reason="needs Debian tesseract-ocr")

# row -> (label, text drawn under the picture); rows 0-3 show their own class name (CLASSES order:
# animal, building, food, plant), row 4 (an animal) shows another class's name, row 5 other text
ROWS = [(0, "animal"), (1, "building"), (2, "food"), (3, "plant"), (0, "food"), (1, "hello"), (2, None),
        (3, None)]
OWN_NAME = {0, 1, 2, 3}


def _poster(seed: int, text: str | None) -> Image.Image:
    """A picture with a white band below it, the text (if any) in a large clear font on the band."""
    im = Image.new("RGB", (320, 240), "white")
    im.paste(make_image(seed, (320, 120)), (0, 0))
    if text:
        ImageDraw.Draw(im).text((20, 140), text, fill="black", font=ImageFont.load_default(size=64))
    return im


@pytest.fixture(scope="module")
def selection(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ocr")
    urls = []
    for i, (_, text) in enumerate(ROWS):
        path = root / f"{i}.png"
        _poster(200 + i, text).save(path)
        urls.append(path.as_uri())
    return write_selection(root / "mine", urls, [label for label, _ in ROWS], ["train"] * len(ROWS))


def _config(matches: Path, mode: str) -> DownloadConfig:
    return DownloadConfig(matches=str(matches), out=str(matches.parent.parent / "ds"), allow_local=True,
                          image_size=32, text_filter=mode, keep_raw=True, min_images_per_class=1,
                          min_val_per_class=0, val_fraction=0.0, dedup=False)


@needs_tesseract
def test_count_then_drop(selection: Path) -> None:
    import webdataset as wds

    card = run_download(_config(selection, "count"))
    assert card["text_filter"] == {"mode": "count", "terms": "name", "fraction": 1.0, "checked": 8, "text_in_image": 4,
                                   "removed": 0, "ocr_errors": 0}
    assert card["counts"]["train"] == 8 and card["removed"] == {}
    out = Path(card["source"]["matches"]).parent.parent / "ds"
    shown = {}
    for s in wds.WebDataset([str(p) for p in sorted(out.glob("train-*.tar"))], shardshuffle=False):
        meta = json.loads(s["json"])
        shown[meta["source_id"]] = meta["text_in_image"]
    assert shown == {f"src-{i}": (ROWS[i][1] if i in OWN_NAME else None) for i in range(len(ROWS))}
    assert "would remove (count only; kept) 4" in (out / "README.md").read_text()
    stats = [read_json(p)["text_filter"] for p in (out / "stats").glob("fetch-*.json")]
    assert sum(s["text_in_image"] for s in stats) == 4

    # drop: the same cleaned shards (OCR is not run again), the same four rows go
    dropped = run_download(_config(selection, "drop"))
    assert dropped["text_filter"]["removed"] == 4 and dropped["removed"] == {"text_in_image": 4}
    assert dropped["counts"]["train"] == 4
    removed = pq.read_table(out / "removed.parquet").to_pylist()
    assert {r["row_id"] for r in removed} == OWN_NAME and {r["stage"] for r in removed} == {"text"}
    assert all("recognised text contains" in r["message"] for r in removed)


@needs_tesseract
def test_count_on_a_seeded_sample_reads_only_the_sampled_images(selection: Path, tmp_path: Path) -> None:
    from dataclasses import replace

    from imagenot.download.pipeline import _in_ocr_sample

    cfg = replace(_config(selection, "count"), text_filter_fraction=0.5, out=str(tmp_path / "sample"))
    sampled = [i for i in range(len(ROWS)) if _in_ocr_sample(cfg, i)]
    assert 0 < len(sampled) < len(ROWS)
    card = run_download(cfg)
    tf = card["text_filter"]
    assert (tf["fraction"], tf["checked"], tf["removed"]) == (0.5, len(sampled), 0)
    assert tf["text_in_image"] == len(set(sampled) & OWN_NAME)
    with pytest.raises(Exception, match="only makes sense with --text-filter count"):
        run_download(replace(cfg, text_filter="drop", out=str(tmp_path / "drop")))


def test_terms_match_whole_words_of_the_row_class_only() -> None:
    row = ClassRow(0, "n03147509", "cup", ("cup", "coffee_cup"), "a small open container", "cup which is",
                   "noun.artifact")
    assert class_terms(row) == ("cup",)  # LAIONet's set, the default: the class name only
    assert class_terms(row, "name") == ("cup",)
    terms = class_terms(row, "name+lemmas")  # the wider set: name, then every lemma
    assert terms == ("cup", "coffee cup")
    named = ClassRow(1, "n07929351", "coffee", ("coffee", "java"), "a beverage", "coffee which is", "noun.food")
    assert find_term("JAVA beans", class_terms(named)) is None
    assert find_term("JAVA beans", class_terms(named, "name+lemmas")) == "java"
    assert find_term("Best COFFEE-CUP ever!", terms) == "cup"  # punctuation is a space, case is ignored
    assert find_term("a cupboard and a teacup", terms) is None  # whole words only
    assert normalise("  Tall\nBuilding. ") == " tall building "
