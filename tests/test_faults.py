"""Faults and bad input (issue 13): one line and the right exit code for every error, no row
lost, no crash.

Exit codes of the command line: 0 ok, 1 a fault of the environment, 2 a bad argument,
130 interrupted. Most command-line cases call `gradreg.cli.main` in this process (fast: no
interpreter start); a few run `python -m gradreg` to check the real entry point.
"""
from __future__ import annotations

import gzip
import math
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat
import numpy as np
import pytest

import gradreg
from gradreg import cli, explore, notebook_runner, sweep
from gradreg.config import MAX_SEED, TrainConfig, check_memory
from gradreg.experiments import explorer
from gradreg.results import COLUMNS, KEY, HistoryFile, ResultsFile, history_path, load_history, load_results

REPO = Path(__file__).resolve().parents[1]
CONFIG = sys.modules["gradreg.config"]
ENGINE = sys.modules["gradreg.engine"]
HEADER = ",".join(COLUMNS) + "\n"
ROW_SGD = "temporal_order,10,sgd,,0,True,200,4000,0.5,0.0,False,cpu,"
ROW_SGR = "temporal_order,10,sgr,top,0,False,100,8000,0.25,nan,True,cpu,"
ROW_CLIP = "temporal_order,10,clip,,1,False,300,6000,0.75,0.5,False,cpu,"


def run_cli(capsys, *args):
    """gradreg.cli.main in this process: (exit code, stderr lines)."""
    code = cli.main(list(args))
    err = capsys.readouterr().err
    return code, err.strip().splitlines()


def one_line(lines, code, expected_code, *words):
    assert code == expected_code, lines
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ") or lines[0].startswith("interrupted"), lines
    for w in words:
        assert w in lines[0], lines
    assert "Traceback" not in lines[0]


