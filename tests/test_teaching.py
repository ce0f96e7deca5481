"""Teaching editions: the exercises (nbgrader format), the student edition and the slides.

* stripping follows nbgrader's rules (stub indented like the marker, whole-cell written
  answers, hidden tests dropped, malformed regions refused);
* the student edition holds no solution code and no model answer, and is otherwise the full
  edition; the zip holds it;
* the exercises: with the solutions every check cell passes, in the student edition every
  check cell fails (each exercise run alone after the set-up cell, so a failure comes from
  the stub, not from a missing earlier cell);
* the slides of notebooks 01-03 are produced from the executed notebooks, with figures, speaker
  notes, no solution code and no hidden plumbing (tests/test_browser.py opens them).
"""
from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

from gradreg import teaching
from gradreg.notebook_runner import numbered_notebooks

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
WITH_EXERCISES = ["01_vanishing_gradients", "02_per_example_estimation", "03_minibatch_theory", "04_tasks",
                  "05_training"]


def _nb(*cells):
    nb = nbformat.v4.new_notebook()
    nb.cells = list(cells)
    return nb


def _cell(kind, source, **nbgrader):
    cell = nbformat.v4.new_code_cell(source) if kind == "code" else nbformat.v4.new_markdown_cell(source)
    if nbgrader:
        cell.metadata["nbgrader"] = dict(nbgrader, grade_id="x", schema_version=3)
    return cell


def _solution_lines(source: str) -> list[str]:
    """The lines between the markers that say something (not blank, not a bare comment)."""
    lines, inside = [], False
    for line in source.splitlines():
        if teaching.BEGIN_SOLUTION in line:
            inside = True
        elif teaching.END_SOLUTION in line:
            inside = False
        elif inside and line.strip() and not line.strip().startswith("#"):
            lines.append(line.strip())
    return lines


# ------------------------------------------------------------------------------ stripping


def test_strip_cell_follows_nbgrader():
    code = _cell("code", "def f(x):\n    y = 2\n    ### BEGIN SOLUTION\n    return x * y\n    ### END SOLUTION\n",
                 solution=True, grade=False)
    code.outputs = [nbformat.v4.new_output("stream", text="4\n")]
    code.execution_count = 3
    stripped = teaching.strip_cell(code)
    assert stripped.source == "def f(x):\n    y = 2\n    # YOUR CODE HERE\n    raise NotImplementedError()\n"
    assert stripped.outputs == [] and stripped.execution_count is None
    assert code.source.count("return x * y") == 1                      # the original is untouched

    answer = teaching.strip_cell(_cell("markdown", "Because **x**.", solution=True, grade=True))
    assert answer.source == teaching.TEXT_STUB
    region = teaching.strip_cell(_cell("markdown", "Intro\n### BEGIN SOLUTION\nsecret\n### END SOLUTION\nOutro",
                                       solution=True, grade=True))
    assert region.source == "Intro\nYOUR ANSWER HERE\nOutro"
    hidden = teaching.strip_cell(_cell("code", "assert f(1) == 2\n### BEGIN HIDDEN TESTS\nassert f(5) == 10\n"
                                               "### END HIDDEN TESTS", grade=True, solution=False))
    assert hidden.source == "assert f(1) == 2"
    plain = _cell("code", "x = 1")
    assert teaching.strip_cell(plain).source == "x = 1"

    with pytest.raises(ValueError, match="not marked as a solution"):
        teaching.strip_cell(_cell("code", "### BEGIN SOLUTION\nx = 1\n### END SOLUTION"))
    with pytest.raises(ValueError, match="without"):
        teaching.strip_cell(_cell("code", "### BEGIN SOLUTION\nx = 1", solution=True))
    with pytest.raises(ValueError, match="nested"):
        teaching.strip_cell(_cell("code", "### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION",
                                  solution=True))


def test_student_notebook_writes_its_figures_beside_itself():
    params = nbformat.v4.new_code_cell('profile = "quick"\noutput_dir = "../figures"  # where')
    params.metadata["tags"] = ["parameters"]
    student = teaching.student_notebook(_nb(params))
    assert 'output_dir = "figures"' in student.cells[0].source
    assert params.source.endswith('"../figures"  # where')


