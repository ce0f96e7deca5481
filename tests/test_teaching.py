"""Teaching editions: the exercises (nbgrader format), the student edition and the slides.

* stripping follows nbgrader's rules (stub indented like the marker, whole-cell written
  answers, hidden tests dropped, malformed regions refused);
* the student edition holds no solution code and no model answer, and is otherwise the full
  edition; the zip holds it;
* the exercises: with the solutions every check cell passes, in the student edition every
  check cell fails (each exercise run alone after the set-up cell, so a failure comes from
  the stub, not from a missing earlier cell);
* the checks give nothing away: the ones that once showed a copyable value keep their
  reference in hidden tests, which the student edition drops, and the answers copied from
  what they showed (teaching.COPIED_ANSWERS) fail;
* the student edition carries the results notebook 06 reads, and a README that says how to
  install, prepare, do an exercise and hand in;
* the slides of notebooks 01-03 are produced from the executed notebooks, with figures, speaker
  notes on the main slides, code that fits a slide, no solution code and no hidden plumbing,
  and a build log without temporary paths or kernel noise (tests/test_browser.py opens them).
"""
from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest
from helpers import one_line, run_cli

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
    data = {f"student/data/results/{name}" for name in teaching.STUDENT_DATA}
    with zipfile.ZipFile(tmp_path / "student.zip") as archive:
        assert {f"student/{p.name}" for p in sources} | {"student/README.md"} | data <= set(archive.namelist())
    for name in teaching.STUDENT_DATA:
        assert (out / "data" / "results" / name).read_bytes() == (ROOT / "data" / "results" / name).read_bytes()

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
                assert after.source == before.source.replace('output_dir = "../figures"', 'output_dir = "figures"  ') \
                    .replace('results_dir = "../data/results"', 'results_dir = "data/results"  ')
            elif teaching.is_check(before):
                assert after.source == teaching._replace_regions(before.source, teaching.BEGIN_HIDDEN,
                                                                 teaching.END_HIDDEN, None)[0]
                assert teaching.BEGIN_HIDDEN not in after.source
            else:
                assert after.source == before.source


def test_student_edition_reads_its_own_results(tmp_path):
    """Notebook 06 reads the sweep from its results_dir: in the edition that is data/results
    beside the notebooks, which the edition carries."""
    out = tmp_path / "student"
    teaching.build_student(out, archive=False, log=lambda *args: None)
    nb = nbformat.read(str(out / "06_long_range.ipynb"), as_version=4)
    params = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    namespace = {}
    exec(params.source, namespace)
    assert (out / namespace["results_dir"] / "paper.csv").is_file()
    assert (out / namespace["results_dir"] / "paper-history.csv.gz").is_file()


def test_student_readme(tmp_path):
    """The students' README: where to install from and the two commands, what to do before
    class, how to do an exercise at the smoke profile, what a check says, how to hand in."""
    out = tmp_path / "student"
    teaching.build_student(out, archive=False, log=lambda *args: None)
    text = (out / "README.md").read_text()
    assert teaching.REPOSITORY_PLACEHOLDER in text and teaching.HAND_IN_PLACEHOLDER in text
    assert f"git clone {teaching.REPOSITORY_PLACEHOLDER} gradreg" in text and "make -C gradreg venv" in text
    for needed in ("Before class", 'profile = "smoke"', "set-up cell", "Handing in", "data/results"):
        assert needed in text, needed
    assert "silently" not in text, "a check that passes prints what was computed: it is not silent"
    custom = teaching.build_student(tmp_path / "other", archive=False, log=lambda *args: None,
                                    repository="https://example.org/gradreg.git", hand_in="the course page, by Friday")
    text = (custom[0].parent / "README.md").read_text()
    assert "git clone https://example.org/gradreg.git gradreg" in text and "the course page, by Friday" in text


#: exercises whose checks keep a secret in nbgrader's hidden-test region
HIDDEN = ("nb01_ex1_check", "nb01_ex2_check", "nb03_ex3_check")


def test_checks_give_nothing_away():
    """The checks that once showed a value an answer could copy keep their reference in a
    hidden-test region, which the student edition drops; no copied answer's numbers remain in
    the student's check cells; no assert message formats a reference value."""
    checks = {}
    for stem in WITH_EXERCISES:
        nb = nbformat.read(str(NOTEBOOK_DIR / f"{stem}.ipynb"), as_version=4)
        for cell in nb.cells:
            if teaching.is_check(cell):
                checks[teaching.nbgrader_meta(cell)["grade_id"]] = cell
    for grade_id in HIDDEN:
        source = checks[grade_id].source
        assert teaching.BEGIN_HIDDEN in source and teaching.END_HIDDEN in source, grade_id
        student = teaching.strip_cell(checks[grade_id]).source
        assert teaching.BEGIN_HIDDEN not in student and "assert" in student
    student_checks = {k: teaching.strip_cell(c).source for k, c in checks.items()}
    assert "0.95" not in student_checks["nb01_ex1_check"]
    assert "101" not in student_checks["nb03_ex3_check"] and "50 / n" not in student_checks["nb03_ex3_check"]
    copied = {solution.replace("_solution", "_check") for solution, _, _ in teaching.COPIED_ANSWERS}
    assert {"nb01_ex1_check", "nb03_ex3_check"} <= copied <= set(checks)
    for grade_id, source in student_checks.items():
        for line in source.splitlines():   # a message naming the right value: "..., not {expected}"
            assert not re.search(r"assert .*, f\".*\bnot \{", line), f"{grade_id}: {line.strip()}"


