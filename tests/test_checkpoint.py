"""Checkpoints: a full disk is reported as such and keeps the previous checkpoint; unsafe files are refused."""

import errno
from pathlib import Path

import pytest
import torch

from imagenot import checkpoint
from imagenot.checkpoint import CheckpointError, load_checkpoint, save_checkpoint


def test_disk_full_while_saving_keeps_the_old_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / "last.pt"
    save_checkpoint(path, {"meta": {"model": "m"}, "epoch": 1})
    before = path.read_bytes()

    def full(*args, **kwargs):
        raise RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos 64 vs 0: file write failed")

    monkeypatch.setattr(checkpoint.torch, "save", full)
    import shutil

    monkeypatch.setattr(shutil, "disk_usage", lambda p: type("U", (), {"free": 1024})())
    with pytest.raises(OSError) as err:
        save_checkpoint(path, {"meta": {"model": "m"}, "epoch": 2})
    assert err.value.errno == errno.ENOSPC and err.value.filename == str(path)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_cli_reports_a_full_disk_without_a_traceback(monkeypatch: pytest.MonkeyPatch, capsys):
    from imagenot import cli

    def stage(args):
        raise OSError(errno.ENOSPC, "No space left on device", "/data/runs/x/checkpoints/last.pt")

    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    parser._subparsers._group_actions[0].choices["models"].set_defaults(func=stage)
    assert cli.main(["models"]) == 1
    err = capsys.readouterr().err
    assert "no space left on the device holding /data/runs/x/checkpoints/last.pt" in err
    assert "Traceback" not in err


def test_pickles_with_objects_are_refused_with_advice_not_to_unpickle(tmp_path: Path):
    path = tmp_path / "last.pt"
    from imagenot.errors import ImagenotError

    torch.save({"format": "imagenot-checkpoint", "version": 1, "obj": ImagenotError("x")}, path)  # not tensors
    with pytest.raises(CheckpointError, match="not a trusted checkpoint") as err:
        load_checkpoint(path)
    assert "weights_only=False" not in str(err.value)


def test_trainer_checkpoint_layout_reads_back_through_its_owner(tmp_path: Path):
    """The dict the trainer writes and the readers a weights source uses agree on every key."""
    from imagenot.checkpoint import (
        TRAINER_KEYS,
        checkpoint_classes,
        checkpoint_image_size,
        checkpoint_normalization,
        checkpoint_num_classes,
        checkpoint_weights,
        is_checkpoint,
        trainer_checkpoint,
    )

    net = torch.nn.Linear(3, 2)
    ema = torch.optim.swa_utils.AveragedModel(net)
    with torch.no_grad():
        ema.module.weight.fill_(0.5)
    state = trainer_checkpoint(
        meta={"model": "m", "num_classes": 2, "image_size": 32}, model=net.state_dict(), optimizer={},
        scheduler={}, scaler=None, ema=ema.state_dict(), epoch=1, step_in_epoch=0, epoch_loss_sum=0.0,
        epoch_seen=0, history=[], elapsed_s=1.0, rng=[], mean=[0.1, 0.2, 0.3], std=[0.4, 0.5, 0.6],
        classes=["a", "b"])
    assert tuple(state) == TRAINER_KEYS
    save_checkpoint(tmp_path / "last.pt", state)
    ckpt = load_checkpoint(tmp_path / "last.pt", expect={"model": "m"})
    assert is_checkpoint(ckpt) and not is_checkpoint({"model": {}})
    assert checkpoint_num_classes(ckpt) == 2 and checkpoint_image_size(ckpt) == 32
    assert checkpoint_classes(ckpt) == ("a", "b")
    assert checkpoint_normalization(ckpt) == ((0.1, 0.2, 0.3), (0.4, 0.5, 0.6))
    weights = checkpoint_weights(ckpt)  # the EMA's, without AveragedModel's prefix
    assert set(weights) == {"weight", "bias"} and bool((weights["weight"] == 0.5).all())
    del ckpt["ema"]
    assert torch.equal(checkpoint_weights(ckpt)["weight"], net.weight)
