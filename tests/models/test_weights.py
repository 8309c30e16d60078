"""Where weights come from: parsing, torchvision's published weights through the TORCH_HOME cache, state_dict
files, runs, and every way a weights source can be wrong (each a clear error, nothing loaded)."""

import os
import pickle
from pathlib import Path

import pytest
import torch
import torchvision

from imagenot.models import weights as W


@pytest.fixture()
def torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    return tmp_path / "torch-home"


def _cached_resnet18(torch_home: Path) -> tuple[torch.nn.Module, Path]:
    """A random-init resnet18 saved where torchvision looks for its published IMAGENET1K_V1 file."""
    torch.manual_seed(0)
    model = torchvision.models.resnet18()
    path = W.cached_weights_path(W.resolve_torchvision("resnet18", "resnet18.IMAGENET1K_V1"))
    assert path.parent == torch_home / "hub" / "checkpoints" and path.name == "resnet18-f37072fd.pth"
    path.parent.mkdir(parents=True)
    torch.save(model.state_dict(), path)
    return model.eval(), path


def test_parse_init_forms(tmp_path: Path):
    assert str(W.parse_init(None)) == "scratch" and W.parse_init("scratch").kind == "scratch"
    spec = W.parse_init("torchvision:resnet152.IMAGENET1K_V1")
    assert (spec.kind, spec.value) == ("torchvision", "resnet152.IMAGENET1K_V1")
    assert W.parse_init("torchvision").value is None
    run = W.parse_init(f"run:{tmp_path}/x/../y")
    assert run.kind == "run" and run.value == str((tmp_path / "y").resolve())
    for bad, msg in (("hub:x", "unknown weights source"), ("file:", "needs a path"), ("scratch:x", "no argument")):
        with pytest.raises(W.WeightsError, match=msg):
            W.parse_init(bad)


@pytest.mark.parametrize("spec, msg", [
    ("resnet152.V9", r"no torchvision weights 'V9'; known: IMAGENET1K_V1, IMAGENET1K_V2"),
    ("resnet50.IMAGENET1K_V1", r"weights for 'resnet50', but the model is 'resnet152'"),
    ("resnet152.VGG19_Weights.IMAGENET1K_V1", "weights of another architecture"),
])
def test_bad_torchvision_names_list_the_models_weights(spec: str, msg: str):
    with pytest.raises(W.WeightsError, match=msg):
        W.check_init("resnet152", f"torchvision:{spec}")


def test_torchvision_names_resolve_study_default_and_enum_forms():
    assert W.resolve_torchvision("resnet152", None).name == "IMAGENET1K_V1"  # the study's weights
    assert W.resolve_torchvision("resnet152", "resnet152.DEFAULT").name == "IMAGENET1K_V2"
    assert W.resolve_torchvision("resnet152", "ResNet152_Weights.IMAGENET1K_V2").name == "IMAGENET1K_V2"
    assert W.resolve_torchvision("vit_h_14", None).name == "IMAGENET1K_SWAG_E2E_V1"  # no V1 there
    with pytest.raises(W.WeightsError, match="has no torchvision weights"):
        W.check_init("resnet_s32", "torchvision")


def test_published_metrics_are_the_study_column(shared_reference: Path):
    import csv

    rows = list(csv.DictReader(open(shared_reference / "paper_results.csv")))
    assert len(rows) == 9
    for row in rows:
        got = W.published_metrics(row["torchvision_builder"])
        assert got["top1"] == float(row["imagenet_top1"]) and got["top5"] == float(row["imagenet_top5"])
        assert got["weights"].endswith(".IMAGENET1K_V1") and got["num_classes"] == 1000


