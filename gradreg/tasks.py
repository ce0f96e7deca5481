"""The synthetic long-term-dependency tasks (docs/method.md section 6).

Each task is a small class: the attributes say what the data looks like, and
``sample_with_positions`` draws a batch in one vectorised pass. Everything
else -- argument checks, devices, the loss and the wrong/right decision -- is
shared in :class:`Task`.

Conventions for every task: T = ``length``; positions are 0-based; ``[a, b)``
is half-open; d = floor(T / 10). Integer arithmetic (``T // 10``) gives the
floors exactly, where ``floor(0.1 * T)`` in floating point could round down.

Variants. Each task comes in one or more *variants*, the conventions of one
source for where the relevant inputs sit, what the values are and when an
answer counts as wrong: ``"pascanu"`` (the default; Pascanu et al. 2013 and
docs/method.md section 6.2, all seven tasks) and ``"chernodub"`` (the authors' own
generators from their public MATLAB code, for adding, multiplication,
temporal_order and temporal_order_3bit; see the section at the end).
``TASK_VARIANTS`` lists them per task.

    task = make_task("temporal_order", length=100)
    x, y = task.sample(20, generator=torch.Generator().manual_seed(0))
    loss = task.loss(model(x), y)          # (batch,)

    task = make_task("adding", 100, variant="chernodub")
    task.position_bounds()                 # ((0, 10), (11, 55)): inclusive, 0-based
    task.channel_names                     # ('value', 'marker')
"""

from __future__ import annotations

import math
import numbers
from decimal import ROUND_HALF_UP, Decimal

import torch
import torch.nn.functional as F

# A regression sequence is wrong when its squared error is above this value
# (strictly; compared in the output's dtype).
REGRESSION_WRONG_THRESHOLD = 0.04


def _is_int(value) -> bool:
    # bool is an int subclass, but True is never a meaningful length or batch size.
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


