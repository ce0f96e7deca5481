"""gradreg: sampling-based gradient regularization for recurrent networks.

Chernodub & Nowicki (2016), reproduced: the long-term-dependency tasks, an SRN
whose single batched BPTT pass yields exact per-example, lag-resolved gradient
statistics, the sampling-based minibatch construction (SGR) and its baselines.
"""
import sys as _sys

try:
    from .config import METHODS, TrainConfig, TrainResult
    from .engine import train, train_many
    from .model import SRN
    from .passes import bptt
    from .sampling import RULES
    from .stats import PerExampleStats, per_example_stats
    from .tasks import TASK_NAMES, TASK_VARIANTS, Task, make_task
except KeyboardInterrupt:
    # Ctrl-C while `python -m gradreg` imports torch (a few seconds): the command line's one
    # line and exit code, not a traceback from deep inside torch (argv[0] is "-m" only while
    # `python -m` locates this package)
    if _sys.argv[:1] == ["-m"]:
        _sys.stderr.write("interrupted\n")
        raise SystemExit(130) from None
    raise

__all__ = ["TASK_NAMES", "TASK_VARIANTS", "Task", "make_task", "SRN", "PerExampleStats", "bptt", "per_example_stats",
           "METHODS", "RULES", "TrainConfig", "TrainResult", "train", "train_many", "sweep"]


def __getattr__(name):
    # gradreg.sweep pulls in Dask: imported on first use only
    if name == "sweep":
        import importlib
        return importlib.import_module(".sweep", __name__)   # sets gradreg.sweep: no second call
    raise AttributeError(f"module 'gradreg' has no attribute {name!r}")
