import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    """These tests run tiny batches through many layers: with 2 OpenMP threads on a shared 2-core machine
    each op pays a thread hand-off that costs more than the op (measured: resnet101 forward at 1 px 10 s
    with 2 threads under load, 0.2 s with 1)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
