"""Notebook 04, the tasks: one example of every task."""
from __future__ import annotations

import torch

from ..tasks import TASK_NAMES, make_task


def task_gallery(length: int = 30, seed: int = 0, examples: int = 1) -> list[dict]:
    """One batch of `examples` sequences of every task (x, y, positions), at `length`
    (noiseless_memorization at a length whose S stays comparable)."""
    out = []
    for k, name in enumerate(TASK_NAMES):
        L = max(5, length - 20) if name == "noiseless_memorization" else length
        task = make_task(name, L)
        x, y, positions = task.sample_with_positions(examples, generator=torch.Generator().manual_seed(seed + k))
        out.append(dict(task=task, x=x, y=y, positions=positions))
    return out
