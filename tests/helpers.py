"""What several test files share: the command line called in this process and its one-line
errors, `python -m gradreg` in a fresh one, a few rows of a results file, and the replay of
committed runs' first checks."""
from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pandas as pd

from gradreg import cli, train_many
from gradreg.profiles import profile_configs
from gradreg.results import COLUMNS, KEY, config_key, load_history, row_key

REPO = Path(__file__).resolve().parents[1]
HEADER = ",".join(COLUMNS) + "\n"
ROW_SGD = "temporal_order,10,sgd,,0,True,200,4000,0.5,0.0,False,cpu,"
ROW_SGR = "temporal_order,10,sgr,top,0,False,100,8000,0.25,nan,True,cpu,"
ROW_CLIP = "temporal_order,10,clip,,1,False,300,6000,0.75,0.5,False,cpu,"


def run_cli(capsys, *args):
    """gradreg.cli.main in this process (no interpreter start): (exit code, stderr lines)."""
    code = cli.main([str(a) for a in args])
    return code, capsys.readouterr().err.strip().splitlines()


def one_line(lines, code, expected_code, *words):
    """The command's answer was one error line, without a traceback, naming every word."""
    assert code == expected_code, lines
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert "Traceback" not in lines[0]
    for w in words:
        assert w in lines[0], lines


def python_m(*args, timeout=300, **kw):
    """`python -m gradreg ARGS` in a fresh process, from the repository: the real entry point."""
    return subprocess.run([sys.executable, "-m", "gradreg", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO, **kw)


def assert_first_checks_replay(profile: str, keys) -> None:
    """The committed runs of `profile` named by `keys` (rows with the columns of KEY): their
    first two checks, rerun with the current code, are their committed history rows number for
    number (the rows were made in batched, checkpointed sweeps; full reruns are too dear for the
    50,000- and 100,000-iteration failures)."""
    configs = {config_key(c): c for c in profile_configs(profile)}
    wanted = [configs[row_key(r)] for r in keys.to_dict("records")]
    # two checks and a third that ends the run (its row is then completed by a full count)
    wanted = [dataclasses.replace(c, max_iterations=3 * c.check_every) for c in wanted]
    history = load_history(REPO / "data" / "results" / f"{profile}.csv")
    by_key = dict(iter(history.groupby(list(KEY), sort=False)))
    for config, result in zip(wanted, train_many(wanted)):
        committed = by_key[config_key(config)].drop(columns=[*KEY, "seconds"]).reset_index(drop=True)
        got = result.history.drop(columns="seconds")
        got = got[got["iteration"] < config.max_iterations]
        assert len(got) == 2 or (result.solved and len(got) >= 1), config
        got, committed = got.reset_index(drop=True), committed.iloc[:len(got)][list(got.columns)]
        # rows made before the early-exit check counted every test sequence: where the counts
        # differ, both must say "cannot be solved" (the trajectory is checked by every other column)
        same = got["test_counted"] == committed["test_counted"]
        limit = config.solved_error
        assert ((got["test_error"] > limit) & (committed["test_error"] > limit))[~same].all(), config
        for frame in (got, committed):
            frame.loc[~same, ["test_error", "test_counted"]] = -1
        pd.testing.assert_frame_equal(got, committed, check_exact=True, check_dtype=False,
                                      obj=str(config_key(config)))
