"""What several test files share: the command line called in this process and its one-line
errors, `python -m gradreg` in a fresh one, and a few rows of a results file."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from gradreg import cli
from gradreg.results import COLUMNS

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
