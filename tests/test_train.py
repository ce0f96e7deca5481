"""SGR selection rules, the SGR step, Pascanu's regulariser, and the training harness."""
import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from scipy import stats as sstats

import gradreg
from gradreg import sampling
from gradreg.baselines import LSTMNet, omega, omega_grad, omega_grads
from gradreg.config import TrainConfig
from gradreg.engine import sgr_weights, train
from gradreg.model import SRN
from gradreg.passes import BPTTRecord, bptt, pool_scores
from gradreg.tasks import make_task

# ----------------------------------------------------------------- selection rules

def test_top_picks_the_largest_scores():
    scores = torch.tensor([0.3, 5.0, 0.1, 2.0, 7.0, 0.0, 1.0])
    sel = sampling.select_top(scores, 3)
    assert set(sel.index.tolist()) == {4, 1, 3}
    assert torch.allclose(sel.weight, torch.full((3,), 1 / 3, dtype=torch.float64))


def test_random_is_uniform_chi_square():
    g = torch.Generator().manual_seed(0)
    M, n, draws = 10, 3, 6000
    counts = np.zeros(M)
    for _ in range(draws):
        sel = sampling.select_random(M, n, g)
        assert len(set(sel.index.tolist())) == n
        counts[sel.index.numpy()] += 1
    expected = np.full(M, draws * n / M)
    p = sstats.chisquare(counts, expected).pvalue
    assert p > 1e-3, f"selection counts {counts} are not uniform (p={p:.2g})"


@pytest.mark.slow  # a Monte Carlo study
def test_weighted_inclusion_probabilities_are_exact_and_importance_weights_unbiased():
    g = torch.Generator().manual_seed(1)
    scores = torch.tensor([0.1, 0.5, 1.0, 2.0, 4.0, 8.0, 0.05, 3.0], dtype=torch.float64)
    values = torch.tensor([3.0, -1.0, 2.0, 0.5, -4.0, 1.5, 10.0, -2.0], dtype=torch.float64)
    M, n = scores.numel(), 3
    pi = sampling.inclusion_probabilities(scores, n)
    assert pi.sum().item() == pytest.approx(n)
    assert (pi <= 1).all() and pi[5] == 1.0  # the largest score is capped: always drawn
    draws = 20000
    hits = torch.zeros(M, dtype=torch.float64)
    estimates = torch.empty(draws, dtype=torch.float64)
    for k in range(draws):
        sel = sampling.select_weighted(scores, n, importance=True, generator=g)
        assert len(set(sel.index.tolist())) == n  # without replacement
        hits[sel.index] += 1
        estimates[k] = (sel.weight * values[sel.index]).sum()
    freq = hits / draws
    assert torch.allclose(freq, pi, atol=0.015), (freq, pi)
    se = estimates.std() / math.sqrt(draws)
    assert abs(estimates.mean() - values.mean()) < 4 * se, (estimates.mean(), values.mean(), se)
    plain = sampling.select_weighted(scores, n, importance=False, generator=g)
    assert torch.allclose(plain.weight, torch.full((n,), 1 / n, dtype=torch.float64))


def test_weighted_with_alpha_zero_like_scores_is_uniform():
    pi = sampling.inclusion_probabilities(torch.ones(10), 4)
    assert torch.allclose(pi, torch.full((10,), 0.4, dtype=torch.float64))


def test_band_takes_candidates_inside_then_nearest():
    g = torch.Generator().manual_seed(0)
    ratios = torch.tensor([1e-5, 0.5, 0.02, 1e-3, 50.0, 0.2, float("nan"), 2e-2])
    sel = sampling.select_band(ratios, 3, 0.01, 1.0, g)
    assert set(sel.index.tolist()) <= {1, 2, 5, 7} and len(sel.index) == 3
    sel = sampling.select_band(ratios, 6, 0.01, 1.0, g)
    # four inside, then the two nearest the band in log distance: 1e-3 (x10 low), 50 (x50 high)
    assert set(sel.index.tolist()) == {1, 2, 5, 7, 3, 4}


def _random_gram(M=12, P=30, seed=0):
    g = torch.Generator().manual_seed(seed)
    vectors = torch.randn(M, P, generator=g, dtype=torch.float64) + 0.3
    return vectors, vectors @ vectors.T


