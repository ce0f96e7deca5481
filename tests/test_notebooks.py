"""The numbered notebooks: committed clean, parameterised, and each runs at the smoke profile.

Each notebook is executed through papermill (`gradreg.notebook_runner.run_notebooks`, the same path
as `make figures`) into a temporary output directory, once per session (the `smoke_notebooks`
fixture: the slides tests convert the same executed copies); the test checks that the figures
it promises were written as valid, non-empty PNG (and PDF) files, and that the exercises at
the end of notebooks 01-05 ran with every check cell passing. A failing cell fails the test
with the notebook, the cell index and the cell's first line in the message.
"""
from __future__ import annotations

import struct
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import nbformat
import pandas as pd
import pytest

from gradreg import analysis, cli, notebook_runner, notebook_sources, plotting, teaching
from gradreg.experiments import long_range, settings
from gradreg.results import load_results

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = ROOT / "notebooks"

EXPECTED_FIGURES = {
    "01_vanishing_gradients": ["01_delta_profiles", "01_bound_check"],
    "02_per_example_estimation": ["02_score_distributions", "02_scores_training", "02_cost"],
    "03_minibatch_theory": ["03_minibatch_theory", "03_selection_rules"],
    "04_tasks": ["04_task_gallery", "04_relevant_positions"],
    "05_training": ["05_learning_curves", "05_long_term_norm"],
    "06_long_range": ["06_time_to_solve", "06_confirm_time_to_solve", "06_success_rate",   # confirm: committed
                      "06_examples_to_solve"],
    "07_protocols": ["07_relevant_positions_T50", "07_relevant_positions_T100"],
    "08_sensitivity": ["08_screen"],   # from the committed screen (data/results/screen.csv)
}
# notebook 6 reads data/results/*.csv when there is one; the test exercises the compute path
EXTRA_PARAMETERS = {"06_long_range": {"results": "compute"}}
# the notebooks that end with exercises (2 to 4 each)
WITH_EXERCISES = ["01_vanishing_gradients", "02_per_example_estimation", "03_minibatch_theory", "04_tasks",
                  "05_training"]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _all_notebooks():
    return sorted(p for p in NOTEBOOK_DIR.glob("*.ipynb"))


def test_the_numbered_notebooks_are_the_expected_ones():
    assert [p.stem for p in notebook_runner.numbered_notebooks(NOTEBOOK_DIR)] == list(EXPECTED_FIGURES)


@pytest.mark.parametrize("path", _all_notebooks(), ids=lambda p: p.name)
def test_committed_notebook_has_no_outputs(path):
    nb = nbformat.read(str(path), as_version=4)
    for k, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        assert not cell.get("outputs"), f"{path.name}: cell {k} has outputs; clear them before committing"
        assert cell.get("execution_count") is None, f"{path.name}: cell {k} has an execution count"


