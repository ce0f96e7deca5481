"""gradreg: sampling-based gradient regularization for recurrent networks.

Chernodub & Nowicki (2016), reproduced: the long-term-dependency tasks, an SRN
whose single batched BPTT pass yields exact per-example, lag-resolved gradient
statistics, the sampling-based minibatch construction (SGR) and its baselines.
"""
from .tasks import TASK_NAMES, TASK_VARIANTS, Task, make_task
from .model import SRN, PerExampleStats, bptt, per_example_stats
from .train import METHODS, TrainConfig, TrainResult, train
from .sampling import RULES
from .multiseed import train_many

__all__ = ["TASK_NAMES", "TASK_VARIANTS", "Task", "make_task", "SRN", "PerExampleStats", "bptt", "per_example_stats",
           "METHODS", "RULES", "TrainConfig", "TrainResult", "train", "train_many", "sweep"]


def __getattr__(name):
    # gradreg.sweep pulls in Dask: imported on first use only
    if name == "sweep":
        from . import sweep as module
        return module
    raise AttributeError(f"module 'gradreg' has no attribute {name!r}")
