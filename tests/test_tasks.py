"""Tests of gradreg.tasks against docs/method.md section 6 and, for variant="chernodub", the
authors' MATLAB generators (achernodub/oplu_adding, synthetic_problems/).

The expected position ranges are written out by hand for each (task, length)
below rather than recomputed with the module's formulas, so a wrong formula
cannot agree with itself.
"""

import hashlib
import math
import re

import pytest
import torch
import torch.nn.functional as F

from gradreg.tasks import REGRESSION_WRONG_THRESHOLD, TASK_NAMES, TASK_VARIANTS, make_task

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


def assert_ab_at_positions(x, positions, k):
    """A/B (symbols 0, 1) occur exactly at the returned positions, distractors elsewhere;
    returns the symbols."""
    assert torch.all(x.sum(-1) == 1) and torch.all((x == 0) | (x == 1))
    symbols = x.argmax(-1)
    is_ab = symbols < 2
    assert torch.all(is_ab.sum(1) == k)
    found = is_ab.nonzero()[:, 1].view(x.shape[0], k)  # nonzero is row-major, so sorted per row
    assert torch.equal(found, positions)
    return symbols


# ------------------------------------------------------------------ content of the data


@pytest.mark.parametrize("T", [10, 57, 100])
@pytest.mark.parametrize("name", ["temporal_order", "temporal_order_3bit"])
def test_temporal_order_content(name, T):
    task = make_task(name, T)
    x, y, positions = task.sample_with_positions(BIG, generator=gen(1))
    ranges = POSITION_RANGES[(name, T)]
    k = len(ranges)
    symbols = assert_ab_at_positions(x, positions, k)
    is_ab = symbols < 2
    assert set(symbols[~is_ab].unique().tolist()) == {2, 3, 4, 5}

    for j, r in enumerate(ranges):
        assert set(positions[:, j].unique().tolist()) == set(r), f"p{j}"

    # Target recomputed from x: bit j is 1 when the j-th A/B symbol is B.
    bits = symbols.gather(1, positions)
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


def assert_deterministic(task):
    """Same generator seed, same draw; another seed, another draw; the generator advances."""
    x1, y1 = task.sample(16, generator=gen(5))
    x2, y2 = task.sample(16, generator=gen(5))
    x3, _ = task.sample(16, generator=gen(6))
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    assert not torch.equal(x1, x3)
    g = gen(5)
    xa, _ = task.sample(16, generator=g)
    xb, _ = task.sample(16, generator=g)
    assert not torch.equal(xa, xb)


@pytest.mark.parametrize("name", TASK_NAMES)
def test_determinism(name):
    assert_deterministic(make_task(name, 20))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available")
@pytest.mark.parametrize("name,variant", [(n, v) for n in TASK_NAMES for v in TASK_VARIANTS[n]])
def test_cuda_generator(name, variant):
    task = make_task(name, 20, variant=variant)
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



# ====================================================================== variants


def test_task_variants():
    assert TASK_VARIANTS == {
        "temporal_order": ("pascanu", "chernodub"),
        "temporal_order_3bit": ("pascanu", "chernodub"),
        "adding": ("pascanu", "chernodub"),
        "multiplication": ("pascanu", "chernodub"),
        "xor": ("pascanu",),
        "random_permutation": ("pascanu",),
        "noiseless_memorization": ("pascanu",),
    }
    for name in TASK_NAMES:
        default, named = make_task(name, 20), make_task(name, 20, variant="pascanu")
        assert type(default) is type(named) and default.variant == "pascanu"
        for variant in TASK_VARIANTS[name]:
            task = make_task(name, 20, variant=variant)
            assert (task.name, task.variant) == (name, variant)
            assert len(task.channel_names) == task.input_size


# sha256 (first 16 hex digits) of the bytes of x, y, positions of make_task(name, 20)
# .sample_with_positions(8, generator=seed 0), computed with the code before variants existed:
# the default variant must keep drawing exactly the same tensors.
PASCANU_SAMPLE_DIGESTS = {
    "temporal_order": "d3e81d575b606eca",
    "temporal_order_3bit": "0374b78025e96cd1",
    "adding": "95a12558feaf805f",
    "multiplication": "ff278d7ea71dd3b1",
    "xor": "122983cc930c23cf",
    "random_permutation": "de152dbc32594b13",
    "noiseless_memorization": "dc033d97a779f799",
}


