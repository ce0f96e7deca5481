"""Tests of gradreg.tasks against METHOD.md section 6.

The expected position ranges are written out by hand for each (task, length)
below rather than recomputed with the module's formulas, so a wrong formula
cannot agree with itself.
"""

import math

import pytest
import torch
import torch.nn.functional as F

from gradreg.tasks import REGRESSION_WRONG_THRESHOLD, TASK_NAMES, make_task

BIG = 4000  # large enough that every allowed position and symbol shows up


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


# (task, T) -> the ranges p0, p1[, p2] are drawn from, from d = floor(0.1 T) etc.
POSITION_RANGES = {
    ("temporal_order", 10): [range(1, 2), range(5, 6)],
    ("temporal_order", 57): [range(5, 10), range(28, 33)],
    ("temporal_order", 100): [range(10, 20), range(50, 60)],
    ("temporal_order_3bit", 10): [range(1, 2), range(3, 4), range(6, 7)],
    ("temporal_order_3bit", 57): [range(5, 10), range(17, 22), range(34, 39)],
    ("temporal_order_3bit", 100): [range(10, 20), range(30, 40), range(60, 70)],
    # adding, multiplication, xor: p0 in [0, d), p1 in [d, d + floor(0.4 T))
    ("adding", 10): [range(0, 1), range(1, 5)],
    ("adding", 57): [range(0, 5), range(5, 27)],
    ("adding", 100): [range(0, 10), range(10, 50)],
}
for _T in (10, 57, 100):
    POSITION_RANGES[("multiplication", _T)] = POSITION_RANGES[("adding", _T)]
    POSITION_RANGES[("xor", _T)] = POSITION_RANGES[("adding", _T)]

# name -> (input_size, output_size, kind, readout, min_length, steps(T))
SPEC = {
    "temporal_order": (6, 4, "classification", "last", 10, lambda T: T),
    "temporal_order_3bit": (6, 8, "classification", "last", 10, lambda T: T),
    "adding": (2, 1, "regression", "last", 10, lambda T: T),
    "multiplication": (2, 1, "regression", "last", 10, lambda T: T),
    "xor": (2, 2, "classification", "last", 10, lambda T: T),
    "random_permutation": (100, 100, "classification", "last", 2, lambda T: T),
    "noiseless_memorization": (7, 6, "classification", "all", 1, lambda T: T + 20),
}

CASES = [(name, T) for name in TASK_NAMES for T in (10, 57, 100)]
CASES += [("random_permutation", 2), ("noiseless_memorization", 1)]


def test_task_names():
    assert TASK_NAMES == ("temporal_order", "temporal_order_3bit", "adding", "multiplication",
                          "xor", "random_permutation", "noiseless_memorization")


# ------------------------------------------------------------------ attributes, shapes


@pytest.mark.parametrize("name,T", CASES)
def test_attributes_shapes_and_dtypes(name, T):
    task = make_task(name, T)
    input_size, output_size, kind, readout, min_length, steps = SPEC[name]
    assert (task.name, task.length, task.steps) == (name, T, steps(T))
    assert (task.input_size, task.output_size) == (input_size, output_size)
    assert (task.kind, task.readout, task.min_length) == (kind, readout, min_length)

    x, y, positions = task.sample_with_positions(7, generator=gen())
    assert x.shape == (7, task.steps, task.input_size) and x.dtype == torch.float32
    assert positions.dtype == torch.int64 and positions.shape[0] == 7
    if readout == "all":
        assert y.shape == (7, task.steps) and y.dtype == torch.int64
    elif kind == "regression":
        assert y.shape == (7,) and y.dtype == torch.float32
    else:
        assert y.shape == (7,) and y.dtype == torch.int64
    assert x.device.type == y.device.type == "cpu"


def test_x_is_float32_even_with_float64_default():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        for name in TASK_NAMES:
            x, y = make_task(name, 10).sample(3, generator=gen())
            assert x.dtype == torch.float32, name
            if name in ("adding", "multiplication"):
                assert y.dtype == torch.float32
    finally:
        torch.set_default_dtype(old)


def test_sample_without_generator_and_sample_matches_with_positions():
    task = make_task("adding", 20)
    x, y = task.sample(5)
    assert x.shape == (5, 20, 2)
    x1, y1 = task.sample(5, generator=gen(3))
    x2, y2, _ = task.sample_with_positions(5, generator=gen(3))
    assert torch.equal(x1, x2) and torch.equal(y1, y2)


