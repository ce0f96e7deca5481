"""gradreg.runs.run_configs: every backend gives each config's own `train` result, in order,
whether the seeds of a setting train batched (the default) or each run alone."""
import pytest

from gradreg import TrainConfig, train
from gradreg.runs import run_configs

# two seeds of sgd and of clip (batched units), one sgr run, and a second cell (T = 12)
CONFIGS = [TrainConfig(task="temporal_order", length=n, hidden_size=8, method=m, rule=r, seed=s, lr=0.3,
                       max_iterations=40, check_every=20, test_size=200)
           for n, m, r, s in ((10, "sgd", "top", 0), (10, "sgr", "top", 1), (10, "sgd", "top", 1),
                              (10, "clip", "top", 2), (10, "clip", "top", 3), (12, "sgd", "top", 0))]


def _key(result):
    return (result.config.method, result.config.seed, result.solved, result.iterations, result.examples,
            result.final_error, tuple(result.history["test_error"]))


@pytest.fixture(scope="module")
def expected():
    return [_key(train(c)) for c in CONFIGS]


# a process pool and a Dask LocalCluster start fresh processes: the slow tier (make test-all)
@pytest.mark.parametrize("backend,batch", [("serial", True), ("serial", False),
                                           pytest.param("processes", True, marks=pytest.mark.slow),
                                           pytest.param("dask", True, marks=pytest.mark.slow)])
def test_every_backend_gives_the_runs_of_train_in_order(backend, batch, expected):
    results = run_configs(CONFIGS, workers=2, backend=backend, progress=False, batch=batch)
    assert [_key(r) for r in results] == expected


def test_bad_backend_and_workers():
    with pytest.raises(ValueError, match="unknown backend 'threads'; allowed: serial, processes, dask"):
        run_configs(CONFIGS, backend="threads")
    with pytest.raises(ValueError, match="workers must be an integer >= 1"):
        run_configs(CONFIGS, workers=0)
