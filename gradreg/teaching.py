"""Teaching editions of the notebooks: the student edition and the lecture slides.

The exercises at the end of notebooks 01-05 follow nbgrader's conventions, so that a teacher
who uses nbgrader can take the notebooks as assignments, while nothing here needs nbgrader:

* a **solution cell** (metadata ``nbgrader.solution``) holds its answer between the lines
  ``### BEGIN SOLUTION`` and ``### END SOLUTION``; the student edition replaces the region with
  ``# YOUR CODE HERE`` / ``raise NotImplementedError()`` (indented like the marker), and a
  markdown solution cell without markers (a written answer) with ``YOUR ANSWER HERE``;
* a **check cell** (``nbgrader.grade`` and not ``solution``) holds asserts; it passes with the
  solution and fails on the stub (`check_exercises` runs both editions and says so);
* ``### BEGIN HIDDEN TESTS`` / ``### END HIDDEN TESTS`` regions are dropped from the student
  edition, as nbgrader does. A check shows no value an answer could copy: what it compares
  with is computed and not printed, and where the comparison itself would give the answer
  away (a reference computed the way the answer is), it sits in a hidden region;
  `check_copied_answers` runs the answers of `COPIED_ANSWERS`, copied from what checks once
  showed, and confirms that each is rejected.

    build_student("build/student")         # = python -m gradreg student   (make student)
    build_slides("build/slides")           # = python -m gradreg slides    (make slides)

Slides: notebooks 01-03 are executed with papermill at a profile (the figures are embedded
in the HTML), then converted by nbconvert's reveal.js exporter; each cell's
``metadata.slideshow.slide_type`` (slide, subslide, fragment, notes, skip, "-") is set by
the notebooks' sources notebooks/NN_*.py (`gradreg.notebook_sources`, ``make notebooks``), and
cells tagged ``remove_input`` show their output only. reveal.js,
require.js, jQuery and MathJax are either loaded from their CDNs when the slides are shown
(``reveal="cdn"``: nbconvert's default, one HTML file per deck, needs internet in the lecture
hall) or installed from npm at build time into ``<output>/vendor/`` (``reveal="npm"``: the
folder works offline, from a USB stick). ``reveal="auto"`` (the default) uses npm when the
``npm`` command is there and the registry answers, else the CDNs, and says which.
"""
from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import nbformat

from .experiments.settings import NOTEBOOK_PROFILES
from .notebook_runner import NOTEBOOK_DIR

BEGIN_SOLUTION, END_SOLUTION = "BEGIN SOLUTION", "END SOLUTION"
BEGIN_HIDDEN, END_HIDDEN = "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"
CODE_STUB = "# YOUR CODE HERE\nraise NotImplementedError()"
TEXT_STUB = "YOUR ANSWER HERE"

#: answers a student could write by copying what an earlier version of a check cell printed or
#: asserted, with no computation: (solution grade id, what was copied, the code that replaces
#: the solution region). `check_copied_answers` confirms that the check cells reject each one.
COPIED_ANSWERS = (
    ("nb01_ex1_solution", "rho = 0.95 from the sparse init, gelfand from norm2 and rho",
     "norm2 = torch.linalg.matrix_norm(W, ord=2).item()\nrho = 0.95\n"
     "gelfand = {1: norm2, 10: norm2, 100: 0.95}"),
    ("nb01_ex2_solution", "bptt's own deltas returned instead of the recursion",
     "return rec.delta[:-1]"),
    ("nb03_ex3_solution", "the prediction ||mu||^2 + sigma^2/n as the measurement, n_star = 101",
     "measured = {n: 0.5 + 50 / n for n in (1, 4, 16, 64)}\nn_star = 101"),
    ("nb03_ex3_solution", "the prediction with made-up scatter as the sample",
     "samples = {n: 0.5 + 50 / n + 0.01 * torch.randn(2000, generator=gen, dtype=torch.float64)\n"
     "           for n in (1, 4, 16, 64)}\n"
     "measured = {n: s.mean().item() for n, s in samples.items()}\nn_star = 101"),
)

