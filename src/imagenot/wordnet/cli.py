"""`imagenot classes`: write a contrast class list (`classes.tsv`) or check one against a reference."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

from imagenot.config import resolve, to_dict

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClassesConfig:
    reference: str = "imagenet-1k"
    out: str = "classes.tsv"
    wnids: str | None = None  # explicit class list (a file, or "released" for the authors' list)
    exclude_hierarchy: bool = False
    root: str | None = None
    unique_lemmas: bool = False


PRESETS = {
    "imagenot": {"reference": "imagenet-1k", "wnids": "released", "unique_lemmas": True},
    "imagenet-pool": {"reference": "imagenet-1k", "root": "physical_entity.n.01"},
    "demo": {"reference": "fashion-mnist", "root": "physical_entity.n.01"},
}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "classes",
        help="choose contrast classes from WordNet (writes classes.tsv) or --check a class list",
        description="Write classes.tsv: WordNet 3.0 noun classes disjoint from a reference class set "
        "(pool mode) or an explicit wnid list; or --check a list against the reference.",
    )
    p.add_argument("--reference", help="imagenet-1k | fashion-mnist | PATH to a wnid file (default imagenet-1k)")
    p.add_argument("--out", help="output classes.tsv (default classes.tsv)")
    p.add_argument("--wnids", help="explicit class list: a wnid file, or 'released' for the authors' list")
    p.add_argument("--exclude-hierarchy", action="store_true", default=None,
                   help="also drop ancestors and descendants of reference classes")
    p.add_argument("--root", help="keep only hyponyms of this synset (e.g. physical_entity.n.01)")
    p.add_argument("--unique-lemmas", action="store_true", default=None,
                   help="LAIONet rule: keep lemmas found in exactly one class; drop classes left with none")
    p.add_argument("--preset", choices=sorted(PRESETS), help="named settings (flags override)")
    p.add_argument("--config", help="rerun from a resolved config json/yaml")
    p.add_argument("--check", metavar="FILE", help="report on a wnid list against --reference instead")
    p.add_argument("--json", action="store_true", help="with --check: machine-readable output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from imagenot.fileio import write_json
    from imagenot.wordnet.classes import (
        PoolOptions,
        build_pool,
        check_class_set,
        format_check,
        make_unique_lemmas,
        rows_from_wnids,
        write_classes,
    )
    from imagenot.wordnet.references import read_wnid_file, reference_wnids

    cfg = resolve(
        ClassesConfig, presets=PRESETS, preset=args.preset, config_file=args.config,
        overrides={"reference": args.reference, "out": args.out, "wnids": args.wnids,
                   "exclude_hierarchy": args.exclude_hierarchy, "root": args.root,
                   "unique_lemmas": args.unique_lemmas},
    )
    ref = reference_wnids(cfg.reference)
    if args.check:
        report = check_class_set(read_wnid_file(args.check), ref)
        if args.json:
            json.dump(report, sys.stdout, indent=2)
            print()
        else:
            print(f"{args.check} against {cfg.reference}:")
            print(format_check(report))
        return 0
    if cfg.wnids:
        path = cfg.wnids
        if path == "released":
            from imagenot.wordnet.released import released_classes_path

            path = str(released_classes_path())
        rows = rows_from_wnids(read_wnid_file(path))
    else:
        rows = build_pool(ref, PoolOptions(exclude_hierarchy=cfg.exclude_hierarchy, root=cfg.root))
    if cfg.unique_lemmas:
        before = len(rows)
        rows = make_unique_lemmas(rows)
        if len(rows) < before:
            print(f"unique lemmas: dropped {before - len(rows)} class(es) left without a lemma", file=sys.stderr)
    out = Path(cfg.out)
    write_classes(out, rows)
    write_json(out.with_name(out.stem + ".config.json"), to_dict(cfg))
    print(f"wrote {len(rows)} classes to {out}")
    return 0
