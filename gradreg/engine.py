"""One training engine for K runs at once: SGR and every baseline, with the solved criterion
(docs/method.md sections 4-7).

    result = train(TrainConfig(method="sgr", seed=0))                      # one run: K = 1
    results = train_many([TrainConfig(method=m, seed=s) for m in ... for s in ...])

`train_many` puts the SRN runs that share their shapes (task, length, hidden size, sequences
drawn per step, dtype, device, ...) into one group and trains each group as one program: per
iteration, one batched forward + BPTT pass (`gradreg.passes`) over every run's own batch, then
each run's step from the stored per-example terms, by its method:

    sgd / clip : n fresh sequences, weights 1/n                     (+ clipping for clip)
    pascanu    : as clip, plus alpha * dOmega/dW_rec               (Pascanu SGD-CR)
    sgr        : a pool of M = k n sequences, scored, n chosen by a rule, their
                 already-computed gradients averaged: no second backward pass
    lstm       : torch.nn.LSTM through autograd, same readout, optimiser and clipping
                 (a group of its own: nn.LSTM takes one set of weights per call)

Every run keeps its own generators (`Seeds`), data, selection, clipping scale, test set,
checks and stopping point, and every product of the batched passes is a `bmm` that gives each
run exactly the product of that run alone: `train(c)` is bit for bit the run of c in any
`train_many` call on the CPU (tested), and a run stops without disturbing the others.

An iteration reads nothing back to the host: each run's gradient norm, clipping scale, loss
and logged norms, and whether its step was finite, stay on the device (`_Group._step`) and are
read at once at the next check, end or checkpoint (`_Group._flush`); a step that was not finite
is masked on the device, and the run ends at that iteration when the flush sees it.

A run can be stopped and go on later exactly where it stopped: with `checkpoints=DIR` each run in
flight saves its whole state there every `checkpoint_seconds` (`gradreg.checkpoints`, `_Run.state`),
and a run whose file is there starts from it. Runs therefore count their own iterations: a resumed
run may train beside runs at other iterations.

The solved check: every `check_every` iterations the run's fixed test set (`test_size`
sequences from its own seed) is scored TEST_CHUNK sequences at a time, stopping as soon as
more than solved_error * test_size are wrong -- such a check cannot solve the run, whatever
the rest of the test set holds. A run is solved at its first check with at most that many
wrong: exactly the decision, and the iteration, of a full count. The history row of a check
gives the error over the `test_counted` sequences it scored; `final_error` is always over the
whole test set (counted to the end after a check that stopped early).

The protocol (`TrainConfig.protocol`, issue 12) plugs its pieces into this one engine as small
functions of a run, each chosen by a field:

    data source   `_draw_batch`       fresh sequences from the run's stream (train_set_size None),
                                      or a fixed training set drawn once per run, minibatches
                                      drawn from it uniformly with replacement
    loss          `_loss_fn`          the task's loss, or 1/2 ||o - target||^2 (loss "mse"),
                                      differentiated by `passes.readout_grad`
    reduction     `_uniform_weights`, `sgr_weights`: the step's weights 1/n (mean) or 1 (sum)
    update        `_update`           v <- mu v + g, w <- w - lr v (momentum_form "torch"), or
                                      v <- mu v - lr g, w <- w + v ("classical")
    stopping      "test": the solved check above; "validation": every check_every iterations the
                  run's fixed validation set (`validation_size` sequences, its own seed) gives a
                  success rate and an MSE; the network of lowest validation MSE so far is kept;
                  the run stops once its validation error is below solved_error (success above
                  99%); its result is the kept network's success on the whole test set
                  (`test_success`, %), solved when its test error is at most solved_error.
"""
from __future__ import annotations

import functools
import math
import time
import warnings

import pandas as pd
import torch
from torch import Tensor

from . import checkpoints as ckpt
from . import sampling
from .baselines import LSTMNet, omega_grads
from .config import DTYPES, METHODS, Seeds, TrainConfig, TrainResult, batch_groups, check_memory, resolve_device
from .model import SRN, spectral_radius
from .passes import (
    PARAM_NAMES,
    BPTTRecord,
    batch_major,
    check_lag,
    forward,
    pool_scores,
    readout,
    run_pass,
    weighted_grads,
)
from .tasks import make_task

__all__ = ["METHODS", "TrainConfig", "TrainResult", "train", "train_many", "sgr_weights", "pool_scores",
           "TEST_CHUNK", "HISTORY_COLUMNS", "VALIDATION_COLUMNS"]

#: Test sequences scored per forward pass of a check (a check stops after the chunk that
#: decides it). The per-sequence outputs do not depend on the chunk size (tested).
TEST_CHUNK = 500

#: The step logs a history row averages over the steps since the last check (and the loss).
#: Adam's (beta1, beta2) and epsilon: torch.optim.Adam's defaults
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8
STEP_MEANS = ("grad_norm", "minibatch_long_term_norm", "pool_score_q10", "pool_score_q50", "pool_score_q90")
#: A step's log of every run, one float64 row per run, kept on the device until the next check
#: (`_Group._flush`): an iteration reads nothing back to the host. "ok" is 1 where the run's
#: loss and gradient norm were finite (its step was applied), 0 where they were not.
STEP_FIELDS = ("loss", "minibatch_long_term_norm", "grad_norm", "pool_score_q10", "pool_score_q50",
               "pool_score_q90", "omega", "ok")
_FIELD = {name: k for k, name in enumerate(STEP_FIELDS)}
#: The pool-score quantiles a step logs (an SGR run's; absent from its log where no score was finite)
POOL_QUANTILES = (0.1, 0.5, 0.9)
#: The columns of `TrainResult.history`, one row per check.
HISTORY_COLUMNS = ("iteration", "examples", "seconds", "train_loss", "test_error", "test_counted",
                   *STEP_MEANS, "spectral_radius")