#: the notebooks that become slides
SLIDE_NOTEBOOKS = ("01_vanishing_gradients", "02_per_example_estimation", "03_minibatch_theory")
#: the JavaScript the offline slides need, pinned (npm package -> version)
VENDOR_PACKAGES = {"reveal.js": "4.0.2", "requirejs": "2.3.7", "jquery": "3.7.1", "mathjax": "2.7.9"}
#: what of each package the slides load (paths inside node_modules/<package>/), nothing else
VENDOR_FILES = {
    "reveal.js": ["LICENSE", "dist", "plugin/notes"],
    "requirejs": ["require.js"],                 # its licence (MIT) is in the file's header
    "jquery": ["LICENSE.txt", "dist/jquery.min.js"],
    "mathjax": ["LICENSE", "MathJax.js", "config/TeX-AMS_CHTML-full.js", "config/Safe.js", "extensions",
                "jax/input/TeX", "jax/element", "jax/output/CommonHTML", "jax/output/PreviewHTML",
                "fonts/HTML-CSS/TeX/woff", "localization/en"],
}
#: slide types nbconvert's reveal exporter knows
SLIDE_TYPES = ("slide", "subslide", "fragment", "notes", "skip", "-")


# =============================================================================================
# the student edition


def nbgrader_meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def is_solution(cell) -> bool:
    return bool(nbgrader_meta(cell).get("solution", False))


def is_check(cell) -> bool:
    """An autograded test cell: graded code, not a solution."""
    meta = nbgrader_meta(cell)
    return cell.cell_type == "code" and bool(meta.get("grade", False)) and not meta.get("solution", False)


def _replace_regions(source: str, begin: str, end: str, stub: str | None) -> tuple[str, bool]:
    """Replace every line range from a line containing `begin` to one containing `end`
    (both included) by `stub`, indented like the begin line (`stub` None: by nothing)."""
    out, inside, found = [], False, False
    for line in source.split("\n"):
        if begin in line:
            if inside:
                raise ValueError(f"nested {begin!r} regions")
            inside, found = True, True
            if stub is not None:
                indent = re.match(r"\s*", line).group(0)
                out.extend(indent + s for s in stub.split("\n"))
        elif end in line:
            if not inside:
                raise ValueError(f"{end!r} without {begin!r}")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError(f"{begin!r} without {end!r}")
    return "\n".join(out), found


def strip_cell(cell):
    """The student version of one cell (a copy): solution regions replaced by the stub, hidden
    tests removed, outputs cleared. A region outside a solution cell is an error (nbgrader
    would not know the cell's grade id)."""
    cell = copy.deepcopy(cell)
    stub = CODE_STUB if cell.cell_type == "code" else TEXT_STUB
    try:
        cell.source, replaced = _replace_regions(cell.source, BEGIN_SOLUTION, END_SOLUTION, stub)
        cell.source, _ = _replace_regions(cell.source, BEGIN_HIDDEN, END_HIDDEN, None)
    except ValueError as error:
        raise ValueError(f"cell {cell.get('id', '?')}: {error}") from None
    if replaced and not is_solution(cell):
        raise ValueError(f"cell {cell.get('id', '?')}: a solution region in a cell not marked as a solution "
                         "(metadata nbgrader.solution)")
    if is_solution(cell) and not replaced:
        cell.source = stub          # a whole-cell answer (nbgrader: the cell becomes the stub)
    if cell.cell_type == "code":
        cell.outputs, cell.execution_count = [], None
    return cell


def student_notebook(nb):
    """The student edition of a notebook (a copy): every cell through `strip_cell`, and the
    figures written next to the notebook (output_dir "figures") rather than to ../figures, and
    the results read from data/results beside it rather than from ../data/results."""
    nb = copy.deepcopy(nb)
    nb.cells = [strip_cell(c) for c in nb.cells]
    for cell in nb.cells:
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            cell.source = re.sub(r'^output_dir = "\.\./figures"', 'output_dir = "figures"  ', cell.source,
                                 flags=re.M)
            # the edition carries data/results/ beside the notebooks (STUDENT_DATA)
            cell.source = re.sub(r'^results_dir = "\.\./data/results"', 'results_dir = "data/results"  ',
                                 cell.source, flags=re.M)
    return nb