def test_eval_sizes_of_the_study_models_are_torchvision_weights():
    expect = {"alexnet": (256, 224), "vgg19": (256, 224), "inception_v3": (342, 299), "resnet152": (256, 224),
              "densenet161": (256, 224), "mobilenet_v3_large": (256, 224), "efficientnet_v2_l": (480, 480),
              "vit_b_16": (256, 224), "convnext_large": (232, 224)}
    for model, (resize, crop) in expect.items():
        d = W.transform_defaults(model)
        preset = W.study_weights(model).transforms()  # torchvision's own transform object
        assert (d.val_resize, d.val_crop) == (resize, crop) == (preset.resize_size[0], preset.crop_size[0])
        assert d.interpolation == preset.interpolation.value and d.mean == tuple(preset.mean)
    assert W.transform_defaults("efficientnet_v2_l").interpolation == "bicubic"
    small = W.transform_defaults("resnet_s32")
    assert small.weights is None and (small.train_crop, small.val_crop) == (32, 32)


def test_torchvision_and_file_sources_give_the_saved_model(torch_home: Path):
    model, path = _cached_resnet18(torch_home)
    x = torch.randn(2, 3, 64, 64)
    want = model(x)
    net, info = W.build_model("resnet18", 1000, init="torchvision:resnet18.IMAGENET1K_V1", replace_head=False)
    assert torch.equal(net.eval()(x), want)
    assert info.identity == "ResNet18_Weights.IMAGENET1K_V1" and info.num_classes == 1000
    assert info.hash_matches_published is False  # a random model is not torchvision's published file
    assert info.mean == (0.485, 0.456, 0.406) and info.pretrain["pretrain_top1"] == 69.758
    net2, info2 = W.build_model("resnet18", 1000, init=f"file:{path}")
    assert torch.equal(net2.eval()(x), want) and info2.head_replaced == () and info2.sha256 == info.sha256
    net3, info3 = W.build_model("resnet18", 7, init=f"file:{path}", freeze=True)
    assert info3.head_replaced == ("fc",) and net3.fc.out_features == 7
    assert [n for n, p in net3.named_parameters() if p.requires_grad] == ["fc.weight", "fc.bias"]


def test_safetensors_and_wrapped_state_dicts_load(tmp_path: Path):
    from safetensors.torch import save_file

    torch.manual_seed(1)
    model = torchvision.models.resnet18(num_classes=5).eval()
    x = torch.randn(1, 3, 32, 32)
    save_file(model.state_dict(), str(tmp_path / "w.safetensors"))
    torch.save({"state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}}, tmp_path / "w.pt")
    for name in ("w.safetensors", "w.pt"):
        net, info = W.build_model("resnet18", 5, init=f"file:{tmp_path / name}")
        assert torch.equal(net.eval()(x), model(x)) and info.num_classes == 5, name


def test_file_errors_are_clear_and_never_run_code(tmp_path: Path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    evil = tmp_path / "evil.pth"
    evil.write_bytes(pickle.dumps({"fc.weight": Evil()}))
    with pytest.raises(W.WeightsError, match="not a trusted weights file"):
        W.build_model("resnet18", 10, init=f"file:{evil}")
    assert not marker.exists()

    torch.save([torch.zeros(3)], tmp_path / "list.pt")
    with pytest.raises(W.WeightsError, match="not a state_dict"):
        W.build_model("resnet18", 10, init=f"file:{tmp_path / 'list.pt'}")
    torch.save(torchvision.models.resnet18(num_classes=3).state_dict(), tmp_path / "r18.pt")
    with pytest.raises(W.WeightsError, match=r"do not fit VGG .*missing: features\.0\.weight"):
        W.build_model("vgg11", 3, init=f"file:{tmp_path / 'r18.pt'}")  # another architecture
    with pytest.raises(W.WeightsError, match="no such weights file"):
        W.check_init("resnet18", f"file:{tmp_path / 'absent.pt'}")
    with pytest.raises(W.WeightsError, match="3-class head but the data has 10"):
        W.build_model("resnet18", 10, init=f"file:{tmp_path / 'r18.pt'}", replace_head=False)


def test_published_request_without_metrics_is_an_error():
    with pytest.raises(W.WeightsError, match="no torchvision weights"):
        W.published_metrics("convnext_s32")


def test_freezing_scratch_weights_is_refused():
    with pytest.raises(W.WeightsError, match="linear probe"):
        W.build_model("resnet_s32", 10, freeze=True)