def test_greedy_reports_the_exact_minibatch_norm_and_lands_in_the_band():
    vectors, gram = _random_gram()
    mean_norms = [sampling.minibatch_norm(gram, sampling.select_random(12, 4, torch.Generator().manual_seed(s))
                                          .pool_weights(12)) for s in range(20)]
    a, b = np.median(mean_norms) * 1.2, np.median(mean_norms) * 1.5
    sel = sampling.select_greedy(gram, 4, (a, b))
    direct = vectors[sel.index].mean(0).norm().item()
    assert sel.norm == pytest.approx(direct, rel=1e-12)
    assert sampling.minibatch_norm(gram, sel.pool_weights(12)) == pytest.approx(direct, rel=1e-12)
    assert a <= sel.norm <= b
    # a band above every reachable norm: greedy gets as close as it can, i.e. maximises the first pick
    sel = sampling.select_greedy(gram, 1, (1e9, 2e9))
    assert sel.index.item() == int(torch.diagonal(gram).argmax())


def test_minibatch_norm_matches_gram_identity():
    vectors, gram = _random_gram(seed=3)
    w = torch.rand(12, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert sampling.minibatch_norm(gram, w) == pytest.approx((w @ vectors).norm().item(), rel=1e-12)


def test_bad_minibatch_size_raises():
    with pytest.raises(ValueError, match="minibatch size 9"):
        sampling.select_top(torch.ones(8), 9)


# ------------------------------------------------------------------ the SGR step

def _pool(task_name="temporal_order", length=12, M=16, seed=0, readout=None):
    task = gradreg.make_task(task_name, length)
    g = torch.Generator().manual_seed(seed)
    model = gradreg.SRN(task.input_size, 9, task.output_size, init="gaussian", generator=g,
                        dtype=torch.float64, readout=readout or task.readout)
    x, y = task.sample(M, generator=g)
    return task, model, x.double(), y


@pytest.mark.parametrize("rule", sampling.RULES)
def test_sgr_step_gradient_equals_autograd_of_the_chosen_examples_mean_loss(rule):
    task, model, x, y = _pool()
    config = TrainConfig(task="temporal_order", length=12, rule=rule, batch_size=4, pool_factor=4,
                         band_low=1e-3, band_high=10.0)
    rec = bptt(model, task, x, y)
    log = {}
    weights = sgr_weights(config, rec, lag=6,
                           generator=torch.Generator().manual_seed(0), log=log)
    chosen = torch.nonzero(weights).squeeze(1)
    assert chosen.numel() == 4
    step = rec.batch_grads(weights)
    model.zero_grad()
    loss = (task.loss(model(x[chosen]), y[chosen]) * weights[chosen]).sum()
    loss.backward()
    for name, p in model.named_parameters():
        torch.testing.assert_close(step[name], p.grad, rtol=1e-10, atol=1e-13)
    if rule != "random":
        # the quantiles of the pool's scores, left on the device as a tensor
        scores, _, _ = pool_scores(rec, 6)
        expected = torch.quantile(scores.double(), torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64))
        assert torch.equal(log["pool_score_quantiles"], expected)


def test_top_rule_chooses_the_largest_long_term_scores_of_the_pool():
    task, model, x, y = _pool()
    stats = gradreg.per_example_stats(model, task, x, y, lag=6)
    scores, _, _ = pool_scores(bptt(model, task, x, y), 6)
    torch.testing.assert_close(scores, stats.long_term_norm, rtol=1e-12, atol=0)
    config = TrainConfig(task="temporal_order", length=12, rule="top", batch_size=4)
    weights = sgr_weights(config, bptt(model, task, x, y), 6, None, {})
    assert set(torch.nonzero(weights).squeeze(1).tolist()) == set(torch.topk(stats.long_term_norm, 4).indices.tolist())


# ------------------------------------------------------------- Pascanu's Omega

def reference_omega(model, x, y, task):
    """Autograd all the way: u = dE/dh from autograd, then Omega with u and h detached."""
    W_rec = model.W_rec
    pre = x @ model.W_in.T + model.b
    h = torch.zeros(x.shape[0], model.hidden_size, dtype=x.dtype)
    hs = []
    for t in range(x.shape[1]):
        h = torch.tanh(pre[:, t] + h @ W_rec.T)
        h.retain_grad()
        hs.append(h)
    out = hs[-1] @ model.W_out.T + model.b_out
    task.loss(out, y).sum().backward()
    W = W_rec.detach().clone().requires_grad_(True)
    terms = []
    for k in range(x.shape[1] - 1):
        u = hs[k + 1].grad.detach()
        fprime = 1 - hs[k + 1].detach() ** 2
        for i in range(x.shape[0]):
            if (u[i] ** 2).sum() < 1e-20:
                continue
            terms.append(((W.T @ (fprime[i] * u[i])).norm() / u[i].norm() - 1) ** 2)
    value = torch.stack(terms).mean()
    value.backward()
    return value.detach(), W.grad