#: what of data/results/ the edition carries: the sweep notebook 06 reads (the paper's grid), with
#: the learning curves of its runs and the folder's README
STUDENT_DATA = ("paper.csv", "paper-history.csv.gz", "README.md")
DATA_DIR = NOTEBOOK_DIR.parent / "data" / "results"

#: the address students install gradreg from: the lecturer fills it in (README of the edition)
REPOSITORY_PLACEHOLDER = "<REPOSITORY-URL: the lecturer fills in the address of the gradreg repository>"

STUDENT_README = """\
# gradreg: student edition

These are the notebooks of `gradreg` (a reproduction of Chernodub & Nowicki 2016,
sampling-based gradient regularization for recurrent networks) with the answers to the
exercises taken out. `data/results/` holds the results of the paper's sweep, which
notebook 06 reads.

## Before class: install gradreg (once)

You need Python 3.11 or newer, git and make. In a terminal, in the folder that should hold
gradreg:

    git clone {repository} gradreg
    make -C gradreg venv

The second command makes a virtual environment `gradreg/.venv` with gradreg, JupyterLab
and their pinned versions, and the Jupyter kernel "gradreg (.venv)"; it downloads PyTorch
and takes several minutes, so do it before class. Then unzip
`student.zip`, and in a terminal in the unzipped `student` folder start JupyterLab with
`<path to>/gradreg/.venv/bin/jupyter lab`. Open `01_vanishing_gradients.ipynb`, choose the
kernel "gradreg (.venv)", set `profile = "smoke"` in the parameters cell and run it and the
set-up cell under it (the first two code cells). If they run without an error, you are
ready: bring this set-up to class, where exercise 1.2 is done.

## Doing an exercise

The exercises are at the end of notebooks 01-05. For each notebook:

1. in the parameters cell at the top, set `profile = "smoke"`;
2. run that cell and the set-up cell under it;
3. go to the section "Exercises" at the end. You do not need to run the cells in between:
   every exercise uses only what the set-up cell defines, and each runs in seconds.

Each exercise has

* a question (markdown),
* a cell for your answer: replace `raise NotImplementedError()` by your code (a few lines
  against `gradreg`); the lines above `# YOUR CODE HERE` make the data the question names:
  keep them; some exercises also ask for a written answer, in a markdown cell that says
  `YOUR ANSWER HERE`,
* a check cell under it: run it. It fails with a message when your answer is wrong, and
  otherwise prints the values you computed. It does not tell you the right values, and
  passing it is not the whole grade: the grader runs further tests, and reads the written
  answers.

The rest of each notebook (derivations, figures, notebook 05's training runs) is there to
read and to run when you like; at `profile = "quick"` it takes minutes per notebook.

## Handing in

Save each notebook you worked on (the .ipynb files, with your code and written answers;
outputs may stay) and hand them in as your lecturer asks:

    {hand_in}

Keep the file names. Do not edit the check cells or the questions: the grader runs the check cells as they were
handed out.
"""

#: how the work is handed in: the lecturer fills it in
HAND_IN_PLACEHOLDER = "<HAND-IN: the lecturer fills in where and by when>"


def _fresh_dir(output_dir: Path, ours: set[str]) -> None:
    """Make `output_dir` empty: remove what an earlier build wrote there (the names in `ours`),
    refuse a directory that holds anything else -- it is not ours to delete (`--output-dir .`
    must not empty the repository, nor `notebooks` delete the notebooks)."""
    if output_dir.exists() or output_dir.is_symlink():
        if not output_dir.is_dir() or output_dir.is_symlink():
            raise ValueError(f"output directory {output_dir} exists and is not a directory; give a new "
                             "or empty directory")
        foreign = sorted(p.name for p in output_dir.iterdir() if p.name not in ours)
        if foreign:
            more = ", ..." if len(foreign) > 3 else ""
            raise ValueError(f"output directory {output_dir} holds files this build did not write "
                             f"({', '.join(foreign[:3])}{more}); give a new or empty directory")
        shutil.rmtree(output_dir)
    try:
        output_dir.mkdir(parents=True)
    except OSError:
        blocker = next((p for p in output_dir.parents if p.exists() and not p.is_dir()), None)
        if blocker is not None:
            raise ValueError(f"output directory {output_dir} cannot be created: {blocker} is a file, "
                             "not a directory") from None
        raise