# ------------------------------------------------------------------ content of the data


@pytest.mark.parametrize("T", [10, 57, 100])
@pytest.mark.parametrize("name", ["temporal_order", "temporal_order_3bit"])
def test_temporal_order_content(name, T):
    task = make_task(name, T)
    x, y, positions = task.sample_with_positions(BIG, generator=gen(1))
    assert torch.all(x.sum(-1) == 1) and torch.all((x == 0) | (x == 1))
    symbols = x.argmax(-1)
    ranges = POSITION_RANGES[(name, T)]
    k = len(ranges)

    # A/B occur exactly at the returned positions; everything else is a distractor c..f.
    is_ab = symbols < 2
    assert torch.all(is_ab.sum(1) == k)
    found = is_ab.nonzero()[:, 1].view(BIG, k)  # nonzero is row-major, so sorted per row
    assert torch.equal(found, positions)
    assert set(symbols[~is_ab].unique().tolist()) == {2, 3, 4, 5}

    for j, r in enumerate(ranges):
        assert set(positions[:, j].unique().tolist()) == set(r), f"p{j}"

    # Target recomputed from x: bit j is 1 when the j-th A/B symbol is B.
    bits = symbols.gather(1, found)
    expected = sum(bits[:, j] * 2**j for j in range(k))
    assert torch.equal(y, expected)
    assert set(y.unique().tolist()) == set(range(2**k))
    # The bits are independent and fair: each combination about equally often.
    counts = torch.bincount(y, minlength=2**k).double() / BIG
    assert torch.all((counts - 1 / 2**k).abs() < 0.04)


@pytest.mark.parametrize("T", [10, 57, 100])
@pytest.mark.parametrize("name", ["adding", "multiplication", "xor"])
def test_two_marker_content(name, T):
    task = make_task(name, T)
    x, y, positions = task.sample_with_positions(BIG, generator=gen(2))
    marker, values = x[..., 0], x[..., 1]
    assert torch.all((marker == 0) | (marker == 1))
    assert torch.all(marker.sum(1) == 2)
    found = marker.nonzero()[:, 1].view(BIG, 2)
    assert torch.equal(found, positions)
    for j, r in enumerate(POSITION_RANGES[(name, T)]):
        assert set(positions[:, j].unique().tolist()) == set(r), f"p{j}"

    v0 = values.gather(1, found[:, :1])[:, 0]
    v1 = values.gather(1, found[:, 1:])[:, 0]
    if name == "xor":
        assert set(values.unique().tolist()) == {0.0, 1.0}
        assert torch.equal(y, (v0 + v1 == 1).long())
        assert set(y.unique().tolist()) == {0, 1}
    else:
        assert values.min() >= 0 and values.max() <= 1
        assert values.min() < 0.01 and values.max() > 0.99  # spread over [0, 1]
        expected = (v0 + v1) / 2 if name == "adding" else v0 * v1
        assert torch.allclose(y, expected, rtol=0, atol=1e-7)


@pytest.mark.parametrize("T", [2, 10, 57])
def test_random_permutation_content(T):
    task = make_task("random_permutation", T)
    x, y, positions = task.sample_with_positions(BIG, generator=gen(3))
    assert torch.all(x.sum(-1) == 1)
    symbols = x.argmax(-1)
    assert torch.equal(y, symbols[:, 0])
    assert set(y.unique().tolist()) == {0, 1}
    assert torch.all(positions == 0) and positions.shape == (BIG, 1)
    assert set(symbols[:, 1:].unique().tolist()) == set(range(2, 100))


@pytest.mark.parametrize("T", [1, 10, 57])
def test_noiseless_memorization_content(T):
    task = make_task("noiseless_memorization", T)
    S = T + 20
    x, y, positions = task.sample_with_positions(500, generator=gen(4))
    assert torch.all(x.sum(-1) == 1)
    symbols = x.argmax(-1)
    values = symbols[:, :10]
    assert set(values.unique().tolist()) == {0, 1, 2, 3, 4}
    go = T + 10
    assert torch.all(symbols[:, 10:go] == 5)  # blank
    assert torch.all(symbols[:, go] == 6)  # go
    assert torch.all(symbols[:, go + 1:] == 5)
    assert torch.all(positions == go) and positions.shape == (500, 1)
    # Targets: blank until the go step, then the 10 values in order.
    assert y.shape == (500, S)
    assert torch.all(y[:, :go] == 5)
    assert torch.equal(y[:, go:], values)


# ------------------------------------------------------------------ determinism, devices


