"""The notebooks' settings: how large each notebook's computation is at each profile, and the
set-up every notebook runs first.

A notebook profile sizes every notebook: ``smoke`` (tiny: the test suite runs it), ``quick``
(the committed figures) and ``paper`` (the real sizes); how long they take: docs/performance.md.
`NOTEBOOK_SETTINGS` is the one table of those sizes.
(The sweep's profiles, `gradreg.profiles.SWEEP_PROFILES`, are grids of training runs; the
explorer's presets, `gradreg.explore.EXPLORER_PRESETS`, size its one pool.)
"""
from __future__ import annotations

import sys
from types import SimpleNamespace

import numpy as np
import torch

from ..config import MAX_SEED, check_device, resolve_device

NOTEBOOK_PROFILES = ("smoke", "quick", "paper")

#: the six methods of the learning-curve and long-range comparisons: (method, rule)
COMPARED_METHODS = (("sgd", "top"), ("clip", "top"), ("pascanu", "top"), ("sgr", "top"), ("sgr", "random"),
                    ("lstm", "top"))


NOTEBOOK_SETTINGS = {
    "01_vanishing_gradients": {
        "smoke": dict(task="temporal_order", length=30, batch_size=64, hidden_size=50,
                      activations=("tanh", "relu", "identity"), radii=(0.5, 0.9, 1.0, 1.2)),
        "quick": dict(task="temporal_order", length=100, batch_size=256, hidden_size=50,
                      activations=("tanh", "relu", "identity"), radii=(0.5, 0.8, 0.95, 1.0, 1.05, 1.2)),
        "paper": dict(task="temporal_order", length=200, batch_size=1000, hidden_size=50,
                      activations=("tanh", "relu", "identity"), radii=(0.5, 0.8, 0.95, 1.0, 1.05, 1.2)),
    },
    "02_per_example_estimation": {
        "smoke": dict(check_length=12, check_batch=4, score_lengths=(10, 20, 40), score_batch=256,
                      train_length=10, train_iterations=100, timing_length=20, timing_batches=(4, 16),
                      timing_repeats=1, loop_max_batch=16),
        "quick": dict(check_length=30, check_batch=16, score_lengths=(25, 50, 100), score_batch=2048,
                      train_length=20, train_iterations=1500, timing_length=50,
                      timing_batches=(8, 32, 128), timing_repeats=3, loop_max_batch=128),
        "paper": dict(check_length=50, check_batch=32, score_lengths=(50, 100, 200), score_batch=10_000,
                      train_length=50, train_iterations=20_000, timing_length=100,
                      timing_batches=(8, 32, 128, 512), timing_repeats=5, loop_max_batch=512),
    },
    "03_minibatch_theory": {
        "smoke": dict(length=20, gram_pool=32, subsets=10, noise_pool=512, noise_sizes=(1, 2, 4, 8, 16),
                      rules=("random", "top", "band", "weighted", "greedy"), pool_factors=(1, 2, 4),
                      batch_size=20, repeats=4),
        "quick": dict(length=50, gram_pool=64, subsets=30, noise_pool=4096,
                      noise_sizes=(1, 2, 4, 8, 16, 32, 64), rules=("random", "top", "band", "weighted", "greedy"),
                      pool_factors=(1, 2, 4, 8), batch_size=20, repeats=40),
        "paper": dict(length=100, gram_pool=128, subsets=100, noise_pool=16_384,
                      noise_sizes=(1, 2, 4, 8, 16, 32, 64, 128), rules=("random", "top", "band", "weighted", "greedy"),
                      pool_factors=(1, 2, 4, 8, 16), batch_size=20, repeats=200),
    },
    "04_tasks": {
        "smoke": dict(length=20), "quick": dict(length=30), "paper": dict(length=30),
    },
    "05_training": {
        "smoke": dict(task="temporal_order", length=10, seeds=2, max_iterations=150, check_every=25,
                      test_size=500, workers=1),
        "quick": dict(task="temporal_order", length=30, seeds=3, max_iterations=8000, check_every=200,
                      test_size=2000, workers=2),
        "paper": dict(task="temporal_order", length=50, seeds=5, max_iterations=50_000, check_every=100,
                      test_size=10_000, workers=None),
    },
    "07_protocols": {
        profile: dict(tasks=("adding", "temporal_order", "multiplication", "temporal_order_3bit"),
                      lengths=(50, 100), compared=("sgd", "sgr/top", "sgr/random"))
        for profile in ("smoke", "quick", "paper")
    },
    # notebook 8 reads the committed screen sweep (docs/method.md section 11.6) at every profile
    "08_sensitivity": {profile: dict(reads="data/results/screen.csv", computes=None)
                       for profile in ("smoke", "quick", "paper")},
    "06_long_range": {
        "smoke": dict(task="temporal_order", lengths=(10, 12), seeds=2, max_iterations=100, check_every=50,
                      test_size=500, workers=1),
        "quick": dict(task="temporal_order", lengths=(10, 20, 30), seeds=3, max_iterations=5000,
                      check_every=200, test_size=2000, workers=2),
        "paper": dict(task="temporal_order", lengths=(50, 100, 150, 200), seeds=10, max_iterations=50_000,
                      check_every=100, test_size=10_000, workers=None),
    },
}


def notebook_settings(notebook: str, profile: str) -> SimpleNamespace:
    """The sizes `notebook` runs at under `profile` (smoke, quick or paper)."""
    if profile not in NOTEBOOK_PROFILES:
        raise ValueError(f"unknown profile {profile!r}; allowed: {', '.join(NOTEBOOK_PROFILES)}")
    if notebook not in NOTEBOOK_SETTINGS:
        raise ValueError(f"unknown notebook {notebook!r}; allowed: {', '.join(NOTEBOOK_SETTINGS)}")
    return SimpleNamespace(**NOTEBOOK_SETTINGS[notebook][profile])


def setup(profile: str = "quick", seed: int = 0, device: str = "auto", threads: int | None = 1,
          quiet: bool = False) -> torch.device:
    """What every notebook does first: figure style, seeds, device, CPU threads.

    threads=1 on the CPU: the recurrences are long chains of small matrix products, for
    which extra intra-op threads only spin and slow training down many times on a busy machine
    (docs/performance.md). Returns the torch.device to use.
    """
    from .. import plotting
    if profile not in NOTEBOOK_PROFILES:
        raise ValueError(f"unknown profile {profile!r}; allowed: {', '.join(NOTEBOOK_PROFILES)}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed must be an integer in 0..{MAX_SEED}, got {seed!r}")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, (int, np.integer))
                                or threads < 0):
        raise ValueError(f"threads must be an integer >= 1 (0 or None: leave torch's setting), got {threads!r}")
    check_device(device)
    seed = int(seed)
    plotting.use_style()
    torch.manual_seed(seed)
    np.random.seed(seed)
    dev = resolve_device(device)
    if dev.type == "cpu" and threads:
        torch.set_num_threads(threads)
    if not quiet:
        print(f"profile={profile} seed={seed} device={dev} torch={torch.__version__} "
              f"threads={torch.get_num_threads()} python={sys.executable}")
    return dev