def test_exercise_prompts_stand_on_a_slide():
    """An exercise's question is a slide of its own, without its answer cell: it says where
    its data come from instead of pointing at code "below"."""
    for stem in WITH_EXERCISES:
        nb = nbformat.read(str(NOTEBOOK_DIR / f"{stem}.ipynb"), as_version=4)
        for cell in nb.cells:
            meta = teaching.nbgrader_meta(cell)
            if cell.cell_type == "markdown" and meta and not meta.get("grade"):
                assert " below" not in cell.source, f"{meta['grade_id']} points at code below"


def _toy_exercise_notebook(path):
    """A notebook of one exercise (answer: the square of 7; the hidden test knows 49)."""
    from gradreg.notebook_sources import NBGRADER
    params = nbformat.v4.new_code_cell('profile = "quick"\noutput_dir = "."')
    params.metadata["tags"] = ["parameters"]
    setup = nbformat.v4.new_code_cell("base = 7")
    setup.metadata["tags"] = ["setup"]
    cells = [params, setup]
    for kind, source in (("exercise", "Square `base`."),
                         ("solution", "### BEGIN SOLUTION\nanswer = base ** 2\n### END SOLUTION"),
                         ("check", "assert answer > base\n### BEGIN HIDDEN TESTS\nassert answer == 49\n"
                                   "### END HIDDEN TESTS\nprint(answer)")):
        cell = nbformat.v4.new_markdown_cell(source) if kind == "exercise" else nbformat.v4.new_code_cell(source)
        cell.metadata["nbgrader"] = dict(NBGRADER[kind], grade_id=f"nb09_ex1_{kind}", schema_version=3)
        cells.append(cell)
    nb = nbformat.v4.new_notebook()
    nb.cells = cells
    nbformat.write(nb, str(path))
    return path


def test_copied_answers_are_run_against_the_hidden_tests(tmp_path):
    """check_copied_answers puts each copied answer in place of the solution and runs the full
    check, hidden tests included: an answer that passes the visible asserts only is rejected,
    the right answer is not."""
    path = _toy_exercise_notebook(tmp_path / "09_toy.ipynb")
    copied = (("nb09_ex1_solution", "a number that passes the visible assert", "answer = 50"),
              ("nb09_ex1_solution", "the right answer", "answer = base * base"))
    results = teaching.check_copied_answers([path], copied=copied, timeout=60)
    assert [r["rejected"] for r in results] == [True, False]
    assert results[0]["grade_id"] == "nb09_ex1_check" and results[0]["error"] == "AssertionError"
    student = teaching.check_exercises([path], student=True, timeout=60)
    assert [r["passed"] for r in student] == [False, False]


@pytest.mark.slow
def test_copied_answers_fail():
    """Every answer of teaching.COPIED_ANSWERS (copied from what a check once showed) fails its
    check in the full edition, as `python -m gradreg student --check` confirms."""
    notebooks = [NOTEBOOK_DIR / f"{stem}.ipynb" for stem in WITH_EXERCISES]
    results = teaching.check_copied_answers(notebooks)
    assert len(results) == len(teaching.COPIED_ANSWERS)
    accepted = [f"{r['grade_id']}: {r['what']}" for r in results if not r["rejected"]]
    assert not accepted, "copied answers accepted:\n" + "\n".join(accepted)


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
    done = subprocess.run([sys.executable, "-m", "gradreg", "student", "--output-dir", str(tmp_path / "s"),
                           "--repository", "https://example.org/gradreg.git", "--hand-in", "by mail, Friday"],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "s" / "01_vanishing_gradients.ipynb").is_file()
    readme = (tmp_path / "s" / "README.md").read_text()
    assert "git clone https://example.org/gradreg.git gradreg" in readme and "by mail, Friday" in readme
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


#: the longest code line a 1280-pixel slide shows whole (16 px code font, with the prompt)
SLIDE_LINE = 100


def test_slides_fit_and_have_notes():
    """Code shown on a slide fits its width; every deck has speaker notes on its main slides
    that say what to point at (not how the notebook is run)."""
    for stem in teaching.SLIDE_NOTEBOOKS:
        nb = nbformat.read(str(NOTEBOOK_DIR / f"{stem}.ipynb"), as_version=4)
        notes = []
        for cell in nb.cells:
            kind = cell.metadata.get("slideshow", {}).get("slide_type")
            if kind == "notes":
                notes.append(cell.source)
            if cell.cell_type == "code" and kind != "skip" and "remove_input" not in cell.metadata.get("tags", []):
                for line in cell.source.splitlines():
                    assert len(line) <= SLIDE_LINE, f"{stem}: a {len(line)}-character line on a slide: {line!r}"
        slides = sum(c.metadata.get("slideshow", {}).get("slide_type") == "slide" for c in nb.cells)
        assert len(notes) >= min(slides, 5), f"{stem}: speaker notes on {len(notes)} of {slides} slides"
        for text in notes:
            assert text.startswith("*For the lecturer.*") and len(text) > 150, text[:80]
            assert "profile" not in text and "gradreg." not in text, "notes about the plumbing"


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


@pytest.mark.slow
def test_slides_build_log_is_clean(tmp_path, capfd):
    """Building the slides (executing the notebooks, smoke profile) logs one line per notebook
    and a summary: no figure paths in a temporary folder, nothing from the kernels."""
    lines = []
    teaching.build_slides(tmp_path / "slides", profile="smoke", reveal="cdn", log=lines.append)
    captured = capfd.readouterr()
    assert len(lines) == 2 * len(teaching.SLIDE_NOTEBOOKS) + 1, lines
    assert not any("gradreg-slides-" in line or line.startswith("  ") for line in lines), lines
    assert "KeyboardInterrupt" not in captured.err + captured.out
    assert "Traceback" not in captured.err + captured.out


# ------------------------------------------------------------------ the output directory


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
