"""Command line: `python -m gradreg train | sweep | status | drop | report | readme | figures | notebooks |
student | slides`.

Every TrainConfig field is an option of `train`. Every error is one line on stderr, never a
traceback, and the exit code says whose it is:

    0    done
    1    a fault of the environment: a file or directory that cannot be written (a sweep's
         checkpoints directory included, checked before any run starts), a Dask scheduler that
         cannot be reached, a results file locked by another sweep, too little memory, a
         notebook that failed, notebooks or the README's results out of date (--check)
    2    a bad argument: an unknown name, a value out of range, a path that is a directory,
         lies under a file or is a loop of symbolic links, a file to read that is not there, a
         malformed scheduler address, a corrupt results file (a NUL byte included), a
         malformed notebook source, a README or notebook that is not UTF-8
    130  interrupted (Ctrl-C); a sweep keeps every finished row: rerun it to resume

GRADREG_TRACEBACK=1 (or true, yes, on) in the environment shows the traceback of an unexpected
error; 0 or anything else does not.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import errno
import json
import math
import os
import sys
import typing
from pathlib import Path

from .config import FROM_PROTOCOL, PROTOCOLS, TrainConfig
from .errors import NotebookFailed, ResultsMissing, UsageError

_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's own errors: one line, exit 2
        raise UsageError(f"{self.prog}: {message}")


def _parse_bool(text: str) -> bool:
    if text.lower() in _TRUE:
        return True
    if text.lower() in _FALSE:
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean {text!r}; allowed: true, false")


def _parse_optional(kind):
    def parse(text: str):
        if text.lower() in ("none", ""):
            return None
        return kind(text)
    parse.__name__ = kind.__name__
    return parse


def _field_type(f: dataclasses.Field):
    hints = typing.get_type_hints(TrainConfig)
    hint = hints[f.name]
    args = typing.get_args(hint)
    if hint is bool:
        return _parse_bool
    if args and type(None) in args:  # X | None
        inner = next(a for a in args if a is not type(None))
        return _parse_optional(inner)
    return hint


_HELP = {
    "task": "task name (temporal_order, temporal_order_3bit, adding, multiplication, xor, "
            "random_permutation, noiseless_memorization)",
    "length": "task length T",
    "method": "sgd, clip, pascanu, sgr or lstm",
    "rule": "SGR selection rule: top, band, weighted, greedy or random",
    "lag": "lag threshold tau (none: floor(steps/2))",
    "clip": "gradient-norm clipping threshold (none or 0: off; ignored by sgd)",
    "pool_factor": "SGR candidate pool size M = pool_factor * batch_size",
    "fair_batch": "baselines draw pool_factor * batch_size sequences per step (compute-fair control)",
    "device": "auto, cpu, cuda or cuda:N",
    "protocol": "every choice of PROTOCOLS in one word: pascanu (the package's conventions) or chernodub "
                "(the authors' public code); an option given explicitly overrides it",
    "variant": "task generators: pascanu or chernodub",
    "loss": "task (the task's loss) or mse (1/2 ||o - target||^2)",
    "reduction": "the minibatch gradient: mean or sum",
    "momentum_form": "torch (v <- mu v + g, w <- w - lr v) or classical (v <- mu v - lr g, w <- w + v)",
    "train_set_size": "a fixed training set of this many sequences, sampled with replacement (none: fresh "
                      "sequences every step)",
    "validation_size": "validation set size (stopping validation)",
    "stopping": "test (solved check on the test set) or validation (keep the network of lowest validation "
                "MSE, stop at validation success > 1 - solved_error, test the kept network)",
    "check_every": "iterations between stopping checks",
}


def _default_text(f: dataclasses.Field) -> str:
    if f.default is FROM_PROTOCOL:
        return "the protocol's: " + "; ".join(f"{p} {values[f.name]}" for p, values in PROTOCOLS.items())
    return str(f.default)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m gradreg",
                     description="Sampling-based gradient regularization for RNNs (Chernodub & Nowicki 2016).")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    train = sub.add_parser("train", help="train one run until solved",
                           description="Train one run; every TrainConfig field is an option.")
    for f in dataclasses.fields(TrainConfig):
        default = f.default
        train.add_argument("--" + f.name.replace("_", "-"), dest=f.name, type=_field_type(f),
                           default=default, metavar=f.name.upper(),
                           help=f"{_HELP.get(f.name, f.name.replace('_', ' '))} (default: {_default_text(f)})")
    train.add_argument("--json", action="store_true", help="print the result as one JSON object")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.add_argument("--threads", type=int, default=1,
                       help="CPU threads for torch (default 1: these small matmuls run fastest on one)")

    sweep = sub.add_parser("sweep", help="run a grid of runs on Dask, resumable",
                           description="Run a profile's grid of runs on Dask; appends one row per "
                                       "finished run to RESULTS and skips runs already there.")
    sweep.add_argument("--profile", required=True, help="smoke, quick, paper or authors")
    sweep.add_argument("--results", required=True, help="results CSV (created or resumed)")
    sweep.add_argument("--scheduler", default=None,
                       help="address of an existing Dask scheduler, e.g. tcp://host:8786 "
                            "(default: a LocalCluster sized to this machine)")
    sweep.add_argument("--workers", type=int, default=None, help="LocalCluster workers (default: all cores)")
    sweep.add_argument("--no-batch", action="store_true",
                       help="one run per Dask task (default: the runs of a (task, length) cell that share "
                            "their shapes train as one batched program, gradreg.train_many)")
    sweep.add_argument("--device", default=None,
                       help="train every run on this device: cpu, cuda or cuda:N (default: the profile's, auto)")
    sweep.add_argument("--cell", action="append", default=None, metavar="TASK:LENGTH",
                       help="only this (task, length) cell of the profile, e.g. temporal_order:100 "
                            "(repeatable; default: every cell)")
    sweep.add_argument("--seed", action="append", type=int, default=None, metavar="N", dest="seeds",
                       help="only the runs of this seed (repeatable; default: every seed of the profile)")
    sweep.add_argument("--checkpoint-minutes", type=float, default=5.0,
                       help="every run in flight saves its state this often, beside RESULTS "
                            "(RESULTS-checkpoints/), and a rerun goes on from there (default 5; 0: never)")
    sweep.add_argument("--no-progress", action="store_true", help="no progress bar")

    status = sub.add_parser("status", help="where a sweep stands: rows written, error rows, runs in flight, "
                                           "what comes next (runs nothing)")
    status.add_argument("--profile", required=True, help="smoke, quick, paper or authors")
    status.add_argument("--results", required=True, help="the sweep's results CSV")
    status.add_argument("--no-batch", action="store_true", help="units as a sweep with --no-batch forms them")

    drop = sub.add_parser("drop", help="take some runs out of a results file (rows and histories) so that the "
                                       "next sweep runs them again",
                          description="Remove the rows of the given cells (and methods, seeds) from RESULTS and their "
                                      "check histories from its -history.csv.gz, each file rewritten "
                                      "atomically (gradreg.results.drop_runs); stop the sweep first.")
    drop.add_argument("--results", required=True, help="the sweep's results CSV")
    drop.add_argument("--cell", action="append", required=True, metavar="TASK:LENGTH",
                      help="the rows of this (task, length) cell (repeatable)")
    drop.add_argument("--seed", action="append", type=int, default=None, metavar="N", dest="seeds",
                      help="only the rows of this seed (repeatable; default: every seed)")
    drop.add_argument("--method", action="append", default=None, metavar="LABEL", dest="methods",
                      help="only the rows of this method, e.g. lstm or sgr/top (repeatable; default: every method)")

    report = sub.add_parser("report", help="the results of a sweep as Markdown tables, with the verdict")
    report.add_argument("results", help="a sweep results CSV, e.g. data/results/paper.csv")

    readme = sub.add_parser("readme", help="write the README's headline and docs/results.md from the committed "
                                           "results files",
                            description="Rewrite the generated parts, between their markers, of README.md (the "
                                        "headline) and docs/results.md (every table) from data/results/paper.csv "
                                        "(and its history) and authors.csv (gradreg.readme).")
    readme.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 when a generated part is out of date")
    readme.add_argument("--readme", default="README.md", help="the README to write (default: README.md)")
    readme.add_argument("--results-doc", default=None,
                        help="the full results page to write (default: docs/results.md beside the README)")
    readme.add_argument("--results-dir", default="data/results",
                        help="where paper.csv and authors.csv are (default: data/results)")

    figures = sub.add_parser("figures", help="run every notebook through papermill and write figures/")
    figures.add_argument("--profile", default="quick", help="smoke, quick or paper (default: quick)")
    figures.add_argument("--output-dir", default="figures", help="where figures go (default: figures)")
    figures.add_argument("--build-dir", default="build", help="executed notebooks (default: build)")

    notebooks = sub.add_parser("notebooks", help="write notebooks/NN_*.ipynb from their sources (NN_*.py)",
                               description="Write the numbered notebooks, clean, from their jupytext sources "
                                           "notebooks/NN_*.py (gradreg.notebook_sources).")
    notebooks.add_argument("--check", action="store_true",
                           help="write nothing; exit 1 naming the notebooks that differ from their sources")
    notebooks.add_argument("--notebook-dir", default=None,
                           help="where the sources and notebooks are (default: the repository's notebooks/)")

    student = sub.add_parser("student", help="the student edition of the notebooks (solutions stripped)",
                             description="Write the notebooks with every exercise's solution replaced by a "
                                         "stub (nbgrader's markers), a README and a zip of both.")
    student.add_argument("--output-dir", default="build/student", help="(default: build/student)")
    student.add_argument("--repository", default=None,
                         help="the address students clone gradreg from, written into their README "
                              "(default: a placeholder to fill in)")
    student.add_argument("--hand-in", default=None,
                         help="where and by when students hand in, written into their README "
                              "(default: a placeholder to fill in)")
    student.add_argument("--check", action="store_true",
                         help="also run the exercises at the smoke profile: every check must pass with the "
                              "solutions and fail on the stubs, and the answers that copy what a check once showed "
                              "(teaching.COPIED_ANSWERS) must fail (exit 1 otherwise)")

    slides = sub.add_parser("slides", help="reveal.js slides of notebooks 01-03",
                            description="Execute notebooks 01-03 at a profile and convert them to reveal.js "
                                        "slides (jupyter nbconvert --to slides).")
    slides.add_argument("--profile", default="quick", help="smoke, quick or paper (default: quick)")
    slides.add_argument("--output-dir", default="build/slides", help="(default: build/slides)")
    slides.add_argument("--reveal", default="auto",
                        help="where reveal.js and MathJax come from: npm (installed into OUTPUT_DIR/vendor at "
                             "build time: the slides work offline), cdn (loaded when shown), or auto (npm when "
                             "it works, else cdn; the default)")
    return parser


def _json_safe(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def run_train(args) -> int:
    fields = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)}
    config = TrainConfig(**fields)
    if args.threads < 1:
        raise ValueError(f"threads must be an integer >= 1, got {args.threads}")
    import torch
    torch.set_num_threads(args.threads)
    from .engine import train
    result = train(config, progress=not (args.no_progress or args.json))
    if args.json:
        out = {k: _json_safe(v) for k, v in result.to_row().items()}
        out["config"] = dataclasses.asdict(config)
        out["history"] = [{k: _json_safe(v) for k, v in row.items()}
                          for row in result.history.to_dict(orient="records")]
        print(json.dumps(out))
    else:
        print(result.summary())
    return 0


def _parse_cell(text: str) -> tuple[str, int]:
    task, sep, length = text.partition(":")
    if not sep or not length.strip().isdigit():
        raise ValueError(f"cell {text!r} must be TASK:LENGTH, e.g. temporal_order:100")
    return task.strip(), int(length)


def run_sweep_command(args) -> int:
    from .sweep import load_results, run_sweep
    with contextlib.suppress(FileNotFoundError):     # a new results file is the sweep's to make
        _results_to_read(args.results)               # a loop of links, a directory, a path under a file
    cells = None if args.cell is None else [_parse_cell(text) for text in args.cell]
    if args.device is not None:
        from .config import resolve_device
        TrainConfig(device=args.device)          # an unknown device: ValueError naming the allowed ones
        resolve_device(args.device)
    if not args.checkpoint_minutes >= 0:
        raise ValueError(f"--checkpoint-minutes must be a number >= 0 (0: no checkpoints), "
                         f"got {args.checkpoint_minutes:g}")
    try:
        run_sweep(args.profile, results=args.results, scheduler=args.scheduler, workers=args.workers,
                  progress=not args.no_progress, batch=not args.no_batch, device=args.device, cells=cells,
                  seeds=args.seeds, checkpoint_minutes=args.checkpoint_minutes or None)
    except KeyboardInterrupt:
        try:
            kept = f"{len(load_results(args.results))} rows kept; "
        except BaseException:  # no readable file (interrupted before it was made): say less
            kept = ""
        raise _Interrupted(f"interrupted; {kept}rerun the same command to resume") from None
    return 0


def _results_to_read(path: str) -> str:
    """`path` when it names a results file that exists; else a ValueError that says what it is
    (a typo must not read as an empty sweep)."""
    if not path.strip():
        raise ValueError("results file path is empty; give the CSV of a sweep, e.g. data/results/paper.csv")
    p = Path(path)
    try:
        p.stat()
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ValueError(f"results file {path} is a loop of symbolic links; give the CSV of a sweep") from None
        blocker = next((q for q in p.parents if q.exists() and not q.is_dir()), None)
        if blocker is not None:
            raise ValueError(f"results file {path} cannot exist: {blocker} is a file, not a directory") from None
        if exc.errno == errno.ENOENT:
            raise ResultsMissing(f"results file {path} does not exist; check the path (a sweep creates it "
                                 "when it starts)") from None
        raise
    if p.is_dir():
        raise ValueError(f"results file {path} is a directory; give the CSV of a sweep, e.g. {p / 'paper.csv'}")
    if not p.is_file():
        raise ValueError(f"results file {path} is not a regular file; give the CSV of a sweep")
    return path


def run_status(args) -> int:
    from .profiles import profile_configs
    from .sweep import sweep_status
    profile_configs(args.profile)         # an unknown profile first: it is the first argument
    print(sweep_status(args.profile, _results_to_read(args.results), batch=not args.no_batch))
    return 0


def run_drop(args) -> int:
    from .analysis import label_of
    from .results import KEY, drop_runs, load_results
    cells = {_parse_cell(text) for text in args.cell}
    df = load_results(_results_to_read(args.results))
    present = set(zip(df["task"], df["length"]))
    missing = sorted(cells - present)
    if missing:
        raise ValueError(f"cell {missing[0][0]}:{missing[0][1]} has no rows in {args.results}; cells there: "
                         + (", ".join(f"{t}:{n}" for t, n in sorted(present)) or "none (it has no rows)"))
    labels = [label_of(row) for row in df[["method", "rule"]].to_dict("records")]
    if args.methods is not None:
        known = sorted(set(labels))
        unknown = [m for m in args.methods if m not in known]
        if unknown:
            raise ValueError(f"method {unknown[0]!r} has no rows in {args.results}; allowed: {', '.join(known)}")
    if args.seeds is not None:
        known = sorted(set(df.loc[[(t, n) in cells for t, n in zip(df["task"], df["length"])], "seed"]))
        unknown = [s for s in args.seeds if s not in known]
        if unknown:
            raise ValueError(f"seed {unknown[0]} has no rows in the chosen cells of {args.results}; allowed: "
                             f"{', '.join(map(str, known))}")
    chosen = df[[(t, n) in cells and (args.seeds is None or s in args.seeds)
                 and (args.methods is None or label in args.methods)
                 for t, n, s, label in zip(df["task"], df["length"], df["seed"], labels)]]
    keys = [tuple(row) for row in chosen[list(KEY)].itertuples(index=False)]
    rows, histories = drop_runs(args.results, keys)
    print(f"dropped {rows} rows and {histories} check histories from {args.results}; "
          "the next sweep runs them again")
    return 0


def run_report(args) -> int:
    from .analysis import report
    from .results import load_results
    print(report(load_results(_results_to_read(args.results))))
    return 0


def run_readme(args) -> int:
    from .readme import update_readme
    changed = update_readme(args.readme, args.results_dir, check=args.check, results_doc=args.results_doc)
    if args.check and changed:
        return _fail(f"the generated parts of {args.readme} or its docs/results.md are out of date with "
                     f"{args.results_dir} (run python -m gradreg readme)", 1)
    print(f"{args.readme} and its docs/results.md: generated parts " +
          ("rewritten" if changed else "already up to date"))
    return 0


def run_figures(args) -> int:
    from .notebook_runner import run_notebooks
    try:
        run_notebooks(args.profile, output_dir=args.output_dir, build_dir=args.build_dir)
    except NotebookFailed as error:  # a cell raised: its notebook, cell and message in one line
        return _fail(_one_line(error), 1)
    return 0


def run_notebooks(args) -> int:
    from . import notebook_sources
    directory = notebook_sources.NOTEBOOK_DIR if args.notebook_dir is None else args.notebook_dir
    if args.check:
        stale = notebook_sources.stale(directory)
        if stale:
            return _fail("out of date with their sources (run make notebooks): " + ", ".join(stale), 1)
        print(f"{len(notebook_sources.sources(directory))} notebooks in sync with their sources")
        return 0
    written = notebook_sources.write(directory)
    if not written:
        print(f"{len(notebook_sources.sources(directory))} notebooks already in sync with their sources")
    return 0


def run_student(args) -> int:
    from . import teaching
    texts = {key: value for key, value in (("repository", args.repository), ("hand_in", args.hand_in))
             if value is not None}
    teaching.build_student(args.output_dir, **texts)
    if not args.check:
        return 0
    from .notebook_runner import numbered_notebooks
    notebooks = [p for p in numbered_notebooks() if teaching.exercise_cells_in(p)]
    failed = []
    for student in (False, True):
        edition = "student edition" if student else "full edition"
        for r in teaching.check_exercises(notebooks, student=student):
            if r["kind"] != "check":
                continue
            if r["passed"] == student:
                failed.append(f"{edition}: {r['grade_id']} " + ("passed on the stub" if student else
                                                                 f"failed: {r['error']}: {r['message']}"))
            else:
                print(f"{edition}: {r['grade_id']} " + ("fails on the stub" if student else "passes"))
    for r in teaching.check_copied_answers(notebooks):
        if r["rejected"]:
            print(f"copied answer: {r['grade_id']} rejects {r['what']} ({r['error']}: {r['message']})")
        else:
            failed.append(f"copied answer: {r['grade_id']} accepts {r['what']}")
    for line in failed:
        print("FAILED", line, file=sys.stderr)
    return 1 if failed else 0


def run_slides(args) -> int:
    from .teaching import build_slides
    build_slides(args.output_dir, profile=args.profile, reveal=args.reveal)
    return 0


class _Interrupted(KeyboardInterrupt):
    """Ctrl-C, with the line to print."""


# OSErrors that mean the path given is wrong (a file to read that is not there, a directory
# where a file belongs, ...), not that the machine refused it
_BAD_PATH_ERRNOS = (errno.ENOENT, errno.EISDIR, errno.ENOTDIR, errno.ENAMETOOLONG, errno.EEXIST, errno.ELOOP)


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text or type(error).__name__


def _os_error_line(error: OSError) -> str:
    # a bare OSError (not one of gradreg's one-line faults): name the path it concerns
    if error.filename is not None and error.strerror:
        return f"{error.filename}: {error.strerror}"
    return _one_line(error)


def _replace_what_cannot_be_encoded() -> None:
    # a terminal (or PYTHONIOENCODING) that cannot show a character gets "?" for it, not a crash
    for stream in (sys.stdout, sys.stderr):
        encoding = (getattr(stream, "encoding", None) or "").lower().replace("-", "").replace("_", "")
        if encoding not in ("utf8", "utf8sig") and hasattr(stream, "reconfigure"):
            with contextlib.suppress(Exception):
                stream.reconfigure(errors="replace")


def _fail(line: str, code: int) -> int:
    print(f"error: {line}", file=sys.stderr)
    return code


def main(argv=None) -> int:
    """Run the command line; returns the exit code (see the module docstring)."""
    _replace_what_cannot_be_encoded()
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        commands = {"train": run_train, "sweep": run_sweep_command, "report": run_report, "readme": run_readme,
                    "status": run_status, "drop": run_drop,
                    "figures": run_figures, "notebooks": run_notebooks, "student": run_student,
                    "slides": run_slides}
        return commands[args.command](args)
    except KeyboardInterrupt as interrupt:
        print(str(interrupt) if isinstance(interrupt, _Interrupted) else "interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:     # the reader went away (`... | head`): nothing is wrong, nothing to say
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())   # no second error at exit
        return 0
    except UnicodeError as error:  # text of a file or of the terminal, not an argument of the user's
        return _fail(f"{_one_line(error)}; use UTF-8 (PYTHONIOENCODING=utf-8)", 1)
    except ValueError as error:  # UsageError too: a bad argument
        return _fail(_one_line(error), 2)
    except OSError as error:  # gradreg's EnvironmentFault, or the system's own
        if type(error).__module__.startswith("gradreg"):
            return _fail(_one_line(error), 1)
        return _fail(_os_error_line(error), 2 if error.errno in _BAD_PATH_ERRNOS else 1)
    except MemoryError:
        return _fail("out of memory; lower the length, test_size, batch_size or hidden_size", 1)
    except Exception as error:
        if os.environ.get("GRADREG_TRACEBACK", "").strip().lower() in _TRUE:
            raise
        if isinstance(error, RuntimeError) and str(error).startswith("Symlink loop"):    # pathlib's resolve()
            return _fail(f"{_one_line(error)}; give a path that is not a loop of symbolic links", 2)
        if "out of memory" in str(error).lower():  # torch.OutOfMemoryError (CUDA), allocator failures
            return _fail(f"{_one_line(error)[:300]}; lower the length, test_size, batch_size or "
                         "hidden_size", 1)
        return _fail(f"unexpected {type(error).__name__}: {_one_line(error)[:300]} (set "
                     "GRADREG_TRACEBACK=1 to see where)", 1)
