"""Export a dataset folder to other layouts; today the ImageFolder tree torchvision and most tools read.

`OUT/<split>/<NNN>_<wnid>_<name>/<key>.<ext>`: class folders start with the zero-padded label, so that their
sorted order, which is how `torchvision.datasets.ImageFolder` numbers classes, is the dataset's label order
(a model trained by imagenot and evaluated on the export sees the same labels); the wnid keeps names
unambiguous when two classes share a display name. `OUT/class_folders.tsv` maps label, folder, wnid and name;
`OUT/classes.tsv` is the dataset's own. A sample's file is named by its key; a key that is not a plain file
name (`a/b`, `../x`, `-rf`) becomes a safe name ending in a hash of the key (`safepath.unique_slug`), so
two samples never share a file.

The dataset is read through the one reader of dataset folders (`imagenot.data.readers.files`), so an
incomplete folder (no card, a missing or truncated shard) is refused before anything is written, and the
export appears at once or not at all (built in a hidden sibling folder, then renamed).
"""

from __future__ import annotations

import logging
import os
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

from imagenot import escape, safepath
from imagenot.config import check_choices
from imagenot.download.config import ExportConfig
from imagenot.errors import ImagenotError, InputError, disk_full_is_an_error
from imagenot.fileio import write_json, write_text
from imagenot.lock import locks_output
from imagenot.progress import Progress

log = logging.getLogger(__name__)


def class_folder(label: int, wnid: str, name: str, num_classes: int) -> str:
    """`000_n14800034_card`: zero-padded label first, so sorted folder names follow label order.

    The wnid comes from the card and must be a path component as it is (`safepath.component` refuses
    `../x` and the like: it identifies the class); the name is only a label, so it is reduced to safe
    characters and the whole folder name shortened with a hash when over the file system's limit.
    """
    width = max(3, len(str(max(num_classes - 1, 0))))
    wnid = safepath.component(wnid, "class wnid")
    safe = safepath.slug(name, "class")
    return safepath.component(f"{label:0{width}d}_{wnid}_{safe}", "class folder", shorten=True)


def _extension(data: bytes, default: str) -> str:
    if data.startswith(b"\x89PNG"):
        return "png"
    if data.startswith(b"\xff\xd8"):
        return "jpg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return default


@locks_output(lambda cfg, *args, **kwargs: cfg.out)
def run_export(cfg: ExportConfig) -> dict[str, Any]:
    from imagenot.data.readers.files import wds_card, wds_classes, wds_shards

    check_choices(cfg)  # format
    if not cfg.dataset or not cfg.out:
        raise ImagenotError("--dataset and --out are required")
    src = Path(cfg.dataset)
    card = wds_card(src)
    classes = wds_classes(src, card)
    listed = card.get("classes") or []
    names = [(listed[i].get("name") if i < len(listed) and isinstance(listed[i], dict) else None) or wnid
             for i, wnid in enumerate(classes)]
    known = card.get("splits") or {}
    for split in cfg.splits:
        if split not in known:
            raise InputError(f"no split {split!r}; known: {', '.join(known)}", src / "dataset.json")
        safepath.component(split, "split name")  # it names a folder of the export
    shards = {split: wds_shards(src, split, card) for split in cfg.splits}  # refuses an incomplete folder
    out = Path(cfg.out)
    safepath.check_output(out, [src])  # an export into, around or over the dataset would take it with it
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        if not cfg.overwrite:
            raise ImagenotError(f"{out} exists and is not empty; pass --overwrite or choose another --out")
        safepath.check_removable(out, [src])
    folders = [class_folder(i, wnid, name, len(classes)) for i, (wnid, name) in enumerate(zip(classes, names))]
    tmp = out.parent / f".{out.name}.export-tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        with disk_full_is_an_error(out.parent):
            counts = _write_tree(src, tmp, cfg, card, classes, names, folders, shards)
            summary = {
                "format": cfg.format,
                "dataset": str(src),
                "dataset_name": card.get("name"),
                "layout": "<split>/<label>_<wnid>_<name>/<key>.<ext>; sorted folder order = label order",
                "classes": [{"label": i, "folder": f, "wnid": w, "name": n}
                            for i, (f, w, n) in enumerate(zip(folders, classes, names))],
                "splits": {k: dict(sorted(v.items())) for k, v in counts.items()},
            }
            write_json(tmp / "export.json", summary)
            _swap_in(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("exported %s to %s: %s", src, out, {k: sum(v.values()) for k, v in counts.items()})
    return summary


def _write_tree(src: Path, tmp: Path, cfg: ExportConfig, card: dict[str, Any], classes: list[str],
                names: list[str], folders: list[str], shards: dict[str, list[Path]]) -> dict[str, Counter[str]]:
    from imagenot.data.readers.files import wds_records

    default_ext = str(card.get("encode_format") or "jpg")
    columns = ("label", "folder", "wnid", "name")
    table = [escape.tsv_row(columns)] + [escape.tsv_row((i, f, w, n), columns, "class_folders.tsv")
                                         for i, (f, w, n) in enumerate(zip(folders, classes, names))]
    counts: dict[str, Counter[str]] = {}
    for split in cfg.splits:
        records = wds_records(src, split, shards[split], classes, card)
        if len(records) and int(records.labels.max()) >= len(classes):
            raise InputError(f"a {split} shard holds label {int(records.labels.max())} but the dataset has "
                             f"{len(classes)} classes", src)
        counts[split] = Counter()
        for f in folders:
            (tmp / split / f).mkdir(parents=True, exist_ok=True)
        with Progress(len(records), desc=f"export {split}", unit="img") as bar:
            handles: dict[int, Any] = {}
            try:
                for i in range(len(records)):
                    fid = int(records.file_ids[i])
                    if fid not in handles:
                        for h in handles.values():
                            h.close()
                        handles = {fid: open(records.files[fid], "rb")}  # noqa: SIM115 - one shard at a time
                    fh = handles[fid]
                    fh.seek(int(records.offsets[i]))
                    data = fh.read(int(records.sizes[i]))
                    if len(data) != int(records.sizes[i]):
                        raise InputError(f"sample {records.keys[i]!r} is cut short", records.files[fid])
                    label = int(records.labels[i])
                    name = f"{safepath.unique_slug(records.keys[i], 240)}.{_extension(data, default_ext)}"
                    try:
                        with open(tmp / split / folders[label] / name, "xb") as out:
                            out.write(data)
                    except FileExistsError:
                        raise InputError(f"two {split} samples share the key {records.keys[i]!r}",
                                         records.files[fid]) from None
                    counts[split][classes[label]] += 1
                    bar.update()
            finally:
                for h in handles.values():
                    h.close()
    write_text(tmp / "class_folders.tsv", "".join(table))
    if (src / "classes.tsv").is_file():
        shutil.copyfile(src / "classes.tsv", tmp / "classes.tsv")
    return counts


def _swap_in(tmp: Path, out: Path) -> None:
    """The whole tree appears at once: a reader never sees half an export."""
    if out.exists():
        old = out.parent / f".{out.name}.export-old"
        shutil.rmtree(old, ignore_errors=True)
        os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out)