def build_student(output_dir="build/student", source_dir=NOTEBOOK_DIR, archive: bool = True, log=print,
                  data_dir=DATA_DIR, repository: str = REPOSITORY_PLACEHOLDER,
                  hand_in: str = HAND_IN_PLACEHOLDER) -> list[Path]:
    """Write the student edition of every notebook in `source_dir` to `output_dir` (emptied
    first), with a README (naming `repository` and how to `hand_in`) and data/results/ (the
    files `STUDENT_DATA` of `data_dir`); `archive`: also output_dir + ".zip". Returns the
    notebooks written."""
    output_dir = Path(output_dir)
    sources = sorted(Path(source_dir).glob("*.ipynb"))
    if not sources:
        raise ValueError(f"no notebooks in {source_dir}")
    missing = [name for name in STUDENT_DATA if not (Path(data_dir) / name).is_file()]
    if missing:
        raise ValueError(f"{data_dir} lacks {', '.join(missing)}, which the student edition carries")
    _fresh_dir(output_dir, {p.name for p in sources} | {"README.md", ".ipynb_checkpoints", "data"})
    written, solutions, exercises = [], 0, 0
    for path in sources:
        nb = nbformat.read(str(path), as_version=4)
        solutions += sum(is_solution(c) for c in nb.cells)
        exercises += sum(is_check(c) for c in nb.cells)
        student = student_notebook(nb)
        nbformat.validate(student)
        target = output_dir / path.name
        nbformat.write(student, str(target))
        written.append(target)
    (output_dir / "README.md").write_text(STUDENT_README.format(repository=repository, hand_in=hand_in))
    results = output_dir / "data" / "results"
    results.mkdir(parents=True)
    for name in STUDENT_DATA:
        shutil.copy2(Path(data_dir) / name, results / name)
    log(f"student edition: {len(written)} notebooks, {exercises} exercises, {solutions} solution cells replaced "
        f"by stubs, README.md, data/results/ ({', '.join(STUDENT_DATA)}) -> {output_dir}")
    if archive:
        zipped = shutil.make_archive(str(output_dir), "zip", root_dir=output_dir.parent, base_dir=output_dir.name)
        log(f"  and {zipped}")
    return written


# =============================================================================================
# checking the exercises: the solutions pass, the stubs fail


def exercise_cells(nb) -> list:
    """The cells an exercise run needs: the parameters cell, the set-up cell (tagged "setup")
    and every cell with nbgrader metadata. Each exercise uses only what the set-up defines."""
    keep = []
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if "parameters" in tags or "setup" in tags or nbgrader_meta(cell):
            keep.append(cell)
    return keep


def exercise_cells_in(path) -> int:
    """How many exercises the notebook at `path` has."""
    nb = nbformat.read(str(path), as_version=4)
    return sum(is_check(c) for c in nb.cells)


def _exercise_of(cell) -> str:
    """"nb01_ex1" for every cell of exercise 1.1 ("" for a cell of no exercise)."""
    return nbgrader_meta(cell).get("grade_id", "").rsplit("_", 1)[0]


