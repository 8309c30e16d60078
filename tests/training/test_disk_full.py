"""A full disk in `train` is one clear error naming the run folder (exit 1, as in every stage), nothing torn is
left, and rerunning with --resume finishes the run."""

from __future__ import annotations

import errno
import json
import shutil
from pathlib import Path

import pytest

from imagenot import checkpoint
from imagenot.cli import main

ARGS = ["train", "--model", "resnet_s32", "--dataset", "synthetic", "--data-opt", "num_classes=3", "--data-opt",
        "n=48", "--epochs", "2", "--batch-size", "16", "--image-size", "16", "--threads", "1", "-q"]


def _full_after(calls: int, real):
    """A writer that works `calls` times, then fails as a full disk does."""
    seen = []

    def writer(*args, **kwargs):
        seen.append(args)
        if len(seen) > calls:
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0")
        return real(*args, **kwargs)

    return writer


@pytest.mark.parametrize("what", ["checkpoint", "metrics"])
def test_disk_full_exits_1_naming_the_run_folder_and_resume_finishes(what: str, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch,
                                                                     capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "run"
    if what == "checkpoint":  # torch's zip writer says neither ENOSPC nor "no space": the free space decides
        monkeypatch.setattr(checkpoint.torch, "save", _full_after(1, checkpoint.torch.save))
        real_usage = shutil.disk_usage
        monkeypatch.setattr(shutil, "disk_usage", lambda p: real_usage(p)._replace(free=4096))
    else:
        import imagenot.rundir as rundir

        real = rundir.write_text

        def write_text(path, text):
            if Path(path).name == "metrics.jsonl" and text.count("\n") == 2:
                raise OSError(errno.ENOSPC, "No space left on device", str(path))
            return real(path, text)

        monkeypatch.setattr(rundir, "write_text", write_text)
    assert main([*ARGS, "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"imagenot train: error: no space left on the device holding {out}" in err
    assert "--resume" in err and "Traceback" not in err
    assert not [p for p in out.rglob("*") if p.name.startswith(".")]  # no temporary file left behind
    assert not (out / "result.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    monkeypatch.undo()
    assert main([*ARGS, "--out", str(out), "--resume"]) == 0
    result = json.loads((out / "result.json").read_text())
    assert result["epochs"] == 2
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 2
