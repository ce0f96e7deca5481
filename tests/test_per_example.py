"""per_example_stats against a plain autograd reference, one example at a time, in float64."""
import re

import pytest
import torch

import gradreg
from gradreg.baselines import LSTMNet
from gradreg.model import ACTIVATIONS
from gradreg.passes import bptt

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


LENGTHS = {"noiseless_memorization": 3, "random_permutation": 12}  # others: 12


def reference_stats(model, task, x, y, lag):
    """Autograd, example by example. Each step gets its own copy of W_in, W_rec and b,
    so the gradient of copy t is exactly the step-t term of the BPTT sum."""
    f = {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid,
         "identity": lambda z: z}[model.activation]
    S, H = x.shape[1], model.hidden_size
    rows = []
    for i in range(x.shape[0]):
        W_in = model.W_in.detach().expand(S, *model.W_in.shape).clone().requires_grad_()
        W_rec = model.W_rec.detach().expand(S, H, H).clone().requires_grad_()
        b = model.b.detach().expand(S, H).clone().requires_grad_()
        W_out = model.W_out.detach().clone().requires_grad_()
        b_out = model.b_out.detach().clone().requires_grad_()
        h = torch.zeros(H, dtype=x.dtype)
        zs, hs = [], []
        for t in range(S):
            z = W_in[t] @ x[i, t] + W_rec[t] @ h + b[t]
            z.retain_grad()
            h = f(z)
            zs.append(z)
            hs.append(h)
        if model.readout == "last":
            out = (W_out @ h + b_out)[None]
        else:
            out = (torch.stack(hs) @ W_out.T + b_out)[None]
        loss = task.loss(out, y[i:i + 1])[0]
        loss.backward()
        steps_lt = slice(0, S - lag)
        full = {"W_in": W_in.grad.sum(0), "W_rec": W_rec.grad.sum(0), "b": b.grad.sum(0),
                "W_out": W_out.grad, "b_out": b_out.grad}
        lt = {"W_in": W_in.grad[steps_lt].sum(0), "W_rec": W_rec.grad[steps_lt].sum(0),
              "b": b.grad[steps_lt].sum(0)}
        rows.append(dict(loss=loss.detach(), delta_norm=torch.stack([z.grad.norm() for z in zs]),
                         full=full, lt=lt))

    def norm(d):
        return torch.sqrt(sum((v ** 2).sum() for v in d.values()))
    return dict(
        loss=torch.stack([r["loss"] for r in rows]),
        delta_norm=torch.stack([r["delta_norm"] for r in rows]),
        grad_norm=torch.stack([norm(r["full"]) for r in rows]),
        long_term_norm=torch.stack([norm(r["lt"]) for r in rows]),
        grads={k: torch.stack([r["full"][k] for r in rows]) for k in rows[0]["full"]},
        long_term_grads={k: torch.stack([r["lt"][k] for r in rows]) for k in rows[0]["lt"]},
    )


def assert_close(actual, expected, what):
    scale = expected.abs().max().clamp_min(1e-30)
    err = (actual - expected).abs().max() / scale
    assert err <= 1e-9, f"{what}: relative error {err:.3g}"


def make_case(task_name, activation, readout, seed=0, batch=4, init="gaussian"):
    task = gradreg.make_task(task_name, length=LENGTHS.get(task_name, 12))
    g = torch.Generator().manual_seed(seed)
    model = gradreg.SRN(task.input_size, 7, task.output_size, activation=activation,
                        init=init, readout=readout, generator=g, dtype=torch.float64)
    with torch.no_grad():  # biases away from zero so that every term is exercised
        model.b.normal_(0, 0.3, generator=g)
        model.b_out.normal_(0, 0.3, generator=g)
        model.W_rec.mul_(3.0)
    x, y = task.sample(batch, generator=g)
    return task, model, x.double(), y


CASES = [(t, a, r) for t in gradreg.TASK_NAMES for a in ACTIVATIONS for r in ("last", "all")
         if not (t == "noiseless_memorization" and r == "last")]


