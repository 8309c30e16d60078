"""Benchmark of caption mining, every ratio measured in the same run on the same captions:

- matching speed against a LAIONet-style loop, and the whole `mine --no-embed` command with 1 and 2 workers;
- encoding: captions/s of the encoding path against the previous one (sentence-transformers `encode`, batch 64,
  as the Scorer called it before), same captions, same encoder, CPU, per backend (torch with length-sorted
  large batches, ONNX Runtime fp32, ONNX Runtime int8, OpenVINO), with the largest change of a similarity;
- a rerun of `mine` with a new `--threshold` on the same corpus: texts encoded (from mine_stats.json);
- the whole `mine` with embeddings, defaults only (a fresh output folder and store, a held-out corpus), against
  a plain sentence-transformers `encode` (its defaults) of the same distinct captions and query texts, in one
  run: `--whole-mine-captions N` (0: skip);
- `--gpu`: MiniLM and MPNet captions/s at fp16 on one GPU (the prepared GPU check; at most a few minutes).

    .venv/bin/python benchmarks/mine_bench.py                 # 1M captions, 1000 released ImageNot classes
    .venv/bin/python benchmarks/mine_bench.py --captions 200000 --embed-sample 512   # quicker
    .venv/bin/python benchmarks/mine_bench.py --gpu --embed-sample 65536             # on a GPU machine

The corpus is generated (no natural-photo caption set ships with any package): LAION-format parquet
(`SAMPLE_ID, URL, TEXT, NSFW, WIDTH, HEIGHT`), captions of 3-12 words drawn with Zipf-like frequencies from
the WordNet 3.0 vocabulary (so ImageNot lemmas appear at the rate words of the language do), mixed case,
ASCII punctuation, a few non-ASCII words and repeated captions. The classes are the 1000 released ImageNot
wnids (../shared/reference/imagenot_classes.txt), read at run time, lemmas unique as in the paper.
Matching rates are captions per second of CPU time of this process (`time.process_time`), so they mean "per
core" even on a shared machine; encoding and command rates are wall-clock, with the load average printed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import string
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
RELEASED = REPO.parent / "shared" / "reference" / "imagenot_classes.txt"


def imagenot_classes(path: Path) -> list:
    from imagenot.wordnet.classes import make_unique_lemmas, rows_from_wnids, write_classes
    from imagenot.wordnet.references import read_wnid_file

    rows = make_unique_lemmas(rows_from_wnids(read_wnid_file(RELEASED)))
    write_classes(path, rows)
    return rows


def vocabulary() -> list[str]:
    from imagenot.wordnet.loader import get_wordnet

    wn = get_wordnet()
    words = sorted({lemma.name().replace("_", " ") for s in wn.all_synsets() for lemma in s.lemmas()
                    if lemma.name().isascii() and lemma.name().count("_") < 2})
    return words


def generate_corpus(out_dir: Path, n: int, shards: int, seed: int = 0) -> Path:
    """LAION-format shards of `n` generated captions (built with Arrow kernels: a million in seconds)."""
    import pyarrow.compute as pc

    rng = np.random.default_rng(seed)
    words = vocabulary()
    function_words = ["a", "the", "of", "and", "in", "on", "with", "for", "photo", "image", "stock", "free",
                      "new", "best", "vector", "HD", "2019", "|", "-", "for sale", "black", "white", "&"]
    vocab = np.array(function_words * 40 + words, dtype=object)  # function words frequent, as in captions
    rng.shuffle(vocab)
    vocab_arr = pa.array(vocab.tolist(), pa.string())
    weights = 1.0 / (np.arange(len(vocab)) + 20.0)  # Zipf-like word frequencies
    weights /= weights.sum()
    punct = pa.array(list(string.punctuation) + [""] * 60, pa.string())
    extra = pa.array(["café", "Größe", "日本", "naïve", "señor", "für"], pa.string())
    out_dir.mkdir(parents=True, exist_ok=True)
    per = (n + shards - 1) // shards
    made = 0
    for s in range(shards):
        m = min(per, n - made)
        lengths = rng.integers(3, 13, size=m)
        offsets = pa.array(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32))
        toks = vocab_arr.take(pa.array(rng.choice(len(vocab), size=int(lengths.sum()), p=weights)))
        texts = pc.binary_join(pa.ListArray.from_arrays(offsets, toks), " ")
        texts = pc.binary_join_element_wise(texts, punct.take(pa.array(rng.integers(0, len(punct), m))), "")
        texts = pc.if_else(pa.array(np.arange(m) % 7 == 0), pc.utf8_capitalize(texts), texts)
        texts = pc.if_else(pa.array(np.arange(m) % 50 == 0), pc.binary_join_element_wise(
            texts, extra.take(pa.array(rng.integers(0, len(extra), m))), " "), texts)
        # LAION repeats captions ("image", product names...): 5% copies of other rows
        src = np.where(rng.random(m) < 0.05, rng.integers(0, m, size=m), np.arange(m))
        texts = texts.take(pa.array(src))
        ids = np.arange(made, made + m)
        table = pa.table({
            "SAMPLE_ID": pa.array(ids.astype(str)),
            "URL": pc.binary_join_element_wise("https://img.example.org/", pa.array(ids.astype(str)), ".jpg", ""),
            "TEXT": texts,
            "NSFW": pa.array(np.where(rng.random(m) < 0.97, "UNLIKELY", "UNSURE")),
            "WIDTH": pa.array(rng.integers(200, 2000, size=m)),
            "HEIGHT": pa.array(rng.integers(200, 2000, size=m)),
        })
        pq.write_table(table, out_dir / f"part-{s:05d}.parquet", row_group_size=65536)
        made += m
    return out_dir


def laionet_baseline(texts: list[str], class_lemmas: list[tuple[str, ...]]) -> tuple[float, int]:
    """LAIONet/eval-on-laion style: every lemma of every class tested against every caption (with the padded
    lemmas prepared once, so the baseline is the loop itself, not string building)."""
    table = str.maketrans(string.punctuation, " " * len(string.punctuation))
    padded = [(c, " " + lemma + " ") for c, lemmas in enumerate(class_lemmas) for lemma in lemmas]
    t0 = time.process_time()
    found = 0
    for text in texts:
        text = " " + text.translate(table) + " "
        hits = {c for c, p in padded if p in text}
        found += len(hits) == 1
    return time.process_time() - t0, found


def bench_matching(corpus: Path, rows: list, sample: int) -> dict:
    import pyarrow.compute as pc

    from imagenot.mining.corpus import Columns, list_shards
    from imagenot.mining.matcher import LemmaMatcher
    from imagenot.mining.normalize import check_captions
    from imagenot.mining.scan import ScanContext, scan_shard

    lemmas = [r.lemmas for r in rows]
    shards = list_shards(str(corpus))
    text = pa.concat_arrays([pq.read_table(s.path, columns=["TEXT"])["TEXT"].combine_chunks() for s in shards])
    n = len(text)
    t0 = time.process_time()
    matcher = LemmaMatcher(lemmas)
    build = time.process_time() - t0
    w0, c0 = time.perf_counter(), time.process_time()
    single = 0
    for off in range(0, n, 65536):
        batch = check_captions(text.slice(off, 65536), 65536).text
        hits = matcher.match(batch)
        single += int((hits.n_classes == 1).sum())
    match_cpu, match_wall = time.process_time() - c0, time.perf_counter() - w0
    # the whole scan of one shard: read parquet, filter rows, match, build candidates
    ctx = ScanContext(matcher, Columns())
    w0, c0 = time.perf_counter(), time.process_time()
    scanned = sum(scan_shard(s, ctx).stats["rows_read"] for s in shards)
    scan_cpu, scan_wall = time.process_time() - c0, time.perf_counter() - w0
    sample_texts = text.slice(0, sample).to_pylist()
    base_cpu, base_found = laionet_baseline(sample_texts, lemmas)
    # agreement on the sample: same single-class captions
    hits = matcher.match(check_captions(text.slice(0, sample), 65536).text)
    auto_found = int(len(np.unique(hits.row[hits.n_classes == 1])))
    return {
        "captions": n, "mean_caption_bytes": round(float(pc.mean(pc.binary_length(text)).as_py()), 1),
        "automaton_build_s": round(build, 3),
        "match_captions_per_cpu_s": round(n / match_cpu), "match_wall_s": round(match_wall, 3),
        "match_mb_per_cpu_s": round(float(pc.sum(pc.binary_length(text)).as_py()) / match_cpu / 1e6, 1),
        "scan_captions_per_cpu_s": round(scanned / scan_cpu), "scan_wall_s": round(scan_wall, 3),
        "single_class_captions": single, "single_class_rate": round(single / n, 4),
        "baseline_sample": sample, "baseline_captions_per_cpu_s": round(sample / base_cpu),
        "baseline_agrees": base_found == auto_found,
        "ratio_match_vs_baseline": round((n / match_cpu) / (sample / base_cpu), 1),
        "ratio_scan_vs_baseline": round((scanned / scan_cpu) / (sample / base_cpu), 1),
    }


def bench_command(corpus: Path, classes: Path, work: Path, workers: int) -> dict:
    out = work / f"mine-w{workers}"
    shutil.rmtree(out, ignore_errors=True)  # a finished output would be skipped, not measured
    cmd = [sys.executable, "-m", "imagenot", "mine", "--corpus", str(corpus), "--classes", str(classes),
           "--out", str(out), "--no-embed", "--workers", str(workers), "--no-progress"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"mine failed: {proc.stderr[-2000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    child_cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    stats = json.loads((out / "mine_stats.json").read_text())
    return {"workers": workers, "wall_s": round(wall, 2), "captions_per_wall_s": round(stats["rows_read"] / wall),
            "pass_s": stats["pass_seconds"],
            "cpu_s": round(child_cpu, 2), "rows_read": stats["rows_read"],
            "matched": stats["matched"], "multi_class_dropped": stats["multi_class_dropped"]}


_SCAN = """
import json, sys, time
from imagenot.mining.corpus import Columns, list_shards
from imagenot.mining.matcher import LemmaMatcher
from imagenot.mining.scan import ScanContext, scan_shard
from imagenot.wordnet.classes import make_unique_lemmas, read_classes
rows = make_unique_lemmas(read_classes(sys.argv[1]))
ctx = ScanContext(LemmaMatcher([r.lemmas for r in rows]), Columns())
shards = list_shards(sys.argv[2])[int(sys.argv[3])::int(sys.argv[4])]
scan_shard(shards[0], ctx)  # warm-up (lazy imports, first allocations), not timed
t0 = time.time()
for sh in shards:
    scan_shard(sh, ctx)
