"""The notebooks' computations (gradreg.experiments), each called small and in-process.

The notebooks themselves run through papermill at the smoke profile in tests/test_notebooks.py;
only one of them is in the fast tier (`make test`), so that every module behind a notebook is
still exercised there, in seconds, by the tests below.
"""
import pytest
import torch

from gradreg import TrainConfig
from gradreg.experiments import estimation, gallery, reference, settings, training, vanishing
from gradreg.model import make_model
from gradreg.tasks import TASK_NAMES, make_task

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def test_delta_profiles_stay_under_the_bound():
    profiles = vanishing.delta_profiles(length=12, activations=("tanh", "relu"), radii=(0.9,), batch_size=8,
                                        hidden_size=8)
    assert set(profiles["activation"]) == {"tanh", "relu"} and profiles["lag"].max() == 11
    assert (profiles["max_over_bound"] <= 1 + 1e-9).all()
    assert len(vanishing.decay_summary(profiles)) == 2


def test_per_example_statistics_equal_a_plain_autograd_loop_in_float64():
    task = make_task("temporal_order", 12)
    model = make_model(task, hidden_size=8, seed=0, dtype=torch.float64)
    x, y = task.sample(4, generator=torch.Generator().manual_seed(1))
    table = reference.exactness_check(model, task, x.double(), y)
    assert len(table) >= 5 and (table["dtype"] == "torch.float64").all()
    assert (table["max_relative_error"] < 1e-9).all(), table


def test_long_term_scores_of_fresh_sequences():
    scores = estimation.score_distributions(lengths=(10, 20), batch_size=16, hidden_size=8)
    assert len(scores) == 32 and (scores["score"] >= 0).all()
    assert list(estimation.score_summary(scores, "length")["examples"]) == [16, 16]


def test_the_gallery_has_every_task_and_the_comparison_every_method():
    assert [item["task"].name for item in gallery.task_gallery(length=12)] == list(TASK_NAMES)
    configs = training.method_configs("temporal_order", 10, 2)
    assert len(configs) == 2 * len(settings.COMPARED_METHODS)
    assert all(isinstance(c, TrainConfig) for c in configs)
