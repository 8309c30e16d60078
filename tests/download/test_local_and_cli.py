"""Local corpora (file:// policy), the CLI, the card, class minimum, input errors and export."""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from imagenot.cli import main
from imagenot.download import DownloadConfig, ExportConfig, run_download, run_export
from imagenot.errors import ImagenotError, InputError
from imagenot.fileio import read_json

from .conftest import CLASSES, encode, make_image, read_samples, write_selection


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory):
    """48 RGBA/RGB PNGs over 4 classes (class 3 has only 6), 2 missing files, splits given by 'mining'."""
    root = tmp_path_factory.mktemp("local")
    files = root / "files"
    files.mkdir()
    urls, labels, splits = [], [], []
    for i in range(48):
        label = i % 3 if i < 42 else 3
        p = files / f"{i}.png"
        im = make_image(1000 + i)
        (im.convert("RGBA") if i % 2 else im).save(p)
        urls.append(p.as_uri())
        labels.append(label)
        splits.append("val" if i % 7 == 0 else "train")
    for j in range(2):
        urls.append((files / f"gone{j}.png").as_uri())
        labels.append(0)
        splits.append("val")  # lost val rows: made up from train
    matches = write_selection(root / "mine", urls, labels, splits)
    (root / "mine" / "config.json").write_text(json.dumps(
        {"corpus": "openclipart-svg", "encoder": "all-MiniLM-L6-v2", "threshold": 0.4}))
    return root, matches


def test_file_urls_need_allow_local(local, capsys) -> None:
    root, matches = local
    cfg = DownloadConfig(matches=str(matches), out=str(root / "refused"))
    with pytest.raises(InputError, match="--allow-local"):
        run_download(cfg)
    rc = main(["download", "--matches", str(matches), "--out", str(root / "refused")])
    err = capsys.readouterr().err
    assert rc == 2 and "file:// urls" in err and "--allow-local" in err and "Traceback" not in err
    assert not (root / "refused").exists()


def test_cli_builds_a_complete_dataset_folder(local, capsys, tmp_path: Path, monkeypatch) -> None:
    root, matches = local
    out = root / "ds"
    rc = main(["download", "--matches", str(matches), "--out", str(out), "--allow-local", "--image-size", "32",
               "--min-images-per-class", "8", "--shard-size", "20", "--sheet-per-class", "6"])
    assert rc == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for name in ("dataset.json", "README.md", "contact_sheet.png", "config.json", "manifest.json", "classes.tsv",
                 "removed.parquet", "samples.parquet", ".verified.json"):
        assert (out / name).is_file(), name
    assert not (out / "_work").exists()  # a complete dataset keeps no resume folder
    card = read_json(out / "dataset.json")
    # class 3 (6 images) is below the minimum of 8: dropped, and the others keep labels 0..2
    assert [c["wnid"] for c in card["classes"]] == [w for w, _ in CLASSES[:3]]
    assert card["dropped_classes"][0]["wnid"] == CLASSES[3][0] and card["dropped_classes"][0]["survived"] == 6
    assert card["removed"] == {"class_below_minimum": 6, "file_not_found": 2}
    assert printed["removed"] == card["removed"] and printed["classes"] == 3
    # splits: mining's val rows kept; class 0 lost two val rows, replaced from train
    per = {c["label"]: c for c in card["split"]["per_class"]}
    assert per[0]["selected_val"] == 4 and per[0]["val"] == 4 and per[0]["moved_to_val"] == 2
    assert card["counts"]["train"] + card["counts"]["val"] == 42
    assert card["conversions"] == {"alpha": 24}  # counted when decoded, before the class minimum
    assert card["corpus"] == "openclipart-svg" and card["encoder"] == "all-MiniLM-L6-v2"
    assert card["thresholds"]["similarity_threshold"] == 0.4
    assert card["command"].startswith("imagenot download ") and "--allow-local" in card["command"]
    assert "--min-images-per-class 8" in card["command"] and card["rerun_command"].endswith("config.json")
    # shards: contract names, hashes in the card match the files
    from imagenot.fileio import sha256_file

    for _split, info in card["splits"].items():
        for s in info["shards"]:
            assert s["sha256"] == sha256_file(out / s["file"])
            assert read_json(out / "stats" / (Path(s["file"]).stem + ".json"))["samples"] == s["samples"]
    assert [s["file"] for s in card["splits"]["train"]["shards"]] == ["train-000000.tar", "train-000001.tar"]
    readme = (out / "README.md").read_text()
    assert "file_not_found" in readme and CLASSES[3][0] in readme and "train-000001.tar" in readme
    sheet = Image.open(out / "contact_sheet.png")
    assert sheet.width > 6 * 64 and sheet.height >= 3 * 64
    labels = Counter(label for _, label, _ in read_samples(out, "train"))
    assert sorted(labels) == [0, 1, 2]
    # rerun from the folder's own config, from another directory: nothing to do (the card is not rewritten)
    stamp = (out / "dataset.json").stat().st_mtime_ns
    assert Path(read_json(out / "config.json")["matches"]).is_absolute()
    monkeypatch.chdir(tmp_path)
    rc = main(["download", "--config", str(out / "config.json")])
    assert rc == 0 and (out / "dataset.json").stat().st_mtime_ns == stamp


