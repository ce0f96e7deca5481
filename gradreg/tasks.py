"""The synthetic long-term-dependency tasks (METHOD.md section 6).

Each task is a small class: the attributes say what the data looks like, and
``sample_with_positions`` draws a batch in one vectorised pass. Everything
else -- argument checks, devices, the loss and the wrong/right decision -- is
shared in :class:`Task`.

Conventions for every task: T = ``length``; positions are 0-based; ``[a, b)``
is half-open; d = floor(T / 10). Integer arithmetic (``T // 10``) gives the
floors exactly, where ``floor(0.1 * T)`` in floating point could round down.

    task = make_task("temporal_order", length=100)
    x, y = task.sample(20, generator=torch.Generator().manual_seed(0))
    loss = task.loss(model(x), y)          # (batch,)
"""

from __future__ import annotations

import numbers

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

    Attributes: ``name``, ``length`` (T), ``steps`` (S, input steps per
    sequence), ``input_size``, ``output_size``, ``kind`` ("classification" or
    "regression"), ``readout`` ("last": one target, scored at the last step;
    "all": a target at every step) and ``min_length``.
    """

    name: str
    input_size: int
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
        per-step tasks, at any step). Regression: squared error > 0.04.
        """
        with torch.no_grad():
            if self.kind == "regression":
                return self.loss(output, y) > REGRESSION_WRONG_THRESHOLD
            misses = self._scored_output(output, y).argmax(dim=-1) != y
            return misses.any(dim=1) if self.readout == "all" else misses

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
    """

    name = "temporal_order"
    input_size = 6
    output_size = 4
    min_length = 10

    def position_ranges(self):
        T, d = self.length, self.length // 10
        return (range(d, 2 * d), range(T // 2, T // 2 + d))

    def _draw(self, batch, generator, device):
        symbols = torch.randint(2, 6, (batch, self.length), generator=generator, device=device)
        positions = _positions(self.position_ranges(), batch, generator, device)
        bits = torch.randint(0, 2, positions.shape, generator=generator, device=device)
        symbols.scatter_(1, positions, bits)
        place_values = 2 ** torch.arange(bits.shape[1], device=device)
        y = (bits * place_values).sum(dim=1)
        x = F.one_hot(symbols, self.input_size).to(torch.float32)
        return x, y, positions


class TemporalOrder3Bit(TemporalOrder):
    """``temporal_order_3bit``: as temporal_order with three A/B symbols.

    p0 in [d, 2d), p1 in [floor(0.3T), floor(0.3T)+d),
    p2 in [floor(0.6T), floor(0.6T)+d); target v0 + 2*v1 + 4*v2 (8 classes).
    """

    name = "temporal_order_3bit"
    output_size = 8

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
        return torch.stack([marker, values], dim=-1), y, positions


class Multiplication(Adding):
    """``multiplication``: as adding, target v_p0 * v_p1."""

    name = "multiplication"

    def _target(self, first, second):
        return first * second


class Xor(Adding):
    """``xor``: as adding, but the values are random bits {0, 1}; target the
    XOR of the two marked bits (2 classes), y int64 (batch,)."""

    name = "xor"
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
    output_size = 100
    min_length = 2

    def position_ranges(self):
        return (range(0, 1),)

    def _draw(self, batch, generator, device):
        symbols = torch.randint(2, 100, (batch, self.length), generator=generator, device=device)
        y = torch.randint(0, 2, (batch,), generator=generator, device=device)
        symbols[:, 0] = y
        positions = torch.zeros(batch, 1, dtype=torch.int64, device=device)
        return F.one_hot(symbols, self.input_size).to(torch.float32), y, positions


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

    def _draw(self, batch, generator, device):
        n, go = self.N_POSITIONS, self.go_step
        values = torch.randint(0, self.N_VALUES, (batch, n), generator=generator, device=device)
        symbols = torch.full((batch, self.steps), self.BLANK, dtype=torch.int64, device=device)
        symbols[:, :n] = values
        symbols[:, go] = self.GO
        y = torch.full((batch, self.steps), self.BLANK, dtype=torch.int64, device=device)
        y[:, go:] = values
        positions = torch.full((batch, 1), go, dtype=torch.int64, device=device)
        return F.one_hot(symbols, self.input_size).to(torch.float32), y, positions


# ---------------------------------------------------------------------------


def _positions(ranges, batch, generator, device) -> torch.Tensor:
    """One uniform position per range and example: int64 (batch, len(ranges))."""
    columns = [
        torch.randint(r.start, r.stop, (batch,), generator=generator, device=device) for r in ranges
    ]
    return torch.stack(columns, dim=1)


_TASKS = {
    cls.name: cls
    for cls in (TemporalOrder, TemporalOrder3Bit, Adding, Multiplication, Xor,
                RandomPermutation, NoiselessMemorization)
}
TASK_NAMES = tuple(_TASKS)


def make_task(name: str, length: int) -> Task:
    """The task called ``name`` (one of ``TASK_NAMES``) with length T = ``length``."""
    if not isinstance(name, str) or name not in _TASKS:
        raise ValueError(f"unknown task {name!r}; allowed: {', '.join(TASK_NAMES)}")
    return _TASKS[name](length)