@pytest.mark.parametrize("variant", [None, "pascanu"])
@pytest.mark.parametrize("name", TASK_NAMES)
def test_pascanu_samples_unchanged(name, variant):
    task = make_task(name, 20) if variant is None else make_task(name, 20, variant=variant)
    x, y, positions = task.sample_with_positions(8, generator=gen(0))
    h = hashlib.sha256()
    for t in (x, y, positions):
        h.update(t.numpy().tobytes())
    assert h.hexdigest()[:16] == PASCANU_SAMPLE_DIGESTS[name]


# ---------------------------------------------------------------- the authors' variant

AUTHORS = ("temporal_order", "temporal_order_3bit", "adding", "multiplication")
AUTHORS_LENGTHS = (10, 15, 25, 30, 50, 100, 200)

# (task, T) -> inclusive 0-based (first, last) of p0, p1[, p2], worked out by hand from the
# MATLAB: randi([round(lo), round(hi)]) is 1-based and inclusive, round() takes halves away
# from zero (T = 15, 25, 30 hit halves), so p in [round(lo) - 1, round(hi) - 1].
# temporal order: lo, hi = T/10, 2T/10 and 4T/10, 5T/10;
# 3-bit: T/10, 2T/10; 3T/10, 4T/10; 6T/10, 7T/10;
# adding / multiplication: 1, T~/10 and T~/10 + 1, T~/2 with T~ = ceil((11/10)*T) in double
# precision: 11 at T = 10, 17 at 15, 28 at 25, 33 at 30, but 56 at 50, 111 at 100 and 221 at 200,
# because (11/10)*50, *100, *200 land just above 55, 110, 220.
AUTHORS_BOUNDS = {
    ("temporal_order", 10): [(0, 1), (3, 4)],
    ("temporal_order", 15): [(1, 2), (5, 7)],
    ("temporal_order", 25): [(2, 4), (9, 12)],
    ("temporal_order", 30): [(2, 5), (11, 14)],
    ("temporal_order", 50): [(4, 9), (19, 24)],
    ("temporal_order", 100): [(9, 19), (39, 49)],
    ("temporal_order", 200): [(19, 39), (79, 99)],
    ("temporal_order_3bit", 10): [(0, 1), (2, 3), (5, 6)],
    ("temporal_order_3bit", 15): [(1, 2), (4, 5), (8, 10)],
    ("temporal_order_3bit", 25): [(2, 4), (7, 9), (14, 17)],
    ("temporal_order_3bit", 30): [(2, 5), (8, 11), (17, 20)],
    ("temporal_order_3bit", 50): [(4, 9), (14, 19), (29, 34)],
    ("temporal_order_3bit", 100): [(9, 19), (29, 39), (59, 69)],
    ("temporal_order_3bit", 200): [(19, 39), (59, 79), (119, 139)],
    ("adding", 10): [(0, 0), (1, 5)],
    ("adding", 15): [(0, 1), (2, 8)],
    ("adding", 25): [(0, 2), (3, 13)],
    ("adding", 30): [(0, 2), (3, 16)],
    ("adding", 50): [(0, 5), (6, 27)],
    # issue 12 says [11, 54] here, from exact arithmetic (T~ = 110); the code's doubles give 111.
    ("adding", 100): [(0, 10), (11, 55)],
    ("adding", 200): [(0, 21), (22, 110)],
}
for _T in AUTHORS_LENGTHS:
    AUTHORS_BOUNDS[("multiplication", _T)] = AUTHORS_BOUNDS[("adding", _T)]

# The authors' class tables (the switch on coin_out in get_temporder_problem.m and
# get_3bit_problem.m), 0-based: class -> the symbols (A = 0, B = 1) at p0, p1[, p2].
AUTHORS_CLASSES = {
    "temporal_order": {0: (0, 0), 1: (0, 1), 2: (1, 0), 3: (1, 1)},
    "temporal_order_3bit": {0: (0, 0, 0), 1: (0, 1, 0), 2: (0, 0, 1), 3: (0, 1, 1),
                            4: (1, 0, 0), 5: (1, 0, 1), 6: (1, 1, 0), 7: (1, 1, 1)},
}


def authors(name, T):
    return make_task(name, T, variant="chernodub")