def check_exercises(notebooks, profile: str = "smoke", student: bool = False, timeout: float = 300,
                    output_dir=None, answers: dict | None = None, exercises=None) -> list[dict]:
    """Run the exercises of `notebooks` (paths) in one kernel: per notebook its parameters
    cell (with `profile`), its set-up cell and its exercise cells, after a namespace reset.
    `student`: strip the solutions first. `answers`: solution grade id -> code that replaces
    that cell's solution region (indented like the marker). `exercises`: run only these
    ("nb01_ex1", ...). Returns one dict per check cell: notebook, grade_id, passed, error
    (the exception's name, "" when it passed) and message; and one per solution cell (kind
    "solution") with its error. Nothing is raised for a failing cell."""
    from nbclient import NotebookClient
    if profile not in NOTEBOOK_PROFILES:
        raise ValueError(f"unknown profile {profile!r}; allowed: {', '.join(NOTEBOOK_PROFILES)}")
    with tempfile.TemporaryDirectory(prefix="gradreg-exercises-") as tmp:
        out = Path(output_dir or tmp)
        run = nbformat.v4.new_notebook()
        run.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
        origin = []
        for path in map(Path, notebooks):
            nb = nbformat.read(str(path), as_version=4)
            if student:
                nb = student_notebook(nb)
            run.cells.append(nbformat.v4.new_code_cell("%reset -f"))
            origin.append(None)
            for cell in exercise_cells(nb):
                if exercises is not None and nbgrader_meta(cell) and _exercise_of(cell) not in exercises:
                    continue
                cell = copy.deepcopy(cell)
                grade_id = nbgrader_meta(cell).get("grade_id")
                if answers and grade_id in answers:
                    cell.source, found = _replace_regions(cell.source, BEGIN_SOLUTION, END_SOLUTION,
                                                          answers[grade_id])
                    if not found:
                        raise ValueError(f"{grade_id}: no solution region to replace")
                if "parameters" in cell.get("metadata", {}).get("tags", []):
                    cell.source += f'\nprofile = {profile!r}\noutput_dir = {str(out)!r}'
                run.cells.append(cell)
                origin.append(path.stem)
        from .notebook_runner import _ipc_kernel_manager  # over IPC: no "TCP without encryption" warning
        ipc = {"kernel_manager_class": _ipc_kernel_manager(tmp)} if os.name == "posix" and len(tmp) < 80 else {}
        client = NotebookClient(run, timeout=timeout, kernel_name="python3", allow_errors=True,
                                resources={"metadata": {"path": str(Path(notebooks[0]).parent)}}, **ipc)
        client.execute()
    results = []
    for cell, stem in zip(run.cells, origin):
        if stem is None or not (is_check(cell) or (is_solution(cell) and cell.cell_type == "code")):
            continue
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        text = "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")
        results.append(dict(notebook=stem, grade_id=nbgrader_meta(cell).get("grade_id", "?"),
                            kind="check" if is_check(cell) else "solution", passed=not errors,
                            error=errors[0]["ename"] if errors else "",
                            message=errors[0]["evalue"] if errors else "", output=text.strip()))
    return results


def check_copied_answers(notebooks, copied=COPIED_ANSWERS, profile: str = "smoke", timeout: float = 300) -> list[dict]:
    """Run each copied answer (`COPIED_ANSWERS`) in place of its solution, in the full edition
    (hidden tests included, as a grader runs them), with only its own exercise. Returns one
    dict per copied answer: grade_id (of the check), what, rejected (its check cell failed),
    error and message."""
    paths = {Path(p).name[:2]: Path(p) for p in notebooks}
    results = []
    for solution_id, what, code in copied:
        exercise = solution_id.rsplit("_", 1)[0]
        path = paths.get(exercise[2:4])
        if path is None:
            raise ValueError(f"{solution_id}: no notebook {exercise[2:4]}_* among those given")
        run = check_exercises([path], profile=profile, timeout=timeout, answers={solution_id: code},
                              exercises={exercise})
        check = next((r for r in run if r["kind"] == "check"), None)
        if check is None:
            raise ValueError(f"{solution_id}: its exercise has no check cell")
        results.append(dict(grade_id=check["grade_id"], what=what, rejected=not check["passed"],
                            error=check["error"], message=check["message"]))
    return results


# =============================================================================================
# slides


def _npm_versions(node_modules: Path) -> dict:
    found = {}
    for name in VENDOR_PACKAGES:
        meta = node_modules / name / "package.json"
        if meta.is_file():
            found[name] = json.loads(meta.read_text()).get("version")
    return found