def test_keep_small_classes_and_rebuild_on_changed_settings(local) -> None:
    root, matches = local
    cfg = DownloadConfig(matches=str(matches), out=str(root / "keep"), image_size=32, allow_local=True,
                         min_images_per_class=8, keep_small_classes=True)
    card = run_download(cfg)
    assert card["num_classes"] == 4 and card["classes"][3]["status"] == "kept_below_minimum"
    assert card["removed"] == {"file_not_found": 2}
    bigger = run_download(DownloadConfig(**{**cfg.__dict__, "image_size": 40}))
    _, _, data = read_samples(cfg.out, "train")[0]
    assert min(Image.open(io.BytesIO(data)).size) == 40 and bigger["image_size"] == 40


def test_export_image_folder_keeps_label_order(local, tmp_path: Path) -> None:
    """torchvision's ImageFolder numbers classes by sorted folder name: the export's names make that the
    dataset's label order, so every exported image gets the label its shard sample has."""
    import torchvision

    root, matches = local
    ds = root / "ds-export"
    run_download(DownloadConfig(matches=str(matches), out=str(ds), image_size=32, allow_local=True,
                                min_images_per_class=8, encode_format="png"))
    card = read_json(ds / "dataset.json")
    out = tmp_path / "folder"
    rc = main(["export", "--dataset", str(ds), "--format", "folder", "--out", str(out)])
    assert rc == 0
    for split in ("train", "val"):
        folder = torchvision.datasets.ImageFolder(str(out / split))
        assert folder.classes == [f"{c['index']:03d}_{c['wnid']}_{c['name']}" for c in card["classes"]]
        assert len(folder) == card["counts"][split]
        shard_label = {key: label for key, label, _ in read_samples(ds, split)}
        for path, target in folder.samples:
            assert target == shard_label[Path(path).stem]
        img, _ = folder[0]
        assert min(img.size) == 32
        for c in card["classes"]:
            assert len(list((out / split / folder.classes[c["index"]]).glob("*.png"))) == c[split]
    mapping = (out / "class_folders.tsv").read_text().splitlines()
    assert mapping[0] == "label\tfolder\twnid\tname"
    assert [line.split("\t")[1] for line in mapping[1:]] == folder.classes
    assert (out / "classes.tsv").read_text() == (ds / "classes.tsv").read_text()
    with pytest.raises(ImagenotError, match="--overwrite"):
        run_export(ExportConfig(dataset=str(ds), out=str(out)))
    run_export(ExportConfig(dataset=str(ds), out=str(out), overwrite=True, splits=("val",)))
    assert not (out / "train").exists()
    assert not list(tmp_path.glob(".*export*"))