@pytest.mark.parametrize("name", TASK_NAMES)
def test_determinism(name):
    task = make_task(name, 20)
    x1, y1 = task.sample(16, generator=gen(5))
    x2, y2 = task.sample(16, generator=gen(5))
    x3, y3 = task.sample(16, generator=gen(6))
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    assert not torch.equal(x1, x3)
    # The generator state advances: a second draw from the same generator differs.
    g = gen(5)
    xa, _ = task.sample(16, generator=g)
    xb, _ = task.sample(16, generator=g)
    assert not torch.equal(xa, xb)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available")
@pytest.mark.parametrize("name", TASK_NAMES)
def test_cuda_generator(name):
    task = make_task(name, 20)
    g = torch.Generator(device="cuda").manual_seed(0)
    x, y, positions = task.sample_with_positions(8, generator=g)
    assert x.is_cuda and y.is_cuda and positions.is_cuda and x.dtype == torch.float32
    x2, y2 = task.sample(8, generator=torch.Generator(device="cuda").manual_seed(0))
    assert torch.equal(x, x2) and torch.equal(y, y2)
    x3, _ = task.sample(8, device="cuda")
    assert x3.is_cuda


def test_explicit_device_and_mismatch():
    task = make_task("xor", 10)
    x, y = task.sample(4, generator=gen(), device="cpu")
    assert x.device.type == "cpu"
    with pytest.raises(ValueError, match="'meta'"):
        task.sample(4, generator=gen(), device="meta")


# ------------------------------------------------------------------ loss