def test_omega_and_its_gradient_equal_autograd_with_u_and_h_detached():
    task, model, x, y = _pool(M=5)
    rec = bptt(model, task, x, y, keep_u=True)
    value, grad = omega_grad(model.W_rec, rec)
    ref_value, ref_grad = reference_omega(model, x, y, task)
    torch.testing.assert_close(value, ref_value, rtol=1e-10, atol=0)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("undefined_pairs", [False, True])
def test_the_written_out_omega_gradient_is_autograds_bit_for_bit_in_float32(undefined_pairs):
    """Training uses `omega_grads` (no graph); the committed Pascanu runs were trained with
    autograd of `omega`, so the two must agree to the last bit, run by run, batched or not."""
    records, W_recs = [], []
    for seed in range(3):
        task = make_task("temporal_order", 30)
        g = torch.Generator().manual_seed(seed)
        model = SRN(task.input_size, 16, task.output_size, generator=g)
        x, y = task.sample(7, generator=g)
        if undefined_pairs and seed == 1:    # gradients vanish below ||u||^2 = 1e-20 early on
            with torch.no_grad():
                model.W_rec.mul_(0.02)
        rec = bptt(model, task, x, y, keep_u=True)
        assert bool((rec.u.pow(2).sum(-1) < 1e-20).any()) == (undefined_pairs and seed == 1)
        records.append(rec)
        W_recs.append(model.W_rec.detach())
    def stack(field):
        return torch.stack([getattr(r, field) for r in records])

    stacked = BPTTRecord(x=stack("x"), h=stack("h"), delta=stack("delta"), dE_do=stack("dE_do"),
                         loss=stack("loss"), output=None, readout=records[0].readout, u=stack("u"))
    values, grads = omega_grads(torch.stack(W_recs), stacked)
    for k, (rec, W_rec) in enumerate(zip(records, W_recs)):
        W = W_rec.clone().requires_grad_(True)
        ref_value = omega(W, rec)
        (ref_grad,) = torch.autograd.grad(ref_value, W)
        value, grad = omega_grad(W_rec, rec)
        assert torch.equal(value, ref_value.detach()) and torch.equal(grad, ref_grad)
        assert torch.equal(values[k], value) and torch.equal(grads[k], grad)


def test_omega_needs_u():
    task, model, x, y = _pool(M=3)
    with pytest.raises(ValueError, match="keep_u"):
        omega(model.W_rec, bptt(model, task, x, y))


def test_lstm_forget_gate_bias_is_one():
    net = LSTMNet(6, 8, 4, generator=torch.Generator().manual_seed(0))
    forget = net.lstm.bias_ih_l0[8:16] + net.lstm.bias_hh_l0[8:16]
    assert torch.allclose(forget, torch.ones(8))


# -------------------------------------------------------------- the harness

EASY = dict(task="temporal_order", length=10, hidden_size=20, lr=0.1, momentum=0.9,
            max_iterations=1500, check_every=50, test_size=2000)


@pytest.mark.parametrize("method,rule", [("sgd", "top"), ("clip", "top"), ("pascanu", "top"), ("lstm", "top")]
                         + [("sgr", r) for r in sampling.RULES])
def test_every_method_solves_an_easy_instance(method, rule):
    extra = dict(momentum=0.0, lr=0.05) if method == "sgd" else {}
    result = train(TrainConfig(**{**EASY, **extra}, method=method, rule=rule))
    assert result.solved, result.summary()
    assert not result.diverged and result.final_error <= 0.01
    per_step = result.config.pool_size if method == "sgr" else result.config.batch_size
    assert result.examples == result.iterations * per_step
    assert list(result.history["iteration"]) == list(range(50, result.iterations + 1, 50))
    for column in ("iteration", "examples", "seconds", "train_loss", "test_error", "grad_norm",
                   "minibatch_long_term_norm", "pool_score_q10", "pool_score_q50", "pool_score_q90",
                   "spectral_radius"):
        assert column in result.history


def test_fair_batch_draws_the_pool_size():
    result = train(TrainConfig(**{**EASY, "max_iterations": 20}, method="clip", fair_batch=True))
    assert result.examples == 20 * 80


def test_divergence_is_caught_not_raised():
    config = TrainConfig(task="adding", length=10, method="sgd", lr=1e12, init="gaussian",
                         max_iterations=200, check_every=10, test_size=200)
    result = train(config)
    assert result.diverged and not result.solved
    assert result.iterations < 200
    assert math.isnan(result.final_error)
    assert len(result.steps) == result.iterations


