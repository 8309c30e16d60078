"""`audit.md`: the audit's findings in words a reader can check against audit.json, claiming nothing more."""

from __future__ import annotations

import logging
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from imagenot import escape
from imagenot.fileio import write_text

log = logging.getLogger(__name__)

MAX_ROWS = 60


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100.0 * x:.1f}%"


def _ci(d: dict[str, Any]) -> str:
    if d.get("accuracy") is None:
        return "n/a"
    level = int(round(100 * d.get("confidence", 0.95)))
    return (f"{100 * d['accuracy']:.1f}% ({level}% CI {100 * d['ci_low']:.1f}-{100 * d['ci_high']:.1f}, "
            f"n={d['n_test']})")


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(x).replace("|", "/") for x in r) + " |" for r in rows]
    return out


def _names(items: Sequence[dict[str, Any]], limit: int = 12) -> str:
    shown = ", ".join(f"{i['name']} ({i['wnid']})" for i in items[:limit])
    return shown + (f", ... (+{len(items) - limit} more)" if len(items) > limit else "")


def _class_section(s: dict[str, Any]) -> list[str]:
    ref, con, pd = s["reference"], s["contrast"], s["path_distance"]
    lines = [
        "## Class level (WordNet)",
        "",
        f"Reference classes: {ref['count']} ({ref['source']}). Contrast classes: {con['count']} ({con['source']}).",
        "",
        f"- Shared wnids: {len(s['wnid_overlaps'])}" + (f" ({_names(s['wnid_overlaps'])})" if s["wnid_overlaps"]
                                                        else ""),
        f"- Contrast classes sharing a lemma string with a reference class: {len(s['lemma_overlaps'])}"
        + ("  (" + "; ".join(f"{o['name']}: {', '.join(o['lemmas'])}" for o in s["lemma_overlaps"][:12]) + ")"
           if s["lemma_overlaps"] else ""),
        f"- Contrast classes that are WordNet ancestors of a reference class: {len(s['ancestors_of_reference'])}"
        + (f" ({_names(s['ancestors_of_reference'])})" if s["ancestors_of_reference"] else ""),
        f"- Contrast classes that are descendants of a reference class: {len(s['descendants_of_reference'])}"
        + (f" ({_names(s['descendants_of_reference'])})" if s["descendants_of_reference"] else ""),
        f"- Ancestor/descendant pairs inside each set: reference {ref['pairs_inside']}, contrast "
        f"{con['pairs_inside']}; under physical_entity.n.01: reference {ref['under_physical_entity']}, contrast "
        f"{con['under_physical_entity']}.",
        "",
    ]
    if pd["mean"] is not None:
        hist = ", ".join(f"{k}: {v}" for k, v in pd["histogram"].items())
        lines += [
            f"WordNet shortest-path distance (edges through a common hypernym) from each contrast class to its "
            f"nearest reference class: mean {pd['mean']:.2f}, median {pd['median']:g}, range {pd['min']}-"
            f"{pd['max']}. Classes per distance: {hist}.",
            "",
            "Closest contrast classes:",
            "",
        ]
        lines += _table(["contrast class", "nearest reference class", "distance"],
                        [[f"{p['name']} ({p['wnid']})", f"{p['nearest_name']} ({p['nearest']})", p["distance"]]
                         for p in pd["closest"][:10]])
        lines.append("")
    lex = sorted(set(ref["lexnames"]) | set(con["lexnames"]),
                 key=lambda k: -(ref["lexnames"].get(k, 0) + con["lexnames"].get(k, 0)))
    nr, nc = max(ref["count"], 1), max(con["count"], 1)
    lines += ["WordNet lexicographer files:", ""]
    lines += _table(["lexname", "reference", "contrast"],
                    [[k, f"{ref['lexnames'].get(k, 0)} ({100 * ref['lexnames'].get(k, 0) / nr:.0f}%)",
                      f"{con['lexnames'].get(k, 0)} ({100 * con['lexnames'].get(k, 0) / nc:.0f}%)"] for k in lex])
    lines += ["", f"![lexnames]({s['plots']['lexnames']}) ![path distance]({s['plots']['path_distance']})", ""]
    return lines