def test_classification_loss_by_hand():
    task = make_task("temporal_order", 10)
    output = torch.tensor([[2.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    y = torch.tensor([0, 3])
    expected = torch.tensor([math.log(1 + 3 * math.exp(-2)), math.log(4)])
    assert torch.allclose(task.loss(output, y), expected)
    # A per-step output is scored at its last step only.
    per_step = torch.randn(2, task.steps, 4)
    per_step[:, -1] = output
    assert torch.allclose(task.loss(per_step, y), expected)


def test_regression_loss_by_hand():
    for name in ("adding", "multiplication"):
        task = make_task(name, 10)
        output = torch.tensor([[0.7], [0.1]])
        y = torch.tensor([0.4, 0.1])
        assert torch.allclose(task.loss(output, y), torch.tensor([0.09, 0.0]))


def test_memorization_loss_by_hand():
    task = make_task("noiseless_memorization", 1)  # S = 21
    _, y = task.sample(2, generator=gen())
    output = torch.zeros(2, 21, 6)
    assert torch.allclose(task.loss(output, y), torch.full((2,), math.log(6)))
    # Target logit ln 5 at one step: p = 5 / (5 + 5) = 1/2 there, 1/6 elsewhere.
    output[0, 3, y[0, 3]] = math.log(5)
    expected = (20 * math.log(6) + math.log(2)) / 21
    assert torch.allclose(task.loss(output, y), torch.tensor([expected, math.log(6)]))


@pytest.mark.parametrize("name", TASK_NAMES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_loss_differentiable_in_dtype(name, dtype):
    task = make_task(name, 10)
    _, y = task.sample(3, generator=gen())
    shape = (3, task.steps, task.output_size) if task.readout == "all" else (3, task.output_size)
    output = torch.randn(shape, dtype=dtype, requires_grad=True)
    loss = task.loss(output, y)
    assert loss.shape == (3,) and loss.dtype == dtype
    loss.sum().backward()
    assert output.grad is not None and torch.all(torch.isfinite(output.grad))
    assert output.grad.abs().sum() > 0


# ------------------------------------------------------------------ wrong


def test_wrong_classification():
    task = make_task("xor", 10)
    y = torch.tensor([0, 1, 1])
    output = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    assert task.wrong(output, y).tolist() == [False, True, False]
    assert task.wrong(output, y).dtype == torch.bool
    # Per-step output: only the last step counts.
    per_step = torch.zeros(3, 10, 2)
    per_step[:, :-1, 0] = 5.0  # wrong for examples 1, 2 at every earlier step
    per_step[:, -1] = output
    assert task.wrong(per_step, y).tolist() == [False, True, False]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_wrong_regression_threshold(dtype):
    assert REGRESSION_WRONG_THRESHOLD == 0.04
    task = make_task("adding", 10)
    y = torch.full((2,), 0.5)
    output = torch.tensor([[0.5 + math.sqrt(0.039)], [0.5 - math.sqrt(0.041)]], dtype=dtype)
    assert task.wrong(output, y).tolist() == [False, True]
    # Boundary: wrong means squared error strictly above 0.04 (in the output's dtype).
    # No float has a square of exactly 0.04: an error of 0.2 squares to just above
    # it and counts as wrong; the next float below 0.2 squares to just below, and
    # counts as right.
    zero = torch.zeros(2)
    e = torch.tensor(0.2, dtype=dtype)
    below = torch.nextafter(e, torch.tensor(0.0, dtype=dtype))
    assert task.wrong(torch.stack([e, below]).view(2, 1), zero).tolist() == [True, False]


def test_wrong_memorization_any_step():
    task = make_task("noiseless_memorization", 5)
    _, y = task.sample(3, generator=gen())
    perfect = 10 * F.one_hot(y, 6).float()
    assert task.wrong(perfect, y).tolist() == [False, False, False]
    one_off = perfect.clone()
    one_off[1, 17] = 10 * F.one_hot((y[1, 17] + 1) % 6, 6).float()  # a single wrong step
    assert task.wrong(one_off, y).tolist() == [False, True, False]


# ------------------------------------------------------------------ bad input


def test_make_task_errors():
    with pytest.raises(ValueError, match=r"unknown task 'foo'; allowed: temporal_order, "):
        make_task("foo", 10)
    with pytest.raises(ValueError, match=r"length 5 is too short for task 'adding' \(minimum 10\)"):
        make_task("adding", 5)
    with pytest.raises(ValueError, match=r"length 1 is too short for task 'random_permutation' \(minimum 2\)"):
        make_task("random_permutation", 1)
    with pytest.raises(ValueError, match=r"length 0 is too short .*'noiseless_memorization' \(minimum 1\)"):
        make_task("noiseless_memorization", 0)
    for bad in (10.5, "10", None, True):
        with pytest.raises(ValueError, match=f"length must be an integer, got {bad!r}"):
            make_task("temporal_order", bad)
    # Minimum lengths themselves are accepted.
    for name in TASK_NAMES:
        make_task(name, SPEC[name][4]).sample(2, generator=gen())


@pytest.mark.parametrize("bad", [0, -3, 2.5, "4", None])
def test_bad_batch_size(bad):
    with pytest.raises(ValueError, match=rf"batch_size must be an integer >= 1, got {bad!r}"):
        make_task("temporal_order", 10).sample(bad, generator=gen())


def test_loss_shape_errors():
    task = make_task("temporal_order", 10)  # output_size 4, steps 10
    y = torch.zeros(3, dtype=torch.long)
    bad_outputs = {
        r"\(3, 5\)": torch.zeros(3, 5),  # wrong output_size
        r"\(3, 9, 4\)": torch.zeros(3, 9, 4),  # wrong steps
        r"\(3,\)": torch.zeros(3),  # wrong ndim
        r"\(3, 10, 4, 1\)": torch.zeros(3, 10, 4, 1),
    }
    for shape, output in bad_outputs.items():
        for method in (task.loss, task.wrong):
            with pytest.raises(ValueError, match=shape + r".*expects \(batch, 4\) or \(batch, 10, 4\)"):
                method(output, y)
    with pytest.raises(ValueError, match=r"target has shape \(2,\).*expects \(3,\)"):
        task.loss(torch.zeros(3, 4), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="target dtype torch.float32"):
        task.loss(torch.zeros(3, 4), torch.zeros(3))

    regression = make_task("adding", 10)
    with pytest.raises(ValueError, match=r"\(3, 2\).*expects \(batch, 1\)"):
        regression.loss(torch.zeros(3, 2), torch.zeros(3))
    with pytest.raises(ValueError, match=r"target has shape \(3, 1\).*expects \(3,\)"):
        regression.loss(torch.zeros(3, 1), torch.zeros(3, 1))


def test_memorization_needs_per_step_output():
    task = make_task("noiseless_memorization", 5)  # S = 25
    _, y = task.sample(3, generator=gen())
    with pytest.raises(ValueError, match=r'readout="all", got shape \(3, 6\)'):
        task.loss(torch.zeros(3, 6), y)
    with pytest.raises(ValueError, match=r"\(3, 24, 6\).*expects \(batch, 25, 6\)"):
        task.wrong(torch.zeros(3, 24, 6), y)
    with pytest.raises(ValueError, match=r"target has shape \(3,\).*expects \(3, 25\)"):
        task.loss(torch.zeros(3, 25, 6), y[:, 0])
