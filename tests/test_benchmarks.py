"""benchmarks/gpu_cell.py: the projection's arithmetic, and a clean exit where no GPU is lent
(its measurement runs on a GPU, in benchmarks/gpu.sh)."""
import pytest
import torch

from benchmarks import gpu_cell


def test_the_projection_scales_one_cell_by_length_and_budget():
    # paper: 2 tasks x T = 50, 100, 150, 200 at 50,000 iterations: (0.5 + 1 + 1.5 + 2) x 2 x 10 cells' worth
    assert gpu_cell.project(100.0, 100, 5_000, "paper") == pytest.approx(100 * 100.0)
    assert gpu_cell.project(100.0, 100, 5_000, "confirm") == pytest.approx(10 * 100.0)
    assert gpu_cell.project(100.0, 100, 5_000, "long") == pytest.approx((1 + 1.5) * 50 * 100.0)


def test_a_cell_is_every_method_and_seed_of_the_paper_profile():
    configs = gpu_cell.cell_configs("temporal_order", 100, 5_000, "cpu")
    assert len(configs) == 35 and {c.max_iterations for c in configs} == {5_000}


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is here: the script would measure")
def test_without_a_gpu_it_says_so_and_exits_0(capsys):
    assert gpu_cell.main(["--device", "cuda"]) == 0
    assert "no CUDA device" in capsys.readouterr().out