print(json.dumps([t0, time.time()]))
"""


def parallel_ceiling(corpus: Path, classes: Path) -> dict:
    """What two processes can gain on this machine for this very work, with no coordination at all: one
    process scans every shard, then two independent processes scan half each, at the same time (warm, start-up
    not timed). Two vCPUs of a shared virtual machine, sharing caches and memory bandwidth, give less than 2x;
    the workers' ratio is read against this, measured in the same round."""
    def run(n: int) -> float:
        procs = [subprocess.Popen([sys.executable, "-c", _SCAN, str(classes), str(corpus), str(k), str(n)],
                                  stdout=subprocess.PIPE, text=True) for k in range(n)]
        spans = [json.loads(p.communicate()[0]) for p in procs]
        return max(e for _, e in spans) - min(s for s, _ in spans)
    one, two = run(1), run(2)
    return {"one_s": round(one, 2), "two_s": round(two, 2), "ceiling": round(one / two, 2)}


def bench_scaling(corpus: Path, classes: Path, work: Path, workers: list[int], repeats: int, base: int) -> dict:
    """`mine --no-embed` with each worker count, `repeats` rounds alternating the counts (the machine drifts),
    with the parallel ceiling measured in every round; medians reported."""
    rounds = []
    for r in range(repeats):
        row = {"ceiling": parallel_ceiling(corpus, classes)}
        for w in workers:
            row[w] = bench_command(corpus, classes, work, w)
            row[w]["ratio_vs_baseline"] = round(row[w]["captions_per_wall_s"] / base, 1)
            print(json.dumps({"round": r, **row[w]}), flush=True)
        print(json.dumps({"round": r, "parallel_ceiling": row["ceiling"]}), flush=True)
        rounds.append(row)
    med = {w: {k: float(np.median([row[w][k] for row in rounds])) for k in ("wall_s", "pass_s")} for w in workers}
    out = {"repeats": repeats, "rounds": [{str(k): v for k, v in row.items()} for row in rounds],
           "median": {str(w): m for w, m in med.items()},
           "ceiling_median": float(np.median([row["ceiling"]["ceiling"] for row in rounds]))}
    if len(workers) >= 2:
        a, b = workers[0], workers[1]
        out["ratio_command"] = round(med[a]["wall_s"] / med[b]["wall_s"], 2)
        out["ratio_pass"] = round(med[a]["pass_s"] / med[b]["pass_s"], 2)
        out["ratio_pass_per_round"] = [round(row[a]["pass_s"] / row[b]["pass_s"], 2) for row in rounds]
        out["ratio_command_per_round"] = [round(row[a]["wall_s"] / row[b]["wall_s"], 2) for row in rounds]
    return out


