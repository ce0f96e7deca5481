"""In-flight checkpoints: a run stopped in the middle and started again from its checkpoint is,
bit for bit, the run that was never stopped -- for every method, both protocols, and runs that
resume beside runs that start afresh."""
import dataclasses
import pickle
from pathlib import Path

import pandas as pd
import pytest
import torch
from test_engine import BASE, METHOD_RULES, assert_identical

import gradreg.checkpoints as ckpt
from gradreg import TrainConfig, train, train_many
from gradreg.engine import _Run
from gradreg.profiles import profile_configs
from gradreg.results import row_key
from gradreg.sweep import checkpoints_dir, config_key, load_results, run_unit
from gradreg.tasks import make_task

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py

AUTHORS = dict(protocol="chernodub", task="temporal_order", length=10, hidden_size=10, max_iterations=60,
               check_every=10, test_size=600, validation_size=300, train_set_size=200, lr=0.01, device="cpu")


class Stop(Exception):
    """Stands for the kill of a sweep."""


def stop_at(iteration):
    def on_check(config, row):
        if row["iteration"] >= iteration:
            raise Stop
    return on_check


def stopped_then_resumed(configs, directory, at):
    """Train until the first check at `at`, as if killed there, then again from the checkpoints."""
    with pytest.raises(Stop):
        train_many(configs, on_check=stop_at(at), checkpoints=directory, checkpoint_seconds=0)
    assert len(list(directory.glob("*.pt"))) == len(configs)      # one file per run in flight
    resumed = train_many(configs, checkpoints=directory, checkpoint_seconds=0)
    assert not list(directory.glob("*.pt"))                       # ended runs leave no file
    return resumed


@pytest.mark.parametrize("method,rule", METHOD_RULES)
def test_every_method_and_rule_resumes_bit_for_bit(method, rule, tmp_path):
    seeds = range(1) if method == "lstm" else range(2)     # an LSTM run is a group of its own
    configs = [TrainConfig(method=method, rule=rule, seed=s, **dict(BASE, momentum=0.9 * s)) for s in seeds]
    for c, got in zip(configs, stopped_then_resumed(configs, tmp_path, at=40)):
        assert got.history["iteration"].is_unique       # the redone check is not logged twice
        assert_identical(got, train(c))


@pytest.mark.parametrize("method,rule", [("sgd", "top"), ("sgr", "top"), ("sgr", "random")])
def test_the_authors_protocol_resumes_bit_for_bit_with_its_kept_network(method, rule, tmp_path):
    configs = [TrainConfig(method=method, rule=rule, seed=s, **AUTHORS) for s in range(2)]
    resumed = stopped_then_resumed(configs, tmp_path, at=30)
    for c, got in zip(configs, resumed):
        want = train(c)
        assert_identical(got, want)
        assert (got.test_success, got.kept_iteration) == (want.test_success, want.kept_iteration)


def test_a_resumed_run_goes_on_beside_runs_that_start_afresh(tmp_path):
    first = [TrainConfig(method="clip", seed=s, **BASE) for s in range(2)]
    with pytest.raises(Stop):
        train_many(first, on_check=stop_at(40), checkpoints=tmp_path, checkpoint_seconds=0)
    # the same two runs (one resumed at iteration 39, one not: its file is gone) and a third
    (tmp_path / ckpt.checkpoint_path(tmp_path, first[1], torch.device("cpu")).name).unlink()
    configs = first + [TrainConfig(method="pascanu", seed=5, **BASE)]
    for c, got in zip(configs, train_many(configs, checkpoints=tmp_path, checkpoint_seconds=0)):
        assert_identical(got, train(c))


def test_a_changed_setting_does_not_resume_from_another_settings_state(tmp_path):
    c = TrainConfig(method="sgd", seed=0, **BASE)
    with pytest.raises(Stop):
        train(c, callback=lambda row: stop_at(40)(c, row), checkpoints=tmp_path, checkpoint_seconds=0)
    other = c.replace(lr=0.02)
    assert ckpt.checkpoint_path(tmp_path, other, "cpu") != ckpt.checkpoint_path(tmp_path, c, "cpu")
    assert_identical(train(other, checkpoints=tmp_path), train(other))
    assert len(list(tmp_path.glob("*.pt"))) == 1                  # c's file is untouched