def _image_section(s: dict[str, Any]) -> list[str]:
    clf, st = s["classifier"], s["statistics"]
    sides = ("reference half", "contrast half") if s["same_dataset"] else ("reference", "contrast")
    lines = ["## Image level (which dataset?)", ""]
    if s["same_dataset"]:
        lines += ["Reference and contrast are the same dataset: the two samples are disjoint random halves of one "
                  "draw, so any accuracy away from 50% would be an artefact of the method.", ""]
    lines += [
        f"{s['reference']['drawn']} images were drawn from each of {s['reference']['spec']} and "
        f"{s['contrast']['spec']} ({s['reference']['split']} split, class-stratified, seeded), resized and "
        f"centre-cropped to {s['image_size']}x{s['image_size']} px with {s['channels']} channel(s), and split "
        f"into {s['n_train']} training and {s['n_test']} held-out images (half from each dataset).",
        "",
        f"A {clf['model']} ({clf['family']} family) trained for {clf['epochs']} epochs ({clf['steps']} steps) tells the held-out images "
        f"apart with accuracy {_ci(clf)}; chance is 50%.",
    ]
    if clf["ci_low"] is not None and clf["ci_low"] > 0.5:
        lines.append("The interval excludes chance: at this size the two samples are distinguishable.")
    elif clf["ci_low"] is not None:
        lines.append("The interval includes chance: this classifier found no difference it could use at this "
                     "sample size (which does not show that there is none).")
    pd = clf["per_dataset"]
    lines += [f"Correct on {sides[0]} images: {_ci(pd['reference'])}; on {sides[1]} images: {_ci(pd['contrast'])}.",
              ""]
    per = st["per_statistic"]
    if per:
        lines += ["The same held-out images, classified by a logistic regression on one statistic per image:", ""]
        order = sorted(per, key=lambda k: -per[k]["accuracy"])
        lines += _table(["statistic", "what", f"{sides[0]} mean (sd)", f"{sides[1]} mean (sd)", "accuracy"],
                        [[k, per[k]["description"], f"{per[k]['reference_mean']:.3g} ({per[k]['reference_std']:.2g})",
                          f"{per[k]['contrast_mean']:.3g} ({per[k]['contrast_std']:.2g})", _ci(per[k])]
                         for k in order])
        lines.append("")
        best = st["best"]
        b = per[best]
        overlap = b["ci_high"] >= clf["ci_low"] and clf["ci_high"] >= b["ci_low"]
        lines.append(f"The best single statistic is {best} at {_ci(b)}; its interval "
                     + ("overlaps" if overlap else "does not overlap") + f" the {clf['model']}'s.")
        if st["all_statistics"]:
            lines.append(f"All statistics together: {_ci(st['all_statistics'])}.")
        if st.get("note"):
            lines.append(f"({st['note'][0].upper() + st['note'][1:]}, so size is not among the statistics.)")
        lines.append("")
    p = s["plots"]
    lines += [" ".join(f"![{k}]({v})" for k, v in p.items()), ""]
    return lines


