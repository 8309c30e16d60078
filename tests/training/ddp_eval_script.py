"""Run under torchrun by test_ddp: evaluate a finished run's weights with `imagenot.training.evaluate`.

    python -m torch.distributed.run --nproc_per_node N tests/training/ddp_eval_script.py RUN_DIR OUT.parquet
"""

from __future__ import annotations

import sys

import torch


def main(run_dir: str, out: str) -> None:
    from imagenot.data import get_dataset
    from imagenot.models import get_model
    from imagenot.training.distributed import barrier, destroy, init_distributed
    from imagenot.training.evaluation import evaluate

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    dist = init_distributed("cpu")
    ckpt = torch.load(f"{run_dir}/checkpoints/last.pt", weights_only=True)
    model = get_model(ckpt["meta"]["model"], int(ckpt["meta"]["num_classes"]), input_size=16)
    model.load_state_dict(ckpt["model"])
    val = get_dataset("synthetic", "val", image_size=16, num_classes=4, n=201)
    norm = ckpt["normalization"]
    res = evaluate(model, val, "cpu", mean=norm["mean"], std=norm["std"], batch_size=64, dist=dist)
    if dist.is_main:
        res.write_predictions(out, dataset="synthetic", num_classes=4)
    # every rank tears the group down together: a rank that leaves while rank 0 still writes can abort in gloo
    barrier(dist)
    destroy(dist)
    torch.set_num_threads(threads)


if __name__ == "__main__":
    main(*sys.argv[1:3])
