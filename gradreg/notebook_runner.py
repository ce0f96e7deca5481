"""Runs the numbered notebooks headlessly with papermill: `make figures` is
`python -m gradreg figures`, which calls `run_notebooks`.

    from gradreg.notebook_runner import run_notebooks
    run_notebooks("quick")        # every notebook at the quick profile; figures in figures/
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from .errors import EnvironmentFault, NotebookFailed
from .experiments.settings import NOTEBOOK_PROFILES

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
IMAGE_SUFFIXES = (".png", ".pdf", ".svg")


def numbered_notebooks(directory=NOTEBOOK_DIR) -> list[Path]:
    """notebooks/NN_*.ipynb in order."""
    return sorted(p for p in Path(directory).glob("[0-9][0-9]_*.ipynb"))


def _make_dirs(path: Path, what: str) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        blocker = next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), None)
        if blocker is not None:
            raise ValueError(f"{what} {path} cannot be created: {blocker} is a file, not a directory; "
                             "give another directory") from None
        raise EnvironmentFault(f"cannot create {what} {path}: {exc.strerror or exc}; give a directory "
                               "you can write to") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise EnvironmentFault(f"cannot write to {what} {path}: permission denied; give a directory "
                               "you can write to")


def _ipc_kernel_manager(directory: str):
    """A kernel manager whose kernel talks over IPC (Unix sockets under `directory`) instead of
    TCP on localhost, so ipykernel has no reason for its "Kernel is running over TCP without
    encryption" warning: nothing is silenced, the warning's cause is avoided. At shutdown it
    asks the kernel to stop without interrupting it first (see `_async_interrupt_kernel`)."""
    from jupyter_client.manager import AsyncKernelManager

    class IPCKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs):
            kwargs.setdefault("transport", "ipc")
            kwargs.setdefault("ip", os.path.join(directory, "kernel"))
            super().__init__(**kwargs)

        async def _async_interrupt_kernel(self) -> None:
            # jupyter_client sends SIGINT before every shutdown request; our kernels have run
            # their last cell by then, and a SIGINT that lands while the kernel is still busy
            # with its last message prints a KeyboardInterrupt traceback into the build log.
            # The shutdown request (and, if that goes unanswered, SIGTERM and SIGKILL) remains.
            if self.shutting_down:
                return
            await super()._async_interrupt_kernel()

    return IPCKernelManager


def run_notebooks(profile: str = "quick", output_dir="figures", build_dir="build", notebooks=None,
                  log=print, kernel_name: str = "python3", parameters: dict | None = None,
                  timeout: float | None = None, list_figures: bool = True) -> list[Path]:
    """Execute every numbered notebook with papermill at `profile`; figures go to
    `output_dir`, executed copies to `build_dir`/notebooks/. Returns the figure files written.

    The kernel is "python3", which Jupyter resolves to the interpreter running this
    function (sys.executable): run it from the project's .venv and the notebooks use the
    .venv. `notebooks`: names or paths to run a subset (default: all numbered ones).
    `parameters`: extra papermill parameters; `timeout`: seconds allowed per cell;
    `list_figures`: log each figure's path at the end (off where they go to a temporary folder).
    A failing cell raises NotebookFailed (a RuntimeError) naming the notebook and the cell.
    The kernels run over IPC where the OS has Unix sockets (see `_ipc_kernel_manager`).
    """
    import tempfile

    import papermill
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    if profile not in NOTEBOOK_PROFILES:
        raise ValueError(f"unknown profile {profile!r}; allowed: {', '.join(NOTEBOOK_PROFILES)}")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
                                or not timeout > 0):
        raise ValueError(f"timeout must be a positive number of seconds or None, got {timeout!r}")
    if parameters is not None and not isinstance(parameters, dict):
        raise ValueError(f"parameters must be a dict, got {type(parameters).__name__}")
    output_dir = Path(output_dir).resolve()
    build = Path(build_dir).resolve() / "notebooks"
    paths = _select_notebooks(notebooks)
    _make_dirs(output_dir, "output directory")
    _make_dirs(build, "build directory")
    written = []
    with tempfile.TemporaryDirectory(prefix="gradreg-kernels-") as sockets:
        # Unix socket paths are limited to about 100 bytes: a very long TMPDIR falls back to TCP
        ipc = os.name == "posix" and len(sockets) < 80
        engine = {"kernel_manager_class": _ipc_kernel_manager(sockets)} if ipc else {}
        for path in paths:
            before = _snapshot(output_dir)
            start = time.perf_counter()
            log(f"[{profile}] {path.name} ...")
            params = dict(profile=profile, output_dir=str(output_dir))
            params.update(parameters or {})
            try:
                papermill.execute_notebook(str(path), str(build / path.name), parameters=params,
                                           kernel_name=kernel_name, cwd=str(path.parent), progress_bar=False,
                                           log_output=False, execution_timeout=timeout, **engine)
            except PapermillExecutionError as error:
                if error.ename == "KeyboardInterrupt":  # Ctrl-C reached the kernel too
                    raise KeyboardInterrupt from None
                raise NotebookFailed(describe_failure(build / path.name, error, path.name, path)) from None
            except (CellTimeoutError, DeadKernelError) as error:
                what = "its kernel died (out of memory?)" if isinstance(error, DeadKernelError) else \
                    f"a cell ran longer than the timeout of {timeout} s"
                raise NotebookFailed(f"{path.name}: {what}: {' '.join(str(error).split())[:200]}") from None
            after = _snapshot(output_dir)
            new = sorted(p for p, stamp in after.items() if before.get(p) != stamp)
            written.extend(new)
            log(f"[{profile}] {path.name}: {time.perf_counter() - start:.1f} s, "
                f"{sum(p.suffix == '.png' for p in new)} figures")
    if list_figures:
        for p in written:
            log(f"  {p}")
    return written


def _select_notebooks(notebooks) -> list[Path]:
    available = numbered_notebooks()
    if notebooks is None:
        return available
    chosen = []
    for name in notebooks:
        p = Path(name)
        if p.is_file():
            chosen.append(p.resolve())
            continue
        stem = p.name.removesuffix(".ipynb")
        match = [a for a in available if a.stem == stem or a.stem.startswith(stem)]
        if len(match) != 1:
            raise ValueError(f"unknown notebook {name!r}; allowed: {', '.join(a.stem for a in available)}")
        chosen.append(match[0])
    return chosen


def _snapshot(directory: Path) -> dict:
    return {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in directory.iterdir()
            if p.is_file() and p.suffix in IMAGE_SUFFIXES}


def describe_failure(executed_path: Path, error, name: str, source_path: Path | None = None) -> str:
    """'NAME: cell K failed (first line of its source): ErrorName: message', K the index of
    the failing cell in the notebook as committed (papermill's injected cells not counted)."""
    index, first_line = "?", ""
    try:
        import nbformat
        nb = nbformat.read(str(executed_path), as_version=4)
        failed = next(c for c in nb.cells if c.cell_type == "code"
                      and any(o.get("output_type") == "error" for o in c.get("outputs", [])))
        first_line = (failed.source.strip().splitlines() or [""])[0]
        index = nb.cells.index(failed)
        if source_path is not None:
            source = nbformat.read(str(source_path), as_version=4)
            index = next(k for k, c in enumerate(source.cells) if c.source == failed.source)
    except Exception:
        pass
    return (f"{name}: cell {index} failed ({first_line!r}): {getattr(error, 'ename', 'Error')}: "
            f"{getattr(error, 'evalue', error)}")