#: The columns a run with stopping "validation" adds to its history (its test_error is NaN and
#: test_counted 0 at every check: only the kept network is tested, at the end).
VALIDATION_COLUMNS = ("validation_error", "validation_mse", "kept")


def train(config: TrainConfig, progress: bool = False, callback=None, checkpoints=None,
          checkpoint_seconds: float = 300.0, step_logs: bool = True) -> TrainResult:
    """Train one run until solved, diverged, or out of iterations (or max_seconds).
    `callback(row)` is called with each check's history row; `checkpoints` and `step_logs` as
    in `train_many`."""
    on_check = None if callback is None else (lambda _config, row: callback(row))
    return train_many([config], progress=progress, on_check=on_check, checkpoints=checkpoints,
                      checkpoint_seconds=checkpoint_seconds, step_logs=step_logs)[0]


def train_many(configs: list[TrainConfig], progress: bool = False, on_check=None,
               on_result=None, checkpoints=None, checkpoint_seconds: float = 300.0,
               step_logs: bool = True) -> list[TrainResult]:
    """Train one run per config, the runs that share their shapes as one batched program.

    Returns the results in the order of `configs`, each exactly the one `train(config)`
    returns. `on_check(config, row)` is called after each check, `on_result(result)` as soon
    as a run ends (the others may go on). `checkpoints`: a directory where every run in flight
    saves its state every `checkpoint_seconds` of wall time and from which a stopped run goes
    on, bit for bit (`gradreg.checkpoints`); None: no checkpoints. `step_logs`: keep every
    iteration's log in `TrainResult.steps`; a sweep, which saves rows and check histories only,
    turns it off (its memory and its checkpoints then do not grow with the iterations).
    """
    configs = list(configs)
    for c in configs:
        if not isinstance(c, TrainConfig):
            raise ValueError(f"train_many takes TrainConfig objects, got {type(c).__name__}")
    if not (isinstance(checkpoint_seconds, (int, float)) and not isinstance(checkpoint_seconds, bool)
            and checkpoint_seconds >= 0):
        raise ValueError(f"checkpoint_seconds must be a number >= 0, got {checkpoint_seconds!r}")
    if not isinstance(step_logs, bool):
        raise ValueError(f"step_logs must be True or False, got {step_logs!r}")
    check_memory(configs)     # one line, before anything is allocated, when it cannot fit
    if checkpoints is not None:
        ckpt.check_directory(checkpoints)    # before any run starts, not at its first checkpoint
    results: dict[int, TrainResult] = {}
    for members in batch_groups(configs):
        group = _Group([configs[i] for i in members], progress, on_check, on_result,
                       checkpoints=checkpoints, checkpoint_seconds=checkpoint_seconds, step_logs=step_logs)
        for i, result in zip(members, group.run()):
            results[i] = result
    return [results[i] for i in range(len(configs))]


# --------------------------------------------------------------------------- one run's state

