"""Train Scouter on a Norman split in this process, the way ``scouter-local train`` does, and save what the
comparison in ``test_cli.py`` reads: the weights (``rank{R}.pt``, one file per launcher rank) and, from rank 0
(or a single process), the test predictions (``predictions.npz``).

Usage: ``[torchrun --standalone --nproc_per_node 2] ddp_train.py NORMAN_H5AD DB OUT SPLIT_SEED TRAIN_SEED EPOCHS
BATCH_SIZE``
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import torch

from scouter_local.data.link import load_embeddings, prepare_data
from scouter_local.data.splits import make_split
from scouter_local.datasets import PRESETS
from scouter_local.predictors.training import train
from scouter_local.runtime import launcher_rank


def main(path: str, db: str, out: str, split_seed: str, train_seed: str, epochs: str, batch_size: str) -> None:
    embeddings = load_embeddings(db, "minilm")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = prepare_data(path, PRESETS["norman"].options, db, embeddings)
    split = make_split(data, "scouter", seed=int(split_seed))
    predictor = train(
        data,
        embeddings,
        method="scouter",
        split=split,
        seed=int(train_seed),
        epochs=int(epochs),
        batch_size=int(batch_size),
        device="cpu",
    )
    rank = (launcher_rank() or (0, 1))[0]
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.detach().cpu() for k, v in predictor.net_.state_dict().items()}, folder / f"rank{rank}.pt")
    if rank == 0:
        np.savez(
            folder / "predictions.npz",
            **dict(zip(split.test, predictor.predict(split.test))),
            processes=np.array([r["processes"] for r in predictor.history_]),
        )


if __name__ == "__main__":
    main(*sys.argv[1:])
