"""The output-folder lock (imagenot.lock): a second process is refused naming the holder; a killed holder's
lock file is taken over; the stages hold it while they write."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from imagenot.errors import InputError
from imagenot.lock import FolderLockedError, lock_path, output_lock

_HOLDER = """
import sys, time
from imagenot.lock import output_lock
with output_lock(sys.argv[1], command=["imagenot", "train", "--out", sys.argv[1]]):
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def _env() -> dict[str, str]:
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[1] / "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    return env


@pytest.fixture
def holder(tmp_path):
    """A real second process holding the lock of tmp_path/out until the test ends (or kills it)."""
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(out), "60"], stdout=subprocess.PIPE, text=True,
                            env=_env())
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    yield out, proc
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def test_second_process_is_refused_naming_the_holder(holder):
    out, proc = holder
    with pytest.raises(FolderLockedError) as err, output_lock(out):
        pass
    message = str(err.value)
    assert f"pid {proc.pid}" in message and "imagenot train --out" in message and str(out) in message
    assert isinstance(err.value, InputError)


def test_lock_of_a_killed_process_is_taken_over(holder):
    out, proc = holder
    stale = lock_path(out)
    assert json.loads(stale.read_text())["pid"] == proc.pid
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert stale.exists()  # left behind by the killed holder, but no longer locked
    with output_lock(out):
        assert json.loads(lock_path(out).read_text())["pid"] == os.getpid()
    assert not lock_path(out).exists()  # released: the file goes with the lock


def test_lock_is_reentrant_in_one_process_and_released_after(tmp_path):
    out = tmp_path / "out"
    with output_lock(out), output_lock(out):
        assert lock_path(out).exists()
    assert not lock_path(out).exists()
    assert not out.exists()  # the lock creates nothing in (or as) the output folder


def test_lock_file_is_beside_the_folder_not_inside(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    with output_lock(out):
        assert list(out.iterdir()) == []  # "is the folder empty" checks still see an empty folder


def test_second_train_into_one_out_fails_at_once_naming_the_holder(holder):
    from imagenot.training.trainer import train
    from tests.training.training_helpers import quick_config

    out, proc = holder
    t0 = time.monotonic()
    with pytest.raises(FolderLockedError, match=f"pid {proc.pid}"):
        train(quick_config(out, epochs=1))
    assert time.monotonic() - t0 < 30  # at once: not after a training run (a generous bound, not a timing goal)
    assert not out.exists()  # nothing written into the folder the other process owns


@pytest.mark.parametrize("command", [
    ["download", "--matches", "M", "--classes", "C", "--out", "{out}"],
    ["export", "--dataset", "D", "--out", "{out}"],
])
def test_cli_stages_refuse_a_locked_folder_with_exit_2(holder, command, capsys):
    from imagenot.cli import main

    out, proc = holder
    argv = [a.replace("{out}", str(out)) for a in command]
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2
    assert f"pid {proc.pid}" in err and "being written" in err


def test_a_read_only_place_runs_without_the_lock_with_a_warning(tmp_path, monkeypatch, caplog):
    import errno
    import logging

    real_open = os.open

    def read_only(path, flags, *args):
        if str(path).endswith(".imagenot-lock"):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", read_only)
    out = tmp_path / "finished"
    out.mkdir()
    with caplog.at_level(logging.WARNING, logger="imagenot.lock"), output_lock(out):
        pass
    assert "without the output-folder lock" in caplog.text and "Read-only" in caplog.text


@pytest.mark.slow
def test_two_train_commands_into_one_out(tmp_path):
    """The reported case end to end: the second `imagenot train` exits 2 naming the first, which finishes."""
    out = tmp_path / "run"
    argv = [sys.executable, "-m", "imagenot", "train", "--model", "alexnet_s32", "--dataset", "synthetic",
            "--data-opt", "num_classes=4", "--image-size", "16", "--batch-size", "16", "--threads", "1",
            "--out", str(out), "-q"]
    env = {**_env(), "OMP_NUM_THREADS": "1"}
    first = subprocess.Popen([*argv, "--epochs", "6"], env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not lock_path(out).exists() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    second = subprocess.run([*argv, "--epochs", "1"], env=env, capture_output=True, text=True, timeout=300)
    assert second.returncode == 2
    assert f"pid {first.pid}" in second.stderr and "being written" in second.stderr
    assert first.wait(timeout=600) == 0
    result = json.loads((out / "result.json").read_text())
    assert result["epochs"] == 6  # the first run's result, not replaced by the second