class _Run:
    """One run: its config, generators, model (for an SRN group its parameters are views of the
    group's stacked tensors while it is active), test set, logs and counters."""

    def __init__(self, config: TrainConfig, task, device: torch.device, dtype: torch.dtype,
                 step_logs: bool = True):
        c = self.config = config
        self.step_logs = step_logs
        self.seeds = Seeds(c.seed, device)
        self.device = device
        self.lag = check_lag(c.lag, task.steps)
        readout_kind = getattr(task, "readout", "last")
        if c.method == "lstm":
            self.model = LSTMNet(task.input_size, c.hidden_size, task.output_size, readout=readout_kind,
                                 generator=self.seeds.model, dtype=dtype, device=device,
                                 forget_bias=c.forget_bias)
        else:
            self.model = SRN(task.input_size, c.hidden_size, task.output_size, activation=c.activation,
                             init=c.init, readout=readout_kind, generator=self.seeds.model, dtype=dtype,
                             device=device)
        x_test, y_test = task.sample(c.test_size, generator=self.seeds.test)
        x_test = x_test.to(dtype)
        self.test_chunks = [(x_test[i:i + TEST_CHUNK], y_test[i:i + TEST_CHUNK])
                            for i in range(0, c.test_size, TEST_CHUNK)]
        self.train_set = None
        if c.train_set_size is not None:     # drawn once, from the run's own training stream
            x_train, y_train = task.sample(c.train_set_size, generator=self.seeds.data)
            self.train_set = (x_train.to(dtype), y_train)
        self.validation = None
        if c.stopping == "validation":
            x_val, y_val = task.sample(c.validation_size, generator=self.seeds.validation)
            x_val = x_val.to(dtype)
            self.validation = [(x_val[i:i + TEST_CHUNK], y_val[i:i + TEST_CHUNK])
                               for i in range(0, c.validation_size, TEST_CHUNK)]
            self.best_mse = math.inf
            self.kept: dict[str, Tensor] | None = None     # the network of lowest validation MSE
            self.kept_iteration: int | None = None
        self.clip = c.clip if (c.clip and c.method != "sgd") else None
        # an lr beyond the dtype's range cannot be applied: the first update overflows
        self.lr_fits = c.lr <= torch.finfo(dtype).max
        self.history: list[dict] = []
        self.step_rows: list[dict] = []
        self.since_check: list[dict] = []
        self.it = self.examples = 0
        self.seconds = 0.0
        self.wall = 0.0        # wall time since the run started (for max_seconds)
        self.wrong = self.counted = 0
        self.diverged = self.solved = False
        self.result: TrainResult | None = None
        self.checkpoint = None   # its file, when the run is checkpointed

    #: What a checkpoint keeps of a run beside its weights, momentum and generators.
    STATE = ("it", "examples", "seconds", "wall", "wrong", "counted", "history", "step_rows", "since_check")
    VALIDATION_STATE = ("best_mse", "kept", "kept_iteration")

    @property
    def moments(self) -> tuple[str, ...]:
        """The optimiser's state saved beside the weights: momentum, and Adam's second moment."""
        return ("velocity", "second_moment") if self.config.optimizer == "adam" else ("velocity",)

    def state(self, params: dict[str, Tensor], velocity: dict[str, Tensor], second=None) -> dict:
        """Everything the run needs to go on exactly where it stands (for `gradreg.checkpoints`);
        `params`, `velocity` and (Adam) `second` by parameter name."""
        names = self.STATE + (self.VALIDATION_STATE if self.validation is not None else ())
        state = {name: getattr(self, name) for name in names}
        if state.get("kept") is not None:
            state["kept"] = {n: p.cpu() for n, p in self.kept.items()}
        state["generators"] = {name: getattr(self.seeds, name).get_state() for name in Seeds.NAMES}
        state["params"] = {n: p.detach().cpu().clone() for n, p in params.items()}
        state["velocity"] = {n: v.cpu().clone() for n, v in velocity.items()}
        if second is not None:
            state["second_moment"] = {n: v.cpu().clone() for n, v in second.items()}
        return state

    def unfit(self, state: dict) -> str | None:
        """Why a saved state cannot be this run's (None: it can): a missing part, parameters or
        momentum that are not this run's by name and shape, other generators."""
        names = self.STATE + (self.VALIDATION_STATE if self.validation is not None else ())
        missing = [n for n in names + ("generators", "params") + self.moments if n not in state]
        if missing:
            return f"it lacks {', '.join(missing)}"
        reason = ckpt.problem(state, self.config, self.device)
        if reason is not None:
            return reason
        if self.step_logs and len(state["step_rows"]) != state["it"]:
            return "it holds no step logs (a sweep's run keeps none) and this run keeps them"
        shapes = {n: tuple(p.shape) for n, p in self.model.named_parameters()}
        for part in ("params",) + self.moments:
            saved = state[part]
            if not isinstance(saved, dict) or {n: tuple(v.shape) for n, v in saved.items()} != shapes:
                return f"its {part} are not this run's parameters by name and shape"
        if state.get("kept") is not None and {n: tuple(v.shape) for n, v in state["kept"].items()} != shapes:
            return "its kept network is not this run's parameters by name and shape"
        if not isinstance(state["generators"], dict) or set(state["generators"]) != set(Seeds.NAMES):
            return f"its generators are not {', '.join(Seeds.NAMES)}"
        return None

    def restore(self, state: dict, device: torch.device):
        """Take over a saved state (after __init__ has drawn the run's fixed sets); returns its
        parameters and moments (velocity, and Adam's second moment or None), on the device, for
        the group to install."""
        names = self.STATE + (self.VALIDATION_STATE if self.validation is not None else ())
        for name in names:
            setattr(self, name, state[name])
        if not self.step_logs:
            self.step_rows = []
        if getattr(self, "kept", None) is not None:
            self.kept = {n: p.to(device) for n, p in self.kept.items()}
        for name, generator_state in state["generators"].items():
            getattr(self.seeds, name).set_state(generator_state)
        return tuple({n: v.to(device) for n, v in state[part].items()} if part in state else None
                     for part in ("params", "velocity", "second_moment"))

    @property
    def test_size(self) -> int:
        return self.config.test_size

    def decided_unsolved(self) -> bool:
        """True once the sequences counted so far already exceed the solved threshold."""
        return self.wrong / self.test_size > self.config.solved_error

    def _history_row(self, test_error: float, test_counted: int, **extra) -> dict:
        """The history row of the check just made (HISTORY_COLUMNS, then `extra`): the steps
        since the last check are averaged, and the window starts afresh."""
        window = pd.DataFrame(self.since_check)
        self.since_check.clear()

        def mean(column):
            return window[column].mean() if column in window and len(window) else float("nan")
        row = {"iteration": self.it, "examples": self.examples, "seconds": self.seconds,
               "train_loss": mean("loss"), "test_error": test_error, "test_counted": test_counted,
               **{name: mean(name) for name in STEP_MEANS},
               "spectral_radius": spectral_radius(self.model.W_rec) if isinstance(self.model, SRN)
               else float("nan"), **extra}
        self.history.append(row)
        return row

    def record_check(self, on_check) -> float:
        """The history row of the check just counted; returns its test error."""
        error = self.wrong / self.counted
        row = self._history_row(error, self.counted)
        if on_check is not None:
            on_check(self.config, row)
        return error

    def record_validation(self, wrong: int, squared: float, elements: int, params: dict[str, Tensor],
                          on_check) -> float:
        """The history row of a validation check; keeps the network if its validation MSE is the
        lowest so far (strictly, as the authors' code); returns the validation error."""
        error, mse = wrong / self.config.validation_size, squared / elements
        kept = mse < self.best_mse
        if kept:
            self.best_mse = mse
            self.kept = {name: p.clone() for name, p in params.items()}
            self.kept_iteration = self.it
        row = self._history_row(float("nan"), 0, validation_error=error, validation_mse=mse, kept=kept)
        if on_check is not None:
            on_check(self.config, row)
        return error

    def finish(self, device: torch.device) -> TrainResult:
        c = self.config
        columns = list(HISTORY_COLUMNS)
        if self.validation is not None:
            # the result is the kept network's, even when training diverged after it was kept
            final_error = self.wrong / self.counted if self.kept is not None else float("nan")
            solved = self.solved
            columns += list(VALIDATION_COLUMNS)
        else:
            final_error = float("nan") if self.diverged else self.history[-1]["test_error"]
            solved = self.solved and not self.diverged
        self.result = TrainResult(config=c, solved=solved, iterations=self.it,
                                  examples=self.examples, seconds=self.seconds, final_error=float(final_error),
                                  diverged=self.diverged,
                                  history=pd.DataFrame(self.history, columns=columns),
                                  steps=pd.DataFrame(self.step_rows), device=str(device),
                                  test_success=(100.0 * (self.counted - self.wrong) / self.counted
                                                if math.isfinite(final_error) else float("nan")),
                                  kept_iteration=getattr(self, "kept_iteration", None))
        if isinstance(self.model, SRN):   # keep the final weights, detached from the group's stacks
            for name in PARAM_NAMES:
                p = getattr(self.model, name)
                p.data = p.data.clone()
        self.result.model = self.model
        self.test_chunks = None
        return self.result