# ------------------------------------------------------------------------------ the exercises


@pytest.mark.parametrize("stem", WITH_EXERCISES)
def test_exercises_are_complete(stem):
    """2-4 exercises per notebook, each a read-only question, one solution cell with its
    markers, one autograded check; nbgrader metadata (schema 3) with unique grade ids."""
    nb = nbformat.read(str(NOTEBOOK_DIR / f"{stem}.ipynb"), as_version=4)
    graded = [c for c in nb.cells if teaching.nbgrader_meta(c)]
    ids = [teaching.nbgrader_meta(c)["grade_id"] for c in graded]
    assert len(ids) == len(set(ids)), "grade ids must be unique"
    prompts = [c for c in graded if c.cell_type == "markdown" and not teaching.is_solution(c)]
    solutions = [c for c in graded if c.cell_type == "code" and teaching.is_solution(c)]
    checks = [c for c in graded if teaching.is_check(c)]
    assert 2 <= len(prompts) <= 4 and len(prompts) == len(solutions) == len(checks)
    for cell in graded:
        meta = teaching.nbgrader_meta(cell)
        assert meta["schema_version"] == 3 and set(meta) >= {"grade", "solution", "locked", "grade_id"}
        assert not meta["grade"] or meta["points"] > 0
    for cell in solutions:
        assert _solution_lines(cell.source), f"{teaching.nbgrader_meta(cell)['grade_id']}: an empty solution"
    for cell in checks:
        assert "assert" in cell.source
    # each exercise comes in order: question, solution, check (and maybe a written answer)
    kinds = [teaching.nbgrader_meta(c)["grade_id"].rsplit("_", 1)[1] for c in graded]
    assert "".join(k[0] for k in kinds).replace("a", "") == "esc" * len(prompts)


def test_student_edition(tmp_path):
    out = tmp_path / "student"
    written = teaching.build_student(out, log=lambda *args: None)
    sources = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
    assert [p.name for p in written] == [p.name for p in sources]
    assert (out / "README.md").is_file()
    with zipfile.ZipFile(tmp_path / "student.zip") as archive:
        assert {f"student/{p.name}" for p in sources} | {"student/README.md"} <= set(archive.namelist())

    for source_path in sources:
        full = nbformat.read(str(source_path), as_version=4)
        student = nbformat.read(str(out / source_path.name), as_version=4)
        nbformat.validate(student)
        text = "\n".join(c.source for c in student.cells)
        assert teaching.BEGIN_SOLUTION not in text and teaching.END_SOLUTION not in text
        assert len(student.cells) == len(full.cells)
        for before, after in zip(full.cells, student.cells):
            assert after.metadata == before.metadata and after.cell_type == before.cell_type
            if teaching.is_solution(before) and before.cell_type == "code":
                assert "# YOUR CODE HERE\n" in after.source
                assert after.source.rstrip().endswith("raise NotImplementedError()")
                for line in _solution_lines(before.source):
                    if len(line) >= 12:   # no distinctive line of the solution survives anywhere
                        assert line not in text, f"{source_path.name}: solution line {line!r} in the student edition"
            elif teaching.is_solution(before):
                assert after.source == teaching.TEXT_STUB
            elif "parameters" in before.metadata.get("tags", []):
                assert after.source == before.source.replace('output_dir = "../figures"',
                                                              'output_dir = "figures"  ')
            else:
                assert after.source == before.source