@pytest.mark.parametrize("task_name,activation,readout", CASES)
def test_per_example_stats_match_autograd(task_name, activation, readout):
    task, model, x, y = make_case(task_name, activation, readout)
    S = task.steps
    for lag in (0, S // 2, S - 1):
        stats = gradreg.per_example_stats(model, task, x, y, lag=lag)
        ref = reference_stats(model, task, x, y, lag)
        for field in ("loss", "delta_norm", "grad_norm", "long_term_norm"):
            assert_close(getattr(stats, field), ref[field], f"{field} lag={lag}")
        assert set(stats.grads) == set(gradreg.model.PARAM_NAMES)
        assert set(stats.long_term_grads) == {"W_in", "W_rec", "b"}
        for k in stats.grads:
            assert stats.grads[k].shape == (x.shape[0], *getattr(model, k).shape)
            assert_close(stats.grads[k], ref["grads"][k], f"grads[{k}] lag={lag}")
        for k in stats.long_term_grads:
            assert_close(stats.long_term_grads[k], ref["long_term_grads"][k], f"long_term_grads[{k}] lag={lag}")


def test_norms_only_mode_gives_the_same_norms_without_tensors():
    task, model, x, y = make_case("temporal_order", "tanh", "last")
    full = gradreg.per_example_stats(model, task, x, y, lag=5)
    lean = gradreg.per_example_stats(model, task, x, y, lag=5, norms_only=True)
    assert lean.grads is None and lean.long_term_grads is None
    torch.testing.assert_close(lean.grad_norm, full.grad_norm, rtol=1e-12, atol=0)
    torch.testing.assert_close(lean.long_term_norm, full.long_term_norm, rtol=1e-12, atol=0)


@pytest.mark.parametrize("readout", ["last", "all"])
@pytest.mark.parametrize("lag", [0, 6])
def test_weighted_batch_grads_equal_weighted_sum_of_per_example_grads(readout, lag):
    task, model, x, y = make_case("adding", "tanh", readout, batch=6)
    stats = gradreg.per_example_stats(model, task, x, y, lag=lag)
    w = torch.tensor([0.5, 0.0, 2.0, 0.0, 1.0, 0.25], dtype=torch.float64)
    batch = bptt(model, task, x, y).batch_grads(w, lag=lag)
    source = stats.long_term_grads if lag else stats.grads
    assert set(batch) == set(source)
    for k, g in batch.items():
        assert_close(g, torch.einsum("b,b...->...", w, source[k]), k)


def test_sparse_init_has_spectral_radius_095_and_15_nonzeros_per_row():
    model = gradreg.SRN(6, 50, 4, generator=torch.Generator().manual_seed(1))
    assert gradreg.model.spectral_radius(model.W_rec) == pytest.approx(0.95, rel=1e-5)
    assert ((model.W_rec != 0).sum(1) == 15).all()
    assert model.W_in.std().item() == pytest.approx(0.01, rel=0.2)


@pytest.mark.parametrize("init", ["gaussian", "orthogonal", "identity"])
def test_other_inits(init):
    model = gradreg.SRN(3, 20, 2, init=init, generator=torch.Generator().manual_seed(0),
                        dtype=torch.float64)
    W = model.W_rec.detach()
    if init == "orthogonal":
        torch.testing.assert_close(W @ W.T, torch.eye(20, dtype=torch.float64))
    elif init == "identity":
        assert torch.equal(W, torch.eye(20, dtype=torch.float64))
    else:
        assert W.std().item() == pytest.approx(0.1, rel=0.15)


def test_spectral_radius_option_rescales_w_rec():
    model = gradreg.SRN(3, 30, 2, init="orthogonal", spectral_radius=1.3,
                        generator=torch.Generator().manual_seed(0))
    assert gradreg.model.spectral_radius(model.W_rec) == pytest.approx(1.3, rel=1e-5)


def test_same_generator_same_model_and_float32_path_agrees_with_float64():
    task, model64, x, y = make_case("temporal_order", "tanh", "last")
    model32 = gradreg.SRN(task.input_size, 7, task.output_size, init="gaussian",
                          generator=torch.Generator().manual_seed(0))
    again = gradreg.SRN(task.input_size, 7, task.output_size, init="gaussian",
                        generator=torch.Generator().manual_seed(0))
    for p, q in zip(model32.parameters(), again.parameters()):
        assert torch.equal(p, q)
    model32.load_state_dict({k: v.float() for k, v in model64.state_dict().items()})
    s32 = gradreg.per_example_stats(model32, task, x.float(), y)
    s64 = gradreg.per_example_stats(model64, task, x, y)
    assert s32.grad_norm.dtype == torch.float32
    torch.testing.assert_close(s32.grad_norm.double(), s64.grad_norm, rtol=1e-4, atol=1e-7)


def test_forward_matches_manual_pass_output():
    task, model, x, y = make_case("temporal_order_3bit", "sigmoid", "all")
    stats = gradreg.per_example_stats(model, task, x, y)
    torch.testing.assert_close(model(x), stats.output, rtol=1e-12, atol=1e-12)


def test_vanishing_ratio_is_delta_norm_ratio():
    task, model, x, y = make_case("temporal_order", "tanh", "last")
    stats = gradreg.per_example_stats(model, task, x, y, lag=4)
    S = task.steps
    torch.testing.assert_close(stats.vanishing_ratio(), stats.delta_norm[:, S - 5] / stats.delta_norm[:, -1])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_cuda_matches_cpu():
    task, model, x, y = make_case("adding", "tanh", "last")
    cpu = gradreg.per_example_stats(model, task, x, y, lag=3)
    gpu = gradreg.per_example_stats(model.cuda(), task, x.cuda(), y.cuda(), lag=3)
    torch.testing.assert_close(gpu.long_term_norm.cpu(), cpu.long_term_norm, rtol=1e-9, atol=0)
    torch.testing.assert_close(gpu.grad_norm.cpu(), cpu.grad_norm, rtol=1e-9, atol=0)


# ------------------------------------------------------------- the optimised reduction paths

from gradreg.passes import chunk_bounds as _chunk_bounds  # noqa: E402
from gradreg.stats import _per_example_stats, _plan  # noqa: E402

PATH_CASES = [("temporal_order", "tanh", "last"), ("adding", "relu", "last"),
              ("xor", "sigmoid", "last"), ("noiseless_memorization", "tanh", "all"),
              ("multiplication", "identity", "all")]


@pytest.mark.parametrize("task_name,activation,readout", PATH_CASES)
@pytest.mark.parametrize("path,chunk,block", [("direct", 1, 1), ("direct", 2, 3), ("direct", 5, 2),
                                              ("direct", 100, 4), ("gram", None, 3),
                                              ("gram", None, 1)])
def test_every_norms_only_path_matches_autograd(task_name, activation, readout, path, chunk, block):
    """Pieces of steps (the deltas are never all kept), blocks of examples and the Gram identity
    all give the reference's norms and delta profiles."""
    task, model, x, y = make_case(task_name, activation, readout, batch=5)
    S = task.steps
    for lag in (0, 1, S // 2, S - 1):
        ref = reference_stats(model, task, x, y, lag)
        stats = _per_example_stats(model, task, x, y, lag, norms_only=True, path=path,
                                   chunk=chunk, block=block)
        assert stats.grads is None and stats.long_term_grads is None
        for field in ("loss", "delta_norm", "grad_norm", "long_term_norm"):
            assert_close(getattr(stats, field), ref[field], f"{path} {field} lag={lag}")


@pytest.mark.parametrize("task_name,activation,readout", PATH_CASES)
@pytest.mark.parametrize("chunk", [1, 3, None])
def test_full_gradients_with_pieces_of_steps_match_autograd(task_name, activation, readout, chunk):
    task, model, x, y = make_case(task_name, activation, readout, batch=3)
    S = task.steps
    for lag in (0, 2, S - 1):
        ref = reference_stats(model, task, x, y, lag)
        for keep in (False, True):
            stats = _per_example_stats(model, task, x, y, lag, keep_record=keep, chunk=chunk)
            for field in ("delta_norm", "grad_norm", "long_term_norm"):
                assert_close(getattr(stats, field), ref[field], f"{field} lag={lag}")
            for k in stats.grads:
                assert stats.grads[k].shape == (3, *getattr(model, k).shape)
                assert_close(stats.grads[k], ref["grads"][k], f"grads[{k}] lag={lag}")
            for k in stats.long_term_grads:
                assert_close(stats.long_term_grads[k], ref["long_term_grads"][k], k)
            assert (stats.record is not None) == keep


@pytest.mark.parametrize("keep_u", [False, True])
@pytest.mark.parametrize("task_name,activation,readout", PATH_CASES)
def test_bptt_record_matches_per_example_stats_record(task_name, activation, readout, keep_u):
    task, model, x, y = make_case(task_name, activation, readout, batch=3)
    rec = bptt(model, task, x, y, keep_u=keep_u)
    kept = gradreg.per_example_stats(model, task, x, y, norms_only=True, keep_record=True).record
    ref = reference_stats(model, task, x, y, 0)
    assert_close(torch.linalg.vector_norm(rec.delta, dim=2).T, ref["delta_norm"], "delta")
    torch.testing.assert_close(kept.delta, rec.delta, rtol=1e-12, atol=0)
    torch.testing.assert_close(kept.h, rec.h, rtol=0, atol=0)
    assert rec.h.shape == rec.delta.shape == (task.steps, 3, model.hidden_size)
    if keep_u:   # u_t = dE/dh_t, and delta_t = f'(z_t) * u_t
        f = {"tanh": lambda h: 1 - h * h, "sigmoid": lambda h: h - h * h,
             "relu": lambda h: (h > 0).double(), "identity": torch.ones_like}[activation]
        torch.testing.assert_close(rec.u * f(rec.h), rec.delta, rtol=1e-12, atol=1e-15)
    else:
        assert rec.u is None


def test_chunk_bounds_cover_the_steps_and_cut_at_the_lag_boundary():
    for S in (1, 2, 7, 12, 100):
        for chunk in (1, 2, 3, 32, 200):
            for pivot in range(1, S + 1):
                bounds = _chunk_bounds(S, chunk, pivot)
                steps = [t for a, b in reversed(bounds) for t in range(a, b)]
                assert steps == list(range(S))
                assert all(0 < b - a <= chunk for a, b in bounds)
                assert all(not a < pivot < b for a, b in bounds)


def test_plan_picks_gram_for_short_sequences_and_respects_the_memory_budget():
    assert _plan(None, True, False, S=10, B=64, H=200, I=6, m=5)[0] == "gram"
    assert _plan(None, True, False, S=100, B=256, H=100, I=6, m=50)[0] == "direct"
    assert _plan(None, False, False, S=10, B=64, H=200, I=6, m=5)[0] == "direct"
    S, B, H, I = 200, 1024, 128, 6
    path, chunk, block = _plan(None, True, False, S, B, H, I, S // 2)
    assert path == "direct" and block < B
    extra = 2 * block * H * (H + I + 1) + chunk * block * H     # accumulators + piece of deltas
    assert extra <= 0.8 * S * B * H


@pytest.mark.slow  # fresh-process memory test
def test_norms_only_peak_memory_stays_under_twice_the_hidden_states():
    """B=1024, S=200, H=128 float32: h is 100 MiB; the peak RSS growth of norms-only
    per_example_stats, measured in a fresh process, stays under 2x that."""
    import os
    import subprocess
    import sys
    import textwrap
    if not os.path.exists("/proc/self/clear_refs"):
        pytest.skip("needs Linux /proc to reset the peak RSS")
    code = textwrap.dedent("""
        import torch, gradreg
        torch.set_num_threads(1)
        B, T, H = 1024, 200, 128
        task = gradreg.make_task("temporal_order", T)
        g = torch.Generator().manual_seed(0)
        model = gradreg.SRN(6, H, 4, generator=g)
        x, y = task.sample(B, generator=g)
        def status(key):
            for line in open("/proc/self/status"):
                if line.startswith(key):
                    return int(line.split()[1]) * 1024
        gradreg.per_example_stats(model, task, x, y, norms_only=True)
        base = status("VmRSS")
        open("/proc/self/clear_refs", "w").write("5")
        gradreg.per_example_stats(model, task, x, y, norms_only=True)
        print((status("VmHWM") - base) / (T * B * H * 4))
    """)
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=300, check=True)
    ratio = float(out.stdout.strip().splitlines()[-1])
    assert ratio <= 2.0, f"peak memory {ratio:.2f}x the hidden states"


# ------------------------------------------------------------------ bad input (issues 13 and 34)

def _problem():
    task = gradreg.make_task("temporal_order", 12)
    x, y = task.sample(6, generator=torch.Generator().manual_seed(0))
    model = gradreg.SRN(task.input_size, 8, task.output_size, generator=torch.Generator().manual_seed(0))
    return model, task, x, y


def test_per_example_stats_labels_out_of_range_and_empty_batch():
    task = gradreg.make_task("temporal_order", 20)
    x, y = task.sample(8, generator=torch.Generator().manual_seed(0))
    model = gradreg.SRN(task.input_size, 10, task.output_size, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match=r"class labels must lie in 0\.\.3.*from 7 to 7"):
        gradreg.per_example_stats(model, task, x, torch.full_like(y, 7), lag=5)
    with pytest.raises(ValueError, match=r"class labels must lie in 0\.\.3"):
        gradreg.bptt(model, task, x, y - 10)
    with pytest.raises(ValueError, match="empty batch"):
        gradreg.per_example_stats(model, task, x[:0], y[:0], lag=5)


@pytest.mark.parametrize("change,error,words", [
    (lambda m, t, x, y: (m, t, x.numpy(), y), TypeError, "x must be a torch.Tensor, got ndarray"),
    (lambda m, t, x, y: (m, t, x.tolist(), y), TypeError, "x must be a torch.Tensor, got list"),
    (lambda m, t, x, y: (m, t, x, y.numpy()), TypeError, "y must be a torch.Tensor, got ndarray"),
    (lambda m, t, x, y: (m, t, x, y.tolist()), TypeError, "y must be a torch.Tensor, got list"),
    (lambda m, t, x, y: (m, "temporal_order", x, y), TypeError, "task must be a task object"),
    (lambda m, t, x, y: (m, None, x, y), TypeError, "got NoneType None"),
    (lambda m, t, x, y: (LSTMNet(t.input_size, 8, t.output_size), t, x, y), TypeError,
     "model must be a gradreg SRN"),
    (lambda m, t, x, y: (m.state_dict(), t, x, y), TypeError, "got OrderedDict"),
    (lambda m, t, x, y: (m, t, x, y.int()), ValueError, "y holds int32 class labels; pass int64"),
    (lambda m, t, x, y: (m, t, x, y.to(torch.uint8)), ValueError, "y holds uint8 class labels"),
    (lambda m, t, x, y: (m, t, x.long(), y), ValueError, "x must be a floating-point tensor"),
    (lambda m, t, x, y: (m, t, x.to("meta"), y), ValueError, "x is on device meta but the model is on cpu"),
    (lambda m, t, x, y: (m, t, x, y.to("meta")), ValueError, "y is on device meta"),
])
def test_per_example_stats_names_an_argument_of_the_wrong_kind_dtype_or_device(change, error, words):
    model, task, x, y = change(*_problem())
    with pytest.raises(error, match=re.escape(words)):
        gradreg.per_example_stats(model, task, x, y, lag=5)
    with pytest.raises(error, match=re.escape(words)):
        bptt(model, task, x, y)


def test_per_example_stats_of_a_regression_task_wants_float_targets():
    task = gradreg.make_task("adding", 12)
    x, y = task.sample(4, generator=torch.Generator().manual_seed(0))
    model = gradreg.SRN(task.input_size, 8, task.output_size, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="y must be a floating-point tensor of targets for task 'adding', got int64"):
        gradreg.per_example_stats(model, task, x, y.long(), lag=5)
    assert gradreg.per_example_stats(model, task, x.double(), y, lag=5) is not None   # x is cast to the model's
