"""train_many (K seeds as one batched program) against K separate train() runs, in float64."""
import numpy as np
import pandas as pd
import pytest
import torch

from gradreg.multiseed import train_many
from gradreg.train import TrainConfig, train

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


BASE = dict(task="temporal_order", length=12, hidden_size=10, batch_size=10, max_iterations=60,
            check_every=20, test_size=300, dtype="float64", device="cpu")


def assert_frames_close(a: pd.DataFrame, b: pd.DataFrame, what: str, rtol: float = 1e-9):
    assert list(a.columns) == list(b.columns), what
    assert a.shape == b.shape, what
    x, y = a.to_numpy(dtype=float), b.to_numpy(dtype=float)
    assert np.array_equal(np.isnan(x), np.isnan(y)), what
    with np.errstate(invalid="ignore", divide="ignore"):
        ok = np.isnan(y) | (x == y) | (np.abs(x - y) <= rtol * np.abs(y))
        assert ok.all(), f"{what}: worst relative error {np.nanmax(np.abs(x - y) / np.abs(y)):.3g}"


def assert_same_runs(configs):
    many = train_many(configs)
    assert len(many) == len(configs)
    for c, got in zip(configs, many):
        want = train(c)
        assert got.config == c
        for field in ("iterations", "examples", "solved", "diverged"):
            assert getattr(got, field) == getattr(want, field), (field, c.seed)
        assert got.final_error == pytest.approx(want.final_error, rel=1e-9, nan_ok=True)
        assert_frames_close(got.history.drop(columns="seconds"), want.history.drop(columns="seconds"),
                            f"history of seed {c.seed}")
        assert_frames_close(got.steps, want.steps, f"per-step log of seed {c.seed}")
    return many


@pytest.mark.parametrize("method,rule", [("sgd", "top"), ("clip", "top"), ("sgr", "top"),
                                         ("sgr", "random"), ("sgr", "band"), ("sgr", "greedy")])
def test_each_seed_matches_its_own_train_run(method, rule):
    assert_same_runs([TrainConfig(method=method, rule=rule, seed=s, **BASE) for s in range(3)])


def test_seeds_that_are_solved_stop_at_their_own_check():
    configs = [TrainConfig(method="clip", seed=s, **dict(BASE, check_every=10, lr=0.5, solved_error=0.5))
               for s in range(4)]
    many = assert_same_runs(configs)
    assert all(r.solved for r in many)
    assert len({r.iterations for r in many}) > 1     # they stop at different checks


def test_seeds_that_diverge_stop_there_and_the_others_go_on():
    configs = [TrainConfig(method="sgd", seed=s, **dict(BASE, check_every=10, lr=2.0, init="gaussian",
                                                         activation="identity"))
               for s in range(4)]
    many = assert_same_runs(configs)
    assert any(r.diverged for r in many) and not all(r.diverged for r in many)
    assert len({r.iterations for r in many if r.diverged}) > 1


@pytest.mark.parametrize("rule", ["top", "random"])
def test_per_step_readout_relu_momentum_and_zero_lag(rule):
    assert_same_runs([TrainConfig(method="sgr", rule=rule, seed=s,
                                  **dict(BASE, task="noiseless_memorization", length=3,
                                         activation="relu", momentum=0.5)) for s in range(3)])
    assert_same_runs([TrainConfig(method="sgr", rule=rule, seed=s, lag=0,
                                  **dict(BASE, activation="sigmoid", hidden_size=20)) for s in range(2)])


def test_trajectories_are_bit_for_bit_those_of_train_even_when_chaotic():
    """With lr this large rounding differences would grow ~10x per step: equality shows the
    batched products round exactly as train's (the sizes are above torch's tiny-matmul path)."""
    configs = [TrainConfig(method="clip", seed=s, **dict(BASE, lr=1.0, momentum=0.5, hidden_size=20))
               for s in range(3)]
    for got, c in zip(train_many(configs), configs):
        want = train(c)
        pd.testing.assert_frame_equal(got.steps, want.steps, check_exact=True)


def test_results_follow_the_order_of_the_configs():
    configs = [TrainConfig(method="sgd", seed=s, **dict(BASE, max_iterations=5)) for s in (2, 0, 1)]
    assert [r.config.seed for r in train_many(configs)] == [2, 0, 1]


def test_configs_must_agree_on_everything_but_the_seed():
    a = TrainConfig(method="sgd", seed=0, **BASE)
    with pytest.raises(ValueError, match="lr"):
        train_many([a, a.replace(seed=1, lr=0.1)])
    with pytest.raises(ValueError, match="method"):
        train_many([a, a.replace(seed=1, method="clip")])
    assert train_many([]) == []


def test_methods_that_are_not_batched_run_one_after_another():
    configs = [TrainConfig(method="pascanu", seed=s, **dict(BASE, max_iterations=10, check_every=5))
               for s in range(2)]
    assert_same_runs(configs)


def test_float32_runs_agree_too():
    configs = [TrainConfig(method="sgr", seed=s, **dict(BASE, dtype="float32")) for s in range(2)]
    for got, c in zip(train_many(configs), configs):
        want = train(c)
        assert got.iterations == want.iterations
        assert_frames_close(got.steps, want.steps, "float32 steps", rtol=1e-5)
        torch.testing.assert_close(torch.tensor(got.history["test_error"].to_numpy()),
                                   torch.tensor(want.history["test_error"].to_numpy()))


def test_seeds_batched_in_groups_give_the_same_runs():
    configs = [TrainConfig(method="sgr", seed=s, **dict(BASE, max_iterations=20, check_every=10))
               for s in range(3)]
    whole = train_many(configs, group_size=3)
    for got, want in zip(train_many(configs, group_size=2), whole):
        pd.testing.assert_frame_equal(got.steps, want.steps, check_exact=True)
    with pytest.raises(ValueError, match="group_size"):
        train_many(configs, group_size=0)
