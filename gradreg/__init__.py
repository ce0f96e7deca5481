"""gradreg: sampling-based gradient regularization for recurrent networks.

Chernodub & Nowicki (2016), reproduced: the long-term-dependency tasks, an SRN
whose single batched BPTT pass yields exact per-example, lag-resolved gradient
statistics, the sampling-based minibatch construction and its baselines.
"""
from .tasks import TASK_NAMES, Task, make_task
from .model import SRN, PerExampleStats, bptt, per_example_stats

__all__ = ["TASK_NAMES", "Task", "make_task", "SRN", "PerExampleStats", "bptt", "per_example_stats"]
