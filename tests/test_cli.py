"""The command line's answers to bad input and faults (issues 13 and 34): one line on stderr, never
a traceback, and the exit code says whose fault it is: 0 ok, 1 the environment, 2 the user's
argument, 130 interrupted; nothing of the user's overwritten, no row lost. Most cases call
`gradreg.cli.main` in this process (no interpreter start); a few run `python -m gradreg` to check
the real entry point."""
from __future__ import annotations

import errno
import io
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest
from helpers import HEADER, REPO, one_line, python_m, run_cli

from gradreg import cli, sweep
from gradreg.readme import HEADLINE_BEGIN, HEADLINE_END, RESULTS_BEGIN, RESULTS_END
from gradreg.results import ResultsFile, load_results

ENGINE = sys.modules["gradreg.engine"]
ROWS = ["temporal_order,10,sgd,,0,True,200,4000,0.5,0.0,False,cpu,\n",
        "temporal_order,10,clip,,1,False,300,6000,0.75,0.5,False,cpu,\n",
        "adding,10,sgd,,0,True,200,4000,0.5,0.0,False,cpu,\n"]


@pytest.fixture
def paths(tmp_path):
    """A missing file, a directory, a path under a file, a loop of symbolic links."""
    (tmp_path / "dir").mkdir()
    (tmp_path / "file").write_text("mine")
    (tmp_path / "loop1").symlink_to(tmp_path / "loop2")
    (tmp_path / "loop2").symlink_to(tmp_path / "loop1")
    return {"missing": (tmp_path / "typo.csv", "does not exist; check the path"),
            "directory": (tmp_path / "dir", "is a directory"),
            "under a file": (tmp_path / "file" / "r.csv", "is a file, not a directory"),
            "loop": (tmp_path / "loop1", "loop of symbolic links")}


# ------------------------------------------------------------------ status, report, drop: a results file to read

@pytest.mark.parametrize("kind", ["missing", "directory", "under a file", "loop"])
@pytest.mark.parametrize("command", ["status", "report", "drop"])
def test_a_results_file_to_read_that_is_not_one_exits_2_naming_it(command, kind, paths, capsys):
    path, words = paths[kind]
    args = {"status": ["status", "--profile", "smoke", "--results", path], "report": ["report", path],
            "drop": ["drop", "--results", path, "--cell", "temporal_order:10"]}[command]
    code, lines = run_cli(capsys, *args)
    one_line(lines, code, 2, str(path), words)
    assert not (paths["missing"][0]).exists()


def test_status_of_an_unknown_profile_is_named_before_the_results_path(paths, capsys):
    code, lines = run_cli(capsys, "status", "--profile", "bogus", "--results", paths["missing"][0])
    one_line(lines, code, 2, "bogus")


@pytest.mark.parametrize("kind", ["directory", "under a file", "loop"])
def test_a_sweep_results_path_that_cannot_be_a_file_exits_2_before_anything_runs(kind, paths, capsys, monkeypatch):
    monkeypatch.setattr(sys.modules["gradreg.sweep"], "_run_pending", None)
    path, words = paths[kind]
    code, lines = run_cli(capsys, "sweep", "--profile", "smoke", "--results", path, "--no-progress")
    one_line(lines, code, 2, str(path))


@pytest.mark.parametrize("where", ["in a row", "in the header", "at the end of a row"])
def test_report_of_a_file_with_a_nul_byte_exits_2_naming_the_line(where, tmp_path, capsys):
    path = tmp_path / "r.csv"
    text = {"in a row": HEADER + ROWS[0] + ROWS[1].replace("clip", "cl\0ip"),
            "in the header": HEADER.replace("task", "ta\0sk") + ROWS[0],
            "at the end of a row": HEADER + ROWS[0].replace("\n", "\0\n")}[where]
    path.write_bytes(text.encode())
    code, lines = run_cli(capsys, "report", path)
    one_line(lines, code, 2, str(path), "NUL byte")


def test_a_half_row_of_nul_bytes_at_the_end_is_dropped_as_a_cut_short_write(tmp_path):
    from gradreg.results import load_results
    path = tmp_path / "r.csv"
    path.write_bytes((HEADER + ROWS[0]).encode() + b"\0" * 20)     # a crash after the size grew
    assert len(load_results(path)) == 1


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o444 | 0o200])
def test_drop_keeps_the_permissions_of_the_results_file(mode, tmp_path, capsys):
    path = tmp_path / "r.csv"
    path.write_text(HEADER + "".join(ROWS))
    path.chmod(mode)
    code, _ = run_cli(capsys, "drop", "--results", path, "--cell", "adding:10")
    assert code == 0 and path.read_text() == HEADER + "".join(ROWS[:2])
    assert path.stat().st_mode & 0o777 == mode