def _sample_captions(corpus: Path, rows: list, sample: int) -> tuple[list[str], np.ndarray, list[str]]:
    from imagenot.mining.corpus import Columns, list_shards
    from imagenot.mining.matcher import LemmaMatcher
    from imagenot.mining.scan import ScanContext, scan_shard

    matcher = LemmaMatcher([r.lemmas for r in rows])
    cands = scan_shard(list_shards(str(corpus))[0], ScanContext(matcher, Columns())).candidates.slice(0, sample)
    return cands["caption"].to_pylist(), np.array([c[0] for c in cands["classes"].to_pylist()]), \
        [r.query for r in rows]


def _previous_path(model, captions: list[str], queries: list[str], cls: np.ndarray) -> tuple[float, np.ndarray]:
    """What the Scorer did before: sentence-transformers encode of a shard's distinct captions, batch 64."""
    t0 = time.perf_counter()
    uniq = list(dict.fromkeys(captions))
    emb = dict(zip(uniq, model.encode(uniq, batch_size=64, normalize_embeddings=True, show_progress_bar=False)))
    qs = sorted(set(cls.tolist()))
    qemb = dict(zip(qs, model.encode([queries[k] for k in qs], batch_size=64, normalize_embeddings=True)))
    sim = np.array([float(emb[c] @ qemb[k]) for c, k in zip(captions, cls)], dtype=np.float32)
    return time.perf_counter() - t0, sim


