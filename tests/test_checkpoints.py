"""In-flight checkpoints: a run stopped in the middle and started again from its checkpoint is,
bit for bit, the run that was never stopped -- for every method, both protocols, and runs that
resume beside runs that start afresh."""
import dataclasses
import errno
import os
import pickle
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from test_engine import BASE, METHOD_RULES, assert_identical

import gradreg.checkpoints as ckpt
from gradreg import TrainConfig, train, train_many
from gradreg.engine import _Run
from gradreg.errors import EnvironmentFault
from gradreg.profiles import profile_configs
from gradreg.results import row_key
from gradreg.sweep import checkpoints_dir, config_key, load_results, run_sweep, run_unit, sweep_status
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


# ------------------------------------------------------------------ damaged checkpoints, faulty folders (issue 34)

SGD = TrainConfig(method="sgd", seed=0, **BASE)
AUTHORS_SGD = TrainConfig(method="sgd", seed=0, **dict(AUTHORS, max_iterations=30))


@pytest.fixture(scope="module")
def saved_state(tmp_path_factory):
    """A whole checkpoint of SGD at iteration 39 and of AUTHORS_SGD (which keeps a network) at
    19, and each run trained afresh: (stopping -> state, stopping -> result)."""
    states, fresh = {}, {}
    for c, at in ((SGD, 40), (AUTHORS_SGD, 20)):
        directory = tmp_path_factory.mktemp("saved")
        with pytest.raises(Stop):
            train(c, callback=lambda row, c=c, at=at: stop_at(at)(c, row), checkpoints=directory,
                  checkpoint_seconds=0)
        states[c.stopping] = torch.load(ckpt.checkpoint_path(directory, c, torch.device("cpu")), weights_only=True)
        fresh[c.stopping] = train(c)
    return states, fresh


def _nan_params(s):
    s["params"]["W_rec"] = torch.full_like(s["params"]["W_rec"], float("nan"))


DAMAGE = {
    "it a string": lambda s: s.update(it="39"),
    "it a float": lambda s: s.update(it=39.0),
    "it negative": lambda s: s.update(it=-1),
    "it beyond the budget": lambda s: s.update(it=10 ** 6),
    "it at the budget": lambda s: s.update(it=BASE["max_iterations"]),
    "a 3-byte generator state": lambda s: s["generators"].update(data=torch.tensor([1, 2, 3], dtype=torch.uint8)),
    "a generator state of floats": lambda s: s["generators"].update(test=torch.zeros(10)),
    "a generator state that is a list": lambda s: s["generators"].update(select=[1, 2]),
    "float64 params": lambda s: s.update(params={n: p.double() for n, p in s["params"].items()}),
    "float16 momentum": lambda s: s.update(velocity={n: v.half() for n, v in s["velocity"].items()}),
    "NaN params": _nan_params,
    "infinite momentum": lambda s: s["velocity"]["b"].fill_(float("inf")),
    "params a list": lambda s: s.update(params=list(s["params"].values())),
    "a param that is a number": lambda s: s["params"].update(b=1.0),
    "examples a string": lambda s: s.update(examples="390"),
    "wrong negative": lambda s: s.update(wrong=-5),
    "seconds NaN": lambda s: s.update(seconds=float("nan")),
    "wall a string": lambda s: s.update(wall="1.5"),
    "history a dict": lambda s: s.update(history={"iteration": 20}),
    "history rows of numbers": lambda s: s.update(history=[1, 2]),
    "since_check None": lambda s: s.update(since_check=None),
    "an extra generator": lambda s: s["generators"].update(extra=s["generators"]["model"]),
    "the state a list": lambda s: s.clear() or s.update(format=ckpt.FORMAT, it=[39]),
}


@pytest.mark.parametrize("what", list(DAMAGE))
def test_a_checkpoint_that_does_not_fit_in_any_field_is_set_aside_and_the_run_starts_afresh(what, saved_state,
                                                                                            tmp_path):
    states, fresh = saved_state
    state = {k: (dict(v) if isinstance(v, dict) else v) for k, v in states[SGD.stopping].items()}
    state["params"] = {n: p.clone() for n, p in states[SGD.stopping]["params"].items()}
    state["velocity"] = {n: v.clone() for n, v in states[SGD.stopping]["velocity"].items()}
    DAMAGE[what](state)
    path = ckpt.checkpoint_path(tmp_path, SGD, torch.device("cpu"))
    torch.save(state, path)
    with pytest.warns(RuntimeWarning, match="cannot be used"):
        got = train(SGD, checkpoints=tmp_path)
    assert_identical(got, fresh[SGD.stopping])
    assert path.with_name(path.name + ".unreadable").exists() and not path.exists()