def test_drop_of_a_cell_with_no_rows_changes_nothing(tmp_path, capsys):
    path = tmp_path / "r.csv"
    path.write_text(HEADER + "".join(ROWS))
    code, lines = run_cli(capsys, "drop", "--results", path, "--cell", "xor:10")
    one_line(lines, code, 2, "xor:10 has no rows", "adding:10, temporal_order:10")
    assert path.read_text() == HEADER + "".join(ROWS)


# ------------------------------------------------------------------ sweep: its checkpoints folder, before any run

def test_a_sweep_whose_checkpoints_folder_is_a_file_exits_2_before_any_run(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sys.modules["gradreg.sweep"], "_run_pending", None)
    (tmp_path / "r-checkpoints").write_text("mine")
    code, lines = run_cli(capsys, "sweep", "--profile", "smoke", "--results", tmp_path / "r.csv", "--no-progress")
    one_line(lines, code, 2, str(tmp_path / "r-checkpoints"), "is a file")
    assert (tmp_path / "r-checkpoints").read_text() == "mine"


@pytest.mark.parametrize("code_,word", [(errno.EACCES, "Permission denied"), (errno.ENOSPC, "No space left")])
def test_a_sweep_whose_checkpoints_folder_cannot_be_written_exits_1_before_any_run(code_, word, tmp_path, capsys,
                                                                                  monkeypatch):
    import gradreg.checkpoints as ckpt
    monkeypatch.setattr(sys.modules["gradreg.sweep"], "_run_pending", None)

    def refuse(*args, **kw):       # root writes anywhere: the refusal is simulated
        raise OSError(code_, os.strerror(code_), str(args[0]))
    monkeypatch.setattr(ckpt, "open", refuse, raising=False)
    code, lines = run_cli(capsys, "sweep", "--profile", "smoke", "--results", tmp_path / "r.csv", "--no-progress")
    one_line(lines, code, 1, str(tmp_path / "r-checkpoints"), word)


# ------------------------------------------------------------------ readme, notebooks: their files

@pytest.fixture
def readme(tmp_path):
    """A README with its headline markers and docs/results.md with the results markers beside it."""
    path = tmp_path / "real" / "README.md"
    _results_doc(path.parent)
    path.write_text(f"# x\n\n{HEADLINE_BEGIN}\nOLD-SECTION\n{HEADLINE_END}\n")
    return path


def _results_doc(folder):
    (folder / "docs").mkdir(parents=True)
    (folder / "docs" / "results.md").write_text(f"# results\n\n{RESULTS_BEGIN}\nOLD\n{RESULTS_END}\n")


@pytest.mark.slow
def test_readme_through_a_symbolic_link_rewrites_the_file_it_names(readme, tmp_path, capsys):
    link = tmp_path / "README.md"
    link.symlink_to(readme)
    _results_doc(tmp_path)                          # the results document beside the link
    readme.chmod(0o640)
    code, _ = run_cli(capsys, "readme", "--readme", link, "--results-dir", REPO / "data" / "results")
    assert code == 0 and link.is_symlink() and link.resolve() == readme
    assert "OLD-SECTION" not in readme.read_text() and readme.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in readme.parent.iterdir()) == ["README.md", "docs"]


@pytest.mark.parametrize("check", [[], ["--check"]])
def test_readme_given_a_directory_says_so(check, tmp_path, capsys):
    code, lines = run_cli(capsys, "readme", *check, "--readme", tmp_path)
    one_line(lines, code, 2, str(tmp_path), "is a directory")


def test_a_readme_that_is_not_utf8_is_named(readme, capsys):
    readme.write_bytes(readme.read_bytes().replace(b"# x", b"# caf\xe9"))
    code, lines = run_cli(capsys, "readme", "--check", "--readme", readme, "--results-dir", readme.parent)
    one_line(lines, code, 2, str(readme), "not UTF-8", "0xe9")


@pytest.mark.parametrize("where", ["source", "notebook"])
def test_a_notebook_file_that_is_not_utf8_is_named(where, tmp_path, capsys):
    source = tmp_path / "01_first.py"
    shutil.copy(REPO / "notebooks" / "04_tasks.py", source)
    if where == "source":
        source.write_bytes(source.read_bytes() + b"\n# caf\xe9\n")
        culprit = source
    else:
        culprit = source.with_suffix(".ipynb")
        culprit.write_bytes(b'{"caf\xe9": 1}')
    code, lines = run_cli(capsys, "notebooks", *(["--check"] if where == "notebook" else []),
                          "--notebook-dir", tmp_path)
    one_line(lines, code, 2, str(culprit), "not UTF-8")
    assert (where == "source") != culprit.with_suffix(".ipynb").exists()      # nothing written


# ------------------------------------------------------------------ the terminal, the traceback switch

