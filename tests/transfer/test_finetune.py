"""Fine-tuning a synthetic-pretrained run on a CIFAR-10-format folder the test writes, in both modes."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch

from imagenot.cli import main
from imagenot.errors import ImagenotError
from imagenot.models import get_model
from imagenot.models.heads import find_head
from imagenot.training.config import TrainConfig
from imagenot.training.trainer import train
from imagenot.transfer import finetune

HEAD = find_head(get_model("densenet_s32", 4))[0]
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def write_cifar10(root, per_batch=20, test=40, seed=0):
    """torchvision's python CIFAR-10 layout: five train batches, test_batch, batches.meta (bytes keys)."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    colours = rng.integers(0, 256, size=(10, 3))

    def batch(n):
        labels = rng.integers(0, 10, size=n)
        img = colours[labels][:, :, None, None] * 0.7 + rng.integers(0, 77, size=(n, 3, 32, 32))
        return {b"data": img.clip(0, 255).astype(np.uint8).reshape(n, 3072), b"labels": labels.tolist(),
                b"batch_label": b"synthetic batch"}

    for i in range(1, 6):
        (folder / f"data_batch_{i}").write_bytes(pickle.dumps(batch(per_batch)))
    (folder / "test_batch").write_bytes(pickle.dumps(batch(test)))
    meta = {b"label_names": [c.encode() for c in CLASSES], b"num_cases_per_batch": per_batch, b"num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta))
    return root


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    out = tmp_path_factory.mktemp("pre") / "densenet"
    cfg = TrainConfig(model="densenet_s32", dataset="synthetic", dataset_options={"num_classes": 4}, out=str(out),
                      epochs=2, batch_size=16, image_size=16, threads=1, progress=False, role="reference")
    return out, train(cfg)


@pytest.fixture(scope="module")
def cifar(tmp_path_factory):
    return write_cifar10(tmp_path_factory.mktemp("cifar"))


def _weights(run):
    return torch.load(run / "checkpoints" / "last.pt", weights_only=True)["model"]


def test_full_finetune_records_provenance_and_trains_everything(pretrained, cifar, tmp_path):
    pre_dir, pre = pretrained
    out = tmp_path / "full"
    result = finetune(TrainConfig(init=f"run:{pre_dir}", dataset=f"cifar10:{cifar}", out=str(out),
                                  finetune_mode="full", epochs=1, batch_size=20, image_size=32, threads=1,
                                  progress=False))
    on_disk = json.loads((out / "result.json").read_text())
    assert on_disk["role"] == "transfer" and on_disk["dataset"] == "cifar10" and on_disk["model"] == "densenet_s32"
    assert on_disk["pretrain_dataset"] == "synthetic" and on_disk["pretrain_run"] == str(pre_dir)
    assert on_disk["pretrain_top1"] == pre["top1"] and on_disk["finetune_mode"] == "full"
    assert on_disk["num_classes"] == 10 and on_disk["image_size"] == 32 and on_disk["recipe"] == "finetune"
    assert result["top1"] == on_disk["top1"]
    before, after = _weights(pre_dir), _weights(out)
    head = HEAD + ".weight"
    assert after[head].shape[0] == 10 and before[head].shape[0] == 4
    first_conv = next(k for k, v in before.items() if v.ndim == 4)
    assert not torch.equal(before[first_conv], after[first_conv])
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["inputs"]["init_weights"] == on_disk["weights"]["sha256"] and len(on_disk["weights"]["sha256"]) == 64
    assert on_disk["init"] == f"run:{pre_dir}" and on_disk["weights"]["kind"] == "run"


def test_linear_probe_trains_only_the_head(pretrained, cifar, tmp_path, capsys):
    pre_dir, _ = pretrained
    out = tmp_path / "linear"
    assert main(["finetune", "--init", f"run:{pre_dir}", "--dataset", f"cifar10:{cifar}", "--out", str(out),
                 "--finetune-mode", "linear", "--epochs", "2", "--batch-size", "20", "--threads", "1",
                 "--no-progress"]) == 0
    assert "densenet_s32 from synthetic" in capsys.readouterr().out
    result = json.loads((out / "result.json").read_text())
    assert result["finetune_mode"] == "linear" and result["recipe"] == "finetune-linear"
    assert result["image_size"] == 16  # the pretrained run's input size by default
    before, after = _weights(pre_dir), _weights(out)
    head = {HEAD + ".weight", HEAD + ".bias"}
    for name, tensor in before.items():
        if name not in head:
            assert torch.equal(tensor, after[name]), name  # frozen, BN statistics included
    assert any("running_mean" in name for name in before)
    assert after[HEAD + ".weight"].shape[0] == 10
    # config.json reruns it: the finished run is found, not retrained.
    stamp = (out / "result.json").stat().st_mtime_ns
    assert main(["train", "--config", str(out / "config.json")]) == 0
    assert (out / "result.json").stat().st_mtime_ns == stamp
    # A lost result.json: --resume finds the last checkpoint and rewrites the same result without training.
    (out / "result.json").unlink()
    again = train(TrainConfig(**{**json.loads((out / "config.json").read_text()), "resume": True}))
    assert again["top1"] == result["top1"]


def test_bad_pretrained_runs_and_targets(pretrained, cifar, tmp_path):
    pre_dir, _ = pretrained
    target = f"cifar10:{cifar}"

    def ft(**kw):
        base = dict(init=f"run:{pre_dir}", dataset=target, out=str(tmp_path / "x"), epochs=1, progress=False)
        return finetune(TrainConfig(**{**base, **kw}))

    with pytest.raises(ImagenotError, match="does not match the pretrained run"):
        ft(model="resnet_s32")
    with pytest.raises(ImagenotError, match="at least 16x16"):
        ft(image_size=8)
    with pytest.raises(ImagenotError, match="not finished"):
        ft(init=f"run:{tmp_path}")
    # A run dir whose checkpoint is another architecture's, or not imagenot's at all.
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "checkpoints").mkdir()
    (fake / "result.json").write_text((pre_dir / "result.json").read_text())
    data = torch.load(pre_dir / "checkpoints" / "last.pt", weights_only=True)
    data["meta"]["model"] = "resnet_s32"
    torch.save(data, fake / "checkpoints" / "last.pt")
    with pytest.raises(ImagenotError, match="checkpoint is for model='resnet_s32'"):
        ft(init=f"run:{fake}")
    torch.save({"model": {"w": torch.zeros(1)}}, fake / "checkpoints" / "last.pt")
    with pytest.raises(ImagenotError, match=f"{fake}.*not an imagenot checkpoint"):
        ft(init=f"run:{fake}")
    assert not (tmp_path / "x" / "checkpoints").exists()
