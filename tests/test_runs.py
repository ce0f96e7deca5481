"""gradreg.runs.run_configs: every backend gives each config's own `train` result, in order."""
import pytest

from gradreg import TrainConfig, train
from gradreg.runs import run_configs

CONFIGS = [TrainConfig(task="temporal_order", length=10, hidden_size=8, method=m, rule=r, seed=s, lr=0.3,
                       max_iterations=40, check_every=20, test_size=200)
           for m, r, s in (("sgd", "top", 0), ("sgr", "top", 1), ("clip", "top", 2))]


def _key(result):
    return (result.config.method, result.config.seed, result.solved, result.iterations, result.examples,
            result.final_error, tuple(result.history["test_error"]))


@pytest.fixture(scope="module")
def expected():
    return [_key(train(c)) for c in CONFIGS]


@pytest.mark.parametrize("backend", ["serial", "processes", "dask"])
def test_every_backend_gives_the_runs_of_train_in_order(backend, expected):
    results = run_configs(CONFIGS, workers=2, backend=backend, progress=False)
    assert [_key(r) for r in results] == expected


def test_bad_backend_and_workers():
    with pytest.raises(ValueError, match="unknown backend 'threads'; allowed: serial, processes, dask"):
        run_configs(CONFIGS, backend="threads")
    with pytest.raises(ValueError, match="workers must be an integer >= 1"):
        run_configs(CONFIGS, workers=0)
