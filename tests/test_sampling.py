"""gradreg.sampling: the selection rules' edge cases (issues 13 and 34)."""
import math

import pytest
import torch

from gradreg import TrainConfig, sampling, train

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def test_weighted_inclusion_probabilities_in_log_space_for_a_large_alpha():
    s = torch.tensor([.01, .02, .03, .04], dtype=torch.float64)
    pi = sampling.inclusion_probabilities(s, 1, alpha=300.0)
    assert pi[3] > 0.999999 and (pi[:3] < 1e-9).all() and math.isclose(float(pi.sum()), 1.0)
    pi = sampling.inclusion_probabilities(s, 2, alpha=300.0)     # the next largest after the capped one
    assert pi[3] == 1.0 and pi[2] > 0.999999 and (pi[:2] < 1e-9).all()
    # no overflow either: huge scores to a large power
    pi = sampling.inclusion_probabilities(torch.tensor([1e200, 1e250, 0.0], dtype=torch.float64), 1, 40.0)
    assert pi[1] > 0.999999
    # alpha = 1 is unchanged: exactly proportional
    torch.testing.assert_close(sampling.inclusion_probabilities(s, 1), s / s.sum())
    with pytest.raises(ValueError, match="alpha"):
        sampling.inclusion_probabilities(s, 1, alpha=float("nan"))
    sel = sampling.select_weighted(s, 1, alpha=300.0, generator=torch.Generator().manual_seed(0))
    assert sel.index.tolist() == [3]


@pytest.mark.parametrize("scores", [
    [0.5, 2.0, 30.0, 100.0],          # alpha log s overflows to +inf for the large scores
    [0.05, 0.02, 0.03, 0.04],         # ... and to -inf for every score below 1
    [0.0, 0.05, 5.0, 1e300],          # a zero score beside both
    [1e-300, 1e-200, 0.5, 0.6],
])
@pytest.mark.parametrize("alpha", [1e308, 1e200, float(torch.finfo(torch.float64).max)])
def test_inclusion_probabilities_stay_finite_for_an_alpha_near_the_largest_float(scores, alpha):
    s = torch.tensor(scores, dtype=torch.float64)
    pi = sampling.inclusion_probabilities(s, 2, alpha=alpha)
    assert torch.isfinite(pi).all() and math.isclose(float(pi.sum()), 2.0, rel_tol=1e-9)
    top = torch.topk(s, 2).indices
    assert (pi[top] > 1 - 1e-9).all()                   # all the mass on the largest scores
    weights = sampling.select_weighted(s, 2, alpha=alpha, importance=True,
                                       generator=torch.Generator().manual_seed(0)).weight
    assert torch.isfinite(weights).all()


@pytest.mark.parametrize("alpha", [float("inf"), -1.0, "1", True, None])
def test_an_alpha_that_is_not_a_finite_number_is_a_value_error_naming_it(alpha):
    with pytest.raises(ValueError, match="alpha must be a finite number >= 0"):
        sampling.inclusion_probabilities(torch.tensor([0.1, 0.2]), 1, alpha=alpha)


def test_a_weighted_run_with_importance_weights_and_an_alpha_of_1e308_trains():
    c = TrainConfig(method="sgr", rule="weighted", alpha=1e308, importance_weights=True, task="temporal_order",
                    length=10, hidden_size=8, batch_size=5, max_iterations=20, check_every=20, test_size=200,
                    device="cpu")
    result = train(c)
    assert not result.diverged and result.iterations == 20 and math.isfinite(result.final_error)


def test_zero_scores_left_after_the_large_ones_are_capped_share_alike():
    # 0.01 ** 300 underflows (the log path), and once 0.01 is certain only zeros are left
    pi = sampling.inclusion_probabilities(torch.tensor([0.0, 0.0, 0.01], dtype=torch.float64), 2, alpha=300.0)
    assert pi.tolist() == [0.5, 0.5, 1.0]
