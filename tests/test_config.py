"""gradreg.config: what a run's config takes (numpy numbers, the types of every field, the largest
seed) and the memory estimate that refuses a run too large before anything is allocated."""
from __future__ import annotations

import sys

import numpy as np
import pytest

import gradreg
from gradreg.config import MAX_SEED, TrainConfig, check_memory

CONFIG = sys.modules["gradreg.config"]


# ------------------------------------------------------------------ the memory estimate


def test_check_memory_counts_the_test_set_the_step_and_the_sgr_gradients(monkeypatch):
    base = TrainConfig(length=50)
    assert check_memory(base) < 200e6                         # the defaults fit anywhere
    assert check_memory(base.replace(test_size=20_000)) > check_memory(base)
    small = base.replace(test_size=100)                        # where one step dominates
    assert check_memory(small.replace(rule="random")) < check_memory(small) < \
        check_memory(small.replace(rule="greedy")) < check_memory(small.replace(rule="greedy", hidden_size=400))
    assert check_memory(small.replace(method="pascanu")) > check_memory(small.replace(method="clip"))
    monkeypatch.setattr(CONFIG, "_available_memory", lambda device: (10_000_000, "available"))
    with pytest.raises(ValueError) as info:
        check_memory(base)
    message = str(info.value)
    assert "\n" not in message and "test set" in message and "SGR per-example long-term gradients" in message
    assert "10 MB is available" in message
    with pytest.raises(ValueError, match="needs about"):
        gradreg.train(base.replace(max_iterations=1))            # checked before anything is drawn
    result = gradreg.train(TrainConfig(length=10, hidden_size=5, test_size=10, batch_size=2,
                                       max_iterations=1, method="sgd"))
    assert result.iterations == 1                                # small enough: it runs


def test_check_memory_counts_the_authors_fixed_sets():
    pascanu = TrainConfig(length=50, hidden_size=100, test_size=1000)
    authors = TrainConfig(length=50, protocol="chernodub", hidden_size=100, test_size=1000,
                          train_set_size=50_000, validation_size=5_000)
    assert check_memory(authors) > check_memory(pascanu) + 50_000 * 50 * 6 * 4


# ------------------------------------------------------------------ the fields' types


def test_config_accepts_numpy_numbers_as_python_numbers():
    c = TrainConfig(length=np.int64(20), hidden_size=np.int64(10), lr=np.float32(0.1), seed=np.int32(3),
                    clip=np.float64(1.0), lag=np.int64(5), importance_weights=np.bool_(True))
    assert type(c.hidden_size) is int and type(c.length) is int and type(c.seed) is int
    assert type(c.lr) is float and c.lr == pytest.approx(0.1) and type(c.importance_weights) is bool
    assert c.hidden_size == 10 and c.lag == 5


@pytest.mark.parametrize("changes,match", [
    (dict(momentum="0.5"), "momentum must be a finite number, got '0.5'"),
    (dict(greedy_low="1"), "greedy_low must be a finite number"),
    (dict(solved_error=None), "solved_error must be a finite number"),
    (dict(importance_weights="yes"), "importance_weights must be True or False"),
    (dict(task=5), "task must be a string"),
    (dict(lag=2.5), "lag must be an integer or None"),
    (dict(clip="1"), "clip must be a finite number"),
    (dict(seed=18_000_000_000_000_000), r"seed must be an integer in 0\.\.2147483647"),
    (dict(seed=MAX_SEED + 1), r"seed must be an integer in 0\.\.2147483647 \(2\*\*31 - 1\)"),
    (dict(device="cudax"), "unknown device 'cudax'"),
    (dict(device=0), "device must be a string"),
])
def test_bad_config_types_raise_value_error(changes, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**{"length": 20, **changes})


def test_largest_seed_runs():
    result = gradreg.train(TrainConfig(length=10, hidden_size=4, batch_size=2, test_size=10, max_iterations=1,
                                       method="sgd", seed=MAX_SEED))
    assert result.iterations == 1