def test_same_config_gives_identical_results():
    config = TrainConfig(**{**EASY, "max_iterations": 100}, method="sgr", rule="weighted")
    a, b = train(config), train(config)
    assert a.iterations == b.iterations
    cols = ["train_loss", "test_error", "grad_norm", "minibatch_long_term_norm"]
    assert a.history[cols].equals(b.history[cols])
    c = train(config.replace(seed=1))
    assert not a.history[cols].equals(c.history[cols])


def test_per_step_readout_task_trains():
    result = train(TrainConfig(task="noiseless_memorization", length=2, method="sgr", max_iterations=20,
                               check_every=10, test_size=100, hidden_size=10))
    assert len(result.history) == 2 and not result.diverged


@pytest.mark.parametrize("changes,match", [
    (dict(task="nope"), "unknown task 'nope'"),
    (dict(method="adam"), "unknown method 'adam'"),
    (dict(rule="best"), "unknown rule 'best'"),
    (dict(length=4), "length 4 is too short"),
    (dict(batch_size=0), "batch_size must be an integer >= 1, got 0"),
    (dict(lag=50), "lag 50 is outside the allowed range 0..49"),
    (dict(lr=-1.0), "lr must be a positive"),
    (dict(device="tpu"), "unknown device 'tpu'"),
])
def test_bad_config_raises_value_error(changes, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**{"length": 50, **changes})


# ------------------------------------------------------------------------ CLI

def _cli(*args):
    return subprocess.run([sys.executable, "-m", "gradreg", *args], capture_output=True, text=True, timeout=300)


