"""The two-command set-up promises: one pinned set, the API of docs/method.md section 9."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

import gradreg

ROOT = Path(__file__).resolve().parents[1]


def _pins(lines):
    return {m.group(1).lower(): m.group(2) for m in
            (re.match(r"^\s*-?\s*([A-Za-z0-9_.\-]+)==([^\s#]+)", line) for line in lines) if m}


def test_environment_yml_agrees_with_the_lock():
    lock = _pins((ROOT / "constraints.txt").read_text().splitlines())
    env = _pins((ROOT / "environment.yml").read_text().splitlines())
    assert lock["torch"] == "2.13.0"
    assert env == lock


def test_every_direct_dependency_is_locked():
    import tomllib
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lock = _pins((ROOT / "constraints.txt").read_text().splitlines())
    needs = project["dependencies"] + [d for group in project["optional-dependencies"].values() for d in group]
    for need in needs:
        name = re.split(r"[=<>\[ ]", need)[0].lower()
        assert name in lock, f"{name} is not pinned in constraints.txt"


def test_public_api_names():
    for name in ("make_task", "SRN", "per_example_stats", "TrainConfig", "train", "TASK_NAMES"):
        assert hasattr(gradreg, name)
    task = gradreg.make_task("temporal_order", length=100)
    assert (task.name, task.length, task.input_size, task.output_size, task.steps) == \
        ("temporal_order", 100, 6, 4, 100)
    model = gradreg.SRN(6, 50, 4)
    assert [n for n, _ in model.named_parameters()] == ["W_in", "W_rec", "b", "W_out", "b_out"]
    config = gradreg.TrainConfig(task="temporal_order", length=50, method="sgr", seed=0, hidden_size=50,
                                 batch_size=20, lr=0.01, clip=1.0, rule="top", pool_factor=4, lag=None,
                                 max_iterations=50_000, check_every=100, device="auto")
    assert config.pool_size == 80


# ------------------------------------------------------------------ the package's lazy attribute


@pytest.mark.slow  # a fresh process
def test_lazy_sweep_attribute_works_in_a_fresh_process():
    code = ("import gradreg\n"
            "assert gradreg.sweep.load_results is not None\n"
            "from gradreg import sweep\n"
            "assert sweep is gradreg.sweep\n"
            "try:\n    gradreg.nothing\nexcept AttributeError as e:\n    print('ok', e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "ok module 'gradreg' has no attribute 'nothing'" in out.stdout
    out = subprocess.run([sys.executable, "-c", "from gradreg import sweep; print(sweep.KEY)"],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0 and "RecursionError" not in out.stderr, out.stderr[-2000:]