def vendor_javascript(target, cache=None, log=print) -> Path:
    """Install VENDOR_PACKAGES from npm (into `cache`, reused when the versions match; default:
    .npm-vendor beside the slides' folder, e.g. build/.npm-vendor) and copy the files the
    slides load (VENDOR_FILES) to `target`. Raises RuntimeError if npm fails."""
    target = Path(target)
    cache = Path(cache) if cache is not None else target.parent.parent / ".npm-vendor"
    node_modules = cache / "node_modules"
    if _npm_versions(node_modules) != VENDOR_PACKAGES:
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError("npm was not found: install Node.js (with npm) for offline slides, "
                               "or build them with reveal='cdn'")
        cache.mkdir(parents=True, exist_ok=True)
        specs = [f"{name}@{version}" for name, version in VENDOR_PACKAGES.items()]
        log(f"npm install {' '.join(specs)} (into {cache})")
        done = subprocess.run([npm, "install", "--no-save", "--no-package-lock", "--no-audit", "--no-fund",
                               "--ignore-scripts", "--prefix", str(cache), *specs],
                              capture_output=True, text=True, timeout=600)
        if done.returncode != 0 or _npm_versions(node_modules) != VENDOR_PACKAGES:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            raise RuntimeError(f"npm install failed (exit {done.returncode}): {' | '.join(tail)}")
    if target.exists():
        shutil.rmtree(target)
    for name, paths in VENDOR_FILES.items():
        for rel in paths:
            src, dst = node_modules / name / rel, target / name / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            if src.is_dir():
                shutil.copytree(src, dst, ignore=shutil.ignore_patterns("*.map"))
            else:
                shutil.copy2(src, dst)
    return target


#: nbconvert settings that point the slides at the copies `vendor_javascript` makes
def _vendor_urls(prefix: str) -> dict:
    return {"reveal_url_prefix": f"{prefix}/reveal.js",
            "require_js_url": f"{prefix}/requirejs/require.js",
            "jquery_url": f"{prefix}/jquery/dist/jquery.min.js",
            "mathjax_url": f"{prefix}/mathjax/MathJax.js?config=TeX-AMS_CHTML-full,Safe",
            # nbconvert's template imports mermaid as an ES module (no diagrams here; a module
            # cannot be loaded from a file:// page, a data: URL can)
            "mermaid_js_url": "data:text/javascript,export default {initialize() {}};"}


def notebook_title(nb) -> str:
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return ""


def _slide_outputs(outputs) -> list:
    """Outputs worth a slide: no progress bars (tqdm's widgets and its stderr text)."""
    return [o for o in outputs
            if not (o.get("output_type") == "stream" and o.get("name") == "stderr")
            and "application/vnd.jupyter.widget-view+json" not in o.get("data", {})]


#: on top of nbconvert's slide style: plain-case headings of moderate size, compact tables and code
SLIDES_CSS = """<style type="text/css">
.reveal h1, .reveal h2, .reveal h3 { text-transform: none; line-height: 1.15; }
.reveal h1 { font-size: 1.9em; } .reveal h2 { font-size: 1.45em; } .reveal h3 { font-size: 1.15em; }
:root { --jp-code-font-size: 16px; }
.reveal .jp-RenderedHTMLCommon table { font-size: 14px; margin-left: 0; }
.reveal .jp-RenderedHTMLCommon td, .reveal .jp-RenderedHTMLCommon th { padding: 0.15em 0.6em; }
.reveal .jp-OutputArea-output pre { font-size: 15px; }
.reveal img { max-height: 560px; }
</style>
"""


