"""End to end through img2dataset over HTTP: 200 generated urls on 127.0.0.1 with every failure kind.

The counts asserted are exact: each url kind has one known outcome, so any reason miscounted, any row
dropped silently or any row fetched twice fails the test.
"""

from __future__ import annotations

import io
import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from PIL import Image

from imagenot.data import get_dataset
from imagenot.download import DownloadConfig, run_download
from imagenot.fileio import read_json

from .conftest import encode, make_image, write_selection

# kind -> number of urls; the order of this table is the order of rows
PLAN = [
    ("rgb", 60), ("palette", 10), ("cmyk", 10), ("rgba", 10), ("gray", 10),  # 100 fine images
    ("redirect", 15), ("flaky", 5),  # followed redirect; 503 then 200 (saved by one retry)
    ("missing", 15), ("error", 10), ("loop", 5), ("slow", 3),
    ("trickle", 2),  # one byte every 0.25 s: only the total deadline ends it
    ("huge", 2), ("huge_declared", 1),  # 20 MB without / with a Content-Length of 200 MB
    ("file_redirect", 2),  # 302 to file:///etc/passwd
    ("truncated", 8), ("corrupt", 7), ("html", 10), ("tiny", 10), ("bomb", 5),
]
REPEATED = (0, 1)  # two extra rows repeat the source ids (and urls) of rows 0 and 1
EXPECTED_REMOVED = {"http_error": 25, "redirect_loop": 5, "timeout": 5, "response_too_large": 3,
                    "redirect_refused": 2, "truncated": 8, "corrupt": 7, "not_an_image": 10, "too_small": 10,
                    "decompression_bomb": 5, "duplicate_source_id": 2}
EXPECTED_KEPT = 120
TIMEOUT_S, SLOW_S = 3, 8  # generous: the machine running the tests may be busy
HUGE_BYTES, MAX_MB = 20_000_000, 1.0


