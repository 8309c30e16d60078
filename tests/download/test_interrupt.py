"""Ctrl-C stops `imagenot download` with status 130 at any moment (before the fetch, while img2dataset is
starting: its import and its workers' start take seconds, and its own SIGINT handler used to swallow the
interrupt), leaves no process behind, and the rerun finishes the folder. Real processes, a real SIGINT to
the process group (what a terminal's Ctrl-C sends), a loopback image server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import imagenot
from imagenot.cli import main
from imagenot.fileio import read_json

from .conftest import encode, make_image, write_selection

# The moment of the interrupt: a file that appears then, and how long after it the signal is sent.
MOMENTS = {
    "while_starting": (None, 0.5),  # the CLI is importing, reading the selection
    "before_fetch": ("_work/input.parquet", 0.0),  # the input list is written, img2dataset not yet started
    "img2dataset_starting": ("_work/img2dataset.log", 0.3),  # img2dataset is importing / starting workers
    # a slow img2dataset start that swallows the interrupt (as a library catching BaseException during its
    # import would): the case where the command used to run on and exit 2 with "no class has images"
    "slow_start_swallowing_it": ("_work/slow-start", 0.2),
}

SLOW_IMG2DATASET = """
import os, sys, time
from pathlib import Path

mark = os.environ.get("IMAGENOT_TEST_SLOW_START")
if mark:
    Path(mark).parent.mkdir(parents=True, exist_ok=True)
    Path(mark).touch()
    end = time.monotonic() + 4
    while time.monotonic() < end:
        try:
            time.sleep(0.05)
        except BaseException:  # noqa: BLE001 - the careless library this stands for
            pass
here = str(Path(__file__).resolve().parents[1])
sys.path[:] = [p for p in sys.path if str(Path(p or ".").resolve()) != here]
del sys.modules["img2dataset"]
import img2dataset as _real  # noqa: E402

sys.modules["img2dataset"] = _real
"""


def _others_with(marker: str) -> list[int]:
    """Processes (other than this one) whose command line mentions `marker`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline:
            found.append(int(entry.name))
    return found


@pytest.fixture
def server():
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            body = encode(make_image(int(self.path.rsplit("/", 1)[1])), "JPEG")
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.mark.slow
@pytest.mark.parametrize("moment", list(MOMENTS))
def test_ctrl_c_at_any_moment_exits_130_and_the_rerun_finishes(moment: str, server: str, tmp_path: Path) -> None:
    urls = [f"{server}/img/{i}" for i in range(8)]
    matches = write_selection(tmp_path / "mine", urls, [i % 2 for i in range(8)])
    out = tmp_path / "ds"
    argv = ["download", "--matches", str(matches), "--out", str(out), "--image-size", "32", "--timeout", "30",
            "--retries", "0", "--min-images-per-class", "2", "--processes", "1"]
    env = {**os.environ, "PYTHONPATH": str(Path(imagenot.__file__).resolve().parents[1])}
    if moment == "slow_start_swallowing_it":
        shim = tmp_path / "shim" / "img2dataset"
        shim.mkdir(parents=True)
        (shim / "__init__.py").write_text(SLOW_IMG2DATASET)
        env["PYTHONPATH"] = os.pathsep.join([str(shim.parent), env["PYTHONPATH"]])
        env["IMAGENOT_TEST_SLOW_START"] = str(out / "_work" / "slow-start")
    proc = subprocess.Popen([sys.executable, "-m", "imagenot", *argv], env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        marker, delay = MOMENTS[moment]
        waited = 0.0
        while marker is not None and not (out / marker).exists() and proc.poll() is None and waited < 300:
            time.sleep(0.02)
            waited += 0.02
        assert proc.poll() is None, proc.communicate()
        time.sleep(delay)
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does: the terminal's whole foreground group
        stdout, stderr = proc.communicate(timeout=60)  # "within a few seconds"; a hang fails here
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, (stdout, stderr)
    assert "interrupted; rerun the same command to resume" in stderr
    assert "Traceback" not in stderr and "no class has images" not in stderr and stdout == ""
    assert not (out / "dataset.json").exists()
    time.sleep(0.5)
    assert _others_with(str(out)) == []  # img2dataset and its workers are gone too
    assert main(argv) == 0
    card = read_json(out / "dataset.json")
    assert card["counts"]["train"] + card["counts"]["val"] == 8