# --------------------------------------------------------------------------- each method's step

def _draw_batch(run: _Run, task, n: int) -> tuple[Tensor, Tensor]:
    """The data source: n fresh sequences from the run's stream, or (a fixed training set) n of
    its sequences drawn uniformly with replacement, by the run's own training generator."""
    if run.train_set is None:
        return task.sample(n, generator=run.seeds.data)
    x, y = run.train_set
    index = torch.randint(0, x.shape[0], (n,), generator=run.seeds.data, device=x.device)
    return x[index], y[index]


def _loss_fn(config: TrainConfig, task):
    """The per-example loss the step differentiates: None (the task's own, `task.loss`) or
    1/2 ||o - target_vector(y)||^2 (`task.mse_loss`)."""
    return None if config.loss == "task" else task.mse_loss


def _uniform_weights(run: _Run, record: BPTTRecord, log: dict) -> Tensor:
    """sgd, clip, pascanu: the mean gradient of the batch (reduction "sum": the sum)."""
    B = record.batch_size
    value = 1.0 / B if run.config.reduction == "mean" else 1.0
    return torch.full((B,), value, dtype=record.h.dtype, device=record.h.device)


def _sgr_step_weights(run: _Run, record: BPTTRecord, log: dict) -> Tensor:
    """sgr: score the pool, let the rule pick n, weight them."""
    return sgr_weights(run.config, record, run.lag, run.seeds.select, log)


STEP_WEIGHTS = {"sgd": _uniform_weights, "clip": _uniform_weights, "pascanu": _uniform_weights,
                "sgr": _sgr_step_weights}


def _pascanu_extra(runs: list[_Run], record: BPTTRecord, W_rec: Tensor, logs: list[dict]) -> Tensor:
    """pascanu: omega_weight * dOmega/dW_rec of these runs (their record and stacked W_rec),
    the term their W_rec gradients gain."""
    values, dW = omega_grads(W_rec, record)
    weight = torch.tensor([r.config.omega_weight for r in runs], dtype=dW.dtype, device=dW.device)
    for log, value in zip(logs, values):
        log["omega"] = value
    return weight[:, None, None] * dW


#: Methods whose step adds a term to the gradient of the batched pass, for all their runs at once.
STEP_EXTRAS = {"pascanu": _pascanu_extra}


@functools.cache
def _quantile_levels(device: torch.device) -> Tensor:
    # made once per device: a tensor made from Python numbers is a copy from the host
    return torch.tensor(POOL_QUANTILES, dtype=torch.float64, device=device)


def sgr_weights(c: TrainConfig, record: BPTTRecord, lag: int, generator, log: dict) -> Tensor:
    """Score one run's pool from its record, pick n by the rule, return dense (M,) weights;
    the pool score quantiles (POOL_QUANTILES of the finite scores, NaN where none is finite)
    go into `log["pool_score_quantiles"]`, a float64 tensor left on the device."""
    M, n = record.batch_size, c.batch_size
    scores, ratios, gram = pool_scores(record, lag, need_gram=(c.rule == "greedy"),
                                       need_scores=(c.rule != "random"))
    if scores is not None:
        # the quantiles of the finite scores alone, without a data-dependent shape (no host sync)
        finite = torch.where(torch.isfinite(scores), scores.double(), math.nan)
        log["pool_score_quantiles"] = torch.nanquantile(finite, _quantile_levels(finite.device))
    sel = sampling.select_for(c, scores, ratios, gram, generator)
    if c.reduction == "sum":      # the summed gradient of the chosen n
        if c.rule == "weighted" and c.importance_weights:
            return (sel.pool_weights(M) * n).to(record.h.dtype)
        ones = torch.ones(sel.index.numel(), dtype=record.h.dtype, device=record.h.device)
        return torch.zeros(M, dtype=record.h.dtype, device=record.h.device).index_put_(
            (sel.index.to(record.h.device),), ones, accumulate=True)
    return sel.pool_weights(M).to(record.h.dtype)


def clip_scale(grad_norm: Tensor, clip: Tensor) -> Tensor:
    """The clipping scale min(1, clip / ||g||) of each run, from its gradient norm and its
    threshold (NaN: no clipping, scale 1), as float64 tensors: the scale a Python float
    computed from the norm read back, to the bit (tested), without reading it back. A zero
    gradient is not scaled."""
    # a tensor divided by a tensor: `clip / tensor` with a Python number would multiply by a
    # reciprocal, which rounds differently
    return torch.where(torch.isnan(clip), 1.0, (clip / grad_norm).clamp(max=1.0))


def _lead(x: Tensor, like: Tensor) -> Tensor:
    """`x`, one value per run (or a single value), shaped to broadcast over the leading (run)
    dimension of `like` and in its dtype."""
    return x.reshape(-1, *([1] * (like.dim() - 1))).to(like.dtype)


def _commit(ok: Tensor | None, *pairs) -> None:
    """Write each (tensor, new value) pair in place, where `ok` holds (one bool per run along
    the leading dimension, or one for all); where it does not, the tensor keeps its value."""
    for old, new in pairs:
        if ok is None:
            old.copy_(new)
        else:
            torch.where(_lead(ok, old).bool(), new, old, out=old)