@pytest.mark.parametrize("T", AUTHORS_LENGTHS)
@pytest.mark.parametrize("name", AUTHORS)
def test_authors_position_bounds(name, T):
    task = authors(name, T)
    assert list(task.position_bounds()) == AUTHORS_BOUNDS[(name, T)]
    assert [(r.start, r.stop - 1) for r in task.position_ranges()] == AUTHORS_BOUNDS[(name, T)]


@pytest.mark.parametrize("name", AUTHORS)
def test_authors_ranges_valid_at_every_length(name):
    # Non-empty, inside the sequence, in order and disjoint, at every T from the minimum on.
    for T in range(10, 401):
        bounds = authors(name, T).position_bounds()
        assert all(0 <= a <= b < T for a, b in bounds), (T, bounds)
        assert all(b < a2 for (_, b), (a2, _) in zip(bounds, bounds[1:])), (T, bounds)


# name -> (input_size, output_size, kind, channel_names, wrong_when)
AUTHORS_SPEC = {
    "temporal_order": (6, 4, "classification", ("A", "B", "c", "d", "e", "f"), "argmax(o) != y"),
    "temporal_order_3bit": (6, 8, "classification", ("A", "B", "c", "d", "e", "f"), "argmax(o) != y"),
    "adding": (2, 1, "regression", ("value", "marker"), "|o - y| > 0.08"),
    "multiplication": (2, 1, "regression", ("value", "marker"), "|o - y| > 0.04"),
}


@pytest.mark.parametrize("T", [10, 50, 100, 200])
@pytest.mark.parametrize("name", AUTHORS)
def test_authors_attributes_shapes_and_dtypes(name, T):
    task = authors(name, T)
    input_size, output_size, kind, channels, wrong_when = AUTHORS_SPEC[name]
    assert (task.name, task.variant, task.length, task.steps) == (name, "chernodub", T, T)
    assert (task.input_size, task.output_size, task.kind, task.readout) == (input_size, output_size, kind, "last")
    assert (task.channel_names, task.wrong_when, task.min_length) == (channels, wrong_when, 10)
    x, y, positions = task.sample_with_positions(7, generator=gen())
    assert x.shape == (7, T, input_size) and x.dtype == torch.float32 and x.device.type == "cpu"
    assert y.shape == (7,) and y.dtype == (torch.float32 if kind == "regression" else torch.int64)
    assert positions.shape == (7, len(AUTHORS_BOUNDS[(name, 10)])) and positions.dtype == torch.int64


@pytest.mark.parametrize("T", [10, 15, 50, 100, 200])
@pytest.mark.parametrize("name", ["temporal_order", "temporal_order_3bit"])
def test_authors_temporal_order_content(name, T):
    task = authors(name, T)
    x, y, positions = task.sample_with_positions(BIG, generator=gen(11))
    bounds = AUTHORS_BOUNDS[(name, T)]
    k = len(bounds)
    symbols = assert_ab_at_positions(x, positions, k)
    is_ab = symbols < 2
    assert set(symbols[~is_ab].unique().tolist()) == {2, 3, 4, 5}
    # Each position inside its range, and every allowed position drawn.
    for j, (a, b) in enumerate(bounds):
        assert set(positions[:, j].unique().tolist()) == set(range(a, b + 1)), f"p{j}"

    # Target recomputed from x with the authors' table.
    class_of = {bits: c for c, bits in AUTHORS_CLASSES[name].items()}
    ab = symbols.gather(1, positions)
    expected = torch.tensor([class_of[tuple(row)] for row in ab.tolist()])
    assert torch.equal(y, expected)
    # Classes uniform, as the authors draw them.
    counts = torch.bincount(y, minlength=2**k).double() / BIG
    assert torch.all((counts - 1 / 2**k).abs() < 0.04)


def test_authors_class_tables():
    for name, table in AUTHORS_CLASSES.items():
        assert authors(name, 10).class_table().tolist() == [list(table[c]) for c in range(len(table))]
    # the pascanu variant's tables: the bits of the class, v0 lowest
    assert make_task("temporal_order", 10).class_table().tolist() == [[0, 0], [1, 0], [0, 1], [1, 1]]
    assert make_task("temporal_order_3bit", 10).class_table().tolist() == \
        [[c & 1, (c >> 1) & 1, (c >> 2) & 1] for c in range(8)]