def test_an_unreadable_checkpoint_is_set_aside_and_the_run_starts_afresh(tmp_path):
    c = TrainConfig(method="sgd", seed=0, **BASE)
    path = ckpt.checkpoint_path(tmp_path, c, torch.device("cpu"))
    path.write_bytes(b"half a file")
    with pytest.warns(RuntimeWarning, match="cannot be used"):
        got = train(c, checkpoints=tmp_path)
    assert_identical(got, train(c))
    assert path.with_name(path.name + ".unreadable").exists()


@pytest.mark.parametrize("method,damage", [
    ("lstm", lambda s: s.update(velocity=list(s["velocity"].values()))),   # the layout of an older version
    ("sgd", lambda s: s["params"].pop("W_rec")),
    ("sgd", lambda s: s.update(params={n: p[..., :1] for n, p in s["params"].items()})),
    ("sgd", lambda s: s.pop("history")),
    ("sgd", lambda s: s["generators"].pop("model")),
])
def test_a_checkpoint_that_does_not_fit_its_run_is_set_aside_and_the_run_starts_afresh(method, damage, tmp_path):
    c = TrainConfig(method=method, seed=0, **BASE)
    with pytest.raises(Stop):
        train(c, callback=lambda row: stop_at(40)(c, row), checkpoints=tmp_path, checkpoint_seconds=0)
    path = ckpt.checkpoint_path(tmp_path, c, torch.device("cpu"))
    state = torch.load(path, weights_only=True)
    damage(state)
    torch.save(state, path)
    with pytest.warns(RuntimeWarning, match="cannot be used"):
        got = train(c, checkpoints=tmp_path)
    assert_identical(got, train(c))
    assert path.with_name(path.name + ".unreadable").exists() and not path.exists()


def test_checkpoints_are_written_only_as_often_as_asked(tmp_path, monkeypatch):
    saves = []
    monkeypatch.setattr(ckpt, "save", lambda path, state: saves.append(state["it"]))
    train(TrainConfig(method="sgd", seed=0, **BASE), checkpoints=tmp_path, checkpoint_seconds=3600)
    assert saves == []
    train(TrainConfig(method="sgd", seed=0, **BASE), checkpoints=tmp_path, checkpoint_seconds=0)
    assert saves == list(range(1, BASE["max_iterations"]))       # after every iteration but the last


@pytest.mark.parametrize("bad", [-1, "5", True, None])
def test_a_bad_checkpoint_interval_is_a_value_error(bad, tmp_path):
    with pytest.raises(ValueError, match="checkpoint_seconds must be a number >= 0"):
        train(TrainConfig(method="sgd", **BASE), checkpoints=tmp_path, checkpoint_seconds=bad)


def test_a_sweep_unit_that_was_stopped_gives_the_rows_of_one_that_was_not(tmp_path):
    configs = [TrainConfig(method="sgr", seed=s, **BASE) for s in range(3)]
    with pytest.raises(Stop):
        train_many(configs, on_check=stop_at(20), checkpoints=tmp_path, checkpoint_seconds=0)
    rows = run_unit(configs, checkpoints=tmp_path, checkpoint_seconds=0)
    want = run_unit(configs)
    for got, expected in zip(rows, want):
        assert {k: v for k, v in got.items() if k not in ("seconds", "history")} == \
            {k: v for k, v in expected.items() if k not in ("seconds", "history")}