def slides_html(nb, urls: dict | None = None) -> str:
    """reveal.js HTML of an executed notebook: papermill's injected parameters and cells
    tagged remove_cell dropped, inputs of cells tagged remove_input hidden, progress bars
    dropped; reveal.js, require.js, jQuery, MathJax from `urls` (default: nbconvert's CDNs)."""
    from nbconvert import SlidesExporter
    from traitlets.config import Config
    config = Config()
    config.TagRemovePreprocessor.enabled = True
    config.TagRemovePreprocessor.remove_cell_tags = {"injected-parameters", "remove_cell"}
    config.TagRemovePreprocessor.remove_input_tags = {"remove_input"}
    exporter = SlidesExporter(config=config)
    exporter.reveal_theme = "white"          # its fonts ship with reveal.js ("simple" fetches Google's)
    exporter.reveal_scroll = True            # a slide taller than the screen scrolls
    exporter.reveal_number = "c/t"
    exporter.reveal_width, exporter.reveal_height = "1280", "800"
    for key, value in (urls or {}).items():
        setattr(exporter, key, value)
    nb = copy.deepcopy(nb)
    nb.metadata.pop("widgets", None)
    nb.metadata["title"] = notebook_title(nb) or nb.metadata.get("title", "")
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = _slide_outputs(cell.outputs)
    body, _ = exporter.from_notebook_node(nb)
    return body.replace("</head>", SLIDES_CSS + "</head>", 1)


INDEX_HTML = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>gradreg: lecture slides</title>
<style>body {{ font-family: sans-serif; max-width: 46em; margin: 3em auto; }}</style></head>
<body><h1>gradreg: lecture slides</h1>
<p>Profile {profile}; reveal.js from {source}. Keys: arrows or space to move, <kbd>S</kbd> speaker notes,
<kbd>F</kbd> full screen, <kbd>Esc</kbd> overview.</p>
<ol>
{items}
</ol></body></html>
"""


def _npm_available() -> bool:
    return shutil.which("npm") is not None


def build_slides(output_dir="build/slides", profile: str = "quick", notebooks=SLIDE_NOTEBOOKS,
                 executed_dir=None, reveal: str = "auto", npm_cache=None, log=print) -> list[Path]:
    """reveal.js slides of `notebooks` in `output_dir` (emptied first): NAME.slides.html each
    and index.html. The notebooks are executed at `profile` with papermill (figures into a
    temporary folder) unless `executed_dir` holds executed copies (NAME.ipynb).
    `reveal`: "npm" (vendored, offline), "cdn" or "auto" (npm when it works, else cdn)."""
    from .notebook_runner import run_notebooks
    if reveal not in ("auto", "npm", "cdn"):
        raise ValueError(f"unknown reveal source {reveal!r}; allowed: auto, npm, cdn")
    if profile not in NOTEBOOK_PROFILES:
        raise ValueError(f"unknown profile {profile!r}; allowed: {', '.join(NOTEBOOK_PROFILES)}")
    output_dir = Path(output_dir)
    _fresh_dir(output_dir, {f"{stem}.slides.html" for stem in notebooks} | {"index.html", "vendor"})

    urls, source = None, "the CDNs (unpkg, cdnjs): the browser needs internet to show them"
    if reveal in ("auto", "npm"):
        try:
            if reveal == "auto" and not _npm_available():
                raise RuntimeError("npm was not found")
            vendor_javascript(output_dir / "vendor", cache=npm_cache, log=log)
            urls, source = _vendor_urls("vendor"), "vendor/ (installed from npm): they work offline"
        except (RuntimeError, subprocess.TimeoutExpired, OSError) as error:
            if reveal == "npm":
                raise RuntimeError(f"offline slides: {error}") from None
            log(f"WARNING: {error}; the slides load reveal.js and MathJax from their CDNs instead")

    with tempfile.TemporaryDirectory(prefix="gradreg-slides-") as tmp:
        if executed_dir is None:
            run_notebooks(profile, output_dir=Path(tmp) / "figures", build_dir=tmp, notebooks=list(notebooks),
                          log=log, list_figures=False)
            executed_dir = Path(tmp) / "notebooks"
        written, items = [], []
        for stem in notebooks:
            nb = nbformat.read(str(Path(executed_dir) / f"{stem}.ipynb"), as_version=4)
            target = output_dir / f"{stem}.slides.html"
            target.write_text(slides_html(nb, urls))
            written.append(target)
            items.append(f'<li><a href="{target.name}">{notebook_title(nb) or stem}</a></li>')
    (output_dir / "index.html").write_text(INDEX_HTML.format(profile=profile, source=source.split(":")[0],
                                                             items="\n".join(items)))
    log(f"slides: {len(written)} decks in {output_dir} (reveal.js from {source})")
    return written
