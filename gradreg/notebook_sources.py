"""The numbered notebooks' sources: ``notebooks/NN_*.py`` (jupytext's percent format) make the
committed ``notebooks/NN_*.ipynb``, clean (no outputs) and with stable cell ids.

    python -m gradreg notebooks            # write them   (make notebooks)
    python -m gradreg notebooks --check    # exit 1 naming the ones out of date

A source is a plain Python file: ``# %%`` opens a code cell, ``# %% [markdown]`` a markdown
cell whose lines are ``# `` comments. A cell header may carry three keys (JSON values, as
jupytext writes them), which become the metadata that `gradreg.teaching` and papermill read:

``kind=``
    what the cell is, when not plain prose (markdown) or code: ``"params"`` (tagged
    ``parameters``: papermill's cell), ``"setup"`` (tagged ``setup``: the only cell an exercise
    may rely on), and the exercise kinds, which get nbgrader's metadata (schema 3) with the
    grade id ``nbNN_exK_KIND`` (K counts the exercises): ``"exercise"`` (the question,
    markdown, read-only), ``"solution"`` (code with its answer between ``### BEGIN SOLUTION``
    and ``### END SOLUTION``), ``"check"`` (code that asserts, autograded, 1 point) and
    ``"answer"`` (a written answer, markdown, graded by hand, 1 point);
``slide=``
    in the slide notebooks (`SLIDES`) only: the cell's ``slideshow.slide_type`` (slide,
    subslide, fragment, notes, skip, ``-``) where `default_slide_type` would choose another;
``tags=``
    more tags, e.g. ``["remove_input"]``: the slides show the cell's output only.

e.g. ``# %% [markdown] kind="exercise"`` or ``# %% slide="subslide" tags=["remove_input"]``.
Every cell of a slide notebook gets a slide type; a cell's id is ``NN-KK`` (notebook number,
cell index), so an unchanged cell gives an unchanged diff. A malformed source (an unknown
key or kind, a solution cell without its region, an exercise kind outside an exercise, ...)
is a ValueError naming the file, the cell and its line.
"""
from __future__ import annotations

import copy
import re
from pathlib import Path

import nbformat

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"

#: notebooks that become lecture slides (gradreg.teaching.build_slides): every cell of theirs
#: carries metadata.slideshow.slide_type, from its ``slide=`` or from `default_slide_type`
SLIDES = ("01_vanishing_gradients", "02_per_example_estimation", "03_minibatch_theory")
SLIDE_TYPES = ("slide", "subslide", "fragment", "notes", "skip", "-")

#: nbgrader's metadata of the exercise kinds (grade_id, schema_version and task are added)
NBGRADER = {
    "exercise": {"grade": False, "solution": False, "locked": True},
    "solution": {"grade": False, "solution": True, "locked": False},
    "check": {"grade": True, "solution": False, "locked": True, "points": 1},
    "answer": {"grade": True, "solution": True, "locked": False, "points": 1},
}
#: the kinds of each cell type ("md" and "code": the default, plain cells)
KINDS = {"markdown": ("md", "exercise", "answer"), "code": ("code", "params", "setup", "solution", "check")}
TAG_OF_KIND = {"params": "parameters", "setup": "setup"}
#: the header keys a source may use; jupytext's own layout key is dropped
KEYS = ("kind", "slide", "tags")
LAYOUT_KEYS = ("lines_to_next_cell",)

NOTEBOOK_METADATA = {
    "kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"},
    "language_info": {"name": "python"},
}
BEGIN_SOLUTION, END_SOLUTION = "### BEGIN SOLUTION", "### END SOLUTION"
_CELL_MARKER = re.compile(r"^#\s*%%")


def sources(directory=NOTEBOOK_DIR) -> list[Path]:
    """notebooks/NN_*.py in order."""
    return sorted(Path(directory).glob("[0-9][0-9]_*.py"))


def default_slide_type(kind: str, source: str) -> str:
    """Headings open slides (#, ##) and sub-slides (###); the hidden machinery (parameters,
    set-up) and the exercises' solutions, checks and answers are skipped; an exercise opens a
    sub-slide; the rest continues a slide."""
    if kind in ("params", "setup", "solution", "check", "answer"):
        return "skip"
    if kind == "exercise":
        return "subslide"
    if kind == "md" and source.startswith(("# ", "## ")):
        return "slide"
    if kind == "md" and source.startswith("### "):
        return "subslide"
    return "-"


def _header_lines(text: str, cells: int) -> list[int | None]:
    """The line (1-based) of each cell's header, where the markers and the cells agree."""
    lines = [n for n, line in enumerate(text.splitlines(), 1) if _CELL_MARKER.match(line)]
    if len(lines) == cells:
        return lines
    if len(lines) == cells - 1:                      # text before the first marker: a cell of its own
        return [1] + lines
    return [None] * cells


def _failing(where: str):
    def fail(message: str):
        raise ValueError(f"{where}: {message}")
    return fail


