"""`imagenot evaluate` on data: torchvision: and file: weights of the same model give the same predictions as
the model itself, with torchvision's evaluation transform, and labels in the weights' ImageNet class order."""

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
import torchvision
from PIL import Image

from imagenot.cli import main
from imagenot.models import weights as W
from imagenot.wordnet.references import reference_wnids

IMAGENET = reference_wnids("imagenet-1k")
CLASSES = [IMAGENET[5], IMAGENET[100], IMAGENET[999]]  # labels 5, 100, 999 in torchvision's order


@pytest.fixture()
def cached_resnet18(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[torch.nn.Module, Path]:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    torch.manual_seed(0)
    model = torchvision.models.resnet18().eval()
    path = W.cached_weights_path(W.resolve_torchvision("resnet18", None))
    path.parent.mkdir(parents=True)
    torch.save(model.state_dict(), path)
    return model, path


@pytest.fixture()
def imagenet_folder(tmp_path: Path) -> Path:
    """train/ and val/ class folders named by ImageNet wnids, images of a few sizes (not square)."""
    rng = np.random.default_rng(0)
    root = tmp_path / "imagenet"
    for split, n in (("train", 1), ("val", 3)):
        for c, wnid in enumerate(CLASSES):
            folder = root / split / wnid
            folder.mkdir(parents=True)
            for i in range(n):
                h, w = 60 + 10 * i, 80 - 5 * c
                Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return root


def _expected(model: torch.nn.Module, root: Path) -> dict[str, tuple[int, list[int], float]]:
    """key -> (label, top5, p_label) computed by hand: torchvision's decode, Resize(256), CenterCrop(224)."""
    from torchvision.io import ImageReadMode, decode_image
    from torchvision.transforms import v2

    tf = v2.Compose([v2.Resize(256, antialias=True), v2.CenterCrop(224)])
    mean = torch.tensor(W.IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(W.IMAGENET_STD).view(1, 3, 1, 1)
    out = {}
    for wnid in CLASSES:
        for f in sorted((root / "val" / wnid).glob("*.png")):
            x = tf(decode_image(str(f), mode=ImageReadMode.RGB))[None].float() / 255.0
            with torch.no_grad():
                logits = model((x - mean) / std)[0]
            label = IMAGENET.index(wnid)
            out[f"{wnid}/{f.name}"] = (label, logits.topk(5).indices.tolist(), float(logits.softmax(0)[label]))
    return out


def test_torchvision_and_file_weights_evaluate_like_the_model(cached_resnet18, imagenet_folder, tmp_path):
    model, path = cached_resnet18
    common = ["--model", "resnet18", "--dataset", f"imagefolder:{imagenet_folder}", "--workers", "0",
              "--threads", "1", "--precision", "fp32", "-q"]  # compared with an fp32 computation
    assert main(["evaluate", "--init", "torchvision:resnet18.IMAGENET1K_V1", "--out", str(tmp_path / "tv"),
                 *common]) == 0
    assert main(["evaluate", "--init", f"file:{path}", "--out", str(tmp_path / "file"), *common]) == 0
    tv = pq.read_table(tmp_path / "tv" / "predictions.parquet").to_pylist()
    fl = pq.read_table(tmp_path / "file" / "predictions.parquet").to_pylist()
    assert tv == fl and len(tv) == 9  # identical rows through both sources
    expected = _expected(model, imagenet_folder)
    for row in tv:
        label, top5, p = expected[row["key"]]
        assert row["label"] == label and row["top5"] == top5
        assert row["p_label"] == pytest.approx(p, rel=1e-5, abs=1e-7)
    result = json.loads((tmp_path / "tv" / "result.json").read_text())
    assert (result["source"], result["image_size"], result["val_images"], result["num_classes"]) == (
        "evaluated", 224, 9, 1000)
    assert result["weights"]["identity"] == "ResNet18_Weights.IMAGENET1K_V1"
    assert result["weights"]["hash_matches_published"] is False  # a random model, not the published file
    assert result["input"]["eval"] == {"resize": 256, "crop": 224, "interpolation": "bilinear"}
    assert result["top1"] == pytest.approx(100.0 * np.mean([r["correct"] for r in tv]))


def test_weights_that_cannot_predict_the_datasets_classes_are_refused(cached_resnet18, tmp_path, capsys):
    root = tmp_path / "pets"
    for split in ("train", "val"):
        for name in ("cat", "dog"):
            (root / split / name).mkdir(parents=True)
            Image.new("RGB", (64, 64), (10, 20, 30)).save(root / split / name / "0.png")
    out = tmp_path / "run"
    assert main(["evaluate", "--model", "resnet18", "--init", "torchvision", "--dataset", f"imagefolder:{root}",
                 "--out", str(out)]) == 2
    assert "not ImageNet-1K wnids" in capsys.readouterr().err
    assert not out.exists()


def test_a_source_run_is_read_once_per_evaluation(tmp_path, monkeypatch):
    """`init run:DIR` is resolved once: the run's checkpoint loaded once, its result.json read once for the
    weights (and once for the evaluation's identity), however many steps need them."""
    from imagenot import checkpoint, rundir
    from imagenot.evaluation.config import EvaluateConfig
    from imagenot.evaluation.run import evaluate_weights
    from imagenot.training.trainer import TrainConfig, train

    run = tmp_path / "run"
    train(TrainConfig(model="alexnet_s32", dataset="synthetic", dataset_options={"num_classes": 4}, out=str(run),
                      epochs=1, batch_size=16, image_size=16, seed=0, threads=1, progress=False, limit=32))
    calls = {"result": 0, "checkpoint": 0}
    read_result, load_checkpoint = rundir.read_result, checkpoint.load_checkpoint

    def counted_result(path):
        calls["result"] += Path(path) == run
        return read_result(path)

    def counted_checkpoint(path, expect=None):
        calls["checkpoint"] += 1
        return load_checkpoint(path, expect)

    monkeypatch.setattr(rundir, "read_result", counted_result)
    monkeypatch.setattr(checkpoint, "load_checkpoint", counted_checkpoint)
    result = evaluate_weights(EvaluateConfig(model="alexnet_s32", init=f"run:{run}", dataset="synthetic",
                                             dataset_options={"num_classes": 4}, limit=16, out=str(tmp_path / "e"),
                                             threads=1))
    assert result["val_images"] == 16 and result["weights"]["kind"] == "run"
    assert calls == {"result": 2, "checkpoint": 1}
