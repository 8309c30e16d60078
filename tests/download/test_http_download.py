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

from imagenot.download import DownloadConfig, load_split_arrays, run_download
from imagenot.fileio import read_json

from .conftest import encode, make_image, write_selection

# kind -> number of urls; the order of this table is the order of rows
PLAN = [
    ("rgb", 60), ("palette", 10), ("cmyk", 10), ("rgba", 10), ("gray", 10),  # 100 fine images
    ("redirect", 15), ("flaky", 5),  # followed redirect; 503 then 200 (saved by one retry)
    ("missing", 20), ("error", 10), ("loop", 5), ("slow", 5),
    ("truncated", 8), ("corrupt", 7), ("html", 10), ("tiny", 10), ("bomb", 5),
]
EXPECTED_REMOVED = {"http_error": 30, "redirect_loop": 5, "timeout": 5, "truncated": 8, "corrupt": 7,
                    "not_an_image": 10, "too_small": 10, "decompression_bomb": 5}
EXPECTED_KEPT = 120
TIMEOUT_S, SLOW_S = 3, 8  # generous: the machine running the tests may be busy


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
        if kind not in ("missing", "error", "loop"):
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
    matches = write_selection(folder, urls, labels, splits)
    cfg = DownloadConfig(matches=str(matches), out=str(folder / "ds"), image_size=32, processes=1, threads=8,
                         timeout=TIMEOUT_S, retries=1, fetch_shard_size=100, shard_size=50, min_per_class=10)
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
    assert card["http_status"] == {"404": 20, "500": 10}
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
    assert dict(summed) == EXPECTED_REMOVED
    assert sum(s["kept"] for s in shard_stats) == EXPECTED_KEPT
    # every removed row is listed once, with the reason its url kind must give
    removed = pq.read_table(out / "removed.parquet").to_pylist()
    assert len(removed) == 200 - EXPECTED_KEPT
    by_kind = {(kinds[r["row_id"]], r["reason"]) for r in removed}
    assert by_kind == {("missing", "http_error"), ("error", "http_error"), ("loop", "redirect_loop"),
                       ("slow", "timeout"), ("truncated", "truncated"), ("corrupt", "corrupt"),
                       ("html", "not_an_image"), ("tiny", "too_small"), ("bomb", "decompression_bomb")}
    # retries: each flaky url was asked twice and then kept; redirects were followed
    assert all(server.requests[f"flaky/{i}"] == 2 for i, k in enumerate(kinds) if k == "flaky")
    assert server.requests["target"] == 15
    print(f"\nHTTP download of 200 urls: {wall:.1f} s; removed {card['removed']}")


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
    x, y = load_split_arrays(out, "val", 24)
    assert x.shape == (40, 3, 24, 24) and x.dtype.name == "uint8" and sorted(Counter(y.tolist()).values()) == [10] * 4
    # RGBA images were composited on white: their top-left corner (alpha 0) is white
    rgba_meta = [json.loads(s["json"]) for s in wds.WebDataset(
        [str(p) for p in sorted(out.glob("*.tar"))], shardshuffle=False) if b'"alpha"' in s["json"]]
    assert len(rgba_meta) == 10


def test_rerun_fetches_nothing(served) -> None:
    server, cfg, card, _, _ = served
    before = server.total()
    again = run_download(cfg)
    assert server.total() == before
    assert again["plan_sha256"] == card["plan_sha256"]
    # an interrupted run (no card yet) resumes from the fetched shards without a request,
    # and rebuilds byte-identical shards
    out = Path(cfg.out)
    (out / "dataset.json").unlink()
    rebuilt = run_download(cfg)
    assert server.total() == before
    assert rebuilt["splits"] == card["splits"]


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