def _read_text(path: Path) -> str:
    """The UTF-8 text of `path`; a file of another encoding is a ValueError naming it."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start}); "
                         "save it as UTF-8") from None


def build(path, text: str | None = None) -> nbformat.NotebookNode:
    """The clean notebook of the source `path` (NN_name.py; `text`: its content, read from
    `path` when None)."""
    path = Path(path)
    stem = path.stem
    if not re.fullmatch(r"[0-9][0-9]_\w+", stem):
        raise ValueError(f"{path.name}: a notebook source is named NN_name.py")
    text = _read_text(path) if text is None else text
    import jupytext
    source_nb = jupytext.reads(text, fmt="py:percent")
    extra = sorted(set(source_nb.metadata) - {"jupytext"})
    if extra:
        raise ValueError(f"{path.name}: notebook metadata in the header is not used ({', '.join(extra)}); "
                         "the builder sets it")
    lines = _header_lines(text, len(source_nb.cells))
    nb = nbformat.v4.new_notebook()
    nb.metadata = copy.deepcopy(NOTEBOOK_METADATA)
    exercise, grade_ids = 0, set()
    for k, cell_in in enumerate(source_nb.cells):
        fail = _failing(f"{path.name}: cell {k}" + (f" (line {lines[k]})" if lines[k] else ""))
        if cell_in.cell_type not in KINDS:
            fail(f"a {cell_in.cell_type} cell; allowed: code, markdown")
        meta = dict(cell_in.metadata)
        for key in LAYOUT_KEYS:
            meta.pop(key, None)
        unknown = sorted(set(meta) - set(KEYS))
        if unknown:
            fail(f"unknown header key(s) {', '.join(unknown)}; allowed: {', '.join(KEYS)}")
        plain = KINDS[cell_in.cell_type][0]
        kind = meta.get("kind", plain)
        if kind not in KINDS[cell_in.cell_type]:
            fail(f"kind={kind!r} in a {cell_in.cell_type} cell; allowed: {', '.join(KINDS[cell_in.cell_type])}")
        tags = meta.get("tags", [])
        if not (isinstance(tags, list) and all(isinstance(t, str) for t in tags)):
            fail(f"tags={tags!r}: a list of strings")
        source = cell_in.source.strip("\n")
        cell = (nbformat.v4.new_markdown_cell(source) if cell_in.cell_type == "markdown"
                else nbformat.v4.new_code_cell(source))
        tags = list(tags)
        if kind in TAG_OF_KIND:
            tags.insert(0, TAG_OF_KIND[kind])
        if kind in NBGRADER:
            exercise += kind == "exercise"
            grade_id = f"nb{stem[:2]}_ex{exercise}_{kind}"
            if exercise == 0:
                fail(f"a {kind} cell before the first exercise cell")
            if grade_id in grade_ids:
                fail(f"a second {kind} cell in exercise {exercise}")
            grade_ids.add(grade_id)
            begin, end = source.find(BEGIN_SOLUTION), source.find(END_SOLUTION)
            if kind == "solution" and not 0 <= begin < end:
                fail(f"a solution cell without its region: '{BEGIN_SOLUTION}' then '{END_SOLUTION}'")
            if kind != "solution" and (begin >= 0 or end >= 0):
                fail(f"'{BEGIN_SOLUTION}' in a {kind} cell; solution regions belong in solution cells")
            cell.metadata["nbgrader"] = dict(NBGRADER[kind], grade_id=grade_id, schema_version=3, task=False)
        elif BEGIN_SOLUTION in source:
            fail(f"'{BEGIN_SOLUTION}' in a {kind} cell; solution regions belong in kind=\"solution\" cells")
        if stem in SLIDES:
            slide = meta.get("slide") or default_slide_type(kind, source)
            if slide not in SLIDE_TYPES:
                fail(f"unknown slide type {slide!r}; allowed: {', '.join(SLIDE_TYPES)}")
            cell.metadata["slideshow"] = {"slide_type": slide}
        elif "slide" in meta:
            fail(f"slide= in a notebook that is not a slide deck (those are {', '.join(SLIDES)})")
        if tags:
            cell.metadata["tags"] = tags
        cell.id = f"{stem[:2]}-{k:02d}"
        nb.cells.append(cell)
    nbformat.validate(nb)
    return nb


def render(path) -> str:
    """The text of the .ipynb that the source `path` makes."""
    return nbformat.writes(build(path)) + "\n"


def _pairs(directory) -> list[tuple[Path, Path]]:
    directory = Path(directory)
    if not directory.is_dir():
        raise ValueError(f"notebook directory {directory} " + ("is a file" if directory.exists() else "does not exist")
                         + "; give the directory of the notebook sources (NN_name.py)")
    found = sources(directory)
    if not found:
        raise ValueError(f"no notebook sources (NN_name.py) in {directory}")
    return [(path, path.with_suffix(".ipynb")) for path in found]


def _orphans(directory) -> list[str]:
    """Numbered notebooks without a source."""
    return sorted(p.name for p in Path(directory).glob("[0-9][0-9]_*.ipynb") if not p.with_suffix(".py").is_file())


def write(directory=NOTEBOOK_DIR, log=print) -> list[Path]:
    """Write every source's notebook (only those whose text changed); returns the paths written."""
    written = []
    for source, target in _pairs(directory):
        text = render(source)
        if target.is_file() and _read_text(target) == text:
            continue
        target.write_text(text, encoding="utf-8")
        written.append(target)
        log(f"wrote {target}")
    for name in _orphans(directory):
        log(f"warning: {name} has no source ({Path(name).stem}.py)")
    return written


def stale(directory=NOTEBOOK_DIR) -> list[str]:
    """The committed notebooks that differ from what their sources make (or are missing), and
    numbered notebooks that have no source; empty when all are in sync."""
    out = [target.name for source, target in _pairs(directory)
           if not target.is_file() or _read_text(target) != render(source)]
    return out + [f"{name} (no source)" for name in _orphans(directory)]