def test_a_run_without_step_logs_resumes_to_the_run_that_was_never_stopped(tmp_path):
    """As a sweep trains: no step logs, so its checkpoints stay small; every other number is the
    run's, and a checkpoint is plain data that torch reads back without running code."""
    configs = [TrainConfig(method=m, seed=s, **BASE) for m in ("sgr", "pascanu") for s in range(2)]
    with pytest.raises(Stop):
        train_many(configs, on_check=stop_at(40), checkpoints=tmp_path, checkpoint_seconds=0, step_logs=False)
    for path in tmp_path.glob("*.pt"):
        state = torch.load(path, weights_only=True)
        assert state["format"] == ckpt.FORMAT and state["it"] == 39 and state["step_rows"] == []
    resumed = train_many(configs, checkpoints=tmp_path, checkpoint_seconds=0, step_logs=False)
    for c, got in zip(configs, resumed):
        want = train(c)
        assert got.steps.empty and len(want.steps) == want.iterations
        assert_identical(got, dataclasses.replace(want, steps=got.steps))


def test_a_checkpoint_without_step_logs_is_not_taken_by_a_run_that_keeps_them(tmp_path):
    c = TrainConfig(method="sgd", seed=0, **BASE)
    with pytest.raises(Stop):
        train(c, callback=lambda row: stop_at(40)(c, row), checkpoints=tmp_path, checkpoint_seconds=0,
              step_logs=False)
    with pytest.warns(RuntimeWarning, match="holds no step logs"):
        got = train(c, checkpoints=tmp_path)
    assert_identical(got, train(c))


def test_a_checkpoint_of_the_old_pickle_format_is_set_aside_unread(tmp_path):
    c = TrainConfig(method="sgd", seed=0, **BASE)
    path = ckpt.checkpoint_path(tmp_path, c, torch.device("cpu"))
    path.write_bytes(pickle.dumps({"format": 1, "it": 39}))
    with pytest.warns(RuntimeWarning, match="cannot be used"):
        got = train(c, checkpoints=tmp_path)
    assert_identical(got, train(c))


@pytest.mark.parametrize("profile", ["paper", "authors", "screen", "control", "confirm", "long"])
def test_every_committed_checkpoint_is_a_run_in_flight_that_its_sweep_will_take_up(profile):
    """data/results/<profile>-checkpoints/ travels with the results, so that a sweep goes on in a
    fresh clone: each file must be the state of a run its profile has not written yet, under the
    name the current code gives that run's config, and fit that run (a changed config field
    would orphan it silently)."""
    results = REPO / "data" / "results" / f"{profile}.csv"
    files = sorted(checkpoints_dir(results).glob("*.pt"))
    if not files:
        pytest.skip(f"no {profile} run in flight")
    written = {row_key(r) for r in load_results(results).to_dict("records")}
    by_name = {ckpt.checkpoint_path(checkpoints_dir(results), c, torch.device("cpu")).name: c
               for c in profile_configs(profile)}
    for path in files:
        config = by_name.get(path.name)
        assert config is not None, f"{path.name} is no run of the {profile} profile (a stale file?)"
        assert config_key(config) not in written, f"{path.name}: its run's row is written already"
        state = ckpt.peek(path)
        assert state is not None, f"{path.name} cannot be read"
        run = _Run(config, make_task(config.task, config.length, config.variant), torch.device("cpu"),
                   getattr(torch, config.dtype), step_logs=False)
        assert run.unfit(state) is None and 0 < state["it"] < config.max_iterations
        assert len(pd.DataFrame(state["history"])) == state["it"] // config.check_every


def test_adam_runs_resume_bit_for_bit_with_their_second_moments(tmp_path):
    """Adam's second moment is saved and restored: an SRN group (two Adam runs beside a
    momentum-SGD one) and an LSTM with the control's settings."""
    adam = dict(optimizer="adam", lr=1e-3)
    srn = [TrainConfig(method="sgr", seed=s, **dict(BASE, **adam)) for s in (0, 1)]
    srn.append(TrainConfig(method="sgr", seed=2, **dict(BASE, momentum=0.9)))
    lstm = [TrainConfig(method="lstm", **dict(BASE, **adam, forget_bias=5.0))]
    for configs in (srn, lstm):
        folder = tmp_path / configs[0].method
        for c, got in zip(configs, stopped_then_resumed(configs, folder, at=40)):
            assert_identical(got, train(c))
