"""gradreg: sampling-based gradient regularization for recurrent networks.

Chernodub & Nowicki (2016), reproduced: the long-term-dependency tasks, an SRN
whose single batched BPTT pass yields exact per-example, lag-resolved gradient
statistics, the sampling-based minibatch construction (SGR) and its baselines.
"""
import os as _os
import sys as _sys

# torch.nn.LSTM on the CPU runs oneDNN kernels that are JIT-compiled for the widest vector ISA
# of the CPU, and AVX-512 kernels round unlike AVX2 ones: the same LSTM run gave other bits on
# an AVX-512 machine than on the AVX2 machines that made the committed rows. oneDNN reads this
# at its first use, so setting it here (before any LSTM ran) makes LSTM runs the same on every
# x86-64 CPU with AVX2 or more. The SRN's products (MKL) take the same path on our machines
# without it (tested by replaying committed histories). A value set by the user is kept.
_os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")


def _mallopt(mmap_threshold: int | None = None, trim_threshold: int | None = None,
             arena_max: int | None = None) -> bool:
    """Set glibc's malloc options (those not None); False off glibc or when one is refused.
    Used here and by the memory benchmark, which sets the opposite."""
    if not _sys.platform.startswith("linux"):
        return False
    import ctypes
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -3, -8
    options = {M_MMAP_THRESHOLD: mmap_threshold, M_TRIM_THRESHOLD: trim_threshold, M_ARENA_MAX: arena_max}
    return all(libc.mallopt(option, value) for option, value in options.items() if value is not None)


def _keep_freed_memory() -> bool:
    """Ask glibc to keep freed blocks (up to 1 GiB each) for reuse instead of handing them back
    to the OS. By default it unmaps (or trims) them, and every training step then page-faults
    its tensors in afresh, which made a sweep markedly slower (measured in docs/performance.md).
    Numbers do not change. The cost: a process does not give memory back to the OS before it
    ends, and its threads share one malloc arena. Skipped when GRADREG_KEEP_MEMORY=0, and when
    the user tunes malloc through the environment (MALLOC_*_ or GLIBC_TUNABLES)."""
    if _os.environ.get("GRADREG_KEEP_MEMORY") == "0" \
            or any(k.startswith("MALLOC_") or k == "GLIBC_TUNABLES" for k in _os.environ):
        return False
    # one arena: a thread's own arena (a Dask worker trains in one) is made of mmapped heaps
    # of at most 64 MiB that glibc shrinks and grows again regardless of the thresholds
    return _mallopt(mmap_threshold=1 << 30, trim_threshold=2 ** 31 - 1, arena_max=1)


_memory_kept = _keep_freed_memory()     # read by the tests (and a sweep's workers)

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