@pytest.mark.parametrize("T", [10, 30, 50, 100, 200])
@pytest.mark.parametrize("name", ["adding", "multiplication"])
def test_authors_two_marker_content(name, T):
    task = authors(name, T)
    x, y, positions = task.sample_with_positions(BIG, generator=gen(12))
    # the authors' column order: value, then marker
    values, marker = x[..., 0], x[..., 1]
    assert task.channel_names.index("value") == 0 and task.channel_names.index("marker") == 1
    assert torch.all((marker == 0) | (marker == 1)) and torch.all(marker.sum(1) == 2)
    found = marker.nonzero()[:, 1].view(BIG, 2)
    assert torch.equal(found, positions)
    for j, (a, b) in enumerate(AUTHORS_BOUNDS[(name, T)]):
        assert set(positions[:, j].unique().tolist()) == set(range(a, b + 1)), f"p{j}"

    # Values uniform on [-1, 1) at every step, marked ones included.
    assert values.min() >= -1 and values.max() < 1
    assert values.min() < -0.99 and values.max() > 0.99
    assert abs(values.mean().item()) < 0.01
    assert abs((values < 0).double().mean().item() - 0.5) < 0.01
    marked = values.gather(1, found)
    assert marked.min() < -0.9 and marked.max() > 0.9

    v0, v1 = marked[:, 0], marked[:, 1]
    expected = (v0 + v1) / 2 if name == "adding" else v0 * v1
    assert torch.allclose(y, expected, rtol=0, atol=1e-7)
    assert y.min() >= -1 and y.max() <= 1 and y.min() < -0.5 and y.max() > 0.5


@pytest.mark.parametrize("name", AUTHORS)
def test_authors_determinism_and_differs_from_pascanu(name):
    task = authors(name, 50)
    assert_deterministic(task)
    x1, _ = task.sample(16, generator=gen(5))
    xp, _ = make_task(name, 50).sample(16, generator=gen(5))
    assert not torch.equal(x1, xp)