@pytest.mark.parametrize("stem", list(EXPECTED_FIGURES))
def test_numbered_notebook_has_parameters_cell(stem):
    nb = nbformat.read(str(NOTEBOOK_DIR / f"{stem}.ipynb"), as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{stem}: expected one cell tagged 'parameters', found {len(tagged)}"
    namespace = {}
    exec(tagged[0].source, namespace)
    assert namespace["profile"] == "quick"
    assert namespace["seed"] == 0
    assert namespace["device"] == "auto"
    assert namespace["output_dir"] == "../figures"
    assert nb.metadata["kernelspec"]["name"] == "python3"


def test_notebooks_are_in_sync_with_their_sources():
    """notebooks/NN_*.py (jupytext percent format) are the reviewable sources of the numbered
    notebooks: `make notebooks` writes the .ipynb, and a committed one must be what it writes."""
    assert [p.stem for p in notebook_sources.sources(NOTEBOOK_DIR)] == list(EXPECTED_FIGURES)
    stale = notebook_sources.stale(NOTEBOOK_DIR)
    assert not stale, f"out of date with their sources (run make notebooks): {', '.join(stale)}"


GOOD_SOURCE = """\
# %% [markdown]
# # A title
#
# Some prose.

# %% kind="params"
profile = "quick"

# %% kind="setup"
import math

# %% [markdown] slide="notes"
# Speaker notes.

# %% tags=["remove_input"]
print(math.pi)

# %% [markdown] kind="exercise"
# ### Exercise 1.1: a question

# %% kind="solution"
### BEGIN SOLUTION
x = 1
### END SOLUTION

# %% kind="check"
assert x == 1

# %% [markdown] kind="answer"
# An answer.
"""
NO_SLIDES = GOOD_SOURCE.replace(' slide="notes"', "")     # for a notebook that is not a slide deck


def test_source_header_keys_become_the_metadata(tmp_path):
    path = tmp_path / "01_vanishing_gradients.py"     # a slide notebook: every cell gets a slide type
    path.write_text(GOOD_SOURCE)
    nb = notebook_sources.build(path)
    meta = [c.metadata for c in nb.cells]
    assert [c.id for c in nb.cells] == [f"01-{k:02d}" for k in range(9)]
    assert [c.cell_type for c in nb.cells] == ["markdown", "code", "code", "markdown", "code", "markdown", "code",
                                               "code", "markdown"]
    assert [m["slideshow"]["slide_type"] for m in meta] == ["slide", "skip", "skip", "notes", "-", "subslide",
                                                            "skip", "skip", "skip"]
    assert [m.get("tags") for m in meta] == [None, ["parameters"], ["setup"], None, ["remove_input"], None, None,
                                             None, None]
    grades = {m["nbgrader"]["grade_id"]: m["nbgrader"] for m in meta if "nbgrader" in m}
    assert list(grades) == ["nb01_ex1_exercise", "nb01_ex1_solution", "nb01_ex1_check", "nb01_ex1_answer"]
    assert grades["nb01_ex1_check"] == {"grade": True, "solution": False, "locked": True, "points": 1,
                                        "grade_id": "nb01_ex1_check", "schema_version": 3, "task": False}
    assert not any("kind" in m or "slide" in m for m in meta)            # the source's keys are popped
    assert nb.cells[6].source == "### BEGIN SOLUTION\nx = 1\n### END SOLUTION"
    assert teaching.is_check(nb.cells[7])
    # outside the slide notebooks no slide metadata is written
    other = tmp_path / "04_tasks.py"
    other.write_text(NO_SLIDES)
    assert not any("slideshow" in c.metadata for c in notebook_sources.build(other).cells)


@pytest.mark.parametrize("old, new, message", [
    ("### BEGIN SOLUTION\nx = 1\n### END SOLUTION", "x = 1",
     r"08_broken\.py: cell 6 \(line 21\): a solution cell without its region"),
    ("assert x == 1", "### BEGIN SOLUTION\nassert x == 1\n### END SOLUTION",
     r"08_broken\.py: cell 7 \(line 26\): '### BEGIN SOLUTION' in a check cell"),
    ('# %% [markdown] kind="exercise"', "# %% [markdown]", r"cell 6 \(line 21\): a solution cell before the first"),
    ('kind="check"', 'kind="solution"', r"cell 7 \(line 26\): a second solution cell in exercise 1"),
    ('kind="check"', 'kind="checks"', r"cell 7 \(line 26\): kind='checks' in a code cell; allowed: code, params"),
    ('[markdown] kind="answer"', 'kind="answer"', r"cell 8 \(line 29\): kind='answer' in a code cell"),
    ('tags=["remove_input"]', 'tag=["remove_input"]', r"cell 4 \(line 15\): unknown header key\(s\) tag"),
    ('slide="notes"', 'slide="note"', r"cell 3 \(line 12\): slide= in a notebook that is not a slide deck"),
])
def test_malformed_source_is_refused_naming_the_cell(tmp_path, old, new, message):
    source = GOOD_SOURCE if "slide" in old else NO_SLIDES
    assert old in source
    path = tmp_path / "08_broken.py"
    path.write_text(source.replace(old, new))
    with pytest.raises(ValueError, match=message):
        notebook_sources.build(path)


def test_unknown_slide_type_is_refused(tmp_path):
    path = tmp_path / "02_per_example_estimation.py"
    path.write_text(GOOD_SOURCE.replace('slide="notes"', 'slide="note"'))
    with pytest.raises(ValueError, match=r"cell 3 \(line 12\): unknown slide type 'note'"):
        notebook_sources.build(path)


def test_cli_notebooks_writes_checks_and_refuses(tmp_path, capsys):
    (tmp_path / "04_tasks.py").write_text(NO_SLIDES)
    assert cli.main(["notebooks", "--check", "--notebook-dir", str(tmp_path)]) == 1
    assert "out of date with their sources (run make notebooks): 04_tasks.ipynb" in capsys.readouterr().err
    assert cli.main(["notebooks", "--notebook-dir", str(tmp_path)]) == 0
    nbformat.validate(nbformat.read(str(tmp_path / "04_tasks.ipynb"), as_version=4))
    assert cli.main(["notebooks", "--check", "--notebook-dir", str(tmp_path)]) == 0
    (tmp_path / "05_training.ipynb").write_text("{}")                       # a notebook without a source
    assert cli.main(["notebooks", "--check", "--notebook-dir", str(tmp_path)]) == 1
    assert "05_training.ipynb (no source)" in capsys.readouterr().err
    (tmp_path / "05_training.ipynb").unlink()
    (tmp_path / "04_tasks.py").write_text(NO_SLIDES.replace('kind="check"', 'kind="checks"'))
    assert cli.main(["notebooks", "--notebook-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: 04_tasks.py: cell 7 (line 26): kind='checks'")
    assert cli.main(["notebooks", "--check", "--notebook-dir", str(tmp_path / "missing")]) == 2
    assert "missing does not exist" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert cli.main(["notebooks", "--check", "--notebook-dir", str(tmp_path / "empty")]) == 2
    assert "no notebook sources" in capsys.readouterr().err


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path.name} is not a PNG file"
    assert data[12:16] == b"IHDR", f"{path.name}: PNG without an IHDR chunk"
    return struct.unpack(">II", data[16:24])


#: The one notebook of the fast tier (make test): the quickest at the smoke profile; the others run in
#: make test-all.
FAST_NOTEBOOK = "03_minibatch_theory"


@pytest.mark.parametrize("stem", [stem if stem == FAST_NOTEBOOK else pytest.param(stem, marks=pytest.mark.slow)
                                  for stem in EXPECTED_FIGURES])
def test_notebook_runs_at_smoke_profile(stem, smoke_notebooks):
    run = smoke_notebooks(stem, EXTRA_PARAMETERS.get(stem))
    out, written, seconds = run.figures, run.written, run.seconds
    for name in EXPECTED_FIGURES[stem]:
        png, pdf = out / f"{name}.png", out / f"{name}.pdf"
        assert png in written, f"{stem} did not write {png.name}"
        assert png.stat().st_size > 5_000, f"{png.name} is suspiciously small"
        width, height = _png_size(png)
        assert 400 <= width <= 6000 and 250 <= height <= 6000, f"{png.name}: {width} x {height} pixels"
        assert pdf.is_file() and pdf.read_bytes()[:5] == b"%PDF-", f"{stem} did not write {pdf.name}"
    # the kernel ran on this interpreter (the .venv when the tests run from it)
    executed = nbformat.read(str(run.executed), as_version=4)
    text = "".join(o.get("text", "") for c in executed.cells if c.cell_type == "code" for o in c.outputs)
    assert f"python={sys.executable}" in text
    # the full edition's exercises ran, and every check cell passed (papermill stops at a failing cell)
    checks = [c for c in executed.cells if teaching.is_check(c)]
    if stem in WITH_EXERCISES:
        assert 2 <= len(checks) <= 4, f"{stem}: {len(checks)} exercises"
    for cell in checks:
        assert cell.execution_count is not None, f"{stem}: {cell.metadata.nbgrader.grade_id} did not run"
        assert not [o for o in cell.outputs if o.get("output_type") == "error"]
    assert seconds < 240, f"{stem} took {seconds:.0f} s at the smoke profile"


def test_failing_cell_is_named(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    params = nbformat.v4.new_code_cell('profile = "quick"\noutput_dir = "."')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell("x = 1"),
                nbformat.v4.new_code_cell("# boom\nraise ValueError('bad value 42')")]
    path = tmp_path / "99_broken.ipynb"
    nbformat.write(nb, str(path))
    with pytest.raises(RuntimeError, match=r"99_broken.ipynb: cell 2 failed \('# boom'\): ValueError: bad value 42"):
        notebook_runner.run_notebooks("smoke", output_dir=tmp_path / "f", build_dir=tmp_path / "b", notebooks=[path],
                              log=lambda *args: None)


# ------------------------------------------------------------------------------ helpers


def test_results_file_is_found_and_read(tmp_path):
    from gradreg.results import COLUMNS
    assert long_range.find_results("auto", tmp_path, "quick") is None
    assert long_range.find_results("compute", tmp_path) is None
    rows = pd.DataFrame({"task": "temporal_order", "length": [50, 50, 50, 100],
                         "method": ["sgr", "sgr", "clip", "lstm"],
                         "rule": ["top", "top", "", ""], "seed": [0, 1, 0, 0], "solved": [True, False, True, False],
                         "iterations": [100, 200, 300, 400], "examples": [8000, 16000, 6000, 8000],
                         "seconds": 1.0, "final_error": 0.0, "diverged": False, "device": "cpu",
                         "error": ["", "", "", "boom"]})[list(COLUMNS)]
    rows.to_csv(tmp_path / "quick.csv", index=False)
    assert long_range.find_results("auto", tmp_path, "quick") == tmp_path / "quick.csv"
    assert long_range.find_results("auto", tmp_path, "paper") is None
    rows.iloc[:0].to_csv(tmp_path / "paper.csv", index=False)
    assert long_range.find_results("auto", tmp_path, "quick") == tmp_path / "paper.csv"  # the evidence first
    table = analysis.finished_runs(load_results(tmp_path / "quick.csv"))
    assert len(table) == 3                                                      # the failed run is dropped
    assert list(table["label"]) == ["sgr/top", "sgr/top", "clip"]
    summary = analysis.summarise(table, by=("task", "length", "label"))
    top = summary[summary["label"] == "sgr/top"].iloc[0]
    assert (top["runs"], top["solved"], top["median_examples"]) == (2, 1, 8000)
    with pytest.raises(ValueError, match="does not exist"):
        long_range.find_results(str(tmp_path / "missing.csv"), tmp_path)


def test_settings_cover_every_notebook_and_profile():
    for stem in EXPECTED_FIGURES:
        for profile in settings.NOTEBOOK_PROFILES:
            settings.notebook_settings(stem, profile)
    with pytest.raises(ValueError, match="unknown profile"):
        settings.notebook_settings("01_vanishing_gradients", "huge")
    with pytest.raises(ValueError, match="unknown profile"):
        notebook_runner.run_notebooks("huge", notebooks=[])


def test_long_budget_runs_sit_beside_the_paper_runs_of_their_cells():
    """Notebook 06's five-times-budget figure: the long runs and the paper runs of the same
    (task, length, arm), labelled by budget; the paper's other cells and arms are left out."""
    common = dict(rule="", seconds=1.0, final_error=0.0, diverged=False, device="cpu", error="", examples=0)
    paper = pd.DataFrame([dict(common, task="temporal_order", length=length, method=method, seed=seed,
                               solved=seed == 0, iterations=50_000 if seed else 9_000)
                          for length in (100, 150) for method in ("pascanu", "clip") for seed in range(2)])
    long = pd.DataFrame([dict(common, task="temporal_order", length=100, method="pascanu", seed=seed, arm="",
                              solved=True, iterations=120_000) for seed in range(2)])
    km = long_range.budget_curves(paper, long)
    assert set(km["length"]) == {100}
    assert km.groupby("label")[["runs", "solved"]].first().to_dict("index") == {
        "pascanu, 250k iterations": {"runs": 2, "solved": 2}, "pascanu, 50k iterations": {"runs": 2, "solved": 1}}
    assert km["time"].max() == 120_000
    assert long_range.budget_curves(paper, long.iloc[:0]).empty
    # a long cell the paper runs do not have (notebook 06 computing small runs here) draws alone
    alone = long_range.budget_curves(paper[paper["length"] == 150], long)
    assert set(alone["label"]) == {"pascanu, 250k iterations"} and alone["low"].dtype == float
    plt.close(plotting.plot_time_to_solve(alone))


def test_the_budget_table_counts_what_the_five_times_budget_bought():
    """A run solved at the paper's budget exactly counts within it; one solved after it, one
    unsolved at 250,000 and one that raised (left out) do not."""
    common = dict(task="temporal_order", length=100, method="pascanu", rule="", seconds=1.0, final_error=0.0,
                  diverged=False, device="cpu", examples=0, arm="")
    long = pd.DataFrame([dict(common, seed=0, solved=True, iterations=50_000, error=""),
                         dict(common, seed=1, solved=True, iterations=50_100, error=""),
                         dict(common, seed=2, solved=False, iterations=250_000, error=""),
                         dict(common, seed=3, solved=True, iterations=100, error="RuntimeError: boom")])
    (row,) = long_range.budget_table(long).to_dict("records")
    assert (row["label"], row["runs"], row["solved_at_paper_budget"], row["solved_at_long_budget"]) == (
        "pascanu", 3, 1, 2)
    assert long_range.budget_table(long.iloc[:0]).empty


def test_the_plans_comparisons_read_the_long_runs_to_their_own_budget():
    """Notebook 06's table of the long profile: C1 on long runs, the areas under the test-error
    curves taken over the 250,000-iteration budget (a solved run keeps its last error to it)."""
    from gradreg import analysis
    from gradreg.profiles import LONG_MAX_ITERATIONS
    common = dict(task="temporal_order", length=100, method="sgr", seconds=1.0, final_error=0.0, diverged=False,
                  device="cpu", error="", examples=0, arm="")
    long = pd.DataFrame([dict(common, rule=rule, seed=seed, solved=rule == "top", iterations=200 if rule == "top"
                              else LONG_MAX_ITERATIONS) for rule in ("top", "random") for seed in range(3)])
    history = pd.DataFrame([dict(task="temporal_order", length=100, method="sgr", rule=rule, seed=seed, arm="",
                                 iteration=it, test_error=0.0 if rule == "top" and it == 200 else 0.5)
                            for rule in ("top", "random") for seed in range(3)
                            for it in ((100, 200) if rule == "top" else (100, LONG_MAX_ITERATIONS))])
    (row,) = analysis.plan_comparisons(long, history, [("sgr/top", "sgr/random")],
                                       budget=LONG_MAX_ITERATIONS).to_dict("records")
    assert (row["solved_first"], row["runs_first"], row["solved_second"], row["pairs"]) == (3, 3, 0, 3)
    assert row["median_area_difference"] == pytest.approx(0.5 / 2_500 - 0.5)
    assert row["hazard_ratio"] == float("inf") and row["p_logrank"] < 0.05 and row["verdict"] == "better"