def test_a_terminal_that_cannot_show_a_character_gets_a_replacement(tmp_path, capsys, monkeypatch):
    path = tmp_path / "r.csv"
    path.write_text(HEADER + "".join(ROWS))
    raw = io.BytesIO()
    out = io.TextIOWrapper(raw, encoding="ascii")     # PYTHONIOENCODING=ascii
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(cli, "run_report", lambda args: print("T = 10 \u00b1 1 \u2264 2") or 0)
    assert cli.main(["report", str(path)]) == 0
    out.flush()
    assert raw.getvalue() == b"T = 10 ? 1 ? 2\n"


@pytest.mark.parametrize("value,shown", [("0", False), ("false", False), ("no", False), ("", False),
                                         ("1", True), ("yes", True), ("True", True)])
def test_only_a_true_gradreg_traceback_shows_the_traceback(value, shown, capsys, monkeypatch):
    def fail(args):
        raise RuntimeError("boom")
    monkeypatch.setattr(cli, "run_report", fail)
    monkeypatch.setenv("GRADREG_TRACEBACK", value)
    if shown:
        with pytest.raises(RuntimeError, match="boom"):
            cli.main(["report", "r.csv"])
    else:
        code, lines = run_cli(capsys, "report", "r.csv")
        one_line(lines, code, 1, "unexpected RuntimeError: boom")


# ------------------------------------------------------------------ train: the size check names the field

@pytest.mark.parametrize("args,words", [
    (["--protocol", "chernodub", "--validation-size", "10000000000"],
     ["validation_size (10,000,000,000) is the largest part: lower validation_size"]),
    (["--train-set-size", "1000000000000"], ["train_set_size (1,000,000,000,000) is the largest part"]),
    (["--test-size", "10000000000"], ["test_size (10,000,000,000) is the largest part"]),
    (["--method", "sgr", "--batch-size", "1000000", "--pool-factor", "100000"],
     ["the step is the largest part: lower batch_size x pool_factor (1000000 x 100000)"]),
    (["--method", "sgd", "--hidden-size", "10000000"], ["the step is the largest part", "hidden_size (10000000)"]),
])
def test_a_run_too_large_for_memory_names_the_field_that_makes_it_so(args, words, capsys):
    code, lines = run_cli(capsys, "train", "--no-progress", "--device", "cpu", *args)
    one_line(lines, code, 2, "of memory", *words)


# ------------------------------------------------------------------ more inputs on the same commands

def test_an_empty_results_path_is_named_as_empty(capsys):
    for args in (["status", "--profile", "smoke", "--results", ""], ["report", ""]):
        code, lines = run_cli(capsys, *args)
        one_line(lines, code, 2, "results file path is empty")


def test_status_refuses_a_results_file_of_the_other_protocol(tmp_path, capsys):
    """The authors' profile's keys are keys of the paper profile too: its rows must not count."""
    path = tmp_path / "paper.csv"
    path.write_text(HEADER + "".join(ROWS))
    code, lines = run_cli(capsys, "status", "--profile", "authors", "--results", path)
    one_line(lines, code, 2, str(path), "not a results file of this sweep's protocol", "test_success")


def test_drop_of_a_seed_with_no_rows_names_the_seeds_there(tmp_path, capsys):
    path = tmp_path / "r.csv"
    path.write_text(HEADER + "".join(ROWS))
    code, lines = run_cli(capsys, "drop", "--results", path, "--cell", "temporal_order:10", "--seed", "-1")
    one_line(lines, code, 2, "seed -1 has no rows", "allowed: 0, 1")
    assert path.read_text() == HEADER + "".join(ROWS)


def test_drop_from_a_file_without_rows_says_so(tmp_path, capsys):
    path = tmp_path / "r.csv"
    path.write_text(HEADER)
    code, lines = run_cli(capsys, "drop", "--results", path, "--cell", "adding:10")
    one_line(lines, code, 2, "cells there: none (it has no rows)")


@pytest.mark.parametrize("kind,words", [("missing", "does not exist"), ("file", "is a file")])
def test_a_notebook_directory_that_is_not_one_says_what_it_is(kind, words, tmp_path, capsys):
    path = tmp_path / "nb"
    if kind == "file":
        path.write_text("mine")
    code, lines = run_cli(capsys, "notebooks", "--check", "--notebook-dir", path)
    one_line(lines, code, 2, f"notebook directory {path} {words}")


def test_a_checkpoints_argument_that_is_an_empty_path_is_refused():
    from gradreg import TrainConfig, train
    with pytest.raises(ValueError, match="checkpoints directory path is empty"):
        train(TrainConfig(max_iterations=1, device="cpu"), checkpoints="")


# ------------------------------------------------------------------ sweep, figures, train, report: paths, schedulers


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


def test_cli_train_too_large_for_memory_is_refused_before_allocating(capsys):
    code, lines = run_cli(capsys, "train", "--length", "1000000000", "--no-progress")
    one_line(lines, code, 2, "T=1000000000 needs about", "TB of memory", "available", "or length (1,000,000,000)")


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


# ------------------------------------------------------------------ Ctrl-C


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