@pytest.mark.parametrize("what,damage", [
    ("kept network float64", lambda s: s.update(kept={n: p.double() for n, p in s["kept"].items()})),
    ("kept network of other shapes", lambda s: s.update(kept={n: p[..., :1] for n, p in s["kept"].items()})),
    ("kept network NaN", lambda s: s["kept"]["W_in"].fill_(float("nan"))),
    ("kept_iteration beyond it", lambda s: s.update(kept_iteration=10 ** 6)),
    ("best_mse NaN", lambda s: s.update(best_mse=float("nan"))),
    ("best_mse a string", lambda s: s.update(best_mse="0.1")),
])
def test_a_checkpoint_of_the_authors_protocol_whose_kept_network_does_not_fit_is_set_aside(what, damage,
                                                                                          saved_state, tmp_path):
    states, fresh = saved_state
    state = dict(states[AUTHORS_SGD.stopping])
    assert state["kept"] is not None
    state["kept"] = {n: p.clone() for n, p in state["kept"].items()}
    damage(state)
    path = ckpt.checkpoint_path(tmp_path, AUTHORS_SGD, torch.device("cpu"))
    torch.save(state, path)
    with pytest.warns(RuntimeWarning, match="cannot be used"):
        got = train(AUTHORS_SGD, checkpoints=tmp_path)
    assert_identical(got, fresh[AUTHORS_SGD.stopping])


def test_a_whole_checkpoint_passes_every_check(saved_state):
    states, _ = saved_state
    for c in (SGD, AUTHORS_SGD):
        assert ckpt.problem(states[c.stopping], c, "cpu") is None


def test_a_checkpoint_that_cannot_be_moved_aside_is_left_and_the_run_starts_afresh(saved_state, tmp_path,
                                                                                  monkeypatch):
    states, fresh = saved_state
    path = ckpt.checkpoint_path(tmp_path, SGD, torch.device("cpu"))
    path.write_bytes(b"half a file")

    def refuse(src, dst):
        raise PermissionError(13, "Permission denied", str(src))
    monkeypatch.setattr(ckpt.os, "replace", refuse)
    with pytest.warns(RuntimeWarning, match="not moved aside"):
        got = ckpt.load(path)
    assert got is None and path.read_bytes() == b"half a file"


# the folder, checked before any run starts

def test_a_checkpoints_folder_that_is_a_regular_file_is_refused_before_training(tmp_path, monkeypatch):
    folder = tmp_path / "r-checkpoints"
    folder.write_text("mine")
    monkeypatch.setattr(sys.modules["gradreg.engine"], "_Group", None)   # no run may start
    with pytest.raises(ValueError, match=f"checkpoints directory {folder} is a file"):
        train(SGD, checkpoints=folder)
    assert folder.read_text() == "mine"


def test_a_checkpoints_folder_under_a_file_is_a_value_error_naming_it(tmp_path):
    (tmp_path / "file").write_text("mine")
    with pytest.raises(ValueError, match="part of the path is not a directory"):
        ckpt.check_directory(tmp_path / "file" / "checkpoints")


@pytest.mark.parametrize("code,word", [(errno.EACCES, "Permission denied"), (errno.EROFS, "Read-only"),
                                       (errno.ENOSPC, "No space left")])
def test_a_checkpoints_folder_that_cannot_be_written_is_an_environment_fault(code, word, tmp_path, monkeypatch):
    def refuse(fd):
        raise OSError(code, os.strerror(code))
    monkeypatch.setattr(ckpt.os, "fsync", refuse)      # root writes anywhere: the refusal is simulated
    with pytest.raises(EnvironmentFault, match=f"checkpoints directory {tmp_path / 'c'} cannot be written.*{word}"):
        ckpt.check_directory(tmp_path / "c")
    assert list((tmp_path / "c").iterdir()) == []       # the probe is gone


@pytest.mark.parametrize("bad", [3, True, b"dir", ["dir"]])
def test_a_checkpoints_argument_of_the_wrong_kind_is_a_type_error(bad):
    with pytest.raises(TypeError, match="checkpoints must be a directory path"):
        ckpt.check_directory(bad)


def test_a_checkpoint_that_cannot_be_saved_in_flight_costs_the_checkpoint_not_the_run(saved_state, tmp_path,
                                                                                     monkeypatch):
    _, fresh = saved_state

    def full_disk(obj, f):
        f.write(b"part")
        raise RuntimeError("PytorchStreamWriter failed writing file data/0: file write failed")
    monkeypatch.setattr(ckpt.torch, "save", full_disk)
    with pytest.warns(RuntimeWarning, match="not saved.*the run goes on"):
        got = train(SGD, checkpoints=tmp_path, checkpoint_seconds=0)
    assert_identical(got, fresh[SGD.stopping])
    assert list(tmp_path.iterdir()) == []               # no temporary file left


def test_a_checkpoint_of_an_ended_run_that_cannot_be_deleted_is_a_warning(saved_state, tmp_path, monkeypatch):
    _, fresh = saved_state

    def refuse(path):
        raise PermissionError(13, "Permission denied", str(path))
    monkeypatch.setattr(ckpt, "remove", refuse)
    with pytest.warns(RuntimeWarning, match="of an ended run not deleted"):
        got = train(SGD, checkpoints=tmp_path, checkpoint_seconds=0)
    assert_identical(got, fresh[SGD.stopping])