@pytest.mark.slow
def test_solutions_pass_and_stubs_fail():
    """Each notebook's exercises run on their own (parameters at smoke, the set-up cell, the
    exercise cells): with the solutions every check passes; in the student edition every
    solution cell raises NotImplementedError (or defines a function that will) and every
    check fails."""
    notebooks = [NOTEBOOK_DIR / f"{stem}.ipynb" for stem in WITH_EXERCISES]
    full = teaching.check_exercises(notebooks, profile="smoke")
    failed = [f"{r['grade_id']}: {r['error']}: {r['message']}" for r in full if not r["passed"]]
    assert not failed, "with the solutions:\n" + "\n".join(failed)
    assert sum(r["kind"] == "check" for r in full) >= 2 * len(notebooks)

    student = teaching.check_exercises(notebooks, profile="smoke", student=True)
    assert [r["grade_id"] for r in student] == [r["grade_id"] for r in full]
    for r in student:
        if r["kind"] == "check":
            assert not r["passed"], f"{r['grade_id']} passes on the stub"
        else:
            assert r["passed"] or r["error"] == "NotImplementedError", f"{r['grade_id']}: {r['error']}"


@pytest.mark.slow  # three fresh processes
def test_cli_student_and_bad_slides_options(tmp_path):
    done = subprocess.run([sys.executable, "-m", "gradreg", "student", "--output-dir", str(tmp_path / "s")],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "s" / "01_vanishing_gradients.ipynb").is_file()
    for option in (["--reveal", "bogus"], ["--profile", "huge"]):
        done = subprocess.run([sys.executable, "-m", "gradreg", "slides", "--output-dir", str(tmp_path / "x"),
                               *option], capture_output=True, text=True, cwd=ROOT)
        assert done.returncode == 2 and done.stderr.startswith("error:") and len(done.stderr.splitlines()) == 1
        assert "Traceback" not in done.stderr


# ------------------------------------------------------------------------------ slides


def test_slide_metadata():
    seen = set()
    for path in numbered_notebooks(NOTEBOOK_DIR):
        nb = nbformat.read(str(path), as_version=4)
        types = [c.metadata.get("slideshow", {}).get("slide_type") for c in nb.cells]
        if path.stem not in teaching.SLIDE_NOTEBOOKS:
            assert set(types) == {None}, f"{path.stem} is not a slide deck"
            continue
        assert set(types) <= set(teaching.SLIDE_TYPES) and types[0] == "slide"
        assert {"slide", "subslide", "skip"} <= set(types)
        seen |= set(types)
        for cell, kind in zip(nb.cells, types):
            if teaching.nbgrader_meta(cell) and not teaching.nbgrader_meta(cell).get("locked") or \
                    teaching.is_check(cell) or set(cell.metadata.get("tags", [])) & {"parameters", "setup"}:
                assert kind == "skip", "solutions, answers, checks, parameters and set-up stay off the slides"
    assert "notes" in seen, "speaker notes somewhere"


@pytest.mark.slow
def test_slides_are_built(tmp_path, smoke_notebooks):
    for stem in teaching.SLIDE_NOTEBOOKS:
        smoke_notebooks(stem)
    out = tmp_path / "slides"
    written = teaching.build_slides(out, profile="smoke", executed_dir=smoke_notebooks.executed_dir, reveal="cdn",
                                    log=lambda *args: None)
    assert [p.name for p in written] == [f"{stem}.slides.html" for stem in teaching.SLIDE_NOTEBOOKS]
    index = (out / "index.html").read_text()
    for stem in teaching.SLIDE_NOTEBOOKS:
        html = (out / f"{stem}.slides.html").read_text()
        source = nbformat.read(str(NOTEBOOK_DIR / f"{stem}.ipynb"), as_version=4)
        title = teaching.notebook_title(source)
        assert f"<title>{title} slides</title>" in html and title in index
        assert "https://unpkg.com/reveal.js" in html                  # reveal="cdn": nbconvert's default
        assert html.count("<section") >= 10
        assert html.count("data:image/png;base64") >= 2, "the figures are embedded"
        assert '<aside class="notes">' in html or stem != "01_vanishing_gradients"
        assert 'profile = "smoke"' not in html, "papermill's injected parameters are on a slide"
        assert "plotting.save_figure" not in html, "plumbing of figure cells (remove_input) is on a slide"
        for cell in source.cells:
            if teaching.is_solution(cell) and cell.cell_type == "code":
                for line in _solution_lines(cell.source):
                    if len(line) >= 12:
                        assert line not in html, f"{stem}: solution line {line!r} on a slide"
