"""`imagenot classes`: write a contrast class list (`classes.tsv`) or check one against a reference."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

from imagenot.cli_options import add_stage_parser, config_from_args
from imagenot.config import option, to_record

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClassesConfig:
    """Which WordNet noun classes to write: a pool disjoint from a reference class set, or an explicit list."""

    reference: str = option("imagenet-1k", help="the reference class set the contrast must avoid: imagenet-1k, "
                            "fashion-mnist, or PATH to a file of wnids")
    out: str = option("classes.tsv", help="the classes.tsv to write", path=True)
    wnids: str | None = option(None, help="an explicit class list instead of a pool: a wnid file, or 'released' "
                               "for the authors' released ImageNot list (default: build a pool)")
    exclude_hierarchy: bool = option(False, help="also drop ancestors and descendants of reference classes "
                                     "(the released ImageNot list did not)")
    root: str | None = option(None, help="keep only hyponyms of this synset, e.g. physical_entity.n.01 "
                              "(default: all nouns)")
    unique_lemmas: bool = option(False, help="LAIONet rule: keep lemmas found in exactly one class; drop classes "
                                 "left with none")


PRESETS = {
    "imagenot": {"reference": "imagenet-1k", "wnids": "released", "unique_lemmas": True},
    "imagenet-pool": {"reference": "imagenet-1k", "root": "physical_entity.n.01"},
    "demo": {"reference": "fashion-mnist", "root": "physical_entity.n.01"},
}

EXAMPLES = (
    "imagenot classes --preset imagenot --out imagenot_classes.tsv      # the released ImageNot list",
    "imagenot classes --reference fashion-mnist --root physical_entity.n.01 --exclude-hierarchy --out pool.tsv",
    "imagenot classes --check imagenot_classes.txt --reference imagenet-1k   # overlaps, ancestors, lexnames",
)


def _check_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("check a class list instead of writing one")
    g.add_argument("--check", metavar="FILE", default=None,
                   help="report on a wnid list against --reference (overlaps, hierarchy, lexnames)")
    g.add_argument("--json", action="store_true", default=False, help="with --check: machine-readable output")


def register(sub: argparse._SubParsersAction) -> None:
    p = add_stage_parser(
        sub, "classes", ClassesConfig,
        help="choose contrast classes from WordNet (writes classes.tsv) or --check a class list",
        description="Write classes.tsv: WordNet 3.0 noun classes disjoint from a reference class set "
        "(pool mode) or an explicit wnid list; or --check a list against the reference.",
        examples=EXAMPLES, presets=PRESETS, extra=_check_flags,
    )
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

    cfg = config_from_args(ClassesConfig, args, presets=PRESETS)
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
    write_json(out.with_name(out.stem + ".config.json"), to_record(cfg))
    print(f"wrote {len(rows)} classes to {out}")
    return 0
