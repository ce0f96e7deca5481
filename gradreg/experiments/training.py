"""Notebooks 05 and 06, training runs: the configs of a comparison of methods. The runs go
through `gradreg.runs.run_configs`; their tables, curves and summaries are `gradreg.analysis`'s."""
from __future__ import annotations

from ..config import TrainConfig
from .settings import COMPARED_METHODS


def method_configs(task: str, length: int, seeds: int, methods=COMPARED_METHODS, **fields) -> list[TrainConfig]:
    """One TrainConfig per (method, rule) and seed 0..seeds-1."""
    return [TrainConfig(task=task, length=length, method=m, rule=r, seed=s, **fields)
            for (m, r) in methods for s in range(seeds)]