def _new_path(encoder, captions: list[str], queries: list[str], cls: np.ndarray) -> tuple[float, np.ndarray]:
    from imagenot.mining.similarity import Scorer

    t0 = time.perf_counter()
    sim = Scorer(encoder, queries).pair_similarity(captions, np.arange(len(captions)), cls)
    return time.perf_counter() - t0, sim


def _mine_folder_captions(folder: Path, sample: int) -> tuple[list[str], np.ndarray, list[str]]:
    """Real matched captions: the distinct captions of a `mine` output folder's matches (e.g. the demo's Open
    Clip Art captions; each with the class of one of its matches) and its classes' queries."""
    from imagenot.wordnet.classes import read_classes

    classes = read_classes(folder / "mined_classes.tsv", check_wordnet=False)
    pos = {c.wnid: i for i, c in enumerate(classes)}
    t = pa.concat_tables([pq.read_table(f, columns=["caption", "wnid"]) for f in sorted((folder / "matches").glob("*.parquet"))])
    first = dict(zip(reversed(t["caption"].to_pylist()), reversed(t["wnid"].to_pylist())))  # distinct captions
    caps = sorted(first)[:sample]
    return caps, np.array([pos[first[c]] for c in caps]), [c.query for c in classes]


def bench_embedding(corpus: Path, rows: list, sample: int, backends: list[str], batch_sizes: list[int],
                    repeats: int, mine_folder: Path | None = None) -> dict:
    """Every path at every batch size, `repeats` rounds, each round starting with the previous path (the
    machine drifts by tens of percent within minutes); medians of captions/s, ratios of medians."""
    import importlib.util

    import torch

    from imagenot.mining.embed import EncoderSpec, TextEncoder

    captions, cls, queries = _mine_folder_captions(mine_folder, sample) if mine_folder else \
        _sample_captions(corpus, rows, sample)
    variants = {"torch": dict(backend="torch"), "onnx": dict(backend="onnx"),
                "onnx-int8": dict(backend="onnx", quantize="int8"), "openvino": dict(backend="openvino")}
    modules = {"torch": "torch", "onnx": "onnxruntime", "onnx-int8": "onnxruntime", "openvino": "openvino"}
    out: dict = {"source": str(mine_folder) if mine_folder else "generated", "captions": len(captions),
                 "mean_caption_chars": round(float(np.mean([len(c) for c in captions])), 1),
                 "distinct_captions": len(set(captions)),
                 "distinct_classes": int(len(np.unique(cls))), "encoder": "all-MiniLM-L6-v2",
                 "threads": torch.get_num_threads(), "repeats": repeats, "paths": []}
    encoders = {}
    for name in backends:
        if importlib.util.find_spec(modules[name]) is None:
            out["paths"].append({"path": name, "skipped": f"{modules[name]} not installed"})
            continue
        encoders[name] = TextEncoder(EncoderSpec("all-MiniLM-L6-v2", "cpu", **variants[name]))  # loads, exports
        encoders[name].encode(["warm up"] * 8, progress=False)
    model = TextEncoder(EncoderSpec("all-MiniLM-L6-v2", "cpu")).model
    model.encode(["warm up"] * 8)
    previous: list[float] = []
    runs: dict[tuple[str, int], list[float]] = {}
    sims: dict[tuple[str, int], np.ndarray] = {}
    base_sim = None
    for r in range(repeats):
        secs, base_sim = _previous_path(model, captions, queries, cls)
        previous.append(len(captions) / secs)
        print(json.dumps({"round": r, "path": "previous", "captions_per_s": round(previous[-1], 1)}), flush=True)
        for name, encoder in encoders.items():
            for bs in batch_sizes:
                encoder.batch_size = bs  # the same loaded model at each batch size
                secs, sims[name, bs] = _new_path(encoder, captions, queries, cls)
                runs.setdefault((name, bs), []).append(len(captions) / secs)
                print(json.dumps({"round": r, "path": name, "batch_size": bs,
                                  "captions_per_s": round(runs[name, bs][-1], 1)}), flush=True)
    prev = float(np.median(previous))
    out["previous_captions_per_s"] = round(prev, 1)
    out["previous_per_round"] = [round(x, 1) for x in previous]
    for (name, bs), rates in runs.items():
        d = np.abs(sims[name, bs] - base_sim)
        out["paths"].append({"path": name, "batch_size": bs, "captions_per_s": round(float(np.median(rates)), 1),
                             "per_round": [round(x, 1) for x in rates],
                             "ratio_vs_previous": round(float(np.median(rates)) / prev, 2),
                             "max_abs_similarity_difference": float(d.max()),
                             "mean_abs_similarity_difference": float(d.mean())})
    return out