def python_m(*args, timeout=300, **kw):
    return subprocess.run([sys.executable, "-m", "gradreg", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO, **kw)


# ------------------------------------------------------------------ item 1: gradreg.sweep


@pytest.mark.slow  # a fresh process
def test_lazy_sweep_attribute_works_in_a_fresh_process():
    code = ("import gradreg\n"
            "assert gradreg.sweep.load_results is not None\n"
            "from gradreg import sweep\n"
            "assert sweep is gradreg.sweep\n"
            "try:\n    gradreg.nothing\nexcept AttributeError as e:\n    print('ok', e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "ok module 'gradreg' has no attribute 'nothing'" in out.stdout
    out = subprocess.run([sys.executable, "-c", "from gradreg import sweep; print(sweep.KEY)"],
                         capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0 and "RecursionError" not in out.stderr, out.stderr[-2000:]


# ------------------------------------------------------------------ item 3: the CLI's faults


def test_cli_results_path_that_is_a_directory_or_under_a_file_exits_2(tmp_path, capsys):
    code, lines = run_cli(capsys, "sweep", "--profile", "smoke", "--results", str(tmp_path))
    one_line(lines, code, 2, str(tmp_path), "is a directory")
    blocker = tmp_path / "FILE"
    blocker.write_text("x")
    code, lines = run_cli(capsys, "sweep", "--profile", "smoke", "--results", str(blocker / "a" / "x.csv"))
    one_line(lines, code, 2, str(blocker), "is a file, not a directory")
    assert blocker.read_text() == "x"


def test_cli_negative_checkpoint_interval_exits_2(tmp_path, capsys):
    code, lines = run_cli(capsys, "sweep", "--profile", "smoke", "--results", str(tmp_path / "r.csv"),
                          "--checkpoint-minutes", "-1")
    one_line(lines, code, 2, "--checkpoint-minutes must be a number >= 0 (0: no checkpoints), got -1")
    assert not (tmp_path / "r.csv").exists()


def test_cli_results_that_cannot_be_written_exits_1(tmp_path, capsys, monkeypatch):
    real_open = os.open

    def refuse(path, flags, *args, **kwargs):
        if str(path).startswith(str(tmp_path)) and flags & (os.O_WRONLY | os.O_RDWR):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", refuse)
    code, lines = run_cli(capsys, "sweep", "--profile", "smoke", "--results", str(tmp_path / "r.csv"))
    one_line(lines, code, 1, str(tmp_path / "r.csv"), "Permission denied", "writable")


@pytest.mark.slow  # a fresh process
def test_cli_results_on_a_read_only_filesystem_exits_1_without_traceback():
    try:                        # sysfs refuses new files even to root
        os.close(os.open("/sys/gradreg-probe", os.O_WRONLY | os.O_CREAT, 0o666))
        pytest.skip("/sys is writable here")
    except FileNotFoundError:
        pytest.skip("no /sys")
    except OSError:
        pass
    out = python_m("sweep", "--profile", "smoke", "--results", "/sys/gradreg-results.csv", "--no-progress")
    assert out.returncode == 1, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "/sys/gradreg-results.csv" in lines[0] and "Traceback" not in out.stderr


def test_cli_second_sweep_on_a_locked_results_file_exits_1(tmp_path, capsys):
    path = tmp_path / "r.csv"
    holder = ResultsFile(path)          # as a running sweep holds it
    try:
        code, lines = run_cli(capsys, "sweep", "--profile", "smoke", "--results", str(path))
    finally:
        holder.close()
    one_line(lines, code, 1, str(path), "another sweep")
    with pytest.raises(sweep.ResultsLocked):
        holder = ResultsFile(path)
        try:
            ResultsFile(path)
        finally:
            holder.close()


@pytest.mark.slow  # a fresh process
def test_cli_scheduler_with_nothing_listening_fails_at_once_with_exit_1():
    with socket.socket() as s:              # a port that was free a moment ago
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.perf_counter()
    out = python_m("sweep", "--profile", "smoke", "--results", "/tmp/gradreg-never-written.csv",
                   "--scheduler", f"tcp://127.0.0.1:{port}", "--no-progress")
    seconds = time.perf_counter() - start
    assert out.returncode == 1, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and f"tcp://127.0.0.1:{port}" in lines[0] and "connection refused" in lines[0]
    assert "Traceback" not in out.stderr
    assert seconds < 28, f"{seconds:.0f} s: distributed's own 30 s of retries"


@pytest.mark.parametrize("address,words", [
    ("foo", "missing port"),
    ("http://127.0.0.1:1", "scheme 'http'"),
    ("inproc://x", "scheme 'inproc'"),
    ("tcp://127.0.0.1:99999", "outside 1..65535"),
    ("tcp://127.0.0.1:8786/", "bad scheduler address"),
])
def test_cli_malformed_scheduler_address_exits_2(tmp_path, capsys, address, words):
    code, lines = run_cli(capsys, "sweep", "--profile", "smoke", "--results", str(tmp_path / "r.csv"),
                          "--scheduler", address)
    one_line(lines, code, 2, words)


def test_scheduler_that_accepts_but_never_answers_times_out(monkeypatch):
    monkeypatch.setattr(sweep, "SCHEDULER_TIMEOUT", 1.0)
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    accepted = []
    stop = threading.Event()

    def serve():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        address = f"tcp://127.0.0.1:{server.getsockname()[1]}"
        start = time.perf_counter()
        with pytest.raises(sweep.SchedulerUnreachable, match="gave no answer within 1 s"):
            sweep._check_scheduler(address)
        assert time.perf_counter() - start < 10
    finally:
        stop.set()
        thread.join()
        for c in accepted:
            c.close()
        server.close()


def test_scheduler_address_of_another_service_is_named(monkeypatch):
    """A service that answers with something else (an HTTP server, the dashboard's port)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(5)

    stop = threading.Event()

    def serve():                 # greets every connection at once, as some services do
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            with conn:
                conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n" * 8)
                time.sleep(0.2)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with pytest.raises(ValueError, match="not as a Dask scheduler"):
            sweep._check_scheduler(f"tcp://127.0.0.1:{server.getsockname()[1]}")
    finally:
        stop.set()
        thread.join(timeout=5)
        server.close()


def test_cli_figures_output_dir_under_a_file_exits_2(tmp_path, capsys):
    blocker = tmp_path / "FILE"
    blocker.write_text("x")
    code, lines = run_cli(capsys, "figures", "--profile", "smoke", "--output-dir", str(blocker / "figs"))
    one_line(lines, code, 2, str(blocker), "is a file")
    code, lines = run_cli(capsys, "figures", "--profile", "smoke", "--output-dir", str(tmp_path / "f"),
                          "--build-dir", str(blocker))
    one_line(lines, code, 2, str(blocker), "is a file")


def test_cli_unexpected_error_is_one_line(capsys, monkeypatch):
    def boom(*args, **kwargs):
        raise KeyError("surprise")

    monkeypatch.setattr(ENGINE, "train", boom)
    monkeypatch.delenv("GRADREG_TRACEBACK", raising=False)
    code, lines = run_cli(capsys, "train", "--length", "10", "--no-progress")
    one_line(lines, code, 1, "unexpected KeyError", "GRADREG_TRACEBACK")


# ------------------------------------------------------------------ item 4: sizes checked


def test_cli_train_too_large_for_memory_is_refused_before_allocating(capsys):
    code, lines = run_cli(capsys, "train", "--length", "1000000000", "--no-progress")
    one_line(lines, code, 2, "T=1000000000 needs about", "TB of memory", "available", "or length (1,000,000,000)")


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


def test_explorer_refuses_a_pool_that_cannot_fit():
    with pytest.raises(ValueError, match=r"T=10000000 needs about .* of memory"):
        explorer.compute(length=10 ** 7)


# ------------------------------------------------------------------ items 5 and 6: results files


def test_complete_last_row_without_newline_is_kept_and_the_newline_added(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text(HEADER + ROW_SGD + "\n" + ROW_SGR)           # an editor dropped the final newline
    df = load_results(path)
    assert [tuple(r) for r in df[list(KEY)].itertuples(index=False)] == [
        ("temporal_order", 10, "sgd", "", 0, ""), ("temporal_order", 10, "sgr", "top", 0, "")]
    out = ResultsFile(path)
    out.append({c: v for c, v in zip(COLUMNS, ROW_CLIP.split(","))})
    out.close()
    assert path.read_text() == HEADER + ROW_SGD + "\n" + ROW_SGR + "\n" + ROW_CLIP + "\n"
    assert len(load_results(path)) == 3


def test_half_row_is_dropped_and_truncated(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text(HEADER + ROW_SGD + "\n" + "temporal_order,10,clip,,0,False,10")
    assert len(load_results(path)) == 1
    ResultsFile(path).close()
    assert path.read_text() == HEADER + ROW_SGD + "\n"
    # a header without its newline (and nothing else) is completed, not truncated
    path.write_text(HEADER.strip())
    ResultsFile(path).close()
    assert path.read_text() == HEADER


@pytest.mark.parametrize("bad,what", [
    (b"hello world", "1 fields where a row has 13"),
    (b"\xff\xfe", "not UTF-8"),
    (ROW_SGD.replace("True", "yes").encode(), "solved 'yes' is not True or False"),
    (ROW_SGD.replace(",200,", ",lots,").encode(), "iterations 'lots' is not an integer"),
    (ROW_SGD.replace(",0,True", ",1e30,True").encode(), "seed '1e30' is not an integer"),
    (b'temporal_order,10,sgd,,0,True,200,4000,0.5,0.0,False,cpu,"unclosed', "not a CSV row"),
])
def test_corrupt_row_is_located(tmp_path, capsys, bad, what):
    path = tmp_path / "r.csv"
    path.write_bytes((HEADER + ROW_SGD + "\n").encode() + bad + b"\n" + (ROW_SGR + "\n").encode())
    with pytest.raises(ValueError) as info:
        load_results(path)
    message = str(info.value)
    assert message.startswith(f"{path}, line 3: ") and what in message and "fix or delete that line" in message
    assert "\n" not in message
    before = path.read_bytes()
    code, lines = run_cli(capsys, "sweep", "--profile", "smoke", "--results", str(path))
    one_line(lines, code, 2, f"{path}, line 3")
    assert path.read_bytes() == before                          # nothing touched


def test_hand_edited_files_that_are_still_readable(tmp_path):
    path = tmp_path / "r.csv"
    # CRLF line endings, a byte-order mark, an empty line, spreadsheet-style TRUE and 200.0
    text = ("\ufeff" + HEADER.replace("\n", "\r\n") + ROW_SGD + "\r\n\r\n" +
            ROW_CLIP.replace("False", "FALSE").replace(",300,", ",300.0,") + "\r\n")
    path.write_bytes(text.encode("utf-8"))
    df = load_results(path)
    assert len(df) == 2 and df["iterations"].tolist() == [200, 300] and df["iterations"].dtype == "int64"
    assert df["solved"].tolist() == [True, False]
    out = ResultsFile(path)                                     # the sweep accepts it and appends
    out.append({c: v for c, v in zip(COLUMNS, ROW_SGR.split(","))})
    out.close()
    assert len(load_results(path)) == 3


def test_results_path_that_is_not_a_regular_file_is_refused(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match="not a regular file"):
        ResultsFile(fifo)
    assert fifo.exists() and not fifo.is_file()                  # left as it was (think /dev/null)


def test_header_of_an_empty_results_file_behind_a_symlink_keeps_the_link(tmp_path):
    real = tmp_path / "real.csv"
    real.write_text("")
    link = tmp_path / "link.csv"
    link.symlink_to(real)
    ResultsFile(link).close()
    assert link.is_symlink() and real.read_text() == HEADER


def test_foreign_header_says_what_to_do(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="not a results file.*give a new file name"):
        load_results(path)
    with pytest.raises(ValueError, match="is a directory"):
        load_results(tmp_path)


# ------------------------------------------------------------------ the history file


def _member(seed: int) -> bytes:
    cols = ",".join(sweep.HISTORY_COLUMNS)
    row = f"temporal_order,10,sgd,,{seed},100,2000,1.0,0.5,0.25,2000,1.0,nan,0.9,nan,nan,nan"
    return gzip.compress(f"{cols}\n{row}\n".encode(), mtime=0)


def test_history_cut_short_is_truncated_and_a_corrupt_member_costs_no_other(tmp_path):
    results = tmp_path / "r.csv"
    hist = history_path(results)
    good = [_member(s) for s in range(4)]
    damaged = bytearray(good[1])
    damaged[len(damaged) // 2] ^= 0xFF                          # a flipped byte inside member 1
    hist.write_bytes(good[0] + bytes(damaged) + good[2] + good[3][:-7])   # member 3 cut short
    with pytest.warns(RuntimeWarning, match="1 corrupt part"):
        df = load_history(results)
    assert sorted(df["seed"]) == [0, 2]
    with pytest.warns(RuntimeWarning, match="1 corrupt part"):
        h = HistoryFile(hist)
    h.append(("temporal_order", 10, "sgd", "", 9), [{"iteration": 1, "examples": 20}])
    h.close()
    data = hist.read_bytes()
    assert data.startswith(good[0] + bytes(damaged) + good[2])   # nothing before the cut lost
    with pytest.warns(RuntimeWarning):
        assert sorted(load_history(results)["seed"]) == [0, 2, 9]


def test_history_that_is_not_gzip_is_kept_not_truncated(tmp_path):
    hist = tmp_path / "r-history.csv.gz"
    hist.write_text("iteration,loss\n1,2\n")                    # someone saved it as plain text
    with pytest.warns(RuntimeWarning, match="corrupt"):
        HistoryFile(hist).close()
    assert hist.read_text() == "iteration,loss\n1,2\n"
    (tmp_path / "d-history.csv.gz").mkdir()
    with pytest.raises(ValueError, match="is a directory"):
        HistoryFile(tmp_path / "d-history.csv.gz")


def test_history_member_of_another_table_is_skipped(tmp_path):
    hist = tmp_path / "r-history.csv.gz"
    hist.write_bytes(_member(0) + gzip.compress(b"a,b\n1,2\n", mtime=0))
    with pytest.warns(RuntimeWarning, match="not a check history"):
        assert load_history(hist)["seed"].tolist() == [0]


# ------------------------------------------------------------------ item 7: weighted, large alpha


# ------------------------------------------------------------------ item 8: per_example_stats input


# ------------------------------------------------------------------ item 9: config types


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


# ------------------------------------------------------------------ item 10: explorer messages


def test_explorer_device_and_overflow_messages():
    with pytest.raises(ValueError, match=r"unknown device 'tpu'; allowed: auto, cpu, cuda, cuda:N"):
        explorer.compute(device="tpu")
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        explore.Explorer(device="tpu")
    with pytest.raises(ValueError, match=r"the network overflowed in float32.*rho\(W_rec\) = 1e\+30.*float64"):
        explorer.compute(spectral_radius=1e30, dtype="float32", activation="relu")
    with pytest.raises(ValueError, match=r"overflowed in float64"):
        explorer.compute(spectral_radius=1e30, activation="identity")


@pytest.mark.parametrize("bad,word", [
    (dict(seed=2 ** 40), "seed must be an integer in 0..2147483647"),
    (dict(draws=10 ** 9), "draws must be an integer in 1..100000"),
    (dict(alpha=float("nan")), "alpha must be a positive finite number"),
    (dict(band_low=float("nan")), "band_low must be a positive finite number"),
    (dict(lag=2.5), "lag must be an integer or None"),
])
def test_explorer_limits(bad, word):
    with pytest.raises(ValueError, match=re.escape(word)):
        explorer.compute(**bad)


def test_explorer_numpy_parameters_and_large_alpha():
    r = explorer.compute(hidden_size=np.int64(12), alpha=np.float32(300.0), batch_size=np.int64(4),
                        pool_factor=2, length=20, draws=5)
    assert r["params"].hidden_size == 12 and type(r["params"].alpha) is float
    assert all(math.isfinite(e["norm"]) for e in r["rules"].values())


# ------------------------------------------------------------------ item 11: kernels over IPC


def _tiny_notebook(path: Path, source: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    params = nbformat.v4.new_code_cell('profile = "quick"\noutput_dir = "."\nseed = 0\ndevice = "cpu"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(source)]
    nbformat.write(nb, str(path))
    return path


def test_notebook_kernels_run_over_ipc_without_the_tcp_warning(tmp_path, capfd):
    path = _tiny_notebook(tmp_path / "98_ipc.ipynb", "import os\nprint('connection', os.getpid())")
    notebook_runner.run_notebooks("smoke", output_dir=tmp_path / "f", build_dir=tmp_path / "b", notebooks=[path],
                          log=lambda *a: None)
    err = capfd.readouterr().err
    assert "without encryption" not in err, err
    executed = nbformat.read(str(tmp_path / "b" / "notebooks" / path.name), as_version=4)
    assert "connection" in executed.cells[-1].outputs[0]["text"]


@pytest.mark.slow  # a notebook through papermill
def test_notebook_run_with_bad_parameters_names_cell_and_problem(tmp_path):
    path = _tiny_notebook(tmp_path / "97_setup.ipynb",
                          "from gradreg.experiments.settings import setup\nsetup(profile, seed, device)")
    for params, message in [({"seed": -1}, "seed must be an integer in 0..2147483647, got -1"),
                            ({"device": "tpu"}, "unknown device 'tpu'"),
                            ({"profile": "huge"}, "unknown profile 'huge'")]:
        with pytest.raises(notebook_runner.NotebookFailed) as info:
            notebook_runner.run_notebooks("smoke", output_dir=tmp_path / "f", build_dir=tmp_path / "b",
                                  notebooks=[path], log=lambda *a: None, parameters=params)
        assert "97_setup.ipynb: cell 1 failed" in str(info.value) and message in str(info.value)
    for bad in (dict(timeout=0), dict(timeout="x"), dict(parameters=["seed"])):
        with pytest.raises(ValueError):
            notebook_runner.run_notebooks("smoke", output_dir=tmp_path / "f", build_dir=tmp_path / "b",
                                  notebooks=[path], log=lambda *a: None, **bad)


# ------------------------------------------------------------------ item 12: Ctrl-C on a sweep


def _default_sigint():
    # as in a terminal's foreground job: a test run in the background (nohup, `&`, some CI
    # runners) starts with SIGINT ignored, which its children would inherit
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    # and not blocked: a runner (or an earlier test's thread) may pass SIGINT down blocked
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


CTRL_C_SWEEP = """
import sys
import gradreg.sweep as sweep
from gradreg.cli import main
from gradreg.config import TrainConfig
sweep.SWEEP_PROFILES["ctrlc"] = lambda: [TrainConfig(task="temporal_order", length=10, hidden_size=10, method="sgd",
                                               seed=s, max_iterations=300, check_every=100, test_size=200)
                                   for s in range(40)]
sys.exit(main(["sweep", "--profile", "ctrlc", "--results", sys.argv[1], "--workers", "2", "--no-progress",
                "--no-batch"]))
"""


@pytest.mark.slow  # a LocalCluster sweep
def test_ctrl_c_on_a_sweep_prints_one_line_and_keeps_every_row(tmp_path):
    path = tmp_path / "r.csv"
    # its own process group, as a terminal's foreground job: SIGINT goes to the sweep's
    # process and to every Dask worker it started, as Ctrl-C does
    proc = subprocess.Popen([sys.executable, "-c", CTRL_C_SWEEP, str(path)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=_default_sigint)
    try:
        deadline = time.monotonic() + 180
        while not (path.exists() and len(path.read_text().splitlines()) >= 2):
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "no row within 180 s"
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)        # anything left of that group
        except ProcessLookupError:
            pass
    assert proc.returncode == 130, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    match = re.fullmatch(r"interrupted; (\d+) rows kept; rerun the same command to resume", lines[0])
    assert match, lines
    df = load_results(path)
    assert int(match.group(1)) == len(df) >= 1
    assert path.read_bytes().endswith(b"\n")
    assert len(path.read_text().splitlines()) == 1 + len(df)


UNRETRIEVED_FUTURES = """
import asyncio, gc, sys
from gradreg import sweep
if sys.argv[1] == "quiet":
    sweep._quiet_shutdown_timeouts()
async def leave(exc):
    asyncio.get_running_loop().create_future().set_exception(exc)  # nobody retrieves it
asyncio.run(leave(TimeoutError("Timeout")))
gc.collect()
asyncio.run(leave(ValueError("a real fault")))
gc.collect()
"""


@pytest.mark.slow  # fresh processes with Dask
@pytest.mark.parametrize("quiet", [False, True])
def test_the_shutdown_timeout_report_of_distributed_is_dropped_and_nothing_else(quiet):
    """What failed CI once: after Ctrl-C, distributed's batched sender left a timed-out
    future and asyncio printed three lines after the sweep's one. The sweep drops exactly
    that report (a bare TimeoutError); another unretrieved exception is still reported."""
    proc = subprocess.run([sys.executable, "-c", UNRETRIEVED_FUTURES, "quiet" if quiet else "loud"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "ValueError: a real fault" in proc.stderr
    assert ("TimeoutError: Timeout" in proc.stderr) is not quiet, proc.stderr


def test_ctrl_c_on_train_prints_one_line_and_exits_130(tmp_path):
    """Ctrl-C once training runs (the progress bar is up): one line, exit 130. (Sending it at a
    fixed instant of the start-up proved timing-dependent on a loaded machine.)"""
    proc = subprocess.Popen([sys.executable, "-m", "gradreg", "train", "--length", "10"], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=_default_sigint)
    seen = ""
    while "it/s" not in seen and proc.poll() is None:
        seen += proc.stderr.read(1)
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, seen + err
    assert err.strip().splitlines()[-1].endswith("interrupted")


# ------------------------------------------------------------------ further inputs


def test_student_and_slides_never_empty_a_directory_they_did_not_write(tmp_path, capsys):
    """`--output-dir .` used to rmtree the current directory (the repository)."""
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "precious.txt").write_text("keep me")
    for command in ("student", "slides"):
        code, lines = run_cli(capsys, command, "--output-dir", str(mine))
        one_line(lines, code, 2, str(mine), "precious.txt", "did not write")
    assert (mine / "precious.txt").read_text() == "keep me"
    blocker = tmp_path / "FILE"
    blocker.write_text("x")
    code, lines = run_cli(capsys, "student", "--output-dir", str(blocker / "student"))
    one_line(lines, code, 2, str(blocker), "is a file")
    # a directory this command wrote before is rebuilt
    from gradreg import teaching
    out = tmp_path / "student"
    teaching.build_student(out, archive=False, log=lambda *a: None)
    teaching.build_student(out, archive=False, log=lambda *a: None)
    assert (out / "README.md").is_file()


def test_report_of_a_missing_or_corrupt_file_exits_2(tmp_path, capsys):
    code, lines = run_cli(capsys, "report", str(tmp_path / "missing.csv"))
    one_line(lines, code, 2, "missing.csv", "does not exist")
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + "hello world\n")
    code, lines = run_cli(capsys, "report", str(bad))
    one_line(lines, code, 2, f"{bad}, line 2")


@pytest.mark.parametrize("args,words", [
    (["sweep", "--profile", "smoke", "--results", "RESULTS", "--device", "tpu"], "unknown device 'tpu'"),
    (["sweep", "--profile", "smoke", "--results", "RESULTS", "--cell", "temporal_order:-5"], "TASK:LENGTH"),
    (["sweep", "--profile", "smoke", "--results", "RESULTS", "--workers", "0"], "workers must be"),
    (["sweep", "--profile", "smoke", "--results", "RESULTS", "--seed", "9"],
     "seed 9 is not in this sweep; allowed: 0, 1"),
    (["sweep", "--profile", "smoke", "--results", "RESULTS", "--seed", "x"], "--seed: invalid int value: 'x'"),
    (["drop", "--results", "RESULTS", "--cell", "adding:50"], "r.csv does not exist; check the path"),
    (["drop", "--results", "data/results/paper.csv", "--cell", "adding:7"],
     "cell adding:7 has no rows in data/results/paper.csv; cells there: adding:50"),
    (["drop", "--results", "data/results/paper.csv", "--cell", "adding:50", "--method", "sgr/best"],
     "method 'sgr/best' has no rows in data/results/paper.csv; allowed: clip, "),
    (["train", "--seed", "4294967296"], "seed must be an integer in 0..2147483647"),
    (["train", "--lr", "nan"], "lr must be a positive finite number"),
    (["train", "--greedy-low", "nan"], "greedy_low must be a finite number"),
    (["train", "--device", "cuda:x"], "unknown device 'cuda:x'"),
    (["train", "--hidden-size", "1000000", "--length", "10"], "needs about"),
    (["figures", "--profile", "huge"], "unknown profile 'huge'"),
])
def test_more_bad_arguments_exit_2_with_one_line(tmp_path, capsys, args, words):
    args = [str(tmp_path / "r.csv") if a == "RESULTS" else a for a in args]
    code, lines = run_cli(capsys, *args)
    one_line(lines, code, 2, words)


def test_authors_results_file_edited_by_hand(tmp_path):
    """The authors' protocol writes AUTHORS_COLUMNS (COLUMNS + test_success): the same rules."""
    path = tmp_path / "authors.csv"
    header = ",".join(sweep.AUTHORS_COLUMNS) + "\n"
    path.write_text(header + ROW_SGD + ",99.5\n" + ROW_SGR + ",")        # last row: no newline
    df = load_results(path)
    assert list(df.columns) == list(sweep.AUTHORS_COLUMNS) + ["arm"] and len(df) == 2
    assert df["test_success"].iloc[0] == 99.5 and math.isnan(df["test_success"].iloc[1])
    ResultsFile(path, sweep.AUTHORS_COLUMNS).close()
    assert path.read_text().endswith(ROW_SGR + ",\n")
    with pytest.raises(ValueError, match="not a results file of this version and protocol"):
        ResultsFile(path)                                          # a pascanu sweep on it
    path.write_text(header + ROW_SGD + "\n")                         # 13 fields where 14 belong
    with pytest.raises(ValueError, match=r"line 2: 13 fields where a row has 14"):
        load_results(path)


def test_check_memory_counts_the_authors_fixed_sets():
    pascanu = TrainConfig(length=50, hidden_size=100, test_size=1000)
    authors = TrainConfig(length=50, protocol="chernodub", hidden_size=100, test_size=1000,
                          train_set_size=50_000, validation_size=5_000)
    assert check_memory(authors) > check_memory(pascanu) + 50_000 * 50 * 6 * 4


def test_a_reader_that_goes_away_is_not_an_error(tmp_path, monkeypatch, capsys):
    """`python -m gradreg status ... | head -2`: the pipe closes under the command's output."""
    def write_into_a_closed_pipe(args):
        raise BrokenPipeError(32, "Broken pipe")
    monkeypatch.setattr(cli, "run_status", write_into_a_closed_pipe)
    out = open(tmp_path / "stdout", "w")
    monkeypatch.setattr(sys, "stdout", out)
    try:
        assert cli.main(["status", "--profile", "smoke", "--results", str(tmp_path / "r.csv")]) == 0
    finally:
        out.close()
    assert capsys.readouterr().err == ""
