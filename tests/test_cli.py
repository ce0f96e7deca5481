"""The command line's answers to bad paths and faults (issue 34): one line on stderr, exit 2 for
the user's argument and 1 for the environment, nothing of the user's overwritten. Each case calls
`gradreg.cli.main` in this process (no interpreter start)."""
from __future__ import annotations

import errno
import io
import os
import shutil
import sys
from pathlib import Path

import pytest

from gradreg import cli
from gradreg.readme import HEADLINE_BEGIN, HEADLINE_END, RESULTS_BEGIN, RESULTS_END
from gradreg.results import COLUMNS

REPO = Path(__file__).resolve().parents[1]
HEADER = ",".join(COLUMNS) + "\n"
ROWS = ["temporal_order,10,sgd,,0,True,200,4000,0.5,0.0,False,cpu,\n",
        "temporal_order,10,clip,,1,False,300,6000,0.75,0.5,False,cpu,\n",
        "adding,10,sgd,,0,True,200,4000,0.5,0.0,False,cpu,\n"]


def run_cli(capsys, *args):
    code = cli.main([str(a) for a in args])
    return code, capsys.readouterr().err.strip().splitlines()


def one_line(lines, code, expected_code, *words):
    assert code == expected_code, lines
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    for w in words:
        assert w in lines[0], lines


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