def bench_rerun(corpus: Path, classes: Path, work: Path, captions: int) -> dict:
    """`mine` twice on the same corpus, the second time with a new --threshold: what does it encode?"""
    small = work / "rerun-corpus"
    if not small.is_dir():
        generate_corpus(small, captions, 2, seed=1)
    out = work / "rerun"
    shutil.rmtree(out, ignore_errors=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    runs = []
    for threshold in ("0.35", "0.5"):
        cmd = [sys.executable, "-m", "imagenot", "mine", "--corpus", str(small), "--classes", str(classes),
               "--out", str(out), "--threshold", threshold, "--no-progress", "--workers", "1"]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            raise SystemExit(f"mine failed: {proc.stderr[-2000:]}")
        st = json.loads((out / "mine_stats.json").read_text())
        runs.append({"threshold": float(threshold), "wall_s": round(time.perf_counter() - t0, 1),
                     "matched": st["matched"], "above_threshold": st["above_threshold"],
                     "encoded_captions": st["encoded_captions"], "encoded_queries": st["encoded_queries"]})
        print(json.dumps(runs[-1]), flush=True)
    return {"captions": captions, "runs": runs}


def bench_whole_mine(classes: Path, work: Path, captions: int, repeats: int) -> dict:
    """The whole `mine` command with embeddings, every setting at its default (engine, workers, encoder and
    its backend, batch size, store), on a held-out generated corpus, against the least a user could do to
    get the same similarities: a loaded sentence-transformers model's `encode` (default batch size) of the
    same distinct matched captions and query texts, without model load (favouring the baseline). Each round
    is a fresh output folder and store; the export cache is warmed once first (it is made once per user)."""
    from sentence_transformers import SentenceTransformer

    from imagenot.mining.embed import EncoderSpec, TextEncoder
    from imagenot.mining.encoders import DEFAULT_ENCODER, resolve_encoder
    from imagenot.wordnet.classes import read_classes

    held_out = work / "whole-mine-corpus"
    if not held_out.is_dir():
        generate_corpus(held_out, captions, 4, seed=2)
    default = TextEncoder(EncoderSpec(DEFAULT_ENCODER, "cpu"))  # warms the export cache as a first run would
    out: dict = {"captions": captions, "backend": default.backend, "batch_size": default.batch_size,
                 "rounds": []}
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    model = SentenceTransformer(resolve_encoder(DEFAULT_ENCODER), device="cpu")
    model.encode(["warm up"] * 8, show_progress_bar=False)
    texts: list[str] = []

    def run_mine(r: int) -> tuple[float, dict, list[str]]:
        folder = work / f"whole-mine-{r}"
        shutil.rmtree(folder, ignore_errors=True)
        cmd = [sys.executable, "-m", "imagenot", "mine", "--corpus", str(held_out), "--classes", str(classes),
               "--out", str(folder), "--no-progress"]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        secs = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"mine failed: {proc.stderr[-2000:]}")
        matched = pa.concat_tables([pq.read_table(f, columns=["caption", "wnid"])
                                    for f in sorted((folder / "matches").glob("*.parquet"))])
        by_wnid = {c.wnid: c.query for c in read_classes(folder / "mined_classes.tsv", check_wordnet=False)}
        same = list(dict.fromkeys(matched["caption"].to_pylist())) + [
            by_wnid[w] for w in sorted(set(matched["wnid"].to_pylist()))]
        return secs, json.loads((folder / "mine_stats.json").read_text()), same

    def plain() -> float:
        t0 = time.perf_counter()
        model.encode(texts, normalize_embeddings=True, show_progress_bar=False)
        return time.perf_counter() - t0

    for r in range(repeats):  # the order alternates: a load that drifts within a round favours neither side
        if r % 2 == 0:
            mine_s, st, texts = run_mine(r)
            encode_s = plain()
        else:
            encode_s = plain()
            mine_s, st, same = run_mine(r)
            assert same == texts
        out["rounds"].append({"mine_s": round(mine_s, 2), "plain_encode_s": round(encode_s, 2),
                              "encoded_captions": st["encoded_captions"], "encoded_queries": st["encoded_queries"],
                              "texts_plain": len(texts), "ratio": round(encode_s / mine_s, 2),
                              "load_average": os.getloadavg()[0]})
        print(json.dumps(out["rounds"][-1]), flush=True)
    out["ratio_median"] = float(np.median([x["ratio"] for x in out["rounds"]]))
    return out