class Task:
    """One task of a given length.

    Subclasses set the class attributes below and implement ``_draw``.

    Attributes: ``name``, ``variant`` (whose conventions: "pascanu" or
    "chernodub"), ``length`` (T), ``steps`` (S, input steps per sequence),
    ``input_size``, ``channel_names`` (one name per input channel),
    ``output_size``, ``kind`` ("classification" or "regression"), ``readout``
    ("last": one target, scored at the last step; "all": a target at every
    step), ``min_length`` and ``wrong_when`` (the wrong-answer rule in words).
    """

    name: str
    variant: str = "pascanu"
    input_size: int
    channel_names: tuple[str, ...]
    output_size: int
    kind: str = "classification"
    readout: str = "last"
    min_length: int

    def __init__(self, length: int):
        if not _is_int(length):
            raise ValueError(f"length must be an integer, got {length!r}")
        if length < self.min_length:
            raise ValueError(
                f"length {length} is too short for task {self.name!r} "
                f"(minimum {self.min_length})"
            )
        self.length = int(length)

    @property
    def steps(self) -> int:
        return self.length

    def __repr__(self) -> str:
        return f"{type(self).__name__}(length={self.length})"

    def position_ranges(self) -> tuple[range, ...]:
        """The range each column of ``sample_with_positions``' positions is drawn from."""
        raise NotImplementedError

    def relevant_ranges(self) -> list[range]:
        """Where the inputs that decide the target can be (for plots of the task): the
        position ranges, unless a task says otherwise."""
        return list(self.position_ranges())

    def position_bounds(self) -> tuple[tuple[int, int], ...]:
        """``position_ranges`` as inclusive ``(first, last)`` pairs, 0-based, at this T."""
        return tuple((r.start, r.stop - 1) for r in self.position_ranges())

    @property
    def wrong_when(self) -> str:
        """The rule of ``wrong`` in words."""
        if self.kind == "regression":
            return f"(o - y)^2 > {REGRESSION_WRONG_THRESHOLD}"
        return "argmax(o) != y" + (" at any step" if self.readout == "all" else "")

    # ----------------------------------------------------------------- sampling

    def sample(self, batch_size: int, generator: torch.Generator | None = None, device=None):
        """Draw ``(x, y)``: x float32 (batch, steps, input_size); y as documented per task."""
        x, y, _ = self.sample_with_positions(batch_size, generator, device)
        return x, y

    def sample_with_positions(self, batch_size: int, generator: torch.Generator | None = None,
                              device=None):
        """Draw ``(x, y, positions)``; positions is int64 (batch, k): the special steps.

        The data is on ``device`` if given, else on the generator's device, else
        on the CPU, and is fully determined by the generator's state.
        """
        if not _is_int(batch_size) or batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        if device is None:
            device = generator.device if generator is not None else torch.device("cpu")
        device = torch.device(device)
        # torch would refuse a generator on another device with a RuntimeError deep in randint.
        if generator is not None and generator.device.type != device.type:
            raise ValueError(
                f"device {str(device)!r} does not match the generator's device "
                f"{str(generator.device)!r}"
            )
        return self._draw(int(batch_size), generator, device)

    def _draw(self, batch: int, generator, device):
        raise NotImplementedError

    # ------------------------------------------------------------ loss / wrong

    def loss(self, output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-example loss, shape (batch,), differentiable, in the output's dtype.

        Classification: cross-entropy at the scored step (per-step tasks: the
        mean over steps). Regression: squared error (o - y)^2.
        """
        scores = self._scored_output(output, y)
        if self.kind == "regression":
            return (scores[:, 0] - y.to(scores.dtype)) ** 2
        if self.readout == "all":
            # cross_entropy wants the classes in dimension 1.
            return F.cross_entropy(scores.transpose(1, 2), y, reduction="none").mean(dim=1)
        return F.cross_entropy(scores, y, reduction="none")

    def wrong(self, output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-example bool (batch,): is this sequence answered wrongly?

        Classification: argmax at the scored step differs from the target (for
        per-step tasks, at any step). Regression: squared error > 0.04; in the
        "chernodub" variant |o - y| > ``abs_error_threshold``. ``wrong_when`` says which.
        """
        with torch.no_grad():
            scores = self._scored_output(output, y)
            if self.kind == "regression":
                return self._regression_wrong(scores[:, 0], y.to(scores.dtype))
            # argmax takes the first of tied maxima
            misses = scores.argmax(dim=-1) != y
            return misses.any(dim=1) if self.readout == "all" else misses

    def _regression_wrong(self, o: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (o - y) ** 2 > REGRESSION_WRONG_THRESHOLD

    # ------------------------------------------------------ squared-error targets

    def target_vector(self, y: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """The target as the vector a squared-error (MSE) loss compares the output with.

        Classification: the one-hot vector of the class, (batch, O) (readout
        "all": (batch, S, O)); regression: y as a column, (batch, 1). In ``dtype``.
        """
        all_steps = self.readout == "all"
        if not isinstance(y, torch.Tensor) or y.ndim != 1 + all_steps or (all_steps and y.shape[1] != self.steps):
            shape = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
            expected = f"(batch, {self.steps})" if all_steps else "(batch)"
            raise ValueError(f"target has shape {shape}; task {self.name!r} expects {expected}")
        if self.kind == "regression":
            return y.to(dtype).unsqueeze(-1)
        if y.dtype.is_floating_point or y.dtype == torch.bool:
            raise ValueError(f"target dtype {y.dtype} is not an integer class index (expected int64)")
        if y.numel() and (int(y.min()) < 0 or int(y.max()) >= self.output_size):
            raise ValueError(f"target classes must lie in 0..{self.output_size - 1}, "
                             f"got {int(y.min())}..{int(y.max())}")
        return F.one_hot(y.long(), self.output_size).to(dtype)

    def mse_loss(self, output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-example squared-error loss 1/2 ||o - target_vector(y)||^2, shape (batch,).

        o is the scored output (the last step, or every step for readout
        "all", summed over them), in the output's dtype, differentiable. The
        authors' loss is the sum of this over the minibatch. ``loss`` stays
        the package's default (cross-entropy / squared error) for every variant.
        """
        scores = self._scored_output(output, y)
        diff = scores - self.target_vector(y, scores.dtype)
        return 0.5 * (diff ** 2).flatten(1).sum(dim=1)

    def _scored_output(self, output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Check shapes and return the scores that count: (batch, O) or, for readout "all", (batch, S, O)."""
        O, S = self.output_size, self.steps
        shape = tuple(output.shape)
        if self.readout == "all":
            if output.ndim == 2:
                raise ValueError(
                    f"task {self.name!r} scores every step: it needs an output of shape "
                    f"(batch, {S}, {O}) from a model with readout=\"all\", got shape {shape}"
                )
            expected = f"(batch, {S}, {O})"
        else:
            expected = f"(batch, {O}) or (batch, {S}, {O})"
        if output.ndim not in (2, 3) or shape[-1] != O or (output.ndim == 3 and shape[1] != S):
            raise ValueError(f"output has shape {shape}; task {self.name!r} expects {expected}")
        batch = shape[0]
        expected_y = (batch, S) if self.readout == "all" else (batch,)
        if tuple(y.shape) != expected_y:
            raise ValueError(
                f"target has shape {tuple(y.shape)}; for an output of shape {shape} "
                f"task {self.name!r} expects {expected_y}"
            )
        if self.kind == "classification" and (y.dtype.is_floating_point or y.dtype == torch.bool):
            raise ValueError(f"target dtype {y.dtype} is not an integer class index (expected int64)")
        if self.readout == "last" and output.ndim == 3:
            return output[:, -1]
        return output


# ---------------------------------------------------------------------------
# temporal order (Hochreiter & Schmidhuber 1997)


class TemporalOrder(Task):
    """``temporal_order``: which order did A and B come in?

    6 one-hot symbols {A=0, B=1, c..f=2..5}, T steps. Every step shows a
    uniform distractor from c..f, except p0 in [d, 2d) and
    p1 in [floor(T/2), floor(T/2)+d), which show A or B (uniform, independent
    bits v0, v1 with A=0, B=1). Target class v0 + 2*v1 (4 classes), scored at
    the last step. y: int64 (batch,). T >= 10.

    ``class_table()``: row c holds the bits (v0, v1, ...) of class c.
    """

    name = "temporal_order"
    input_size = 6
    channel_names = ("A", "B", "c", "d", "e", "f")
    output_size = 4
    min_length = 10
    # class -> (v0, v1): class v0 + 2*v1
    CLASSES = ((0, 0), (1, 0), (0, 1), (1, 1))

    def position_ranges(self):
        T, d = self.length, self.length // 10
        return (range(d, 2 * d), range(T // 2, T // 2 + d))

    def class_table(self) -> torch.Tensor:
        """int64 (output_size, k): row c holds the A/B bits (A=0, B=1) at p0, p1, ... of class c."""
        return torch.tensor(self.CLASSES, dtype=torch.int64)

    def _draw(self, batch, generator, device):
        symbols = torch.randint(2, 6, (batch, self.length), generator=generator, device=device)
        positions = _positions(self.position_ranges(), batch, generator, device)
        # Uniform independent bits make a uniform class, whichever table maps them.
        bits = torch.randint(0, 2, positions.shape, generator=generator, device=device)
        symbols.scatter_(1, positions, bits)
        y = self._class_of_bits(bits)
        x = _one_hot(symbols, self.input_size)
        return x, y, positions

    def _class_of_bits(self, bits: torch.Tensor) -> torch.Tensor:
        """The class of each row of bits (batch, k), by ``class_table``."""
        lookup = self.__dict__.setdefault("_class_lookup", {})
        if bits.device not in lookup:     # made once per device: a training step draws a batch
            table = self.class_table().to(bits.device)
            place_values = 2 ** torch.arange(bits.shape[1], device=bits.device)
            # code_of_class[c] = the bits of class c read as a binary number (v0 lowest);
            # invert it into class_of_code.
            code_of_class = (table * place_values).sum(dim=1)
            class_of_code = torch.empty_like(code_of_class)
            class_of_code[code_of_class] = torch.arange(len(code_of_class), device=bits.device)
            lookup[bits.device] = place_values, class_of_code
        place_values, class_of_code = lookup[bits.device]
        return class_of_code[(bits * place_values).sum(dim=1)]


class TemporalOrder3Bit(TemporalOrder):
    """``temporal_order_3bit``: as temporal_order with three A/B symbols.

    p0 in [d, 2d), p1 in [floor(0.3T), floor(0.3T)+d),
    p2 in [floor(0.6T), floor(0.6T)+d); target v0 + 2*v1 + 4*v2 (8 classes).
    """

    name = "temporal_order_3bit"
    output_size = 8
    # class -> (v0, v1, v2): class v0 + 2*v1 + 4*v2
    CLASSES = tuple(tuple((c >> j) & 1 for j in range(3)) for c in range(8))

    def position_ranges(self):
        T, d = self.length, self.length // 10
        p1, p2 = 3 * T // 10, 6 * T // 10
        return (range(d, 2 * d), range(p1, p1 + d), range(p2, p2 + d))


# ---------------------------------------------------------------------------
# two marked values: adding, multiplication, xor


class Adding(Task):
    """``adding``: the mean of the two marked values.

    2 channels, T steps: channel 1 holds values uniform in [0, 1]; channel 0
    is a marker, 0 everywhere but at p0 in [0, d) and
    p1 in [d, d + floor(0.4T)), where it is 1. Regression target
    (v_p0 + v_p1) / 2 (Pascanu's scaling), y float32 (batch,); output_size 1.
    T >= 10, fixed rather than jittered per batch.
    """

    name = "adding"
    input_size = 2
    channel_names = ("marker", "value")  # every channel but the marker holds the values
    output_size = 1
    kind = "regression"
    min_length = 10

    def position_ranges(self):
        d = self.length // 10
        return (range(0, d), range(d, d + 4 * self.length // 10))

    def _values(self, batch, generator, device):
        return torch.rand(batch, self.length, generator=generator, device=device, dtype=torch.float32)

    def _target(self, first, second):
        return (first + second) / 2

    def _draw(self, batch, generator, device):
        values = self._values(batch, generator, device)
        positions = _positions(self.position_ranges(), batch, generator, device)
        marker = torch.zeros_like(values).scatter_(1, positions, 1.0)
        marked = values.gather(1, positions)
        y = self._target(marked[:, 0], marked[:, 1])
        x = torch.stack([marker if c == "marker" else values for c in self.channel_names], dim=-1)
        return x, y, positions


class Multiplication(Adding):
    """``multiplication``: as adding, target v_p0 * v_p1."""

    name = "multiplication"

    def _target(self, first, second):
        return first * second


class Xor(Adding):
    """``xor``: as adding, but the values are random bits {0, 1}; target the
    XOR of the two marked bits (2 classes), y int64 (batch,)."""

    name = "xor"
    channel_names = ("marker", "bit")
    output_size = 2
    kind = "classification"

    def _values(self, batch, generator, device):
        bits = torch.randint(0, 2, (batch, self.length), generator=generator, device=device)
        return bits.to(torch.float32)

    def _target(self, first, second):
        return (first != second).to(torch.int64)


# ---------------------------------------------------------------------------
# memory tasks


class RandomPermutation(Task):
    """``random_permutation``: remember the first symbol.

    100 one-hot symbols, T steps. Step 0 shows 0 or 1 (uniform); every other
    step shows a uniform symbol from 2..99. Target: the step-0 symbol,
    scored at the last step (100-way output), y int64 (batch,). T >= 2.
    Positions: step 0.
    """

    name = "random_permutation"
    input_size = 100
    channel_names = tuple(str(s) for s in range(100))
    output_size = 100
    min_length = 2

    def position_ranges(self):
        return (range(0, 1),)

    def _draw(self, batch, generator, device):
        symbols = torch.randint(2, 100, (batch, self.length), generator=generator, device=device)
        y = torch.randint(0, 2, (batch,), generator=generator, device=device)
        symbols[:, 0] = y
        positions = torch.zeros(batch, 1, dtype=torch.int64, device=device)
        return _one_hot(symbols, self.input_size), y, positions


class NoiselessMemorization(Task):
    """``noiseless_memorization``: recall 10 values after a go signal.

    5 values, 10 positions, S = T + 20 steps, input size 7 (channels 0..4 the
    values, 5 blank, 6 go). Steps 0..9 show 10 uniform values; every later
    step shows blank, except step T+10, which shows go instead. Targets at
    every step (6 classes, 5 = blank): blank at steps 0..T+9, then the 10
    values in order at steps T+10..T+19. y int64 (batch, S); readout "all".
    T >= 1. Positions: the go step.
    """

    name = "noiseless_memorization"
    input_size = 7
    channel_names = ("v0", "v1", "v2", "v3", "v4", "blank", "go")
    output_size = 6
    readout = "all"
    min_length = 1

    N_VALUES, N_POSITIONS, BLANK, GO = 5, 10, 5, 6

    @property
    def steps(self) -> int:
        return self.length + 2 * self.N_POSITIONS

    @property
    def go_step(self) -> int:
        return self.length + self.N_POSITIONS

    def position_ranges(self):
        return (range(self.go_step, self.go_step + 1),)

    def relevant_ranges(self) -> list[range]:
        """The stored values (steps 0..9) as well as the go step: its positions mark only the go."""
        return [range(0, self.N_POSITIONS)] + list(self.position_ranges())

    def _draw(self, batch, generator, device):
        n, go = self.N_POSITIONS, self.go_step
        values = torch.randint(0, self.N_VALUES, (batch, n), generator=generator, device=device)
        symbols = torch.full((batch, self.steps), self.BLANK, dtype=torch.int64, device=device)
        symbols[:, :n] = values
        symbols[:, go] = self.GO
        y = torch.full((batch, self.steps), self.BLANK, dtype=torch.int64, device=device)
        y[:, go:] = values
        positions = torch.full((batch, 1), go, dtype=torch.int64, device=device)
        return _one_hot(symbols, self.input_size), y, positions


# ---------------------------------------------------------------------------
# the authors' variants: variant="chernodub"
#
# Chernodub & Nowicki's own task generators, from their public MATLAB code
# (github.com/achernodub/oplu_adding, synthetic_problems/get_*_problem.m, and
# error_*.m for the wrong-answer rules), rewritten here as vectorised torch
# code. MATLAB draws each marked position with randi([round(lo), round(hi)]):
# 1-based, both ends inclusive, and MATLAB's round takes halves away from zero
# (Python's round() takes them to even), so position p (0-based) lies in
# [round(lo) - 1, round(hi) - 1]. lo and hi are computed in double precision
# exactly as the MATLAB expressions are (the same IEEE operations in the same
# order), which matters for adding and multiplication: see _authors_two_marker_ranges.
# Every variant needs T >= 10, the authors' shortest length; below it, ranges
# can be empty or overlap (temporal_order_3bit at T = 8). The distributions
# are the authors'; the random streams are not (they draw the class and look
# up its symbols, we draw uniform symbols and look up their class: the same
# uniform joint distribution).


def _matlab_round(x: float) -> int:
    """MATLAB's round of a double: to the nearest integer, halves away from zero."""
    return int(Decimal(x).quantize(Decimal(1), rounding=ROUND_HALF_UP))  # Decimal(x) is exact


def _matlab_randi_range(lo: float, hi: float) -> range:
    """The 0-based positions of MATLAB's randi([round(lo), round(hi)]) (1-based, inclusive)."""
    return range(_matlab_round(lo) - 1, _matlab_round(hi))


def _authors_two_marker_ranges(T: int) -> tuple[range, range]:
    """p0 in [0, round(T~/10) - 1], p1 in [round(T~/10 + 1) - 1, round(T~/2) - 1], T~ = ceil(1.1 T).

    The code computes T~ = ceil((11/10)*T) in double precision, and 11/10 is a
    double slightly above 1.1, so where 1.1 T is a whole number the product
    can land just above it and the ceiling one higher: T~ = 56, 111, 221 at
    T = 50, 100, 200 (not 55, 110, 220). We keep the code's arithmetic, so
    at T = 100 p1 lies in [11, 55], where exact arithmetic (and issue 12's
    text) would give [11, 54] (at T = 200: [22, 110], not [22, 109]; at
    T = 50 the ranges agree).
    """
    t_tilde = math.ceil((11 / 10) * T)
    return (_matlab_randi_range(1, t_tilde / 10),
            _matlab_randi_range(t_tilde / 10 + 1, t_tilde / 2))


class AuthorsTemporalOrder(TemporalOrder):
    """``temporal_order``, variant ``"chernodub"`` (the authors' get_temporder_problem.m).

    6 one-hot symbols {A=0, B=1, c..f=2..5}, T steps, distractors uniform over
    c..f; symbol s in {A, B} at p0 in [round(T/10) - 1, round(2T/10) - 1],
    symbol e at p1 in [round(4T/10) - 1, round(5T/10) - 1] (0-based, inclusive;
    T = 100: [9, 19] and [39, 49]). Class 2s + e (A=0, B=1) of 4, uniform;
    scored at the last step by argmax. y: int64 (batch,). Note the bit order:
    the pascanu variant's class is v0 + 2*v1.
    """

    variant = "chernodub"
    # class -> (s, e), as the authors' switch on coin_out (1-based there)
    CLASSES = ((0, 0), (0, 1), (1, 0), (1, 1))

    def position_ranges(self):
        T = self.length
        return (_matlab_randi_range(T / 10, 2 * T / 10), _matlab_randi_range(4 * T / 10, 5 * T / 10))


class AuthorsTemporalOrder3Bit(AuthorsTemporalOrder):
    """``temporal_order_3bit``, variant ``"chernodub"`` (the authors' get_3bit_problem.m).

    As their temporal order with three A/B symbols: s at p0 in
    [round(T/10) - 1, round(2T/10) - 1], e at p1 in [round(3T/10) - 1,
    round(4T/10) - 1], m at p2 in [round(6T/10) - 1, round(7T/10) - 1]
    (T = 100: [9, 19], [29, 39], [59, 69]). 8 classes by the authors' table
    (``class_table()``), which is not a binary code: class (s, e, m) =
    0 (0,0,0), 1 (0,1,0), 2 (0,0,1), 3 (0,1,1), 4 (1,0,0), 5 (1,0,1),
    6 (1,1,0), 7 (1,1,1).
    """

    name = "temporal_order_3bit"
    output_size = 8
    # class -> (s, e, m), as the authors' switch on coin_out (1-based there)
    CLASSES = ((0, 0, 0), (0, 1, 0), (0, 0, 1), (0, 1, 1),
               (1, 0, 0), (1, 0, 1), (1, 1, 0), (1, 1, 1))

    def position_ranges(self):
        T = self.length
        return (_matlab_randi_range(T / 10, 2 * T / 10), _matlab_randi_range(3 * T / 10, 4 * T / 10),
                _matlab_randi_range(6 * T / 10, 7 * T / 10))


class AuthorsAdding(Adding):
    """``adding``, variant ``"chernodub"`` (the authors' get_adding_problem.m).

    2 channels in the authors' order: channel 0 the values, uniform on
    [-1, 1) at every step; channel 1 the marker, 1 at p0 and p1, else 0.
    p0 and p1 as ``_authors_two_marker_ranges`` (T = 100: [0, 10] and
    [11, 55]). Target (v_p0 + v_p1) / 2, y float32 (batch,). Wrong when
    |o - y| > 0.08 (error_success_rate.m; compared in the output's dtype).
    """

    variant = "chernodub"
    channel_names = ("value", "marker")
    abs_error_threshold = 0.08

    @property
    def wrong_when(self) -> str:
        return f"|o - y| > {self.abs_error_threshold}"

    def position_ranges(self):
        return _authors_two_marker_ranges(self.length)

    def _values(self, batch, generator, device):
        u = torch.rand(batch, self.length, generator=generator, device=device, dtype=torch.float32)
        return u * 2 - 1

    def _regression_wrong(self, o, y):
        return (o - y).abs() > self.abs_error_threshold


class AuthorsMultiplication(AuthorsAdding):
    """``multiplication``, variant ``"chernodub"`` (the authors'
    get_multiplication_problem.m): as their adding, target v_p0 * v_p1 (in
    [-1, 1]); wrong when |o - y| > 0.04."""

    name = "multiplication"
    abs_error_threshold = 0.04

    def _target(self, first, second):
        return first * second


# ---------------------------------------------------------------------------


def _one_hot(symbols: torch.Tensor, size: int) -> torch.Tensor:
    """float32 one-hot rows of int64 symbols in 0..size-1: F.one_hot(...).float() without its
    range checks and its int64 copy (a quarter of a training step's draw)."""
    x = torch.zeros(*symbols.shape, size, dtype=torch.float32, device=symbols.device)
    return x.scatter_(-1, symbols.unsqueeze(-1), 1.0)


def _positions(ranges, batch, generator, device) -> torch.Tensor:
    """One uniform position per range and example: int64 (batch, len(ranges))."""
    columns = [
        torch.randint(r.start, r.stop, (batch,), generator=generator, device=device) for r in ranges
    ]
    return torch.stack(columns, dim=1)


_VARIANT_CLASSES = {
    "pascanu": (TemporalOrder, TemporalOrder3Bit, Adding, Multiplication, Xor,
                RandomPermutation, NoiselessMemorization),
    "chernodub": (AuthorsTemporalOrder, AuthorsTemporalOrder3Bit, AuthorsAdding, AuthorsMultiplication),
}
_TASKS = {(cls.name, variant): cls for variant, classes in _VARIANT_CLASSES.items() for cls in classes}
assert all(cls.variant == variant for (_, variant), cls in _TASKS.items())
TASK_NAMES = tuple(cls.name for cls in _VARIANT_CLASSES["pascanu"])
VARIANTS = tuple(_VARIANT_CLASSES)
# task name -> the variants it comes in, default first
TASK_VARIANTS = {name: tuple(v for v in VARIANTS if (name, v) in _TASKS) for name in TASK_NAMES}


def make_task(name: str, length: int, variant: str = "pascanu") -> Task:
    """The task called ``name`` (one of ``TASK_NAMES``) with length T = ``length``,
    in ``variant`` (one of ``TASK_VARIANTS[name]``; "pascanu", the default, for every task)."""
    if not isinstance(name, str) or name not in TASK_VARIANTS:
        raise ValueError(f"unknown task {name!r}; allowed: {', '.join(TASK_NAMES)}")
    if not isinstance(variant, str) or (name, variant) not in _TASKS:
        raise ValueError(f"task {name!r} has no variant {variant!r}; "
                         f"allowed: {', '.join(TASK_VARIANTS[name])}")
    return _TASKS[name, variant](length)
