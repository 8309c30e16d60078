"""Per-sample transforms: RandomResizedCrop on the original image, torchvision's eval sizes, seeded draws."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from imagenot.data import get_dataset
from imagenot.data.samples import SampleDataset, mix_seed
from imagenot.data.transforms import EvalTransform, TrainTransform, apply_seeded, erase_fill
from imagenot.models import STUDY_MODELS
from imagenot.training.recipes import get_recipe
from imagenot.training.trainer import TrainConfig

W, H = 300, 200  # a landscape image: a centre-cropped square would keep x in [50, 250) only


@pytest.fixture(scope="module")
def coordinate_image(tmp_path_factory):
    """One PNG whose pixels encode their own coordinates: R = x * 255 / (W-1), G = y * 255 / (H-1)."""
    root = tmp_path_factory.mktemp("coords")
    x = np.linspace(0, 255, W).round().astype(np.uint8)
    y = np.linspace(0, 255, H).round().astype(np.uint8)
    img = np.zeros((H, W, 3), np.uint8)
    img[..., 0] = x[None, :]
    img[..., 1] = y[:, None]
    for split in ("train", "val"):
        for c in ("a", "b"):
            (root / split / c).mkdir(parents=True)
            Image.fromarray(img).save(root / split / c / "0.png")
    return root


def _plan(model="resnet152", recipe="uniform", **cfg):
    from imagenot.training.inputs import resolve_plan

    c = TrainConfig(model=model, dataset="synthetic", out="x", recipe=recipe, **cfg)
    return resolve_plan(c, get_recipe(recipe, model, ""), model)


def test_full_size_train_transform_is_random_resized_crop_of_the_original(coordinate_image):
    plan = _plan()
    assert plan.pipeline == "per_sample" and plan.train.crop == 224 and plan.train.scale == (0.08, 1.0)
    ds = get_dataset(f"imagefolder:{coordinate_image}", "train", in_memory=False)
    samples = SampleDataset(ds, plan.train.build())
    areas, aspects, x_lo, x_hi = [], [], [], []
    for k in range(40):
        out, label, index, _ = samples[(0, mix_seed(0, k))]
        assert out.shape == (3, 224, 224) and out.dtype == torch.uint8 and index == 0
        # The crop's extent in the original, read back from the coordinate channels (flips swap ends).
        xs = out[0].float() * (W - 1) / 255
        ys = out[1].float() * (H - 1) / 255
        width, height = float(xs.max() - xs.min()), float(ys.max() - ys.min())
        areas.append(width * height / (W * H))
        aspects.append(width / height)
        x_lo.append(float(xs.min()))
        x_hi.append(float(xs.max()))
    # Scale varies over most of (0.08, 1) and the aspect ratio over (3/4, 4/3) of the crop box.
    assert min(areas) < 0.25 and max(areas) > 0.6
    assert min(aspects) < 0.9 and max(aspects) > 1.15
    # Crops reach parts of the original that a load-time centre-cropped square would have thrown away.
    assert min(x_lo) < 40 and max(x_hi) > 260
    # Same seed, same crop; another seed, another crop.
    a, b = samples[(0, 7)][0], samples[(0, 7)][0]
    assert torch.equal(a, b) and not torch.equal(a, samples[(0, 8)][0])


def _weights_sizes(model):
    """Sizes torchvision's own weights transforms state (the published IMAGENET1K_V1 preset object)."""
    from torchvision.models import get_model_weights

    preset = get_model_weights(model).IMAGENET1K_V1.transforms()
    return int(preset.resize_size[0]), int(preset.crop_size[0]), preset.interpolation.value


@pytest.mark.parametrize("model", STUDY_MODELS)
@pytest.mark.parametrize("recipe", ["uniform", "torchvision"])
def test_eval_transform_of_the_study_models_is_their_weights(model, recipe):
    plan = _plan(model, recipe)
    resize, crop, interpolation = _weights_sizes(model)
    assert (plan.eval.resize, plan.eval.crop, plan.eval.interpolation) == (resize, crop, interpolation)
    assert plan.eval_size == crop


def test_train_crops_follow_the_recipe_and_image_size():
    assert _plan("convnext_large", "torchvision").train.crop == 176  # --train-crop-size 176
    assert _plan("efficientnet_v2_l", "torchvision").train.crop == 384
    assert _plan("inception_v3").train.crop == 299
    p = _plan("resnet18", image_size=128)
    assert (p.train.crop, p.eval.resize, p.eval.crop) == (128, 146, 128)
    p = _plan("resnet18", image_size=128, recipe_overrides={"val_resize_size": 160})
    assert (p.train.crop, p.eval.resize, p.eval.crop) == (128, 160, 128)
    assert _plan("resnet_s32").pipeline == "batched"


def test_eval_transform_and_erasing_fill():
    img = torch.zeros(3, 100, 150, dtype=torch.uint8)
    img[:, 40:60, 65:85] = 255
    out = EvalTransform(resize=50, crop=40).build()(img)
    assert out.shape == (3, 40, 40) and int(out[0, 20, 20]) == 255 and int(out[0, 2, 2]) == 0
    mean = (0.485, 0.456, 0.406)
    fill = torch.tensor(erase_fill(mean), dtype=torch.float32) / 255
    assert torch.allclose(fill, torch.tensor(mean), atol=0.5 / 255)  # normalises to 0 within 1/255
    erase = TrainTransform(crop=32, random_erase=1.0, erase_value=erase_fill(mean), hflip=0).build()
    erased = apply_seeded(erase, torch.full((3, 64, 64), 7, dtype=torch.uint8), 3)
    assert (erased[0] == erase_fill(mean)[0]).any() and (erased[0] == 7).any()


def test_seeded_application_leaves_the_global_stream_alone():
    tf = TrainTransform(crop=16, auto_augment="ta_wide").build()
    img = torch.randint(0, 256, (3, 40, 30), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    apply_seeded(tf, img, 5)
    assert torch.equal(torch.rand(3), before)
    assert torch.equal(apply_seeded(tf, img, 5), apply_seeded(tf, img, 5))


@pytest.mark.parametrize("policy", ["ta_wide", "ra", "augmix", "imagenet"])
def test_auto_augment_policies_run_on_uint8(policy):
    tf = TrainTransform(crop=24, auto_augment=policy).build()
    out = apply_seeded(tf, torch.randint(0, 256, (3, 40, 30), dtype=torch.uint8), 1)
    assert out.shape == (3, 24, 24) and out.dtype == torch.uint8


def test_device_decoding_gives_the_workers_batches(tmp_path):
    """gpu_decode's path (encoded bytes to the main process, decode + seeded transform there) on the CPU."""
    from imagenot.data.samples import collate, decode_on_device
    from tests.training.training_helpers import write_image_folder

    root = write_image_folder(tmp_path / "f", {"train": 3, "val": 1}, fmt="jpg")
    ds = get_dataset(f"imagefolder:{root}", "train", in_memory=False)
    tf = TrainTransform(crop=16).build()
    items = [(i, mix_seed(1, i)) for i in range(len(ds))]
    decoded = collate([SampleDataset(ds, tf)[it] for it in items])
    encoded = collate([SampleDataset(ds, tf, decode=False)[it] for it in items])
    assert isinstance(encoded[0], list) and torch.equal(encoded[1], decoded[1])
    on_device = decode_on_device(encoded[0], encoded[3], tf, torch.device("cpu"))
    assert torch.equal(on_device, decoded[0])