def test_a_sweep_unit_whose_checkpoints_folder_broke_since_the_sweep_began_writes_its_rows(tmp_path):
    folder = tmp_path / "checkpoints"
    folder.write_text("a file now")
    c = TrainConfig(method="sgd", seed=0, **dict(BASE, max_iterations=20))
    with pytest.warns(RuntimeWarning, match="go on without checkpoints"):
        rows = run_unit([c], checkpoints=folder, checkpoint_seconds=0)
    assert rows[0]["error"] == "" and rows[0]["iterations"] == 20


@pytest.mark.parametrize("make", ["file", "under a file"])
def test_a_sweep_with_a_bad_checkpoints_folder_stops_before_any_run(make, tmp_path, monkeypatch):
    results = tmp_path / "r.csv"
    if make == "file":
        checkpoints_dir(results).write_text("mine")
    else:
        results = tmp_path / "f"
        results.write_text("")
        results = tmp_path / "sub.csv"
        monkeypatch.setattr(sys.modules["gradreg.sweep"], "checkpoints_dir", lambda r: tmp_path / "f" / "c")
    monkeypatch.setattr(sys.modules["gradreg.sweep"], "_run_pending", None)     # no run may start
    with pytest.raises(ValueError, match="checkpoints directory"):
        run_sweep([TrainConfig(method="sgd", seed=0, **BASE)], results, checkpoint_minutes=1)
    assert load_results(results).empty                  # no error rows


# status reads checkpoints, never moves them

@pytest.mark.parametrize("what,damage", [
    ("no it", lambda s: s.pop("it")), ("it a string", lambda s: s.update(it="39")),
    ("a 3-byte generator state", DAMAGE["a 3-byte generator state"]), ("NaN params", _nan_params),
    ("it beyond the budget", DAMAGE["it beyond the budget"]), ("not a checkpoint", None),
])
def test_status_names_a_checkpoint_that_cannot_be_used_and_leaves_it(what, damage, saved_state, tmp_path):
    states, _ = saved_state
    results = tmp_path / "r.csv"
    path = ckpt.checkpoint_path(checkpoints_dir(results), SGD, torch.device("cpu"))
    path.parent.mkdir()
    if damage is None:
        path.write_bytes(b"\0\0\0")
    else:
        state = dict(states[SGD.stopping])
        state["generators"] = dict(state["generators"])
        state["params"] = {n: p.clone() for n, p in state["params"].items()}
        damage(state)
        torch.save(state, path)
    before = path.read_bytes()
    lines = sweep_status([SGD], results).splitlines()
    assert lines[1].startswith("1 checkpoint(s) in ") and "cannot be used" in lines[1]
    assert lines[2].startswith(f"  {path.name}: ")
    assert not any("in flight" in line for line in lines)
    assert path.read_bytes() == before


def test_a_checkpoints_folder_that_is_a_dangling_link_or_holds_a_nul_is_named(tmp_path):
    (tmp_path / "loop1").symlink_to(tmp_path / "loop2")
    (tmp_path / "loop2").symlink_to(tmp_path / "loop1")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    for name in ("loop1", "dangling"):
        with pytest.raises(ValueError, match=f"{name} is a symbolic link to nothing"):
            ckpt.check_directory(tmp_path / name)
    with pytest.raises(ValueError, match="holds a NUL character"):
        ckpt.check_directory(f"{tmp_path}/a\0b")


def test_a_checkpoints_folder_behind_a_symbolic_link_is_used(saved_state, tmp_path):
    _, fresh = saved_state
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(Stop):
        train(SGD, callback=lambda row: stop_at(20)(SGD, row), checkpoints=tmp_path / "link", checkpoint_seconds=0)
    assert len(list((tmp_path / "real").glob("*.pt"))) == 1
    assert_identical(train(SGD, checkpoints=tmp_path / "link"), fresh[SGD.stopping])


def test_a_checkpoint_file_that_is_a_directory_is_set_aside(saved_state, tmp_path):
    _, fresh = saved_state
    path = ckpt.checkpoint_path(tmp_path, SGD, torch.device("cpu"))
    path.mkdir()
    with pytest.warns(RuntimeWarning, match="cannot be used"):
        assert_identical(train(SGD, checkpoints=tmp_path), fresh[SGD.stopping])
    assert path.with_name(path.name + ".unreadable").is_dir()


def test_a_checkpoint_that_fails_while_taken_over_is_set_aside_and_the_run_made_anew(saved_state, tmp_path,
                                                                                   monkeypatch):
    """A misfit that the checks miss fails in `_Run.restore`, half way: the run is made again."""
    states, fresh = saved_state
    state = dict(states[SGD.stopping])
    state["generators"] = dict(state["generators"], validation=torch.tensor([1, 2, 3], dtype=torch.uint8))
    path = ckpt.checkpoint_path(tmp_path, SGD, torch.device("cpu"))
    torch.save(state, path)
    monkeypatch.setattr(_Run, "unfit", lambda self, state: None)
    with pytest.warns(RuntimeWarning, match="cannot be used"):
        got = train_many([SGD, dataclasses.replace(SGD, seed=1)], checkpoints=tmp_path)
    assert_identical(got[0], fresh[SGD.stopping])
    assert path.with_name(path.name + ".unreadable").exists()
