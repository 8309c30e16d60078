"""Generic head replacement works for every family of the model registry."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from imagenot.models import get_model, list_models, model_info
from imagenot.models.heads import find_head, freeze_except, replace_head

SMALL = list_models(full_size=False)
# One full-size model per family, built on the meta device (no memory, no time).
FULL_BY_FAMILY = {}
for _name in list_models(full_size=True):
    FULL_BY_FAMILY.setdefault(model_info(_name).family, _name)


@pytest.mark.parametrize("name", SMALL)
def test_small_models_get_a_new_head_and_run(name):
    size = model_info(name).input_size
    model = get_model(name, 10)
    replaced = replace_head(model, 7)
    assert replaced and find_head(model)[1].out_features == 7
    n = freeze_except(model, replaced)
    assert n == sum(p.numel() for p in model.parameters() if p.requires_grad) > 0
    model.eval()
    with torch.no_grad():
        out = model(torch.zeros(2, 3, size, size))
    assert out.shape == (2, 7)


@pytest.mark.parametrize("name", sorted(FULL_BY_FAMILY.values()))
def test_full_size_heads_are_found_and_replaced(name):
    with torch.device("meta"):
        model = get_model(name, 1000)
        head_name, head = find_head(model)
        assert head.out_features == 1000
        replace_head(model, 5)
    assert find_head(model)[1].out_features == 5
    assert all(m.out_features != 1000 for m in model.modules() if isinstance(m, nn.Linear))


def test_model_without_linear_head_is_an_error():
    from imagenot.errors import ImagenotError

    with pytest.raises(ImagenotError, match="no nn.Linear"):
        find_head(nn.Sequential(nn.Conv2d(3, 4, 1)))