def test_cli_train_json():
    out = _cli("train", "--task", "temporal_order", "--length", "10", "--method", "clip", "--lr", "0.1",
               "--momentum", "0.9", "--hidden-size", "20", "--max-iterations", "300", "--check-every", "50",
               "--test-size", "1000", "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["solved"] is True and result["method"] == "clip"
    assert result["history"][-1]["test_error"] <= 0.01


@pytest.mark.parametrize("args,match", [
    (["train", "--task", "nope"], "unknown task 'nope'"),
    (["train", "--length", "3"], "length 3 is too short"),
    (["train", "--lr", "abc"], "invalid float value: 'abc'"),
    (["train", "--batch-size", "0"], "batch_size must be an integer >= 1, got 0"),
    (["sweep", "--profile", "huge", "--results", "/tmp/never.csv"], "huge"),
])
@pytest.mark.slow  # five fresh processes
def test_cli_bad_input_exits_2_with_one_line(args, match):
    out = _cli(*args)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and match in lines[0], out.stderr
    assert "Traceback" not in out.stderr


# ------------------------------------------------------------------ Adam, the forget bias, arms

def test_adam_update_is_torch_optim_adams_in_float64():
    """engine._update with optimizer "adam" against torch.optim.Adam on the same gradients,
    clipping scale included: the same parameters after every step."""
    from gradreg.engine import ADAM_BETAS, ADAM_EPS, _update
    gen = torch.Generator().manual_seed(0)
    ours = [torch.randn(3, 4, generator=gen, dtype=torch.float64), torch.randn(5, generator=gen, dtype=torch.float64)]
    ref = [p.clone().requires_grad_(True) for p in ours]
    opt = torch.optim.Adam(ref, lr=1e-2, betas=ADAM_BETAS, eps=ADAM_EPS)
    velocity, second = [torch.zeros_like(p) for p in ours], [torch.zeros_like(p) for p in ours]
    config = TrainConfig(optimizer="adam", lr=1e-2)
    for t in range(1, 8):
        grads = [torch.randn(p.shape, generator=gen, dtype=torch.float64) for p in ours]
        scale = 0.3 if t % 2 else 1.0
        for p, g in zip(ref, grads):
            p.grad = g * scale
        opt.step()
        _update(config, ours, velocity, grads, torch.tensor(scale, dtype=torch.float64), second, t)
        for a, b in zip(ours, ref):
            torch.testing.assert_close(a, b.detach(), rtol=1e-12, atol=1e-14)


# ------------------------------------------------------------------ an iteration without host syncs

def test_clip_scale_is_the_python_floats_scale_to_the_bit():
    """The clipping scale stays on the device; it must be the float64 number the engine computed
    from the norm read back, min(1, clip / float(norm)), bit for bit (a Python number divided by
    a tensor would multiply by a rounded reciprocal instead)."""
    from gradreg.engine import clip_scale
    gen = torch.Generator().manual_seed(0)
    norms = torch.cat([torch.rand(20_000, generator=gen) * 10 ** torch.randint(-6, 7, (20_000,), generator=gen),
                       torch.tensor([1.0, 0.0])]).float()
    for clip in (1.0, 10.0, 0.3):
        ours = clip_scale(norms.double(), torch.full((norms.numel(),), clip, dtype=torch.float64))
        expected = [min(1.0, clip / n) if n else 1.0 for n in norms.tolist()]
        assert ours.tolist() == expected
    assert clip_scale(norms.double(), torch.full((norms.numel(),), float("nan"), dtype=torch.float64)).eq(1).all()


@pytest.mark.parametrize("form", ["torch", "classical"])
@pytest.mark.parametrize("size", [1, 7, 50, 2_501])
def test_a_scaled_momentum_step_rounds_as_the_python_scale_did(form, size):
    """`_update` takes the clipping scale as a tensor; v mu + g scale must round once, as
    `add_(g, alpha=scale)` with the Python number did (float32, sizes with and without a
    vector tail), so that the committed rows reproduce."""
    from gradreg.engine import _update
    gen = torch.Generator().manual_seed(size)
    config = TrainConfig(momentum=0.9, momentum_form=form, lr=0.01)
    for _ in range(20):
        p, v, g = (torch.randn(size, generator=gen) for _ in range(3))
        scale = float(torch.rand((), generator=gen, dtype=torch.float64))
        p_ref, v_ref = p.clone(), v.clone()
        if form == "torch":
            v_ref.mul_(0.9).add_(g, alpha=scale)
            p_ref.sub_(v_ref, alpha=0.01)
        else:
            v_ref.mul_(0.9).add_(g, alpha=-0.01 * scale)
            p_ref.add_(v_ref)
        _update(config, [p], [v], [g], torch.tensor(scale, dtype=torch.float64))
        assert torch.equal(p, p_ref) and torch.equal(v, v_ref)


def test_a_step_that_is_not_ok_leaves_weights_and_moments_alone():
    from gradreg.engine import _update
    p, v, g = torch.ones(4), torch.full((4,), 0.5), torch.full((4,), float("nan"))
    for optimizer, extra in (("sgd", {"momentum": 0.9}), ("adam", {})):
        second = [torch.zeros(4)]
        _update(TrainConfig(optimizer=optimizer, **extra), [p], [v], [g], torch.tensor(1.0, dtype=torch.float64),
                second, 1, torch.tensor(False))
        assert p.eq(1).all() and v.eq(0.5).all() and second[0].eq(0).all()


def test_adam_asks_for_no_momentum_and_an_unknown_optimizer_is_named():
    with pytest.raises(ValueError, match="momentum must be 0 with optimizer 'adam'"):
        TrainConfig(optimizer="adam", momentum=0.9)
    with pytest.raises(ValueError, match="unknown optimizer 'rmsprop'; allowed: sgd, adam"):
        TrainConfig(optimizer="rmsprop")
    with pytest.raises(ValueError, match="forget_bias must be a finite number"):
        TrainConfig(method="lstm", forget_bias=float("inf"))


def test_forget_bias_sets_the_two_forget_gate_biases_and_its_default_is_the_baselines():
    default = LSTMNet(6, 8, 4, generator=torch.Generator().manual_seed(0))
    wide = LSTMNet(6, 8, 4, generator=torch.Generator().manual_seed(0), forget_bias=5.0)
    for name in ("bias_ih_l0", "bias_hh_l0"):
        assert torch.all(getattr(default.lstm, name)[8:16] == 0.5)
        assert torch.all(getattr(wide.lstm, name)[8:16] == 2.5)
        assert torch.all(getattr(wide.lstm, name)[:8] == 0) and torch.all(getattr(wide.lstm, name)[16:] == 0)
    assert torch.equal(default.lstm.weight_hh_l0, wide.lstm.weight_hh_l0)


def test_arm_names_what_differs_from_the_protocol_and_keys_rows_apart():
    from gradreg.results import config_key
    assert TrainConfig().arm == "" and TrainConfig(protocol="chernodub").arm == ""
    assert TrainConfig(clip=None).arm == "clip=None"
    control = TrainConfig(method="lstm", optimizer="adam", lr=1e-3, forget_bias=5.0)
    assert control.arm == "optimizer=adam,forget_bias=5.0"
    assert TrainConfig(protocol="chernodub", momentum=0.0).arm == "momentum=0.0"
    assert config_key(TrainConfig(pool_factor=8)) != config_key(TrainConfig())
    assert config_key(TrainConfig(lr=0.5)) == config_key(TrainConfig())   # one file per profile: lr is not an arm