def _update(config: TrainConfig, params, velocity, grads, scale: Tensor, second=None, t: int = 1,
            ok: Tensor | None = None) -> None:
    """The update of one run, or of several runs whose tensors are stacked along a leading
    dimension, in place, from their gradients times the clipping `scale` (float64, one per run
    or a single value: `clip_scale`); elementwise, so each run's numbers are those of its update
    alone. Adam (`optimizer="adam"`) keeps its first moment in `velocity` and its second in
    `second`; `t` is the update's number (from 1), for the bias corrections. `ok` (bool, one per
    run or one): False leaves weights and moments as they are (a step whose loss or gradient
    was not finite), decided on the device."""
    mu, lr = config.momentum, config.lr
    with torch.no_grad():
        if config.optimizer == "adam":               # torch.optim.Adam's update, without weight decay
            b1, b2 = ADAM_BETAS
            step = lr / (1 - b1 ** t)
            root = math.sqrt(1 - b2 ** t)
            for p, m, v, gr in zip(params, velocity, second, grads):
                g = gr * _lead(scale, gr)
                m_new = torch.lerp(m, g, 1 - b1)
                v_new = v.mul(b2).addcmul_(g, g, value=1 - b2)
                _commit(ok, (p, torch.addcdiv(p, m_new, (v_new.sqrt() / root).add_(ADAM_EPS), value=-step)),
                        (m, m_new), (v, v_new))
        elif config.momentum_form == "torch":        # v <- mu v + g, w <- w - lr v
            for p, v, gr in zip(params, velocity, grads):
                # addcmul rounds v mu + g scale once, as add_(g, alpha=scale) did (tested)
                v_new = torch.addcmul(v.mul(mu), gr, _lead(scale, gr))
                _commit(ok, (p, torch.sub(p, v_new, alpha=lr)), (v, v_new))
        else:                                        # v <- mu v - lr g, w <- w + v (the authors')
            alpha = scale * -lr
            for p, v, gr in zip(params, velocity, grads):
                v_new = torch.addcmul(v.mul(mu), gr, _lead(alpha, gr))
                _commit(ok, (p, p + v_new), (v, v_new))


def _total_norm(grads) -> Tensor:
    return torch.sqrt(sum(g.pow(2).sum() for g in grads))


# --------------------------------------------------------------------------- a group of runs