def _body(kind: str, seed: int, bomb: bytes) -> tuple[bytes, str]:
    im = make_image(seed)
    if kind in ("rgb", "redirect", "flaky", "slow"):
        return encode(im, "JPEG", quality=90), "image/jpeg"
    if kind == "palette":
        return encode(im.convert("P", palette=Image.Palette.ADAPTIVE, colors=64)), "image/png"
    if kind == "cmyk":
        return encode(im.convert("CMYK"), "JPEG"), "image/jpeg"
    if kind == "rgba":
        rgba = im.convert("RGBA")
        rgba.putalpha(Image.linear_gradient("L").resize(im.size))
        return encode(rgba), "image/png"
    if kind == "gray":
        return encode(im.convert("L")), "image/png"
    if kind == "truncated":
        data = encode(im, "JPEG")
        return data[: len(data) // 2], "image/jpeg"
    if kind == "corrupt":
        data = bytearray(encode(im))
        mid = len(data) // 2
        data[mid:mid + 20] = bytes(20)
        return bytes(data), "image/png"
    if kind == "html":
        return b"<html><body>Not found, but with status 200</body></html>", "text/html"
    if kind == "tiny":
        return encode(im.resize((5, 5))), "image/png"
    if kind == "bomb":
        return bomb, "image/png"
    raise AssertionError(kind)


class Server:
    def __init__(self, bodies: dict[tuple[str, int], tuple[bytes, str]]) -> None:
        self.requests: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.bodies = bodies  # made before serving, so that answers are instant on a busy machine
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                _, kind, ident = self.path.split("/")
                seed = int(ident)
                with outer.lock:
                    outer.requests[kind] += 1
                    seen = outer.requests[f"{kind}/{seed}"]
                    outer.requests[f"{kind}/{seed}"] += 1
                if kind == "missing":
                    return self.send_error(404)
                if kind == "error":
                    return self.send_error(500)
                if kind == "flaky" and seen == 0:
                    return self.send_error(503)
                if kind in ("redirect", "loop"):
                    self.send_response(302)
                    target = f"/target/{seed}" if kind == "redirect" else self.path
                    self.send_header("Location", target)
                    self.end_headers()
                    return
                if kind == "file_redirect":
                    self.send_response(302)
                    self.send_header("Location", "file:///etc/passwd")
                    self.end_headers()
                    return
                if kind in ("trickle", "huge", "huge_declared"):
                    return self.stream(kind)
                if kind == "slow":
                    time.sleep(SLOW_S)
                body, ctype = outer.bodies[(kind, seed)]
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def stream(self, kind: str) -> None:
                """Send until the client goes away (or a bound that keeps a broken client from hanging the
                test); record how long the connection was held and how many bytes went out."""
                t0, sent = time.perf_counter(), 0
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "image/jpeg")
                    if kind == "trickle":
                        self.send_header("Content-Length", "5000")
                    elif kind == "huge_declared":
                        self.send_header("Content-Length", str(10 * HUGE_BYTES))
                    self.end_headers()
                    if kind == "trickle":
                        while sent < 5000 and time.perf_counter() - t0 < 60:
                            self.wfile.write(b"\xff")
                            self.wfile.flush()
                            sent += 1
                            time.sleep(0.25)
                    else:
                        chunk = bytes(1 << 16)
                        while sent < HUGE_BYTES:
                            self.wfile.write(chunk)
                            sent += len(chunk)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                with outer.lock:
                    outer.held.append((kind, time.perf_counter() - t0, sent))

        self.held: list[tuple[str, float, int]] = []
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, kind: str, seed: int) -> str:
        return f"http://127.0.0.1:{self.port}/{kind}/{seed}"

    def total(self) -> int:
        return sum(v for k, v in self.requests.items() if "/" not in k)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, bomb_png: bytes):
    kinds = [kind for kind, count in PLAN for _ in range(count)]
    bodies = {}
    for i, kind in enumerate(kinds):
        if kind not in ("missing", "error", "loop", "trickle", "huge", "huge_declared", "file_redirect"):
            bodies[("target" if kind == "redirect" else kind, i)] = _body(kind, i, bomb_png)
    server = Server(bodies)
    server.thread.start()
    folder = tmp_path_factory.mktemp("http")
    urls, labels, splits = [], [], []
    for kind, count in PLAN:
        for _ in range(count):
            i = len(urls)
            urls.append(server.url(kind, i))
            labels.append(i % 4)
            splits.append("val" if (i // 4) % 5 == 0 else "train")
    source_ids = [f"src-{i}" for i in range(len(urls))]
    for i in REPEATED:
        urls.append(urls[i])
        labels.append(labels[i])
        splits.append(splits[i])
        source_ids.append(source_ids[i])
    matches = write_selection(folder, urls, labels, splits, source_ids=source_ids)
    cfg = DownloadConfig(matches=str(matches), out=str(folder / "ds"), image_size=32, processes=1, threads=8,
                         timeout=TIMEOUT_S, retries=1, fetch_shard_size=100, shard_size=50, min_images_per_class=10,
                         keep_raw=True, max_response_mb=MAX_MB)
    t0 = time.perf_counter()
    card = run_download(cfg)
    wall = time.perf_counter() - t0
    yield server, cfg, card, kinds, wall
    server.httpd.shutdown()


def test_counts_per_reason_are_exact(served) -> None:
    server, cfg, card, kinds, wall = served
    assert len(kinds) == 200
    assert card["source"]["fetcher"] == "img2dataset"
    assert card["removed"] == EXPECTED_REMOVED
    assert card["counts"]["duplicate_source_ids"] == 2 and card["counts"]["selected"] == 202
    assert card["http_status"] == {"404": 15, "500": 10}
    assert card["conversions"] == {"alpha": 10, "cmyk": 10, "grayscale": 10, "palette": 10}
    assert card["counts"]["decoded"] == EXPECTED_KEPT
    assert card["counts"]["train"] + card["counts"]["val"] == EXPECTED_KEPT
    assert card["dedup"]["counts"] == {}
    # per-shard stats add up to the summary
    out = Path(cfg.out)
    shard_stats = [read_json(p) for p in sorted((out / "stats").glob("fetch-*.json"))]
    assert [s["rows"] for s in shard_stats] == [100, 100]
    summed: Counter[str] = Counter()
    for s in shard_stats:
        summed.update(s["dropped"])
    assert dict(summed) == {k: v for k, v in EXPECTED_REMOVED.items() if k != "duplicate_source_id"}
    assert sum(s["kept"] for s in shard_stats) == EXPECTED_KEPT
    # every removed row is listed once, with the reason its url kind must give
    removed = pq.read_table(out / "removed.parquet").to_pylist()
    assert len(removed) == 202 - EXPECTED_KEPT
    by_kind = {(kinds[r["row_id"]] if r["row_id"] < 200 else "repeat", r["reason"]) for r in removed}
    assert by_kind == {("missing", "http_error"), ("error", "http_error"), ("loop", "redirect_loop"),
                       ("slow", "timeout"), ("trickle", "timeout"), ("huge", "response_too_large"),
                       ("huge_declared", "response_too_large"), ("file_redirect", "redirect_refused"),
                       ("truncated", "truncated"), ("corrupt", "corrupt"), ("html", "not_an_image"),
                       ("tiny", "too_small"), ("bomb", "decompression_bomb"), ("repeat", "duplicate_source_id")}
    repeats = {r["row_id"]: r for r in removed if r["reason"] == "duplicate_source_id"}
    assert {r["duplicate_of"] for r in repeats.values()} == {f"row {i}" for i in REPEATED}
    # a repeated source id is fetched once
    assert all(server.requests[f"rgb/{i}"] == 1 for i in REPEATED)
    # retries: each flaky url was asked twice and then kept; redirects were followed
    assert all(server.requests[f"flaky/{i}"] == 2 for i, k in enumerate(kinds) if k == "flaky")
    assert server.requests["target"] == 15
    # the deadline is total: a trickling server held each request about TIMEOUT_S, not minutes; the size cap
    # stopped reading each huge body after about MAX_MB (kernel buffers let a few MB more leave the server)
    trickles = [held for kind, held, _ in server.held if kind == "trickle"]
    assert len(trickles) == 4 and max(trickles) < TIMEOUT_S + 4, trickles  # 2 urls x (1 + 1 retry)
    huge = [sent for kind, _, sent in server.held if kind.startswith("huge")]
    assert len(huge) == 6 and max(huge) < HUGE_BYTES / 2, huge
    print(f"\nHTTP download of 200 urls: {wall:.1f} s; removed {card['removed']}; trickling requests held "
          f"{max(trickles):.1f} s at most (timeout {TIMEOUT_S} s); huge bodies: at most {max(huge) / 1e6:.1f} MB "
          f"sent of {HUGE_BYTES / 1e6:.0f} MB (cap {MAX_MB} MB)")


def test_shards_follow_the_contract(served) -> None:
    import webdataset as wds

    _, cfg, card, _, _ = served
    out = Path(cfg.out)
    assert sorted(p.name for p in out.glob("*.tar")) == [
        "train-000000.tar", "train-000001.tar", "val-000000.tar"]
    seen = Counter()
    for split in ("train", "val"):
        urls = [str(out / s["file"]) for s in card["splits"][split]["shards"]]
        for sample in wds.WebDataset(urls, shardshuffle=False).decode("pil"):
            assert set(sample) >= {"__key__", "jpg", "cls", "json"}
            meta = sample["json"]
            assert {"wnid", "caption", "url", "similarity", "source_id"} <= set(meta)
            assert int(sample["cls"]) == meta["label"]
            assert card["classes"][meta["label"]]["wnid"] == meta["wnid"]
            assert min(sample["jpg"].size) == 32 and sample["jpg"].mode == "RGB"
            seen[split] += 1
    assert seen == {"train": card["counts"]["train"], "val": card["counts"]["val"]}
    # val was planned at 10 per class; failures were made up from train
    for c in card["classes"]:
        assert c["val"] == 10, c
    val = get_dataset(f"wds:{out}", "val", image_size=24)
    x, y = val.images, val.labels
    assert tuple(x.shape) == (40, 3, 24, 24) and str(x.dtype) == "torch.uint8"
    assert sorted(Counter(y.tolist()).values()) == [10] * 4
    # RGBA images were composited on white: their top-left corner (alpha 0) is white
    rgba_meta = [json.loads(s["json"]) for s in wds.WebDataset(
        [str(p) for p in sorted(out.glob("*.tar"))], shardshuffle=False) if b'"alpha"' in s["json"]]
    assert len(rgba_meta) == 10


def test_rerun_fetches_nothing(served, monkeypatch) -> None:
    server, cfg, card, _, _ = served
    out = Path(cfg.out)
    assert (out / "_work" / "clean").is_dir()  # keep_raw keeps the staging folder of a complete dataset
    before = server.total()
    again = run_download(cfg)
    assert server.total() == before
    assert again["plan_sha256"] == card["plan_sha256"]
    # a rebuild (other seed) interrupted while writing the shards resumes from the fetched shards without
    # a single request
    import imagenot.download.outputs as outputs

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    other = DownloadConfig(**{**cfg.__dict__, "seed": 1})
    monkeypatch.setattr(outputs, "write_split_shards", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_download(other)
    assert not (out / "dataset.json").exists()
    monkeypatch.undo()
    rebuilt = run_download(other)
    assert server.total() == before
    assert rebuilt["counts"] == card["counts"] and rebuilt["removed"] == card["removed"]
    assert rebuilt["splits"] != card["splits"]  # another shuffle


def test_composited_alpha_is_white(served) -> None:
    import webdataset as wds

    _, cfg, _, _, _ = served
    out = Path(cfg.out)
    for s in wds.WebDataset([str(p) for p in sorted(out.glob("*.tar"))], shardshuffle=False):
        meta = json.loads(s["json"])
        if meta["conversion"] == "alpha":
            im = Image.open(io.BytesIO(s["jpg"])).convert("RGB")
            # linear_gradient alpha is 0 along the top row: fully transparent -> white
            r, g, b = im.getpixel((im.width // 2, 0))
            assert min(r, g, b) >= 235, (r, g, b)


@pytest.mark.slow
def test_ctrl_c_during_img2dataset_exits_130_and_the_rerun_resumes(tmp_path: Path) -> None:
    """img2dataset's SIGINT handler calls sys.exit(0); `imagenot download` must still exit 130 with the
    resume hint (so `download && train` stops), and the rerun must finish the folder."""
    import os
    import signal
    import subprocess
    import sys

    import imagenot
    from imagenot.cli import main

    arrived = threading.Event()
    hold = threading.Event()  # set: answer at once

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            arrived.set()
            if not hold.is_set():
                time.sleep(20)
            body = encode(make_image(int(self.path.rsplit("/", 1)[1])), "JPEG")
            try:
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        urls = [f"http://127.0.0.1:{httpd.server_address[1]}/img/{i}" for i in range(8)]
        matches = write_selection(tmp_path / "mine", urls, [i % 2 for i in range(8)])
        out = tmp_path / "ds"
        argv = ["download", "--matches", str(matches), "--out", str(out), "--image-size", "32", "--timeout", "30",
                "--retries", "0", "--min-images-per-class", "2"]
        env = {**os.environ, "PYTHONPATH": str(Path(imagenot.__file__).resolve().parents[1])}
        proc = subprocess.Popen([sys.executable, "-m", "imagenot", *argv], env=env, start_new_session=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert arrived.wait(180), "img2dataset never sent a request"
            os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does: the whole process group
            stdout, stderr = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
        assert proc.returncode == 130, (stdout, stderr)
        assert "imagenot download: interrupted; rerun the same command to resume" in stderr
        assert "Traceback" not in stderr and stdout == ""
        assert not (out / "dataset.json").exists()
        hold.set()
        assert main(argv) == 0
        card = read_json(out / "dataset.json")
        assert card["counts"]["train"] + card["counts"]["val"] == 8
    finally:
        httpd.shutdown()