def bench_gpu(corpus: Path, rows: list, sample: int) -> dict:
    """MiniLM and MPNet captions/s at fp16 on one GPU (length-sorted batches of 1024)."""
    import torch

    from imagenot.mining.embed import EncoderSpec, TextEncoder

    if not torch.cuda.is_available():
        raise SystemExit("--gpu: no CUDA device")
    captions, _, _ = _sample_captions(corpus, rows, sample)
    out = {"device": torch.cuda.get_device_name(0), "captions": len(captions), "encoders": []}
    for name in ("all-MiniLM-L6-v2", "all-mpnet-base-v2"):
        for precision in ("float16", "float32"):
            enc = TextEncoder(EncoderSpec(name, "cuda", batch_size=1024, precision=precision))
            enc.encode(captions[:2048], progress=False)  # warm-up: kernels, allocator
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            emb = enc.encode(captions, progress=False)
            torch.cuda.synchronize()
            secs = time.perf_counter() - t0
            out["encoders"].append({"encoder": name, "precision": precision,
                                    "captions_per_s": round(len(captions) / secs), "dim": int(emb.shape[1])})
            print(json.dumps(out["encoders"][-1]), flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--captions", type=int, default=1_000_000)
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--baseline-sample", type=int, default=20_000)
    ap.add_argument("--embed-sample", type=int, default=2048, help="matched captions for the encoder runs")
    ap.add_argument("--backends", default="torch,onnx,onnx-int8,openvino")
    ap.add_argument("--captions-from", help="encode the matched captions of this `mine` folder (e.g. the demo's) "
                    "instead of the generated ones")
    ap.add_argument("--embed-batch-sizes", default="16,32", help="CPU batch sizes of the new paths")
    ap.add_argument("--rerun-captions", type=int, default=10_000, help="corpus size of the rerun check (0: skip)")
    ap.add_argument("--whole-mine-captions", type=int, default=200_000, help="held-out corpus of the whole `mine` "
                    "with embeddings against a plain sentence-transformers encode (0: skip)")
    ap.add_argument("--only-whole-mine", action="store_true", help="run only that comparison")
    ap.add_argument("--workers", type=int, nargs="*", default=[1, 2], help="`mine --no-embed` runs with these")
    ap.add_argument("--repeats", type=int, default=3, help="rounds of the worker runs (medians reported)")
    ap.add_argument("--gpu", action="store_true", help="only the GPU encoding check (MiniLM, MPNet, fp16)")
    ap.add_argument("--work", help="work folder (default: a temporary one)")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="mine_bench_"))
    classes = work / "imagenot_classes.tsv"
    rows = imagenot_classes(classes)
    corpus = work / "corpus"
    if not corpus.is_dir():
        t0 = time.perf_counter()
        generate_corpus(corpus, args.captions, args.shards)
        print(f"generated {args.captions} captions in {time.perf_counter() - t0:.1f} s -> {corpus}", flush=True)
    results: dict = {"classes": len(rows), "cpu_count": os.cpu_count(), "load_average_start": os.getloadavg()}
    if args.only_whole_mine:
        results["whole_mine"] = w = bench_whole_mine(classes, work, args.whole_mine_captions, args.repeats)
        print(f"\nwhole `mine` with embeddings, defaults only ({w['backend']}, batch {w['batch_size']}), "
              f"{w['captions']:,} held-out captions, against a plain sentence-transformers encode of the same "
              f"texts: {w['ratio_median']:.2f}x (median of {len(w['rounds'])}; per round "
              f"{[x['ratio'] for x in w['rounds']]}); load average {os.getloadavg()[0]:.1f}")
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1))
        return
    if args.gpu:
        results["gpu"] = bench_gpu(corpus, rows, args.embed_sample)
        print(json.dumps(results["gpu"], indent=1))
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1))
        return
    results["matching"] = bench_matching(corpus, rows, args.baseline_sample)
    print(json.dumps(results["matching"], indent=1), flush=True)
    base = results["matching"]["baseline_captions_per_cpu_s"]
    if args.workers:
        results["scaling"] = bench_scaling(corpus, classes, work, args.workers, args.repeats, base)
        results["command"] = [results["scaling"]["rounds"][-1][str(w)] for w in args.workers]
    if args.embed_sample:
        results["embedding"] = bench_embedding(corpus, rows, args.embed_sample, args.backends.split(","),
                                               [int(b) for b in args.embed_batch_sizes.split(",")], args.repeats,
                                               Path(args.captions_from) if args.captions_from else None)
    if args.rerun_captions:
        results["rerun"] = bench_rerun(corpus, classes, work, args.rerun_captions)
    if args.whole_mine_captions:
        results["whole_mine"] = bench_whole_mine(classes, work, args.whole_mine_captions, args.repeats)
    results["load_average_end"] = os.getloadavg()
    m = results["matching"]
    print(f"\nsummary (load average at start {results['load_average_start'][0]:.1f}, "
          f"at end {results['load_average_end'][0]:.1f})")
    print(f"  baseline (LAIONet loop, {m['baseline_sample']} captions): {base:,} captions/s per core")
    print(f"  matching stage: {m['match_captions_per_cpu_s']:,} captions/s per core "
          f"({m['ratio_match_vs_baseline']}x baseline); shard scan incl. parquet read "
          f"{m['scan_captions_per_cpu_s']:,}/s ({m['ratio_scan_vs_baseline']}x)")
    sc = results.get("scaling", {})
    for w in args.workers:
        m = sc["median"][str(w)]
        r = results["command"][args.workers.index(w)]
        print(f"  `mine --no-embed` over {r['rows_read']:,} captions, --workers {w}, start-up included "
              f"(median of {sc['repeats']}): {m['wall_s']} s = {round(r['rows_read'] / m['wall_s']):,} captions/s "
              f"({round(r['rows_read'] / m['wall_s'] / base, 1)}x baseline); matching pass {m['pass_s']} s")
    if "ratio_pass" in sc:
        print(f"  --no-embed scaling, --workers {args.workers[1]} vs {args.workers[0]} (medians): "
              f"{sc['ratio_command']}x for the whole command, {sc['ratio_pass']}x for the matching pass; per round "
              f"pass {sc['ratio_pass_per_round']}, command {sc['ratio_command_per_round']}; this machine's "
              f"ceiling (two independent processes scanning half the shards each, warm) {sc['ceiling_median']}x")
    if "embedding" in results:
        e = results["embedding"]
        print(f"  encoding {e['captions']} matched captions ({e['source']}, {e['distinct_captions']} distinct, mean "
              f"{e['mean_caption_chars']} characters), all-MiniLM-L6-v2, "
              f"CPU, {e['threads']} threads, medians of {e['repeats']} rounds: previous path "
              f"{e['previous_captions_per_s']} captions/s (per round {e['previous_per_round']})")
        for p in e["paths"]:
            if "skipped" in p:
                print(f"    {p['path']}: skipped ({p['skipped']})")
            else:
                print(f"    {p['path']}, batch {p['batch_size']}: {p['captions_per_s']} captions/s = "
                      f"{p['ratio_vs_previous']}x (per round {p['per_round']}); max |delta similarity| "
                      f"{p['max_abs_similarity_difference']:.2e}, mean {p['mean_abs_similarity_difference']:.1e}")
    if "rerun" in results:
        r1, r2 = results["rerun"]["runs"]
        print(f"  rerun with --threshold {r2['threshold']} after {r1['threshold']} "
              f"({results['rerun']['captions']:,} captions): encoded {r2['encoded_captions']} captions and "
              f"{r2['encoded_queries']} queries (first run: {r1['encoded_captions']} and {r1['encoded_queries']})")
    if "whole_mine" in results:
        w = results["whole_mine"]
        print(f"  whole `mine` with embeddings, defaults only ({w['backend']}, batch {w['batch_size']}), "
              f"{w['captions']:,} held-out captions, against a plain sentence-transformers encode of the same "
              f"texts: {w['ratio_median']:.2f}x (per round {[x['ratio'] for x in w['rounds']]})")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