class _Group:
    """Runs trained as one program: SRN runs of equal shapes, or one LSTM run."""

    def __init__(self, configs: list[TrainConfig], progress: bool, on_check, on_result,
                 checkpoints=None, checkpoint_seconds: float = 300.0, step_logs: bool = True):
        c = self.config = configs[0]
        self.device = resolve_device(c.device)
        self.dtype = DTYPES[c.dtype]
        self.task = make_task(c.task, c.length, c.variant)
        self.loss = _loss_fn(c, self.task)
        self.readout = getattr(self.task, "readout", "last")
        self.lstm = c.method == "lstm"
        self.draw = c.draw_size
        self.runs = [_Run(cfg, self.task, self.device, self.dtype, step_logs) for cfg in configs]
        self.progress, self.on_check, self.on_result = progress, on_check, on_result
        self.checkpoint_seconds = checkpoint_seconds
        restored = {}
        if checkpoints is not None:
            for k, r in enumerate(self.runs):
                r.checkpoint = ckpt.checkpoint_path(checkpoints, r.config, self.device)
                state = ckpt.load(r.checkpoint, unfit=r.unfit)
                if state is None:
                    continue
                try:
                    restored[id(r)] = r.restore(state, self.device)
                except Exception as exc:    # a misfit unfit() missed: the run, half taken over, is made anew
                    ckpt.set_aside(r.checkpoint, exc)
                    fresh = self.runs[k] = _Run(r.config, self.task, self.device, self.dtype, step_logs)
                    fresh.checkpoint = r.checkpoint
        self.active = list(self.runs)
        self.pending: list[Tensor] = []       # the steps' logs since the last `_flush`
        self._constants()
        if self.lstm:
            run = self.runs[0]
            run.velocity = [torch.zeros_like(p) for p in run.model.parameters()]
            run.second = [torch.zeros_like(p) for p in run.model.parameters()]
            if id(run) in restored:
                params, velocity, second = restored[id(run)]
                run.model.load_state_dict(params)
                run.velocity = [velocity[name] for name, _ in run.model.named_parameters()]
                if second is not None and run.config.optimizer == "adam":
                    run.second = [second[name] for name, _ in run.model.named_parameters()]
        else:
            for r in self.runs:
                if id(r) in restored:
                    for name, p in restored[id(r)][0].items():
                        getattr(r.model, name).data = p
            self.params = {name: torch.stack([getattr(r.model, name).detach() for r in self.runs])
                           for name in PARAM_NAMES}
            self.velocity = {name: torch.zeros_like(p) for name, p in self.params.items()}
            # Adam's second moments, only when a run of the group needs them
            self.second = ({name: torch.zeros_like(p) for name, p in self.params.items()}
                           if any(r.config.optimizer == "adam" for r in self.runs) else None)
            for k, r in enumerate(self.runs):
                if id(r) in restored:
                    _, velocity, second = restored[id(r)]
                    for name, v in velocity.items():
                        self.velocity[name][k].copy_(v)
                    if second is not None and r.config.optimizer == "adam":
                        for name, v in second.items():
                            self.second[name][k].copy_(v)
            self._point_models()

    def _save_checkpoints(self) -> None:
        """Each active run's state to its file (`gradreg.checkpoints`)."""
        for k, r in enumerate(self.active):
            adam = r.config.optimizer == "adam"
            if self.lstm:
                params = dict(r.model.named_parameters())
                velocity = dict(zip(params, r.velocity))
                second = dict(zip(params, r.second)) if adam else None
            else:
                params = {n: self.params[n][k] for n in PARAM_NAMES}
                velocity = {n: self.velocity[n][k] for n in PARAM_NAMES}
                second = {n: self.second[n][k] for n in PARAM_NAMES} if adam else None
            try:
                ckpt.save(r.checkpoint, r.state(params, velocity, second))
            except ckpt.EnvironmentFault as fault:      # a full disk costs the checkpoint, not the run
                warnings.warn(f"{fault}; the run goes on, and a stop now loses what it did since its "
                              "last checkpoint", RuntimeWarning, stacklevel=2)

    def _point_models(self) -> None:
        """Each active run's model parameters become views of its slice of the stacked tensors."""
        for k, r in enumerate(self.active):
            for name in PARAM_NAMES:
                getattr(r.model, name).data = self.params[name][k]

    def _keep(self, keep: list[int]) -> None:
        """Keep the active runs at positions `keep` (the others have ended)."""
        if len(keep) == len(self.active):
            return
        self.active = [self.active[k] for k in keep]
        self._constants()
        if not self.lstm and self.active:
            index = torch.tensor(keep, dtype=torch.long, device=self.device)
            self.params = {n: p.index_select(0, index) for n, p in self.params.items()}
            self.velocity = {n: v.index_select(0, index) for n, v in self.velocity.items()}
            if self.second is not None:
                self.second = {n: v.index_select(0, index) for n, v in self.second.items()}
            self._point_models()

    # ------------------------------------------------------------------ the loop

    def run(self) -> list[TrainResult]:
        bar = None
        if self.progress:
            from tqdm.auto import tqdm
            c = self.config
            bar = tqdm(total=max(r.config.max_iterations - r.it for r in self.runs), leave=False,
                       desc=f"{c.task} T={c.length} " + (f"{len(self.runs)} runs" if len(self.runs) > 1 else
                                                          f"{c.method} seed={c.seed}"))
        clock = saved = time.perf_counter()
        checkpointed = self.runs[0].checkpoint is not None
        while self.active:
            self._step()
            # the logs are read back only where they are needed: a check, a run's end, a checkpoint
            save = checkpointed and time.perf_counter() - saved >= self.checkpoint_seconds
            if save or any(r.it % r.config.check_every == 0 or r.it >= r.config.max_iterations
                           or r.config.max_seconds for r in self.active):
                ended = self._flush()
            else:
                ended = set()
            checks = [k for k, r in enumerate(self.active)
                      if k not in ended and r.it % r.config.check_every == 0]
            validations = [k for k in checks if self.active[k].validation is not None]
            if validations:
                checks = [k for k in checks if self.active[k].validation is None]
                self._validate([self.active[k] for k in validations])
                for k in validations:
                    if self.active[k].history[-1]["validation_error"] < self.active[k].config.solved_error:
                        ended.add(k)       # validation success above 1 - solved_error: stop
            if checks:
                self._check([self.active[k] for k in checks])
                for k in checks:
                    r = self.active[k]
                    if r.record_check(self.on_check) <= r.config.solved_error:
                        r.solved = True
                        ended.add(k)
            now = time.perf_counter()
            for r in self.active:
                r.seconds += (now - clock) / len(self.active)
                r.wall += now - clock
            clock = now
            for k, r in enumerate(self.active):
                c = r.config
                if r.it >= c.max_iterations or (c.max_seconds and r.wall > c.max_seconds):
                    ended.add(k)
            if ended:
                self._end([self.active[k] for k in sorted(ended)])
                self._keep([k for k in range(len(self.active)) if k not in ended])
            if save and self.active:
                self._save_checkpoints()
                saved = time.perf_counter()
            if bar is not None:
                bar.update(1)
                errors = [r.history[-1]["test_error"] for r in self.active if r.history]
                if checks and errors:
                    bar.set_postfix(runs=len(self.active), best_error=f"{min(errors):.3f}")
        if bar is not None:
            bar.close()
        return [r.result for r in self.runs]

    def _end(self, runs: list[_Run]) -> None:
        """Finish runs: a last check where the run stopped between checks, and a full count of
        the test set where the last check stopped early; then their results."""
        t = time.perf_counter()
        validated = [r for r in runs if r.validation is not None]
        if validated:
            runs_tested = [r for r in runs if r.validation is None]
            fresh = [r for r in validated if not r.diverged and (not r.history or r.history[-1]["iteration"] != r.it)]
            if fresh:
                self._validate(fresh)
            kept = [r for r in validated if r.kept is not None]
            if kept:
                self._test_kept(kept)
            for r in kept:
                r.solved = r.wrong / r.counted <= r.config.solved_error
        else:
            runs_tested = runs
        live = [r for r in runs_tested if not r.diverged]
        fresh = [r for r in live if not r.history or r.history[-1]["iteration"] != r.it]
        if fresh:
            self._check(fresh, full=True)
            for r in fresh:
                r.solved = r.record_check(self.on_check) <= r.config.solved_error
        partial = [r for r in live if r.counted < r.test_size]
        if partial:
            self._check(partial, full=True, resume=True)
            for r in partial:
                r.history[-1].update(test_error=r.wrong / r.counted, test_counted=r.counted)
        share = (time.perf_counter() - t) / len(runs)
        for r in runs:
            r.seconds += share
            result = r.finish(self.device)
            if self.on_result is not None:
                self.on_result(result)
            if r.checkpoint is not None:     # after on_result: the row is on its way
                try:
                    ckpt.remove(r.checkpoint)
                except OSError as exc:      # a sweep skips a run whose row is written: the file is harmless
                    warnings.warn(f"checkpoint {r.checkpoint} of an ended run not deleted ({exc.strerror or exc})",
                                  RuntimeWarning, stacklevel=2)

    # ------------------------------------------------------------------ the test checks

    def _check(self, runs: list[_Run], full: bool = False, resume: bool = False) -> None:
        """Count each run's wrong test sequences, chunk by chunk; unless `full`, a run stops
        counting once it cannot be solved. `resume` goes on from the counts so far."""
        if not resume:
            for r in runs:
                r.wrong = r.counted = 0
        while True:
            todo = [r for r in runs if r.counted < r.test_size and (full or not r.decided_unsolved())]
            if not todo:
                return
            # runs that stand at the same chunk are scored together
            at = min(r.counted for r in todo)
            todo = [r for r in todo if r.counted == at]
            j = at // TEST_CHUNK
            counts = self._wrong_counts(todo, j)
            for r, wrong in zip(todo, counts):
                r.wrong += wrong
                r.counted += r.test_chunks[j][1].shape[0]

    def _params_of(self, runs: list[_Run]) -> dict[str, Tensor]:
        """The stacked parameters of some active runs."""
        if len(runs) == len(self.active) and all(a is b for a, b in zip(runs, self.active)):
            return self.params
        pos = {id(r): k for k, r in enumerate(self.active)}
        index = torch.tensor([pos[id(r)] for r in runs], dtype=torch.long, device=self.device)
        return {n: p.index_select(0, index) for n, p in self.params.items()}

    def _outputs(self, params: dict[str, Tensor], xs: list[Tensor]) -> Tensor:
        """Outputs (K, B, ...) of K networks, each on its own inputs (B, S, I). No grad."""
        with torch.no_grad():
            x = torch.stack([x.transpose(0, 1) for x in xs])                     # (K, S, B, I)
            h = forward(params["W_in"], params["W_rec"], params["b"], x, self.config.activation)
            return batch_major(readout(params["W_out"], params["b_out"], h, self.readout), self.readout)

    def _validate(self, runs: list[_Run]) -> None:
        """A validation check of each run: wrong count and squared error over its validation set
        (MSE = mean over sequences and output elements, as MATLAB's mse(T - Y)); its history row,
        and the network kept when its MSE is the lowest so far."""
        params = self._params_of(runs)
        wrong = [0] * len(runs)
        squared = [0.0] * len(runs)
        elements = [0] * len(runs)
        for j in range(len(runs[0].validation)):
            out = self._outputs(params, [r.validation[j][0] for r in runs])
            for k, r in enumerate(runs):
                y = r.validation[j][1]
                wrong[k] += int(self.task.wrong(out[k], y).sum())
                diff = out[k] - self.task.target_vector(y, out.dtype)
                if self.readout == "last" and diff.ndim == 3:
                    diff = diff[:, -1]
                squared[k] += float(diff.double().pow(2).sum())
                elements[k] += diff.numel()
        for k, r in enumerate(runs):
            r.record_validation(wrong[k], squared[k], elements[k], {n: p[k] for n, p in params.items()},
                                self.on_check)

    def _test_kept(self, runs: list[_Run]) -> None:
        """Count each run's kept network's wrong sequences over its whole test set."""
        params = {n: torch.stack([r.kept[n] for r in runs]) for n in PARAM_NAMES}
        for r in runs:
            r.wrong = r.counted = 0
        for j in range(len(runs[0].test_chunks)):
            out = self._outputs(params, [r.test_chunks[j][0] for r in runs])
            for k, r in enumerate(runs):
                r.wrong += int(self.task.wrong(out[k], r.test_chunks[j][1]).sum())
                r.counted += r.test_chunks[j][1].shape[0]

    def _wrong_counts(self, runs: list[_Run], j: int) -> list[int]:
        """Wrong sequences of chunk j of each run's test set."""
        task = self.task
        with torch.no_grad():
            if self.lstm:
                return [int(task.wrong(r.model(r.test_chunks[j][0]), r.test_chunks[j][1]).sum()) for r in runs]
            out = self._outputs(self._params_of(runs), [r.test_chunks[j][0] for r in runs])
            wrong = torch.stack([task.wrong(out[k], r.test_chunks[j][1]).sum() for k, r in enumerate(runs)])
            return [int(w) for w in wrong.tolist()]

    # ------------------------------------------------------------------ one iteration of every run

    def _step(self) -> None:
        """One training step of every active run, with nothing read back to the host: each run's
        log, its clipping scale and whether its step was finite stay on the device, in
        `self.pending` until `_flush` reads them at the next check. A run whose loss or gradient
        norm is not finite keeps its weights from that step on; `_flush` ends it there.
        (Runs resumed from checkpoints may stand at different iterations.)"""
        runs = self.active
        xs, ys = [], []
        for r in runs:                     # each run draws its own batch from its own source
            x, y = _draw_batch(r, self.task, self.draw)
            xs.append(x.to(self.dtype))
            ys.append(y)
            r.it += 1
            r.examples += self.draw
        logs = [{} for _ in runs]
        if self.lstm:
            grads = [self._lstm_grads(runs[0], xs[0], ys[0], logs[0])]
        else:
            stacked = self._srn_grads(runs, torch.stack(xs), torch.stack(ys), logs)
            grads = [[stacked[n][k] for n in PARAM_NAMES] for k in range(len(runs))]
        norms = torch.stack([_total_norm(g) for g in grads]).double()
        values = torch.full((len(runs), len(STEP_FIELDS)), math.nan, dtype=torch.float64, device=self.device)
        values[:, _FIELD["loss"]] = torch.stack([log["loss"] for log in logs])
        values[:, _FIELD["minibatch_long_term_norm"]] = torch.stack([log["minibatch_long_term_norm"] for log in logs])
        values[:, _FIELD["grad_norm"]] = norms
        nan = self.nan3                 # for the runs without quantiles or omega
        if any("pool_score_quantiles" in log for log in logs):
            values[:, _FIELD["pool_score_q10"]:_FIELD["pool_score_q90"] + 1] = torch.stack(
                [log.get("pool_score_quantiles", nan) for log in logs])
        if any("omega" in log for log in logs):
            values[:, _FIELD["omega"]] = torch.stack([log.get("omega", nan[0]).to(torch.float64) for log in logs])
        ok = torch.isfinite(norms) & torch.isfinite(values[:, _FIELD["loss"]]) & self.lr_fits
        values[:, _FIELD["ok"]] = ok
        scales = clip_scale(norms, self.clips)
        first = runs[0]
        if not self.lstm and self.one_update and (first.config.optimizer != "adam"
                                                  or all(r.it == first.it for r in runs)):
            # one update for the whole group, each tensor stacked over the runs
            second = [self.second[n] for n in PARAM_NAMES] if first.config.optimizer == "adam" else None
            _update(first.config, [self.params[n] for n in PARAM_NAMES], [self.velocity[n] for n in PARAM_NAMES],
                    [stacked[n] for n in PARAM_NAMES], scales, second, first.it, ok)
        else:
            self._update_each(runs, grads, scales, ok)
        self.pending.append(values)

    def _update_each(self, runs: list[_Run], grads: list[list[Tensor]], scales: Tensor, ok: Tensor) -> None:
        """Each run's update on its own (runs that update differently, or an LSTM run)."""
        for k, (r, g) in enumerate(zip(runs, grads)):
            if not r.lr_fits:      # not even computable; `ok` marks the step diverged
                continue
            params = r.model.parameters() if self.lstm else (self.params[n][k] for n in PARAM_NAMES)
            velocity = r.velocity if self.lstm else (self.velocity[n][k] for n in PARAM_NAMES)
            second = None
            if r.config.optimizer == "adam":
                second = r.second if self.lstm else (self.second[n][k] for n in PARAM_NAMES)
            _update(r.config, params, velocity, g, scales[k], second, r.it, ok[k])

    def _flush(self) -> set[int]:
        """Read the steps' logs since the last flush back to the host, at once: each run's log
        rows go to its step logs and its window of the next check, as they did step by step;
        returns the positions of the runs that diverged, each set back to the iteration at which
        it did (its weights have stood still since)."""
        if not self.pending:
            return set()
        logged = torch.stack(self.pending).tolist()          # (steps, runs, fields): one host sync
        self.pending.clear()
        diverged = set()
        for k, r in enumerate(self.active):
            first = r.it - len(logged) + 1
            for j, step in enumerate(logged):
                log = _log_row(r.config.method, first + j, step[k])
                if r.step_logs:
                    r.step_rows.append(log)
                if not step[k][_FIELD["ok"]]:
                    r.diverged = True
                    r.examples -= self.draw * (r.it - log["iteration"])
                    r.it = log["iteration"]
                    diverged.add(k)
                    break
                r.since_check.append(log)
        return diverged

    def _constants(self) -> None:
        """The per-run settings a step needs as tensors on the device (for the active runs)."""
        runs = self.active
        self.lr_fits = torch.tensor([r.lr_fits for r in runs], device=self.device)
        self.clips = torch.tensor([r.clip if r.clip else math.nan for r in runs], dtype=torch.float64,
                                  device=self.device)
        self.nan3 = torch.full((3,), math.nan, dtype=torch.float64, device=self.device)
        # the runs update as one when they update alike (Adam: also at the same iteration)
        update = {(r.config.optimizer, r.config.momentum, r.config.momentum_form, r.config.lr) for r in runs}
        self.one_update = len(update) == 1 and all(r.lr_fits for r in runs)

    def _lstm_grads(self, run: _Run, x: Tensor, y: Tensor, log: dict) -> list[Tensor]:
        model = run.model
        model.zero_grad(set_to_none=True)
        loss = (self.loss or self.task.loss)(model(x), y)
        (loss.mean() if run.config.reduction == "mean" else loss.sum()).backward()
        log["loss"] = loss.detach().mean()
        log["minibatch_long_term_norm"] = torch.full_like(log["loss"], math.nan)
        return [p.grad for p in model.parameters()]

    def _srn_grads(self, runs: list[_Run], x: Tensor, y: Tensor, logs: list[dict]) -> dict[str, Tensor]:
        """The batched pass, then the runs' step gradients, by name, stacked (K, ...)."""
        keep_u = any(r.config.method == "pascanu" for r in runs)
        record = run_pass(self.params, self.task, x, y, self.config.activation, self.readout, keep_u=keep_u,
                          loss=self.loss)
        records = [record.run(k) for k in range(len(runs))]
        weights = torch.stack([STEP_WEIGHTS[r.config.method](r, rec, log)
                               for r, rec, log in zip(runs, records, logs)])              # (K, B)
        S = record.steps
        grads = weighted_grads(record, weights, S, output=True)
        # norms and means are reduced run by run: a reduction over a run's own contiguous
        # slice rounds as that run alone would, one over a (K, N) tensor need not
        for lag in sorted({r.lag for r in runs}):
            ks = [k for k, r in enumerate(runs) if r.lag == lag]
            if lag == 0:      # the long-term component is the whole gradient
                part = {n: grads[n][ks] for n in PARAM_NAMES}
            else:
                sub = record if len(ks) == len(runs) else _select_runs(record, ks)
                part = weighted_grads(sub, weights[ks], S - lag, output=False)
            for j, k in enumerate(ks):
                logs[k]["minibatch_long_term_norm"] = _total_norm(g[j] for g in part.values())
        for k, rec in enumerate(records):
            logs[k]["loss"] = (rec.loss * weights[k]).sum() / weights[k].sum()
        for method, extra in STEP_EXTRAS.items():
            ks = [k for k, r in enumerate(runs) if r.config.method == method]
            if ks:
                whole = len(ks) == len(runs)
                grads["W_rec"][ks] += extra([runs[k] for k in ks], record if whole else _select_runs(record, ks),
                                            self.params["W_rec"] if whole else self.params["W_rec"][ks],
                                            [logs[k] for k in ks])
        return grads


def _log_row(method: str, iteration: int, values: list[float]) -> dict:
    """A step's log as the history and `TrainResult.steps` take it: an SGR run's pool-score
    quantiles where some score was finite, a pascanu run's omega, its loss, minibatch
    long-term norm and gradient norm."""
    row = {"iteration": iteration}
    if method == "sgr":
        for name in ("pool_score_q10", "pool_score_q50", "pool_score_q90"):
            if not math.isnan(values[_FIELD[name]]):
                row[name] = values[_FIELD[name]]
    if method == "pascanu":
        row["omega"] = values[_FIELD["omega"]]
    for name in ("loss", "minibatch_long_term_norm", "grad_norm"):
        row[name] = values[_FIELD[name]]
    return row


def _select_runs(record: BPTTRecord, ks: list[int]) -> BPTTRecord:
    return BPTTRecord(x=record.x[ks], h=record.h[ks], delta=record.delta[ks], dE_do=record.dE_do[ks],
                      loss=record.loss[ks], output=None, readout=record.readout,
                      u=None if record.u is None else record.u[ks])
