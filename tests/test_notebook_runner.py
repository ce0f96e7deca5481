"""gradreg.notebook_runner: notebooks through papermill, their kernels over IPC, and a failing
cell named with its notebook and problem."""
from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from gradreg import notebook_runner


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