def _label_section(s: dict[str, Any]) -> list[str]:
    lines = ["## Label level (captions)", ""]
    if s.get("note"):
        lines += [s["note"] + ".", ""]
    sim = s.get("similarity")
    if s.get("images"):
        lines.append(f"{s['images']} images, {s['with_caption']} with a caption, {s['with_similarity']} with a "
                     "caption-query similarity.")
        if sim:
            thr = s.get("threshold")
            lines.append(f"Similarity over all images: median {sim['q50']:.3f}, quartiles {sim['q25']:.3f}-"
                         f"{sim['q75']:.3f}, 5-95% {sim['q05']:.3f}-{sim['q95']:.3f}, range {sim['q00']:.3f}-"
                         f"{sim['q100']:.3f}" + (f"; the mining threshold was {thr:g}." if thr is not None else "."))
        if s.get("names_other_class_share") is not None:
            lines.append(
                f"Captions that also name a lemma of another class of the set ({s['match_mode']} matching rule): "
                f"{s['names_other_class']} of {s['images']} ({_pct(s['names_other_class_share'])}). Captions "
                f"that name their own class: {_pct(s['names_own_class_share'])}.")
        lines.append("")
        rows = []
        for c in s["per_class"][:MAX_ROWS]:
            q = c["similarity"]
            other = ", ".join(f"{o['name']} ({o['images']})" for o in c["other_classes_named"][:3])
            rows.append([f"{c['index']} {c['name']}", c["images"],
                         f"{q['q50']:.3f} ({q['q25']:.3f}-{q['q75']:.3f})" if q else "n/a",
                         f"{c['names_other_class']} ({_pct(c['names_other_class_share'])})", other or "-"])
        lines += _table(["class", "images", "similarity median (IQR)", "names another class", "classes named"],
                        rows)
        if len(s["per_class"]) > MAX_ROWS:
            lines.append(f"(first {MAX_ROWS} of {len(s['per_class'])} classes; all are in audit.json)")
        lines.append("")
    li = s.get("label_issues")
    if li:
        lines += [
            "### Likely label errors (confident learning)",
            "",
            f"cleanlab's find_label_issues (filter {li['filter_by']}) on the softmax outputs of {li['model']} from "
            f"{li['run']} for the {li['checked']} images of the validation split (never trained on, so the "
            f"probabilities are out of sample) flags {li['count']} ({_pct(li['share'])}) as likely label errors. "
            f"The model's accuracy on these images is {_ci(li['accuracy_interval'])}; a flag means the model "
            "confidently disagrees with the label, so with a weak model the flags mark the model's mistakes as "
            "much as the labels'.",
        ]
        if li["accuracy_interval"]["ci_low"] is not None and li["accuracy_interval"]["ci_low"] <= li["chance"]:
            lines.append(f"Here the accuracy interval reaches chance ({_pct(li['chance'])} for "
                         f"{len(li['per_class'])} classes): these flags say nothing reliable about the labels; "
                         "audit a better-trained run.")
        lines.append("")
        lines += _table(["class", "validation images", "flagged"],
                        [[f"{p['index']} {p['name']}", p["checked"], p["issues"]] for p in
                         sorted(li["per_class"], key=lambda p: (-p["issues"], p["index"]))[:MAX_ROWS]])
        if li["examples"]:
            lines += ["", f"Flagged images, ranked by the {li['ranking']} (also in contact_sheet.png):", ""]
            lines += _table(["sample", "label", "model says", "caption"],
                            [[e["key"] or e["index"], e["given_name"],
                              f"{e['predicted_name']} ({e['predicted_probability']:.2f})",
                              (e.get("caption") or "")[:100]] for e in li["examples"]])
        lines.append("")
    p = s.get("plots", {})
    if p:
        lines += [" ".join(f"![{k}]({v})" for k, v in p.items()), ""]
    return lines


def render_report(audit: dict[str, Any]) -> str:
    """audit.md from the audit record. Every string of the record (class names, captions, specs, paths) is
    escaped once up front (`escape.md_tree`), so no section can render data as HTML or break a table."""
    config_path = Path(audit["config"]["out"]) / "config.json"
    audit = escape.md_tree(audit)
    ref, con = audit["reference"], audit["contrast"]
    title = f"# Audit: {ref['dataset'] or ref['classes']} vs {con['dataset'] or con['classes']}"
    lines = [title, "",
             f"How unlike the reference is the contrast, at three levels. Written by imagenot "
             f"{audit['tool']['version']} in {audit['seconds']:.0f} s; every number is in audit.json.", ""]
    if audit["class_level"]:
        lines += _class_section(audit["class_level"])
    if audit["image_level"]:
        lines += _image_section(audit["image_level"])
    if audit["label_level"]:
        lines += _label_section(audit["label_level"])
    skipped = {k: v for k, v in audit["skipped"].items() if v}
    if skipped:
        lines += ["## Not run", ""] + [f"- {k} level: {v}" for k, v in skipped.items()] + [""]
    lines += ["Rerun: " + escape.md_code(f"imagenot audit --config {shlex.quote(str(config_path))}"), ""]
    return "\n".join(lines)


def write_report(path: Path, audit: dict[str, Any]) -> None:
    write_text(path, render_report(audit))