def test_input_errors_name_the_problem(tmp_path: Path) -> None:
    good = encode(make_image(1))
    (tmp_path / "a.png").write_bytes(good)
    matches = write_selection(tmp_path / "m", [(tmp_path / "a.png").as_uri()] * 2, [0, 1])
    table = pq.read_table(matches)
    pq.write_table(table.drop_columns(["wnid"]), tmp_path / "m" / "nownid.parquet")
    with pytest.raises(InputError, match="missing column.*wnid"):
        run_download(DownloadConfig(matches=str(tmp_path / "m" / "nownid.parquet"), out=str(tmp_path / "o"),
                                    allow_local=True))
    bad = table.set_column(table.schema.get_field_index("label"), "label", pa.array([0, 0], pa.int32()))
    pq.write_table(bad, tmp_path / "m" / "bad.parquet")
    with pytest.raises(InputError, match="row 1: label 0 is n00015388"):
        run_download(DownloadConfig(matches=str(tmp_path / "m" / "bad.parquet"), out=str(tmp_path / "o"),
                                    allow_local=True))
    ftp = write_selection(tmp_path / "f", ["ftp://host/a.png"], [0])
    with pytest.raises(InputError, match="unsupported url scheme"):
        run_download(DownloadConfig(matches=str(ftp), out=str(tmp_path / "o"), allow_local=True))
    with pytest.raises(ImagenotError, match="fetcher 'direct' reads local files only"):
        run_download(DownloadConfig(matches=str(write_selection(tmp_path / "h", ["http://x/a.png"], [0])),
                                    out=str(tmp_path / "o"), fetcher="direct"))


def test_caps_from_mining_selection(tmp_path: Path) -> None:
    """Mining oversampled (selection.json: 6 per class, 2 of them val): the first survivors are kept."""
    files = tmp_path / "files"
    files.mkdir()
    urls, labels, splits = [], [], []
    for label in range(2):
        for j in range(9):  # mining order: 6 train rows then 3 val rows, each in priority order
            p = files / f"{label}-{j}.png"
            if not (label == 0 and j == 1):  # one high-priority train file is missing
                p.write_bytes(encode(make_image(3000 + 10 * label + j)))
            urls.append(p.as_uri())
            labels.append(label)
            splits.append("train" if j < 6 else "val")
    matches = write_selection(tmp_path / "mine", urls, labels, splits)
    (tmp_path / "mine" / "selection.json").write_text(json.dumps(
        {"params": {"max_per_class": 6, "val_per_class": 2, "oversample": 1.5}}))
    card = run_download(DownloadConfig(matches=str(matches), out=str(tmp_path / "ds"), image_size=32,
                                       allow_local=True, min_images_per_class=4))
    assert card["split"]["caps"] == {"train": 4, "val": 2, "source": "selection.json"}
    assert card["removed"] == {"file_not_found": 1, "over_cap": 5}
    removed = {r["row_id"]: r["reason"] for r in pq.read_table(tmp_path / "ds" / "removed.parquet").to_pylist()}
    # class 0 lost row 1, so its first four surviving train rows are 0, 2, 3, 4; the lowest-priority rows
    # of each class and split go over the cap
    assert removed == {1: "file_not_found", 5: "over_cap", 8: "over_cap", 13: "over_cap", 14: "over_cap",
                       17: "over_cap"}
    assert [c["train"] for c in card["classes"]] == [4, 4] and [c["val"] for c in card["classes"]] == [2, 2]
    keys = sorted(key for key, _, _ in read_samples(tmp_path / "ds", "train"))
    assert keys == [f"{i:09d}" for i in (0, 2, 3, 4, 9, 10, 11, 12)]
