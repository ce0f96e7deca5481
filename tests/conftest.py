import pytest
import torch


@pytest.fixture
def one_thread():
    """Single-threaded: these runs are made of tiny ops, which a second OpenMP thread only slows
    (by 10-100x on a shared, oversubscribed machine, where the threads spin-wait)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def smoke_notebooks(tmp_path_factory):
    """Each numbered notebook executed once per session at the smoke profile (papermill, the path
    of `make figures`), shared by the tests that need its executed copy (figures, exercises,
    slides): run(stem, parameters=None) -> namespace(executed, figures, written, seconds).
    A notebook that fails raises again for the next test that asks."""
    import time
    from types import SimpleNamespace

    from gradreg.notebook_runner import run_notebooks
    root = tmp_path_factory.mktemp("smoke-notebooks")
    done = {}

    def run(stem, parameters=None):
        if stem not in done:
            out = root / "figures" / stem
            start = time.perf_counter()
            written = run_notebooks("smoke", output_dir=out, build_dir=root / "build", notebooks=[stem],
                                    log=lambda *args: None, parameters=parameters, timeout=300)
            done[stem] = SimpleNamespace(executed=root / "build" / "notebooks" / f"{stem}.ipynb", figures=out,
                                         written=written, seconds=time.perf_counter() - start)
        return done[stem]

    run.executed_dir = root / "build" / "notebooks"
    return run