@pytest.mark.parametrize("name,threshold", [("adding", 0.08), ("multiplication", 0.04)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_authors_wrong_regression_threshold(name, threshold, dtype):
    task = authors(name, 10)
    assert task.abs_error_threshold == threshold
    # |o - y| > threshold is wrong, = threshold right (the authors count abs(T - Y) <= v as a
    # success), in the output's dtype; on both sides of the target.
    t = torch.tensor(threshold, dtype=dtype)
    above = torch.nextafter(t, torch.tensor(1.0, dtype=dtype))
    output = torch.stack([t, above, -t, -above, t / 2]).view(5, 1)
    assert task.wrong(output, torch.zeros(5)).tolist() == [False, True, False, True, False]
    assert task.wrong(output, torch.zeros(5)).dtype == torch.bool
    # An error of 0.1 is wrong here, right in the pascanu variant (squared error 0.01 <= 0.04).
    output = torch.tensor([[0.6], [0.4]], dtype=dtype)
    y = torch.full((2,), 0.5)
    assert task.wrong(output, y).tolist() == [True, True]
    assert make_task(name, 10).wrong(output, y).tolist() == [False, False]


def test_authors_wrong_classification_is_argmax():
    task = authors("temporal_order_3bit", 10)
    y = torch.tensor([2, 5, 0, 1])
    output = torch.zeros(4, 8)
    output[0, 2] = 1.0          # right
    output[1, 4] = 0.9          # wrong class
    output[2, 0] = output[2, 3] = 0.5  # a tie: the first maximum counts, as in the MATLAB
    output[3, 0] = output[3, 1] = 0.5  # a tie won by class 0, target 1: wrong
    assert task.wrong(output, y).tolist() == [False, True, False, True]
    per_step = torch.randn(4, 10, 8, generator=gen())
    per_step[:, -1] = output    # the last step only counts
    assert task.wrong(per_step, y).tolist() == [False, True, False, True]


# ---------------------------------------------------------------- squared-error targets


def test_target_vector():
    task = authors("temporal_order", 10)
    y = torch.tensor([3, 0, 2])
    t = task.target_vector(y)
    assert t.dtype == torch.float32 and t.tolist() == [[0, 0, 0, 1], [1, 0, 0, 0], [0, 0, 1, 0]]
    assert task.target_vector(y, dtype=torch.float64).dtype == torch.float64
    reg = authors("adding", 10)
    t = reg.target_vector(torch.tensor([0.25, -0.5]))
    assert t.shape == (2, 1) and t.flatten().tolist() == [0.25, -0.5]
    # available on every task, the pascanu variant included
    mem = make_task("noiseless_memorization", 2)
    _, y = mem.sample(3, generator=gen())
    t = mem.target_vector(y)
    assert t.shape == (3, 22, 6) and torch.equal(t.argmax(-1), y) and torch.all(t.sum(-1) == 1)


def test_target_vector_errors():
    task = authors("temporal_order", 10)
    with pytest.raises(ValueError, match=r"target has shape \(2, 3\); task 'temporal_order' expects \(batch\)"):
        task.target_vector(torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="target dtype torch.float32"):
        task.target_vector(torch.zeros(2))
    with pytest.raises(ValueError, match=r"target classes must lie in 0\.\.3, got 0\.\.4"):
        task.target_vector(torch.tensor([0, 4]))
    with pytest.raises(ValueError, match=r"expects \(batch, 22\)"):
        make_task("noiseless_memorization", 2).target_vector(torch.zeros(3, dtype=torch.long))


@pytest.mark.parametrize("name", AUTHORS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_mse_loss_by_hand_and_gradient(name, dtype):
    task = authors(name, 10)
    _, y = task.sample(5, generator=gen(7))
    output = torch.randn(5, task.output_size, dtype=dtype, generator=gen(8), requires_grad=True)
    loss = task.mse_loss(output, y)
    assert loss.shape == (5,) and loss.dtype == dtype
    if task.kind == "regression":
        expected = 0.5 * (output[:, 0] - y.to(dtype)) ** 2
    else:
        expected = 0.5 * ((output - F.one_hot(y, task.output_size).to(dtype)) ** 2).sum(1)
    assert torch.allclose(loss, expected)
    # d(1/2 ||o - t||^2)/do = o - t: the gradient of the summed minibatch loss.
    loss.sum().backward()
    assert torch.allclose(output.grad, output.detach() - task.target_vector(y, dtype))
    # A per-step output is scored at its last step.
    per_step = torch.randn(5, 10, task.output_size, dtype=dtype)
    per_step[:, -1] = output.detach()
    assert torch.allclose(task.mse_loss(per_step, y), loss.detach())


def test_pascanu_loss_unchanged_by_variant():
    # loss stays cross-entropy / squared error in both variants; mse_loss is separate.
    for name in AUTHORS:
        a, p = authors(name, 10), make_task(name, 10)
        _, y = a.sample(4, generator=gen())
        output = torch.randn(4, a.output_size, generator=gen(1))
        assert torch.equal(a.loss(output, y), p.loss(output, y))


# ---------------------------------------------------------------- bad input


def test_variant_errors():
    with pytest.raises(ValueError, match=r"^task 'xor' has no variant 'chernodub'; allowed: pascanu$"):
        make_task("xor", 10, variant="chernodub")
    for name in ("random_permutation", "noiseless_memorization"):
        with pytest.raises(ValueError, match=rf"task '{name}' has no variant 'chernodub'; allowed: pascanu$"):
            make_task(name, 10, variant="chernodub")
    for bad in ("foo", "Chernodub", "", None, 1):
        with pytest.raises(ValueError, match=rf"^task 'adding' has no variant {re.escape(repr(bad))}; "
                                             r"allowed: pascanu, chernodub$"):
            make_task("adding", 10, variant=bad)
    with pytest.raises(ValueError, match=r"has no variant \['chernodub'\]"):
        make_task("adding", 10, variant=["chernodub"])
    # the task name is checked first
    with pytest.raises(ValueError, match=r"unknown task 'foo'; allowed: temporal_order, "):
        make_task("foo", 10, variant="chernodub")
    for name in AUTHORS:
        with pytest.raises(ValueError, match=rf"length 9 is too short for task '{name}' \(minimum 10\)"):
            authors(name, 9)
        with pytest.raises(ValueError, match=r"batch_size must be an integer >= 1, got 0"):
            authors(name, 10).sample(0, generator=gen())


def test_one_hot_rows_are_those_of_torch_one_hot():
    from gradreg.tasks import _one_hot
    symbols = torch.randint(0, 7, (5, 11), generator=torch.Generator().manual_seed(0))
    got = _one_hot(symbols, 7)
    assert got.dtype == torch.float32
    assert torch.equal(got, F.one_hot(symbols, 7).to(torch.float32))
