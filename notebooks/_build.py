"""Writes the numbered notebooks (01_... to 07_...) from the cell texts below.

The notebooks are committed without outputs; this script is their reviewable source:
edit the text here, run

    .venv/bin/python notebooks/_build.py

and commit both. Cell ids are stable (notebook stem + index), so an unchanged cell gives an
unchanged diff. The notebooks hold prose, parameters and calls into gradreg only; every
computation is a function of `gradreg.figures` or the rest of the package, every figure a
function of `gradreg.plotting`.

Notebooks 01-05 end with exercises in nbgrader's format (see NBGRADER below and
gradreg/teaching.py, which makes the student edition from them); notebooks 01-03 carry
slide metadata for `make slides` (SLIDES below).
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent

PARAMETERS = '''\
profile = "quick"         # smoke (seconds) | quick (minutes) | paper (hours)
seed = 0
device = "auto"           # auto | cpu | cuda | cuda:N
output_dir = "../figures"  # where the figures are written (PNG + PDF)
'''


def setup(notebook: str, extra_imports: str = "") -> str:
    return f'''\
import torch
import matplotlib.pyplot as plt
from IPython.display import display
{extra_imports}
import gradreg
from gradreg import analysis, figures, plotting

dev = figures.setup(profile, seed, device)   # figure style, seeds, device, one CPU thread
cfg = figures.settings("{notebook}", profile)
cfg'''


# =============================================================================================
NB01 = [
("md", r"""
# 1. Vanishing gradients in a simple recurrent network

*Part of `gradreg`, a reproduction of Chernodub & Nowicki (2016), "Sampling-based gradient
regularization for capturing long-term dependencies in recurrent neural networks".*

A recurrent network learns a long-term dependency only if the error at the end of a
sequence can reach the inputs far back in it. Backpropagation through time (BPTT) carries
that error backwards one step at a time, and at every step it is multiplied by the same
recurrent matrix. This notebook derives the recursion, proves the classic bound on how fast
the carried error can shrink, and measures it on real networks: for three activation
functions and for recurrent matrices of several spectral radii.
"""),
("md", r"""
Everything here is computed by `gradreg` (`gradreg.bptt`, `gradreg.per_example_stats`,
`gradreg.figures.delta_profiles`) and drawn by `gradreg.plotting`; the notebook only calls.
The `profile` parameter below sizes the run (`smoke`: seconds, `quick`: the committed
figures, `paper`: the full sizes).
""", {"slide": "notes"}),
("params", PARAMETERS),
("setup", setup("01_vanishing_gradients")),
("md", r"""
## The network

The simple recurrent network (SRN, Elman) reads inputs $x_0, \dots, x_{S-1}$ and keeps a
hidden state $h_t \in \mathbb{R}^H$, with $h_{-1} = 0$:

$$z_t = W_{in}\, x_t + W_{rec}\, h_{t-1} + b, \qquad h_t = f(z_t), \qquad
o = W_{out}\, h_{S-1} + b_{out}.$$

The loss $E$ is computed from the last output $o$ (for the temporal-order task used here:
cross-entropy over 4 classes). `gradreg.SRN` is this network; its default initialisation
is Pascanu et al.'s "sparse" one (15 non-zeros per row of $W_{rec}$, rescaled to spectral
radius 0.95). The `spectral_radius=` argument rescales $W_{rec}$ to any radius we like.
"""),
("code", r"""
task = gradreg.make_task(cfg.task, cfg.length)
model = figures.make_model(task, cfg.hidden_size, seed, dtype=torch.float64, device=dev)
x, y = task.sample(8, generator=torch.Generator().manual_seed(seed))
x, y = x.to(dev, torch.float64), y.to(dev)

print(task, "| steps S =", task.steps, "| input size", task.input_size, "| classes", task.output_size)
print(model)
print("x:", tuple(x.shape), "(batch, S, input)  ->  o = model(x):", tuple(model(x).shape))
print("spectral radius of W_rec:", round(gradreg.model.spectral_radius(model.W_rec), 4))
"""),
("md", r"""
## Backpropagation through time

Write $\delta_t := \partial E / \partial z_t$ for the error at the pre-activation of step $t$.
$E$ depends on $z_t$ only through $h_t = f(z_t)$, and $h_t$ reaches $E$ in two ways: through
the next step's $z_{t+1} = W_{rec} h_t + \dots$ and, at the last step, through the readout.
The chain rule gives

$$\delta_{S-1} = f'(z_{S-1}) \odot W_{out}^\top \frac{\partial E}{\partial o}, \qquad
\delta_t = f'(z_t) \odot W_{rec}^\top\, \delta_{t+1} \quad (t < S-1),$$

and, since $z_t$ is linear in the weights, every gradient is a sum over steps of
$\delta_t$ times what multiplied the weight at step $t$:

$$\frac{\partial E}{\partial W_{rec}} = \sum_t \delta_t\, h_{t-1}^\top, \qquad
\frac{\partial E}{\partial W_{in}} = \sum_t \delta_t\, x_t^\top, \qquad
\frac{\partial E}{\partial b} = \sum_t \delta_t.$$
"""),
("md", r"""
`gradreg.bptt` runs one batched forward pass and this recursion once, for the whole batch,
and keeps $h$ and $\delta$ (time-major: `delta[t]` is the $(B, H)$ block of step $t$). With
examples as rows, $W_{rec}^\top \delta_{t+1}$ is `delta[t+1] @ W_rec`, and for tanh
$f'(z_t) = 1 - \tanh^2(z_t) = 1 - h_t^2$:
""", {"slide": "subslide"}),
("code", r"""
rec = gradreg.bptt(model, task, x, y)
print("h:", tuple(rec.h.shape), " delta:", tuple(rec.delta.shape), "  (S, batch, H)")

t = task.steps - 5
f_prime = 1 - rec.h[t] ** 2                                      # f'(z_t) for tanh
recursion = f_prime * (rec.delta[t + 1] @ model.W_rec.detach())  # f'(z_t) * W_rec^T delta_{t+1}
print(f"delta_{t} == f'(z_{t}) * W_rec^T delta_{t + 1}:", torch.allclose(rec.delta[t], recursion))

# sum_t delta_t h_{t-1}^T over the batch is the gradient autograd finds for the summed loss
stats = gradreg.per_example_stats(model, task, x, y)
model.zero_grad()
task.loss(model(x), y).sum().backward()
print("sum_i sum_t delta_t h_{t-1}^T == autograd dE/dW_rec:",
      torch.allclose(stats.grads["W_rec"].sum(0), model.W_rec.grad))
"""),
("md", r"""
## How fast can the error vanish? The bound

Take norms in the recursion. Let $\gamma = \max_z |f'(z)|$ ($\gamma = 1$ for tanh, relu and
the identity; $1/4$ for the logistic sigmoid) and let $\|W_{rec}\|_2$ be the largest
singular value of $W_{rec}$. Multiplying elementwise by $f'(z_t)$ scales each coordinate by
at most $\gamma$, and $\|W_{rec}^\top v\| \le \|W_{rec}\|_2 \|v\|$, so

$$\|\delta_t\| = \|f'(z_t) \odot W_{rec}^\top \delta_{t+1}\|
\;\le\; \gamma\, \|W_{rec}^\top \delta_{t+1}\| \;\le\; \gamma\, \|W_{rec}\|_2\, \|\delta_{t+1}\|.$$

Applying this $S-1-t$ times, from the last step down:

$$\boxed{\;\|\delta_t\| \;\le\; \|\delta_{S-1}\|\, \big(\gamma\, \|W_{rec}\|_2\big)^{S-1-t}\;}$$
"""),
("md", r"""
Call $l = S-1-t$ the **lag** of step $t$: how far before the end it is. If
$\gamma \|W_{rec}\|_2 < 1$ the error reaching lag $l$ shrinks at least geometrically in
$l$, and so does that step's contribution $\delta_t h_{t-1}^\top$ to the gradient: the
network cannot learn what it would need to remember for $l$ steps. (This is a sufficient
condition for vanishing. Its converse is not a theorem: $\gamma \|W_{rec}\|_2 > 1$ allows
growth but does not force it.)
""", {"slide": "subslide"}),
("md", r"""
Two numbers describe $W_{rec}$: the spectral norm $\|W_{rec}\|_2$ in the bound, and the
spectral radius $\rho(W_{rec}) = \max |\lambda_i|$. Always $\rho \le \|W_{rec}\|_2$, with
equality for normal matrices; and $\|W_{rec}^l\|^{1/l} \to \rho$ (Gelfand), so $\rho$ sets
the asymptotic rate of a linear network while the bound uses the (larger) norm.
"""),
("md", r"""
`gradreg.figures.delta_profiles` builds one untrained SRN per activation and spectral
radius, runs `per_example_stats` on a batch, and tabulates
$r_i(l) = \|\delta_{i,S-1-l}\| / \|\delta_{i,S-1}\|$ (its median, quartiles and maximum
over the examples) next to the bound $(\gamma \|W_{rec}\|_2)^l$:
""", {"slide": "subslide"}),
("code", r"""
profiles = figures.delta_profiles(cfg.task, cfg.length, cfg.activations, cfg.radii, cfg.batch_size,
                                  cfg.hidden_size, seed=seed, device=dev)
summary = figures.decay_summary(profiles)
display(summary.round(4))
assert summary["bound_holds"].all(), "the bound was violated"
""", {"tags": ["remove_input"]}),
("md", r"""
### Measured profiles against the bound

Each panel is one activation function; each colour one spectral radius of $W_{rec}$ (the
network is otherwise identical: same sparse pattern, same inputs). Solid lines are the median
of $r_i(l)$ over the batch with the interquartile band; dashed lines of the same colour are
the bound $(\gamma \|W_{rec}\|_2)^l$. The y axis is logarithmic, so geometric decay is a
straight line.
"""),
("code", r"""
fig = plotting.plot_delta_profiles(profiles)
plotting.save_figure(fig, "01_delta_profiles", output_dir)
plt.show()
""", {"tags": ["remove_input"]}),
("md", r"""
What to read off the figure:

* **Geometric decay below radius 1.** For tanh and the identity the profiles are straight
  lines in log scale, with a slope set by the spectral radius, not by the norm: with the
  default input scale the hidden units stay near zero, where $\tanh$ is nearly linear, so
  $\delta_t \approx (W_{rec}^\top)^{l} \delta_{S-1}$ and its decay rate tends to $\rho$.
* **The bound is loose.** The sparse $W_{rec}$ is far from normal: its spectral norm is
  about twice its spectral radius (table above), so the dashed bound grows even where the
  measured error shrinks. The bound is a guarantee, not a prediction.
* **relu vanishes faster.** $f'(z) \in \{0, 1\}$: units that are off block the error, so
  the effective matrix is smaller than $W_{rec}$.
* **At and above radius 1** the identity network keeps or amplifies the error (exploding
  gradients: the problem that gradient clipping addresses). tanh grows far less: as the
  units grow, $f'(z) = 1 - h^2$ falls below 1 and holds the product back (saturation).
""", {"slide": "subslide"}),
("md", r"""
The next figure checks the bound directly (left: for every activation and lag, the largest
ratio over all examples and radii of the measured value to the bound; it must stay at or
below 1) and compares rates (right: the per-step factor by which the median
$\|\delta\|$ shrinks, $\mathrm{median}_i\, r_i(l)^{1/l}$ at the largest lag, against the
bound's factor $\gamma\|W_{rec}\|_2$ and against $\rho$).
""", {"slide": "subslide"}),
("code", r"""
fig = plotting.plot_bound_check(profiles, summary)
plotting.save_figure(fig, "01_bound_check", output_dir)
plt.show()
""", {"tags": ["remove_input"]}),
("code", r"""
worst = profiles["max_over_bound"].max()
print(f"largest measured/bound ratio over every network, example and lag: {worst:.3g} (<= 1)")
display(summary[["spectral_radius", "measured_rate", "bound_rate"]].round(3))
""", {"slide": "subslide"}),
("md", r"""
## What this means for training, and for SGR

The gradient is a sum over steps. Split it at a lag threshold $\tau$ (by default
$\tau = \lfloor S/2 \rfloor$): the **long-term component** $g^{\ge\tau}$ collects the terms
of the steps with lag $\ge \tau$, i.e. $t \le S-1-\tau$. By the bound, for a contracting
network $g^{\ge\tau}$ is exponentially small in $\tau$ *on average*, and a plain minibatch
gradient is dominated by short-term terms.

But the deltas differ from example to example: $f'(z_t)$, $h_{t-1}$ and $x_t$ all depend
on the sequence. The vanishing ratio $r_i(\tau)$ of the default network shows how much:
"""),
("code", r"""
default = figures.make_model(task, cfg.hidden_size, seed, device=dev)   # sparse init, radius 0.95
xs, ys = task.sample(cfg.batch_size, generator=torch.Generator().manual_seed(seed + 1))
s = gradreg.per_example_stats(default, task, xs.to(dev), ys.to(dev), norms_only=True)
r = s.vanishing_ratio().double()
print(f"tau = {s.lag}: vanishing ratio r_i(tau) over {len(r)} sequences: "
      f"10% quantile {r.quantile(0.1):.2e}, median {r.median():.2e}, 90% quantile {r.quantile(0.9):.2e}")
print(f"long-term score s_i(tau): max / median = {(s.long_term_norm.max() / s.long_term_norm.median()):.1f}")
"""),
("md", r"""
Some sequences carry far more long-term gradient than others. Sampling-based gradient
regularization (SGR) exploits exactly this: score a pool of candidate sequences by their
long-term gradient and train on the ones that carry it. Notebook 2 shows how to get every
example's long-term component exactly from one batched pass; notebook 3 what selecting
examples does to the minibatch gradient.
"""),
]

# =============================================================================================
NB02 = [
("md", r"""
# 2. Exact per-example, lag-resolved gradients from one batched pass

SGR scores every candidate sequence of a pool by its own long-term gradient, at every
training step. That needs, for each example $i$ of a batch, its full gradient $g_i$ and its
long-term component $g_i^{\ge\tau}$: quantities a framework's autograd does not give you
(it sums over the batch). This notebook shows that both fall out of one batched BPTT pass,
checks them against autograd to round-off, looks at how the long-term scores are
distributed across sequences, and measures what the batched computation costs.
"""),
("params", PARAMETERS),
("setup", setup("02_per_example_estimation", "import pandas as pd\nfrom tqdm.auto import tqdm")),
("md", r"""
## Per-example gradients are batched reductions of the stored deltas

`gradreg.bptt` keeps, for every example $i$ and step $t$, the hidden state $h_{i,t}$ and the
delta $\delta_{i,t} = \partial E_i / \partial z_{i,t}$ (notebook 1). The gradient of example
$i$'s own loss is the sum over its steps:

$$g_i(W_{in}) = \sum_{t=0}^{S-1} \delta_{i,t}\, x_{i,t}^\top, \qquad
g_i(W_{rec}) = \sum_{t=1}^{S-1} \delta_{i,t}\, h_{i,t-1}^\top, \qquad
g_i(b) = \sum_{t=0}^{S-1} \delta_{i,t},$$

one batched matrix product per parameter (`torch.bmm` over examples, contracting over time).
"""),
("md", r"""
The **long-term component** with lag threshold $\tau$ keeps the steps of lag $\ge\tau$:

$$g_i^{\ge\tau} = \text{the same sums over } t \le S-1-\tau \text{ only, for } W_{in}, W_{rec}, b,$$

and the three numbers SGR works with are

$$s_i(\tau) = \|g_i^{\ge\tau}\|_2 \text{ (long-term score)}, \qquad
p_i(t) = \|\delta_{i,t}\|_2 \text{ (delta profile)}, \qquad
r_i(\tau) = \frac{\|\delta_{i,S-1-\tau}\|}{\|\delta_{i,S-1}\|} \text{ (vanishing ratio)}.$$

`gradreg.per_example_stats` returns all of them:
""", {"slide": "subslide"}),
("code", r"""
task = gradreg.make_task("temporal_order", cfg.check_length)
model = figures.make_model(task, 50, seed, dtype=torch.float64, device=dev)
x, y = task.sample(cfg.check_batch, generator=torch.Generator().manual_seed(seed))
x, y = x.to(dev, torch.float64), y.to(dev)

stats = gradreg.per_example_stats(model, task, x, y)            # lag tau = floor(S/2) by default
print("tau =", stats.lag)
for name, g in stats.grads.items():
    print(f"grads[{name!r}]: {tuple(g.shape)}   (batch, *parameter shape)")
print("long_term_grads:", {k: tuple(v.shape) for k, v in stats.long_term_grads.items()})
print("delta_norm:", tuple(stats.delta_norm.shape), " long_term_norm:", tuple(stats.long_term_norm.shape))
"""),
("md", r"""
## Exactness: a per-example autograd loop as the reference

The reference is independent of `bptt`: plain autograd, one example at a time. To get the
long-term component out of autograd too, give every step its own copy of the recurrent
weights, all equal to the model's:

$$z_t = W_{in}^{(t)} x_t + W_{rec}^{(t)} h_{t-1} + b^{(t)}, \qquad
W^{(t)} = W \text{ for every } t.$$

The network computes exactly the same function, and autograd's gradient with respect to the
copy $W^{(t)}$ is exactly the step-$t$ term of the BPTT sum. Summing the copies' gradients
over all steps gives $g_i$; over $t \le S-1-\tau$, $g_i^{\ge\tau}$; and
$\partial E_i/\partial z_t$ read off $z_t$ gives the deltas
(`gradreg.figures.autograd_reference`).
"""),
("md", r"""
We compare in float64 so that the only difference left is round-off, on three settings
that exercise different code paths: a last-step classification task, a regression task with
relu, and a task scored at every step.
""", {"slide": "subslide"}),
("code", r"""
checks = []
for name, activation in [("temporal_order", "tanh"), ("adding", "relu"), ("noiseless_memorization", "tanh")]:
    t_ = gradreg.make_task(name, cfg.check_length)
    m_ = figures.make_model(t_, 50, seed, dtype=torch.float64, device=dev, activation=activation)
    x_, y_ = t_.sample(cfg.check_batch, generator=torch.Generator().manual_seed(seed))
    c = figures.exactness_check(m_, t_, x_.to(dev, torch.float64), y_.to(dev))
    c.insert(0, "setting", f"{name} (S={t_.steps}), {activation}")
    checks.append(c)
checks = pd.concat(checks, ignore_index=True)
display(checks.pivot(index="quantity", columns="setting", values="max_relative_error"))
worst = checks["max_relative_error"].max()
print(f"max relative error, batched one-pass statistics vs per-example autograd: {worst:.2e}")
assert worst < 1e-10
""", {"tags": ["remove_input"]}),
("md", r"""
The errors are at the float64 round-off floor ($\approx 10^{-15}$): the one-pass
statistics are exact, not an approximation.
"""),
("md", r"""
## How are the long-term scores distributed across sequences?

If every sequence carried the same long-term gradient, choosing sequences could not help.
We score a large batch of fresh temporal-order sequences with an untrained network, at
several lengths $T$ (with $\tau = \lfloor T/2 \rfloor$), and compare the distributions
relative to their medians. `score_summary` reports quantiles relative to the median, the
share of $\sum_i s_i^2$ (the total long-term "energy") held by the top 1% and 10% of
sequences (1% and 10% if all were equal), and the spread of $\log_{10} s$.
"""),
("code", r"""
scores = figures.score_distributions("temporal_order", cfg.score_lengths, cfg.score_batch, seed=seed,
                                     device=dev, progress=True)
display(figures.score_summary(scores, "length").round(3))
"""),
("code", r"""
fig = plotting.plot_score_distributions(scores, hue="length", hue_label="task length T")
plotting.save_figure(fig, "02_score_distributions", output_dir)
plt.show()
""", {"slide": "subslide", "tags": ["remove_input"]}),
("md", r"""
What the table and the figure say about an **untrained** network:

* The scale collapses with length: the median score falls roughly geometrically in $T$
  (notebook 1's vanishing, now per example).
* The spread does *not*: relative to its median, the distribution looks the same at every
  length, with no heavy tail (the largest score is a few times the median, and the top 10%
  of sequences hold roughly a third of the total $\sum_i s_i^2$). It is multimodal: at
  initialisation the output is nearly uniform, so the error entering the last step,
  $\partial E/\partial o = \mathrm{softmax}(o) - e_y$, is set mainly by the target class
  $y$, and the four modes are the four classes (`stats.long_term_norm` grouped by `y` shows it).
""", {"slide": "subslide"}),
("md", r"""
### ... and with training

Scores change as the network learns: the weights change, and with them how much error
reaches far back, and the error signal becomes specific to each sequence rather than to its
class. We train briefly with `gradreg.train` (gradient clipping, the plain baseline, for at
most `cfg.train_iterations` iterations; it stops early if the task is solved) and score
fresh sequences again with the trained network.
"""),
("code", r"""
config = gradreg.TrainConfig(task="temporal_order", length=cfg.train_length, method="clip", seed=seed,
                             max_iterations=cfg.train_iterations, check_every=max(1, cfg.train_iterations // 10),
                             test_size=2000, device=device)
before_after, result = figures.scores_before_after(config, cfg.score_batch, progress=True)
print(result.summary())
display(figures.score_summary(before_after, "stage").round(3))
"""),
("code", r"""
fig = plotting.plot_score_distributions(before_after, hue="stage", hue_label=f"temporal_order, T={cfg.train_length}")
plotting.save_figure(fig, "02_scores_training", output_dir)
plt.show()
""", {"slide": "subslide", "tags": ["remove_input"]}),
("md", r"""
Training moves the whole distribution up (the long-term component grows as the network
starts to use the early inputs) and, while the task is being learned, widens it: the spread
of $\log_{10} s$ and the share held by the top sequences grow. The scores stop being a
function of the class alone and start to tell sequences apart, which is when choosing among
them can matter.
"""),
("md", r"""
## What does the batched estimate cost?

We time four ways of getting the gradients of one batch (temporal order,
$T$ = `cfg.timing_length`, $H = 50$, best of `cfg.timing_repeats` runs):

* **batched BPTT (gradreg)**: `per_example_stats`: every $g_i$, every $g_i^{\ge\tau}$ and
  every delta profile, one forward and one backward pass over the batch;
* **per-example autograd loop**: one forward and backward pass of `SRN.forward` per
  sequence (per-example full gradients only);
* **torch.func vmap(grad)**: the same per-example full gradients, vectorised by
  `torch.func` over the batch;
* **nn.RNN forward+backward**: a plain training step's cost with PyTorch's RNN, which
  yields only the batch-mean gradient: the yardstick for "free".
"""),
("code", r"""
timings = figures.cost_benchmark("temporal_order", cfg.timing_length, cfg.timing_batches, repeats=cfg.timing_repeats,
                                 loop_max_batch=cfg.loop_max_batch, seed=seed, device=dev)
display((timings.pivot(index="batch_size", columns="method", values="seconds") * 1e3).round(2)
        .rename_axis(columns="milliseconds per batch"))
""", {"slide": "subslide"}),
("code", r"""
fig = plotting.plot_timings(timings)
fig.axes[0].set_title(f"Gradients of one batch, T={cfg.timing_length}, H=50, {dev.type.upper()}")
plotting.save_figure(fig, "02_cost", output_dir)
plt.show()
""", {"slide": "subslide", "tags": ["remove_input"]}),
("md", r"""
The per-example loop grows linearly with the batch (one sequential pass per example), and
vmap removes the Python loop but still materialises per-example gradients through a generic
transform. The hand-written pass does the recursion once for the whole batch, so every
per-example and lag-resolved statistic costs about what an ordinary training step costs:
compare the batched line with the nn.RNN line, which buys only the batch mean. That is what
makes scoring a pool of $M = 4n$ candidates at every SGR step affordable.
"""),
]

# =============================================================================================
NB03 = [
("md", r"""
# 3. What a minibatch does to the gradient norm

SGR chooses which examples form a minibatch. What a training step receives is not any
single example's gradient but the minibatch mean. This notebook proves three facts about
that mean (docs/method.md section 3), each in a few lines, and checks each numerically on real
per-example gradients of the temporal-order task. Then it measures what each of the
selection rules does to the minibatch's long-term gradient and to its signal-to-noise ratio.
"""),
("md", r"""
Notation: a minibatch $B$ of $n$ examples with per-example gradient vectors
$g_i \in \mathbb{R}^P$ (either the full gradient over all parameters or the long-term
component $g_i^{\ge\tau}$ over $W_{in}, W_{rec}, b$; the statements hold for both), and
$\bar g_B = \frac1n \sum_{i\in B} g_i$.
""", {"slide": "fragment"}),
("params", PARAMETERS),
("setup", setup("03_minibatch_theory")),
("code", r"""
task = gradreg.make_task("temporal_order", cfg.length)
model64 = figures.make_model(task, 50, seed, dtype=torch.float64, device=dev)   # exact checks: float64
model = figures.make_model(task, 50, seed, device=dev)                          # as training runs it
print(task, "| tau =", task.steps // 2, "| untrained SRN, sparse init (spectral radius 0.95)")
""", {"slide": "skip"}),
("md", r"""
## Statement 1: the exact norm of any minibatch, from the Gram matrix

$$\|\bar g_B\|^2 = \frac{1}{n^2} \sum_{i, j \in B} \langle g_i, g_j \rangle .$$

*Proof.* Expand the inner product: $\|\sum_i g_i\|^2 = \langle \sum_i g_i, \sum_j g_j\rangle
= \sum_{i,j} \langle g_i, g_j \rangle$ by bilinearity; divide by $n^2$. $\square$

More generally, for any weights $w$ over a pool, $\|\sum_i w_i g_i\|^2 = w^\top G w$ with
$G_{ij} = \langle g_i, g_j\rangle$. So once the pool's per-example gradients are known (one
batched pass, notebook 2), the exact norm of *every* possible minibatch drawn from it costs
a sum over a block of $G$, and no further backward pass. The greedy rule uses exactly this.

*Check.* Random subsets $B$ of a pool: the Gram prediction against an independent
autograd backward pass on the subset's mean loss.
"""),
("code", r"""
gram = figures.gram_identity_check(model64, task, cfg.gram_pool, [1, 2, 5, 10, 20], cfg.subsets, seed=seed)
print(f"max relative error, Gram prediction vs autograd: {gram['relative_error'].max():.2e} "
      f"over {len(gram)} subsets (full and long-term gradients)")
assert gram["relative_error"].max() < 1e-10
"""),
("md", r"""
## Statement 2: the triangle bound

$$\|\bar g_B\| \;\le\; \frac1n \sum_{i \in B} \|g_i\| .$$

*Proof.* The triangle inequality $\|a + b\| \le \|a\| + \|b\|$, applied $n-1$ times, gives
$\|\sum_i g_i\| \le \sum_i \|g_i\|$; divide by $n$. Equality holds exactly when all the
$g_i$ point the same way (are non-negative multiples of one vector). $\square$
"""),
("md", r"""
So a minibatch of examples with large individual long-term scores $s_i$ is *not*
guaranteed a large long-term gradient: if the $g_i^{\ge\tau}$ point in different directions
they cancel. The ratio $\|\bar g_B\| / \text{mean}_i\|g_i\|$ measures how coherent they are.

*Check* on the long-term components of random subsets:
""", {"slide": "subslide"}),
("code", r"""
triangle = figures.triangle_check(model64, task, cfg.gram_pool, [1, 2, 5, 10, 20], cfg.subsets, seed=seed)
print(f"largest ||mean g|| / mean ||g_i|| over {len(triangle)} subsets: {triangle['ratio'].max():.6f} (<= 1)")
display(triangle.groupby("n")["ratio"].describe()[["mean", "min", "max"]].round(4)
        .rename_axis("n (coherence ||mean g|| / mean ||g_i||)"))
assert (triangle["ratio"] <= 1 + 1e-12).all()
"""),
("md", r"""
## Statement 3: the noise model

Suppose $g_i = \mu + \varepsilon_i$ with the $\varepsilon_i$ independent, $E\,\varepsilon_i = 0$
and $E\|\varepsilon_i\|^2 = \sigma^2$. Then

$$E\,\|\bar g_B\|^2 = \|\mu\|^2 + \frac{\sigma^2}{n}.$$

*Proof.* $\bar g_B = \mu + \bar\varepsilon$ with $\bar\varepsilon = \frac1n\sum_i\varepsilon_i$, so
$E\|\bar g_B\|^2 = \|\mu\|^2 + 2\langle \mu, E\bar\varepsilon\rangle + E\|\bar\varepsilon\|^2$.
The middle term is $0$. By statement 1,
$E\|\bar\varepsilon\|^2 = \frac{1}{n^2}\sum_{i,j} E\langle\varepsilon_i, \varepsilon_j\rangle$,
and for $i \ne j$ independence and zero mean give
$E\langle\varepsilon_i,\varepsilon_j\rangle = \langle E\varepsilon_i, E\varepsilon_j\rangle = 0$,
leaving $\frac{1}{n^2} \cdot n\sigma^2$. $\square$
"""),
("md", r"""
Fresh sequences drawn from a task *are* independent, so the model applies to a plain
minibatch, with $\mu$ the expected gradient and $\sigma^2$ its per-example variance. The
two terms compete: the **long-term signal-to-noise ratio**

$$\mathrm{SNR} = \frac{\|\mu\|^2}{\sigma^2 / n}$$

says whether a step's long-term gradient is mostly signal (the direction all sequences
agree on) or mostly noise that averages out over steps.
"""),
("md", r"""
*Check.* We draw a large pool, estimate $\mu$ and $\sigma^2$ from all of it, cut it into
disjoint minibatches of $n$ consecutive (hence independent) sequences, and compare the mean
of $\|\bar g_B\|^2$ over them (with $\pm 2$ standard errors) to the prediction.
""", {"slide": "subslide"}),
("code", r"""
noise = figures.noise_model_check(model, task, cfg.noise_pool, cfg.noise_sizes, seed=seed)
display(noise[["component", "n", "groups", "measured", "stderr", "predicted"]].round(6))
for component, sub in noise.groupby("component"):
    z = ((sub["measured"] - sub["predicted"]) / sub["stderr"]).abs().max()
    snr = sub["mu_sq"].iloc[0] / sub["sigma_sq"].iloc[0]
    print(f"{component:9s}: largest |measured - predicted| = {z:.1f} standard errors; "
          f"||mu||^2 / sigma^2 = {snr:.2e}, so SNR = {snr:.2e} * n")
"""),
("code", r"""
fig, axes = plt.subplots(1, 3, figsize=(15, 4.4))
plotting.plot_gram_identity(gram, ax=axes[0])
plotting.plot_triangle_bound(triangle, ax=axes[1])
plotting.plot_noise_model(noise, ax=axes[2])
fig.suptitle(f"Minibatch theory on real per-example gradients (temporal order, T={cfg.length}, untrained SRN)")
plotting.save_figure(fig, "03_minibatch_theory", output_dir)
plt.show()
""", {"slide": "subslide", "tags": ["remove_input"]}),
("md", r"""
Note where the long-term points sit in the right panel: at an untrained network
$\|\mu^{\ge\tau}\|^2$ is tiny compared with $\sigma^2/n$ for any practical $n$: a random
minibatch's long-term gradient is almost all noise. Its *norm* is not small (it is about
$\sigma/\sqrt n$), but its direction changes from step to step and averages away.
"""),
("md", r"""
## Selection: what each rule does to the long-term signal

SGR draws a pool of $M = kn$ sequences ($k$ = pool factor), scores it in one batched pass
and keeps $n$ of them (docs/method.md section 4). The rules:

| rule | keeps |
|---|---|
| `random` | $n$ uniform of $M$: the same-cost control with no selection |
| `top` | the $n$ largest long-term scores $s_i(\tau)$ |
| `band` | sequences whose vanishing ratio $r_i(\tau)$ lies in a band, $[0.01, 10]$ by default |
| `weighted` | $n$ drawn with probability $\propto s_i^\alpha$ ($\alpha = 1$) |
| `greedy` | one at a time, each maximising the exact minibatch long-term norm (statement 1), until it enters a target band |
"""),
("md", r"""
Selection moves both terms of the noise model: it changes the mean $\mu_B$ of the examples
that are kept and their spread $\sigma_B^2$. For each rule and pool factor we repeat the
selection on `cfg.repeats` fresh pools (the same pools for every rule) with the training
harness' own rule code, and report

* the minibatch long-term norm $\|\sum_{i\in B} w_i g_i^{\ge\tau}\|$ (median and quartiles
  over repeats);
* the noise-model SNR $\|\mu_B\|^2 / (\sigma_B^2/n)$ from the kept examples' mean and
  variance (solid lines);
* the measured SNR $\|E\,\bar g_B\|^2 / E\|\bar g_B - E\,\bar g_B\|^2$ over repeats (dotted),
  which assumes nothing about independence: the kept examples were chosen jointly from one
  pool, so they are not independent, and where the two SNRs differ, that dependence matters.

With $k = 1$ every rule keeps the whole pool: all rules coincide, a built-in sanity check.
""", {"slide": "subslide"}),
("code", r"""
selection = figures.selection_study(model, "temporal_order", cfg.length, cfg.rules, cfg.pool_factors,
                                    batch_size=cfg.batch_size, repeats=cfg.repeats, seed=seed)
display(selection.pivot(index="rule", columns="pool_factor", values="lt_norm_median")
        .rename_axis(columns="median minibatch long-term norm, by pool factor k").round(4))
display(selection.pivot(index="rule", columns="pool_factor", values="snr_measured")
        .rename_axis(columns="measured long-term SNR, by pool factor k").round(3))
""", {"slide": "subslide"}),
("code", r"""
fig = plotting.plot_selection(selection)
fig.suptitle(f"Selection rules, temporal order T={cfg.length}, n={cfg.batch_size}, untrained SRN, "
             f"{cfg.repeats} pools per point")
plotting.save_figure(fig, "03_selection_rules", output_dir)
plt.show()
""", {"slide": "subslide", "tags": ["remove_input"]}),
("md", r"""
How to read it.

* `random` does not depend on $k$ (up to sampling noise): without selection a bigger pool
  changes nothing. Its SNR is far below 1: a plain minibatch's long-term gradient is mostly
  noise (statement 3).
* `band` coincides with `random` here. At an untrained network every candidate's vanishing
  ratio is close to $\rho^\tau$ and inside the default band $[0.01, 10]$, so the rule keeps a
  uniform draw (the same draw as `random`). It only selects once training has spread the
  ratios out.
* `top`, `weighted` and `greedy` raise the minibatch long-term norm, and in this setting
  they raise $\|\mu_B\|^2$ faster than $\sigma_B^2/n$, so the SNR rises by orders of
  magnitude: at initialisation the high-scoring sequences share a direction (they are
  mostly of one target class, notebook 2), so selecting them selects a common signal.
* Where the measured SNR (x) departs from the noise-model line, the kept examples are not
  independent: `greedy` builds its minibatch to be coherent, and its measured SNR is
  higher than the per-example mean and variance suggest.
""", {"slide": "subslide"}),
("md", r"""
A large norm alone does not prove signal (statement 2: large individual scores can
cancel; statement 3: a norm can be all noise), which is why both panels are needed. And
whether a higher long-term SNR at one step turns into faster learning, rather than into a
biased gradient that favours some sequences, is a question about training dynamics, which
notebooks 5 and 6 answer.
"""),
]

# =============================================================================================
NB04 = [
("md", r"""
# 4. The tasks

The benchmark tasks of Hochreiter & Schmidhuber (1997), as used by Martens & Sutskever
(2011) and Pascanu et al. (2013), in `gradreg.tasks`. Each is a family of synthetic
sequences in which the answer depends on a few inputs placed far from the end, surrounded
by irrelevant ones: to solve it, a network has to carry information across a known, long
lag. Here $T$ is the task length, positions are 0-based, $[a, b)$ is half-open and
$d = \lfloor T/10 \rfloor$.

| task | input | relevant positions | target |
|---|---|---|---|
| `temporal_order` | 6 one-hot symbols A, B, c..f | A/B at $p_0 \in [d, 2d)$ and $p_1 \in [\lfloor T/2 \rfloor, \lfloor T/2\rfloor + d)$, distractors c..f elsewhere | the order: $v_0 + 2v_1$, 4 classes |
| `temporal_order_3bit` | the same | three A/B symbols at $[d,2d)$, $[\lfloor 0.3T \rfloor, +d)$, $[\lfloor 0.6T\rfloor, +d)$ | $v_0 + 2v_1 + 4v_2$, 8 classes |
| `adding` | value $\sim U[0,1]$ + marker channel | markers at $p_0 \in [0, d)$, $p_1 \in [d, d + \lfloor 0.4T \rfloor)$ | $(v_{p_0} + v_{p_1})/2$, regression |
| `multiplication` | the same | the same | $v_{p_0} \cdot v_{p_1}$, regression |
| `xor` | random bit + marker | the same | $v_{p_0} \oplus v_{p_1}$, 2 classes |
| `random_permutation` | 100 one-hot symbols | step 0 shows 0 or 1; steps after it random symbols 2..99 | the first symbol, 100-way output |
| `noiseless_memorization` | 5 values, blank, go | 10 values at steps 0..9, then blanks, "go" at step $T+10$ | blank until go, then the 10 values in order (every step scored) |

A sequence is **wrong** if the argmax at the scored step is wrong (memorization: at any
step) or, for regression, its squared error exceeds 0.04; a run is **solved** when at most
1% of 10,000 fresh test sequences are wrong.

`Task.sample_with_positions` returns the relevant positions along with each batch, which is
what the figure below marks.
"""),
("params", PARAMETERS),
("setup", setup("04_tasks")),
("code", r"""
gallery = figures.task_gallery(cfg.length, seed=seed)
for item in gallery:
    t = item["task"]
    print(f"{t.name:24s} T={t.length:3d} steps S={t.steps:3d} input {t.input_size:3d} output {t.output_size:3d} "
          f"{t.kind:14s} readout={t.readout:4s} positions {item['positions'][0].tolist()}  "
          f"ranges {[(r.start, r.stop) for r in t.position_ranges()]}")
"""),
("md", r"""
## One sequence of each task

Each panel is one input sequence as a heat-map: rows are input channels, columns time steps,
dark = 1. The red boxes are the relevant inputs of this sequence; the orange bands are the
ranges those positions are drawn from (for noiseless memorization the box is the go signal
and the band the 10 stored values). The title gives the target; for noiseless
memorization, which is scored at every step, the targets are written under the steps in
blue (· = blank). For random permutation the 98 distractor symbols are folded into one row,
with each step's symbol written in it.
"""),
("code", r"""
fig = plotting.plot_task_gallery(gallery)
plotting.save_figure(fig, "04_task_gallery", output_dir)
plt.show()
"""),
("md", r"""
## How far back must the network look?

What makes these tasks hard is the lag between the relevant inputs and the step where the
answer is scored: for a last-step task, an input at position $p$ must be carried for
$S-1-p$ steps, and by notebook 1 the gradient that could teach the network to do so shrinks
geometrically in that lag. The figure draws, for every task at $T = 100$, where the relevant
inputs can fall, as a fraction of the sequence.
"""),
("code", r"""
tasks_100 = [gradreg.make_task(name, 100) for name in gradreg.TASK_NAMES]
fig = plotting.plot_position_ranges(tasks_100)
fig.axes[0].set_title("Where the relevant inputs are, at T = 100")
plotting.save_figure(fig, "04_relevant_positions", output_dir)
plt.show()
"""),
("md", r"""
Temporal order and the adding family put the first relevant input in the first fifth of
the sequence, so the lag to bridge grows linearly with $T$; random permutation puts it at
step 0 (the longest possible lag); noiseless memorization must hold 10 values across a
blank stretch of $T$ steps. The SGR lag threshold $\tau = \lfloor S/2\rfloor$ splits the
gradient roughly at the middle: its long-term component collects exactly the steps in the
first half, where the first relevant input of every task lies.
"""),
]

# =============================================================================================
NB05 = [
("md", r"""
# 5. Training: SGR against its baselines

Every method runs on the same harness (`gradreg.train`): the same task stream, the same
SRN initialisation for a given seed, the same optimiser (SGD, learning rate 0.01,
minibatch $n = 20$, hidden size 50) and the same test set of fresh sequences, drawn once
per run from its own seed. This notebook trains each method on one task and length, over
several seeds, and plots test error against the number of training sequences processed.

| method | step |
|---|---|
| `sgd` | $\theta \leftarrow \theta - \eta\, \bar g_B$, $B$ = $n$ fresh sequences |
| `clip` | the same with $\bar g_B \leftarrow \bar g_B \cdot \min(1, c/\lVert \bar g_B\rVert )$, $c = 1$ (Pascanu's SGD-C) |
| `pascanu` | clip, plus $\alpha\, \partial\Omega/\partial W_{rec}$, $\alpha = 2$, the vanishing-gradient regulariser $\Omega = \mathrm{mean}_{i,k}\big(\frac{\lVert W_{rec}^\top (f'(z_{k+1}) \odot u_{i,k+1})\rVert }{\lVert u_{i,k+1}\rVert } - 1\big)^2$, $u = \partial E/\partial h$ (SGD-CR) |
| `sgr/top` | draw $M = 4n$ sequences, score $s_i(\tau)$ in one batched pass, step with the mean gradient of the $n$ highest-scoring ones (already computed: no second backward pass), clipped |
| `sgr/random` | the same pool and cost, but $n$ chosen uniformly: the control that isolates the effect of *selection* |
| `lstm` | `torch.nn.LSTM` with the same readout, optimiser and clipping |

SGR processes $M = 4n$ sequences per step, so the x axis counts *examples processed*, the
whole pool for SGR: the honest unit of data and (roughly) of compute.
"""),
("params", PARAMETERS + "workers = None            # processes for the runs (None: the profile's choice)\n"),
("setup", setup("05_training")),
("code", r"""
configs = figures.method_configs(cfg.task, cfg.length, cfg.seeds, max_iterations=cfg.max_iterations,
                                 check_every=cfg.check_every, test_size=cfg.test_size, device=device)
print(f"{len(configs)} runs: {cfg.task} T={cfg.length}, {cfg.seeds} seeds, at most {cfg.max_iterations} "
      f"iterations, test error on {cfg.test_size} sequences every {cfg.check_every} iterations")
results = figures.run_configs(configs, workers=cfg.workers if workers is None else workers)
table = figures.results_table(results)
display(figures.run_summary(table).round(3))
"""),
("md", r"""
The table: per method, how many seeds solved the task (test error $\le 1\%$) within the
iteration budget, the 95% Wilson interval of the success rate (notebook 6), and over the
solved runs the median iterations, examples and wall-clock seconds to solve.

## Learning curves

Each run's test error is put on a common grid of examples processed (linear interpolation
between checks; a run that solved keeps its final error after it stops, since training
would have stopped there; an unsolved run that ran out of iterations simply ends, and so
does its method's line, so that the median is always over all seeds). Lines are the median
over seeds, bands the interquartile range.
"""),
("code", r"""
curves = figures.curves_on_grid(results)
fig = plotting.plot_learning_curves(curves, title=f"{cfg.task}, T={cfg.length}: test error over training "
                                                  f"(median and IQR over {cfg.seeds} seeds)")
plotting.save_figure(fig, "05_learning_curves", output_dir)
plt.show()
"""),
("md", r"""
## What the step receives from long lags, and where the weights go

Every SRN step logs the long-term norm of the minibatch gradient it applies,
$\|\sum_{i \in B} w_i g_i^{\ge\tau}\|$ (before clipping). At any given network, `top`
can only raise it relative to a uniform choice from the same pool (that is what it selects
for; notebook 3). Over training, though, the `sgr/top` and `sgr/random` runs move to
different networks, so the curves below compare *trajectories*: the selection's direct
effect plus where it has taken the weights. `clip` ($n$ fresh sequences, no pool) is shown
for reference. The right panel follows the spectral radius of $W_{rec}$ (notebook 1: the
per-step factor of the backward pass).
"""),
("code", r"""
steps = figures.step_logs(results, labels=("sgr/top", "sgr/random", "clip"))
history = figures.histories(results, labels=("sgr/top", "sgr/random", "clip"))
fig = plotting.plot_training_dynamics(steps, history)
plotting.save_figure(fig, "05_long_term_norm", output_dir)
plt.show()
gain = figures.long_term_gain(steps, "sgr/top", "sgr/random")
print(f"per-step ratio of minibatch long-term norms, sgr/top : sgr/random (median over seeds and steps): "
      f"{gain['median_ratio']:.3g} overall, {gain['first_half']:.3g} in the first half of the "
      f"{gain['iterations']} iterations, {gain['second_half']:.3g} in the second")
display(figures.final_states(results).round(4))
"""),
("md", r"""
How to read the pair of panels. Differences between `sgr/top` and `sgr/random` come both
from the selection and from the different networks the runs have reached; the table (one
row per run: the spectral radius at the end, the largest and the last per-check long-term
norm) says how each run ended. Two outcomes are possible for `top`:

* the extra long-term signal teaches the network to carry the early symbol, and the run
  solves the task: the point of SGR;
* or the run stalls in saturation. Once the spectral radius of $W_{rec}$ is above 1
  (notebook 1), some sequences' long-term gradients explode, clipped steps keep pushing
  $W_{rec}$ outwards, the tanh units saturate ($f' \approx 0$), and then every candidate's
  long-term gradient vanishes: the long-term norm collapses by orders of magnitude and there
  is nothing left to select. The run stalls near 50% error, having learned one of the two
  symbols. This can happen to any clipped SRN (look for runs of any method whose last
  long-term norm in the table is 0), but `top` feeds it: it selects precisely the
  exploding sequences, which shows as a burst of long-term norm far above `random`'s just
  before the collapse. (The committed `quick` runs at $T = 30$ show both outcomes.)

Selection chooses among the gradients the pool has; it cannot create long-term signal where
the network has none, and taken greedily it can amplify an exploding direction. Whether SGR
solves more often than its baselines at long lags, across seeds, is what notebook 6 counts.
"""),
]

# =============================================================================================
NB06 = [
("md", r"""
# 6. Long-range dependencies: success rate against length

The question the paper asks: as the lag to bridge grows, which training method still solves
the task, how reliably, and at what cost? For each method and task length we train several
independent runs (seeds) and count how many solve the task (test error $\le 1\%$ on fresh
sequences) within an iteration budget.

The runs come from a sweep results file (`python -m gradreg sweep --profile paper
--results data/results/paper.csv`, resumable, possibly on a Dask cluster) when one exists:
`data/results/paper.csv` first, otherwise `data/results/<profile>.csv`. Without one,
the runs are computed here, at the chosen profile (`smoke` and `quick` are far smaller than
the paper's setting; their numbers show the pipeline, not the result).
"""),
("params", PARAMETERS + 'results = "auto"          # "auto" | "compute" | path to a sweep CSV\n'
                         'results_dir = "../data/results"\n'
                         "workers = None            # processes, when the runs are computed here\n"),
("setup", setup("06_long_range")),
("code", r"""
table, source = figures.long_range_results(profile, results=results, results_dir=results_dir, device=device,
                                           workers=workers)
print(f"{len(table)} runs, from: {source}")
print("tasks:", sorted(table["task"].unique()), "| lengths:", sorted(table["length"].unique()),
      "| methods:", sorted(table["label"].unique()))
"""),
("md", r"""
## Success rates with honest error bars

With $k$ of $n$ runs solved, the success rate is $\hat p = k/n$. With $n$ of 5 or 10 the
usual normal interval $\hat p \pm z\sqrt{\hat p(1-\hat p)/n}$ fails: at $k = 0$ or $k = n$
it has width zero. The **Wilson score interval** inverts the score test instead, and is the
set of $p$ with $|\hat p - p| \le z\sqrt{p(1-p)/n}$:

$$\frac{\hat p + \frac{z^2}{2n} \pm z\sqrt{\frac{\hat p(1-\hat p)}{n} + \frac{z^2}{4n^2}}}{1 + \frac{z^2}{n}},
\qquad z = 1.96 \text{ for } 95\%.$$

It stays inside $[0, 1]$ and is informative at $k = 0$ and $k = n$:
"""),
("code", r"""
for k, n in [(0, 5), (5, 5), (3, 5), (0, 10), (7, 10)]:
    low, high = analysis.wilson_interval(k, n)
    print(f"{k:2d} of {n:2d} solved: rate {k / n:.2f}, 95% Wilson interval [{low:.2f}, {high:.2f}]")
"""),
("code", r"""
summary = figures.run_summary(table, by=("task", "length", "label"))
display(summary.round(3))
display(figures.sweep_summary(table))   # the same from gradreg.analysis.summarise
"""),
("code", r"""
fig = plotting.plot_success_rate(summary)
plotting.save_figure(fig, "06_success_rate", output_dir)
plt.show()
"""),
("md", r"""
## The cost of solving

Among the runs that solved, how many training sequences did it take? (Examples processed:
SGR counts its whole pool of $4n$ per step, so this compares data and, roughly, compute.)
Each dot is one solved run, the bar the median; a method with no dot at a length solved no
run there.
"""),
("code", r"""
fig = plotting.plot_examples_to_solve(table)
plotting.save_figure(fig, "06_examples_to_solve", output_dir)
plt.show()
"""),
("md", r"""
## Does the selection matter? Exact tests

The paper's claim is about SGR's *selection*, so `sgr/top` is held against the two runs that
isolate it: `sgr/random`, which draws the same pool of $4n$ sequences and steps on a random
$n$ of them (the same cost, no selection), and Pascanu's SGD-CR (`pascanu`), the strongest
baseline. With $k_1$ of $n_1$ and $k_2$ of $n_2$ runs solved, **Fisher's exact test** asks how
probable a split at least this uneven would be if both methods solved at the same rate:
conditioned on the $k_1 + k_2$ solved runs, the count of the first method is
hypergeometric, and the two-sided p-value adds the probabilities of all tables no more
likely than the observed one (`scipy.stats.fisher_exact`).
"""),
("code", r"""
comparison = analysis.comparisons(table)
display(comparison.round(4))
print(analysis.verdict(table))
"""),
("md", r"""
## What solved and failed SGR runs look like over training

The sweep keeps every run's check history beside its results (`NAME-history.csv.gz`, read by
`gradreg.sweep.load_history`): test error, the minibatch long-term norm and the spectral
radius of $W_{rec}$ at every check. Here the SGR runs of temporal order at T = 100, solid
where the run solved, dotted where it failed (no runs: the figure says so).
"""),
("code", r"""
from pathlib import Path
from gradreg import sweep

history_file = sweep.history_path(source) if Path(str(source)).is_file() else None
if history_file is None or not history_file.exists():
    print("no check histories for these runs (computed here, or a results file without its history)")
else:
    history = sweep.load_history(history_file)
    fig = plotting.plot_run_histories(history, table, "temporal_order", 100)
    plotting.save_figure(fig, "06_sgr_runs_T100", output_dir)
    plt.show()
"""),
("md", r"""
Read the two figures together: a method is better at a length if it solves more often (the
intervals separate) *or*, at equal reliability, with fewer examples. With the few seeds of
the `smoke` and `quick` profiles the Wilson intervals are wide and overlap almost
everywhere; that is the honest statement of what so few runs can show. A paper-sized sweep
(`python -m gradreg sweep --profile paper`, read here from `data/results/paper.csv`) is
what the comparison needs.
"""),
]

# =============================================================================================
# Exercises (nbgrader format; gradreg.teaching makes the student edition). Each one uses only
# what the notebook's set-up cell defines (torch, gradreg, figures, plotting, plt, seed, dev,
# device, cfg), so that it can be run on its own; each runs in seconds at every profile.

def exercises_intro(topics: str) -> str:
    return rf"""
## Exercises

{topics}

Each exercise is answered with a few lines against `gradreg`, in the cell under the question
(in the student edition it holds `raise NotImplementedError()`); some also ask for a sentence
or two in the markdown cell after it. Then run the **check** cell under your answer: it
passes when the answer is right (and prints what you computed) and fails with a message
otherwise. The exercises use only the set-up cell at the top of the notebook, so they can be
done right after it; each runs in seconds.
"""


EX01 = [
("md", exercises_intro("Three exercises on the backward pass and its bound: the two numbers that describe "
                       "$W_{rec}$, the recursion for another activation, and the logistic sigmoid's "
                       "$\\gamma = 1/4$.")),
("exercise", r"""
### Exercise 1.1: spectral norm, spectral radius and Gelfand's formula

The bound uses the spectral norm $\|W_{rec}\|_2$, while the measured decay follows the
spectral radius $\rho(W_{rec})$. For the default network's $W_{rec}$ (sparse
initialisation, 50 units, float64: `W` below) compute

* `norm2`, the spectral norm (the largest singular value),
* `rho`, the spectral radius $\max_i |\lambda_i(W)|$,
* `gelfand`, a dict mapping $l = 1, 10, 100$ to $\|W^l\|_2^{1/l}$.

Useful: `torch.linalg.matrix_norm(A, ord=2)`, `torch.linalg.eigvals`, `torch.linalg.matrix_power`.
"""),
("solution", r"""
task = gradreg.make_task("temporal_order", 30)
W = figures.make_model(task, 50, seed, dtype=torch.float64).W_rec.detach()
### BEGIN SOLUTION
norm2 = torch.linalg.matrix_norm(W, ord=2).item()
rho = torch.linalg.eigvals(W).abs().max().item()
gelfand = {l: torch.linalg.matrix_norm(torch.linalg.matrix_power(W, l), ord=2).item() ** (1 / l)
           for l in (1, 10, 100)}
### END SOLUTION
"""),
("check", r"""
import math
assert math.isclose(norm2, torch.linalg.svdvals(W)[0].item(), rel_tol=1e-9), "norm2: the largest singular value of W"
assert math.isclose(rho, 0.95, rel_tol=1e-9), "rho: the sparse initialisation rescales W_rec to spectral radius 0.95"
assert sorted(gelfand) == [1, 10, 100], "gelfand: one entry for each of l = 1, 10, 100"
assert math.isclose(gelfand[1], norm2, rel_tol=1e-9), "gelfand[1] is ||W||_2 itself"
assert all(g >= rho * (1 - 1e-9) for g in gelfand.values()), "rho(W)^l = rho(W^l) <= ||W^l||_2: no estimate is below rho"
assert gelfand[100] - rho < (norm2 - rho) / 10, "||W^l||^(1/l) tends to rho as l grows"
print(f"||W||_2 = {norm2:.3f}, rho = {rho:.3f}; ||W^l||^(1/l): "
      + ", ".join(f"l={l}: {g:.3f}" for l, g in gelfand.items()))
"""),
("exercise", r"""
### Exercise 1.2: the recursion for relu

The notebook checked $\delta_t = f'(z_t) \odot W_{rec}^\top \delta_{t+1}$ for tanh at one
step. Write `relu_deltas(rec, W_rec)`: given the `BPTTRecord` of a **relu** network (`rec.h`
and `rec.delta` are $(S, B, H)$, time-major), return $f'(z_t) \odot W_{rec}^\top \delta_{t+1}$
for all $t = 0, \dots, S-2$ at once, as an $(S-1, B, H)$ tensor. For relu $f'(z) = 1$ where
$z > 0$ and $0$ elsewhere; read it off $h_t = \max(z_t, 0)$.
"""),
("solution", r"""
def relu_deltas(rec, W_rec):
    ### BEGIN SOLUTION
    f_prime = (rec.h[:-1] > 0).to(rec.delta.dtype)       # f'(z_t) for t = 0..S-2
    return f_prime * (rec.delta[1:] @ W_rec)              # rows are examples: W_rec^T delta_{t+1}
    ### END SOLUTION
"""),
("check", r"""
task = gradreg.make_task("adding", 20)
relu_net = figures.make_model(task, 30, seed, dtype=torch.float64, activation="relu")
x, y = task.sample(16, generator=torch.Generator().manual_seed(seed))
rec = gradreg.bptt(relu_net, task, x.double(), y)
predicted = relu_deltas(rec, relu_net.W_rec.detach())
assert tuple(predicted.shape) == tuple(rec.delta[:-1].shape), f"expected shape {tuple(rec.delta[:-1].shape)}"
assert torch.allclose(predicted, rec.delta[:-1], rtol=1e-10, atol=1e-15), "the recursion does not give bptt's deltas"
off = (rec.h[:-1] == 0).double().mean().item()
print(f"all {task.steps - 1} steps reproduced; {off:.0%} of the units are off (f' = 0) at a typical step, "
      "and block the error there")
"""),
("exercise", r"""
### Exercise 1.3: the logistic sigmoid, $\gamma = 1/4$

Write `decay_rate(activation)`: build the default network with that activation
(`figures.make_model(task, 50, seed, dtype=torch.float64, activation=activation)`), run
`gradreg.per_example_stats` on the 64 sequences `x, y` below (`norms_only=True` is enough),
and return the measured per-step factor $\mathrm{median}_i\, r_i(L)^{1/L}$ at the largest lag
$L = S-1$, with $r_i(l) = \|\delta_{i,S-1-l}\| / \|\delta_{i,S-1}\|$ (`stats.delta_norm` is
$(B, S)$, column $t$ holds $\|\delta_{i,t}\|$).

Then say in the cell after the check how the sigmoid's rate compares with the bound's
$\gamma\|W_{rec}\|_2$ and with $\rho/4$, and why.
"""),
("solution", r"""
task = gradreg.make_task("temporal_order", 30)
x, y = task.sample(64, generator=torch.Generator().manual_seed(seed))


def decay_rate(activation):
    ### BEGIN SOLUTION
    net = figures.make_model(task, 50, seed, dtype=torch.float64, activation=activation)
    stats = gradreg.per_example_stats(net, task, x.double(), y, norms_only=True)
    L = task.steps - 1
    r = stats.delta_norm[:, 0] / stats.delta_norm[:, L]          # r_i(L): step 0 against step S-1
    return r.pow(1 / L).median().item()
    ### END SOLUTION
"""),
("check", r"""
sigmoid_rate, tanh_rate = decay_rate("sigmoid"), decay_rate("tanh")
W = figures.make_model(task, 50, seed, dtype=torch.float64, activation="sigmoid").W_rec.detach()
bound_rate = 0.25 * torch.linalg.matrix_norm(W, ord=2).item()          # gamma ||W_rec||_2
rho = gradreg.model.spectral_radius(W)
reference = figures.decay_summary(figures.delta_profiles("temporal_order", 30, ("sigmoid", "tanh"), (rho,), 64,
                                                         50, seed=seed))["measured_rate"]
assert abs(sigmoid_rate / reference["sigmoid"].item() - 1) < 0.05, "the sigmoid rate differs from figures.decay_summary's"
assert abs(tanh_rate / reference["tanh"].item() - 1) < 0.05, "the tanh rate differs from figures.decay_summary's"
assert 0 < sigmoid_rate <= bound_rate, "a measured rate above the bound's: impossible"
print(f"per-step factor: sigmoid {sigmoid_rate:.3f}, tanh {tanh_rate:.3f}; bound for the sigmoid "
      f"gamma ||W_rec||_2 = {bound_rate:.3f}; rho/4 = {rho / 4:.3f}")
"""),
("answer", r"""
The sigmoid loses a factor of about 0.22 per step: well below the bound's
$\gamma\|W_{rec}\|_2 \approx 0.47$ and just under $\rho/4 \approx 0.24$. Near $z = 0$,
$\sigma'(z) = \sigma(z)(1-\sigma(z)) \approx 1/4$, its maximum, so
$\delta_t \approx \frac14 W_{rec}^\top \delta_{t+1}$: the error decays like the powers of the
linear map $\frac14 W_{rec}^\top$, at the rate $\rho/4$ (Gelfand), not at the norm's. Units away
from $z = 0$ have $\sigma' < 1/4$, which pulls the rate a little below $\rho/4$. With the same
$W_{rec}$, tanh ($\gamma = 1$) loses only a factor 0.95 per step; after 29 steps the sigmoid's
error is about $10^{-19}$ of what entered, tanh's about $0.2$. A sigmoid SRN would need
$\rho \approx 4$ to carry gradient across long lags.
"""),
]

EX02 = [
("md", exercises_intro("Three exercises on the per-example statistics: one example's gradient by autograd, "
                       "the long-term score computed from the stored deltas by hand, and what the scores of "
                       "an untrained network depend on.")),
("exercise", r"""
### Exercise 2.1: one example's gradient, by autograd

Compute the gradient of example `i`'s own loss with plain autograd (forward
`model(x[i:i+1])`, `task.loss`, `.backward()`), and store it in `autograd_grads`, a dict from
parameter name (`W_in`, `W_rec`, `b`, `W_out`, `b_out`: `model.named_parameters()`) to
gradient tensor. The check compares it with row `i` of `per_example_stats`' `grads`.
"""),
("solution", r"""
task = gradreg.make_task("temporal_order", 20)
model = figures.make_model(task, 30, seed, dtype=torch.float64)
x, y = task.sample(8, generator=torch.Generator().manual_seed(seed))
x = x.double()
i = 3
### BEGIN SOLUTION
model.zero_grad()
task.loss(model(x[i:i + 1]), y[i:i + 1]).sum().backward()
autograd_grads = {name: p.grad.clone() for name, p in model.named_parameters()}
### END SOLUTION
"""),
("check", r"""
stats = gradreg.per_example_stats(model, task, x, y)
assert sorted(autograd_grads) == sorted(stats.grads), f"expected the parameters {sorted(stats.grads)}"
for name, g in stats.grads.items():
    error = ((autograd_grads[name] - g[i]).norm() / g[i].norm()).item()
    assert error < 1e-10, f"{name}: relative error {error:.1e} against per_example_stats"
    print(f"{name:6s} {tuple(g[i].shape)}: relative error {error:.1e}")
"""),
("exercise", r"""
### Exercise 2.2: the long-term score from the deltas, by hand

From the `BPTTRecord` `rec` below (time-major: `rec.x` is $(S, B, I)$, `rec.h` and
`rec.delta` are $(S, B, H)$) compute the long-term scores $s_i(\tau)$ for $\tau = 7$ as a
$(B,)$ tensor `scores`: the norm of $g_i^{\ge\tau}$, made of
$\sum_{t \le S-1-\tau} \delta_{i,t} x_{i,t}^\top$ (for $W_{in}$),
$\sum_{1 \le t \le S-1-\tau} \delta_{i,t} h_{i,t-1}^\top$ (for $W_{rec}$; $h_{-1} = 0$) and
$\sum_{t \le S-1-\tau} \delta_{i,t}$ (for $b$). `torch.einsum` does each sum in one line.
"""),
("solution", r"""
task = gradreg.make_task("temporal_order", 20)
model = figures.make_model(task, 30, seed, dtype=torch.float64)
x, y = task.sample(16, generator=torch.Generator().manual_seed(seed))
rec = gradreg.bptt(model, task, x.double(), y)
tau = 7
### BEGIN SOLUTION
m = task.steps - tau                                     # the steps t = 0 .. S-1-tau
d = rec.delta[:m]
g_in = torch.einsum("tbh,tbi->bhi", d, rec.x[:m])
g_rec = torch.einsum("tbh,tbk->bhk", d[1:], rec.h[:m - 1])
g_b = d.sum(0)
scores = (g_in.pow(2).sum((1, 2)) + g_rec.pow(2).sum((1, 2)) + g_b.pow(2).sum(1)).sqrt()
### END SOLUTION
"""),
("check", r"""
expected = gradreg.per_example_stats(model, task, x.double(), y, lag=tau, norms_only=True).long_term_norm
assert tuple(scores.shape) == (16,), "one score per sequence"
error = ((scores - expected).abs() / expected).max().item()
assert error < 1e-10, f"largest relative error {error:.1e} against per_example_stats(lag={tau})"
print(f"s_i({tau}) of 16 sequences, largest relative error {error:.1e}: {scores[:4].tolist()} ...")
"""),
("exercise", r"""
### Exercise 2.3: what the scores of an untrained network depend on

`scores` below are the long-term scores $s_i(\tau)$ of 512 fresh temporal-order sequences
(T = 20, untrained default network). Compute

* `class_medians`, a dict from target class $y \in \{0, 1, 2, 3\}$ to the median score of the
  sequences of that class,
* `top_share`, the fraction of the 10% highest-scoring sequences whose class is the one with
  the largest median.

Then explain in the cell after the check why the scores group by class.
"""),
("solution", r"""
task = gradreg.make_task("temporal_order", 20)
model = figures.make_model(task, 50, seed)
x, y = task.sample(512, generator=torch.Generator().manual_seed(seed + 1))
scores = gradreg.per_example_stats(model, task, x, y, norms_only=True).long_term_norm
### BEGIN SOLUTION
class_medians = {c: scores[y == c].median().item() for c in range(task.output_size)}
best = max(class_medians, key=class_medians.get)
top = scores >= scores.quantile(0.9)
top_share = (y[top] == best).double().mean().item()
### END SOLUTION
"""),
("check", r"""
import pandas as pd
frame = pd.DataFrame({"y": y.numpy(), "s": scores.numpy()})
by_class = frame.groupby("y")["s"].median()
assert sorted(class_medians) == [0, 1, 2, 3], "one median per class"
for c, value in by_class.items():   # (torch's median of an even count is the lower middle value; pandas' the mean)
    assert abs(class_medians[c] - value) <= 0.02 * value, f"class {c}: median {value:.4g}, not {class_medians[c]:.4g}"
top10 = frame.nlargest(len(frame) // 10, "s")
assert abs(top_share - (top10["y"] == by_class.idxmax()).mean()) < 0.03, "top_share: not the share of the top class"
assert top_share > 0.5 and by_class.max() > 2 * by_class.min()
print("median score by class:", {c: round(v, 3) for c, v in class_medians.items()},
      f"| {top_share:.0%} of the top 10% are of class {by_class.idxmax()}")
"""),
("answer", r"""
At initialisation the network's output hardly depends on the sequence, so the error that
enters the last step, $\partial E/\partial o = \mathrm{softmax}(o) - e_y$, is set by the target
class $y$ alone; BPTT carries that vector back through $W_{out}^\top$ and $W_{rec}^\top$, and
every long-term gradient starts from it. Sequences of one class therefore start their backward
pass from (nearly) the same vector and get similar scores, and the classes differ by how
strongly $W_{out}^\top(\mathrm{softmax}(o) - e_y)$ survives the trip back: four modes, one per
class. Selecting the largest scores of an untrained network selects mostly one class: a
coherent minibatch (notebook 3), but a biased one.
"""),
]

EX03 = [
("md", exercises_intro("Four exercises on the three statements and on selection: when the triangle bound is "
                       "tight, the Gram identity against the training step's own sum, the noise model by "
                       "Monte Carlo, and why Horvitz-Thompson weights make `weighted` selection unbiased.")),
("exercise", r"""
### Exercise 3.1: a pool where the triangle bound is tight

Build a pool `pool_x, pool_y` of **8** temporal-order sequences (T = 20; draw from `task`)
for which the triangle bound is an equality for the long-term gradients,
$\|\bar g^{\ge\tau}_B\| = \frac1n\sum_i \|g_i^{\ge\tau}\|$, for the network `model64` below.
Then say in the cell after the check why it is tight for your pool, and why it is not for
8 fresh sequences.
"""),
("solution", r"""
task = gradreg.make_task("temporal_order", 20)
model64 = figures.make_model(task, 50, seed, dtype=torch.float64)
### BEGIN SOLUTION
x, y = task.sample(1, generator=torch.Generator().manual_seed(seed))
pool_x, pool_y = x.double().repeat(8, 1, 1), y.repeat(8)        # one sequence, eight times
### END SOLUTION
"""),
("check", r"""
def coherence(px, py):
    g = figures.flat_grads(gradreg.per_example_stats(model64, task, px.double(), py), "long_term")
    return (g.mean(0).norm() / g.norm(dim=1).mean()).item()

assert pool_x.shape[0] == 8 and pool_y.shape[0] == 8, "a pool of 8 sequences"
tight = coherence(pool_x, pool_y)
fresh = coherence(*task.sample(8, generator=torch.Generator().manual_seed(seed + 1)))
assert tight > 1 - 1e-9, f"||mean g|| / mean ||g_i|| = {tight:.6f}: the bound is not tight for this pool"
print(f"||mean g|| / mean ||g_i||: your pool {tight:.12f}, 8 fresh sequences {fresh:.3f}")
"""),
("answer", r"""
The triangle inequality $\|a + b\| \le \|a\| + \|b\|$ is an equality exactly when $a$ and $b$
are non-negative multiples of one vector; so the bound is tight exactly when all the
$g_i^{\ge\tau}$ point the same way. Copies of one sequence have identical gradients, so
nothing cancels and the ratio is 1 (up to round-off). Fresh sequences have different symbols
at different positions, different hidden states and deltas, so their long-term gradients point
in different directions and partly cancel in the mean: the ratio is below 1 (about 0.9 here,
and it falls as $n$ grows, notebook figure).
"""),
("exercise", r"""
### Exercise 3.2: the Gram identity against the training step's own sum

An SGR step never adds up per-example gradient tensors: `rec.batch_grads(w, lag)` computes
$\sum_i w_i g_i^{\ge\tau}$ from the stored deltas directly (one matrix product per
parameter). Predict the squared norm of that sum from the pool's Gram matrix instead: from
`g` below ($M \times P$: one long-term gradient per row) compute the Gram matrix `G`
($M \times M$) and `predicted` $= w^\top G w$ (a float) for the weights `w` (a minibatch of
8 of the 32, weight 1/8 each).
"""),
("solution", r"""
task = gradreg.make_task("temporal_order", 20)
model64 = figures.make_model(task, 50, seed, dtype=torch.float64)
x, y = task.sample(32, generator=torch.Generator().manual_seed(seed))
x = x.double()
stats = gradreg.per_example_stats(model64, task, x, y)
w = torch.zeros(32, dtype=torch.float64)
w[torch.randperm(32, generator=torch.Generator().manual_seed(seed))[:8]] = 1 / 8
g = figures.flat_grads(stats, "long_term")               # (32, P): one long-term gradient per row
### BEGIN SOLUTION
G = g @ g.T
predicted = (w @ G @ w).item()
### END SOLUTION
"""),
("check", r"""
rec = gradreg.bptt(model64, task, x, y)
step = rec.batch_grads(w, lag=stats.lag)                                # what an SGR step computes
actual = sum(v.pow(2).sum() for v in step.values()).item()
assert tuple(G.shape) == (32, 32) and torch.allclose(G, G.T), "G: a symmetric 32 x 32 matrix"
assert torch.allclose(G.diagonal().sqrt(), stats.long_term_norm, rtol=1e-10), "the diagonal of G holds s_i^2"
assert abs(predicted / actual - 1) < 1e-10, f"w^T G w = {predicted:.6g}, but ||sum_i w_i g_i||^2 = {actual:.6g}"
print(f"||sum_i w_i g_i||^2: from the Gram matrix {predicted:.10g}, from the step's own sum {actual:.10g}")
"""),
("exercise", r"""
### Exercise 3.3: the noise model by Monte Carlo

Take synthetic gradients $g_i = \mu + \varepsilon_i \in \mathbb{R}^{50}$ with
$\mu = (0.1, \dots, 0.1)$ and $\varepsilon_i \sim N(0, I)$, so $\|\mu\|^2 = 0.5$ and
$\sigma^2 = E\|\varepsilon_i\|^2 = 50$. For $n = 1, 4, 16, 64$ estimate $E\|\bar g_B\|^2$ from
2,000 independent minibatches of $n$ (draw with `generator=gen`) and store the estimates in
`measured` (a dict from $n$ to float). Then set `n_star`, the smallest $n$ at which the
signal-to-noise ratio $\|\mu\|^2 / (\sigma^2/n)$ exceeds 1.
"""),
("solution", r"""
gen = torch.Generator().manual_seed(seed)
P = 50
mu = torch.full((P,), 0.1, dtype=torch.float64)
### BEGIN SOLUTION
measured = {}
for n in (1, 4, 16, 64):
    g = mu + torch.randn(2000, n, P, generator=gen, dtype=torch.float64)   # 2000 minibatches of n
    measured[n] = g.mean(1).pow(2).sum(1).mean().item()
n_star = int(P / mu.pow(2).sum().item()) + 1                               # SNR = n ||mu||^2 / sigma^2
### END SOLUTION
"""),
("check", r"""
import math
assert sorted(measured) == [1, 4, 16, 64], "one estimate for each n"
for n, value in measured.items():
    predicted = 0.5 + 50 / n                                   # ||mu||^2 + sigma^2 / n
    stderr = math.sqrt((2 * 50 / n**2 + 4 * 0.5 / n) / 2000)   # Var ||mean g||^2 = 2P/n^2 + 4||mu||^2/n
    assert abs(value - predicted) < 5 * stderr, f"n={n}: {value:.3f} is not E||mean g||^2 = {predicted:.3f}"
    print(f"n={n:2d}: measured {value:7.3f}, predicted {predicted:7.3f} (standard error {stderr:.3f})")
assert n_star == 101, "n_star: SNR = n ||mu||^2 / sigma^2 = n / 100"
"""),
("exercise", r"""
### Exercise 3.4: Horvitz-Thompson weights make `weighted` unbiased

`weighted` draws $n$ of the $M$ candidates with inclusion probabilities $\pi_i \propto s_i$.
With `importance=True` each chosen one gets the weight $1/(M\pi_i)$, which makes
$\sum_{j \in B} w_j v_j$ an unbiased estimate of the pool mean $\frac1M\sum_i v_i$ of any
per-example quantity $v$; the plain mean of the chosen ones is not. Check it for $v_i$ the
norm of example $i$'s full gradient (`v` below): draw 2,000 selections of $n = 20$ from the
pool of $M = 80$ with `gradreg.sampling.select_weighted(s, 20, importance=..., generator=gen)`
and store, as $(2000,)$ tensors, `ht` (each draw's $\sum_j w_j v_{i_j}$ with
`importance=True`) and `plain` (the same with `importance=False`, where the weights are
$1/n$). Then say in the cell after the check why, for $v = s$ itself, every single draw
would give the pool mean exactly.
"""),
("solution", r"""
task = gradreg.make_task("temporal_order", 20)
x, y = task.sample(80, generator=torch.Generator().manual_seed(seed))
pool = gradreg.per_example_stats(figures.make_model(task, 50, seed), task, x, y, norms_only=True)
s, v = pool.long_term_norm.double(), pool.grad_norm.double()
gen = torch.Generator().manual_seed(seed)
### BEGIN SOLUTION
def estimates(importance, draws=2000):
    out = torch.empty(draws, dtype=torch.float64)
    for k in range(draws):
        sel = gradreg.sampling.select_weighted(s, 20, importance=importance, generator=gen)
        out[k] = (sel.weight * v[sel.index]).sum()
    return out

ht, plain = estimates(True), estimates(False)
### END SOLUTION
"""),
("check", r"""
pool_mean = v.mean().item()
assert ht.shape == (2000,) and plain.shape == (2000,), "2,000 estimates each"
se_ht, se_plain = ht.std().item() / 2000 ** 0.5, plain.std().item() / 2000 ** 0.5
assert abs(ht.mean().item() - pool_mean) < 5 * se_ht, "the Horvitz-Thompson estimates do not average to the pool mean"
assert plain.mean().item() - pool_mean > 5 * se_plain, "the plain mean of the chosen should overestimate the pool mean"
print(f"pool mean of ||g_i||: {pool_mean:.4f}; average over draws: Horvitz-Thompson {ht.mean():.4f} "
      f"(+- {se_ht:.4f}), plain mean of the chosen {plain.mean():.4f} (+- {se_plain:.4f})")
"""),
("answer", r"""
With $\pi_i = n s_i / \sum_k s_k$ (no candidate capped at $\pi = 1$), each chosen term is
$w_j s_j = \frac{s_j}{M \pi_j} = \frac{\sum_k s_k}{nM}$, the same for every candidate; the $n$
terms of any draw add up to $\frac1M\sum_k s_k$, the pool mean, whichever candidates were
drawn. An estimate of $v$ has zero variance when $\pi \propto v$: sampling in proportion to
the quantity itself is the ideal importance sampling. For $v = \|g_i\|$, which the scores
track closely but not exactly, the estimates scatter around the pool mean, while the plain
mean of the chosen overestimates it, because the large $\|g_i\|$ are drawn more often.
"""),
]

EX04 = [
("md", exercises_intro("Three exercises on the tasks' encodings: how far back a task's relevant inputs can "
                       "lie, read from its own attributes, and two targets recomputed from the inputs alone.")),
("exercise", r"""
### Exercise 4.1: how far back must the network look?

For `xor` at $T = 60$, compute from the task's own attributes only (`task.steps`,
`task.position_ranges()`), without sampling, `lag_ranges`: a list with one pair
`(smallest, largest)` per relevant input, the lags $S-1-p$ its position $p$ can have. Then draw
a histogram of the lags of 2,000 sampled sequences (`task.sample_with_positions`), one colour
per relevant input, with the lag threshold $\tau = \lfloor S/2 \rfloor$ as a vertical line.
"""),
("solution", r"""
task = gradreg.make_task("xor", 60)
### BEGIN SOLUTION
S = task.steps
lag_ranges = [(S - 1 - (r.stop - 1), S - 1 - r.start) for r in task.position_ranges()]
_, _, positions = task.sample_with_positions(2000, generator=torch.Generator().manual_seed(seed))
fig, ax = plt.subplots(figsize=(7, 3))
for k in range(positions.shape[1]):
    ax.hist((S - 1 - positions[:, k]).numpy(), bins=range(S + 1), alpha=0.7, label=f"relevant input {k}")
ax.axvline(S // 2, color="black", linestyle="--", label="lag threshold tau")
ax.set(xlabel="lag S-1-p", ylabel="sequences", title=f"{task.name}, T={task.length}")
ax.legend()
plt.show()
### END SOLUTION
"""),
("check", r"""
_, _, seen = task.sample_with_positions(5000, generator=torch.Generator().manual_seed(seed + 1))
seen_lags = task.steps - 1 - seen
assert len(lag_ranges) == seen.shape[1], "one (smallest, largest) pair per relevant input"
for k, (low, high) in enumerate(lag_ranges):
    observed = (seen_lags[:, k].min().item(), seen_lags[:, k].max().item())
    assert (low, high) == observed, f"input {k}: lags {observed} in 5,000 sequences, not ({low}, {high})"
print("lag ranges:", lag_ranges, f"| tau = {task.steps // 2}")
"""),
("exercise", r"""
### Exercise 4.2: the adding target from the inputs

Write `adding_target(x)`: from a batch of `adding` inputs alone ($(B, T, 2)$: channel 0 the
marker, channel 1 the values), return the targets, $(v_{p_0} + v_{p_1})/2$ for the two marked
values, as a $(B,)$ tensor.
"""),
("solution", r"""
def adding_target(x):
    ### BEGIN SOLUTION
    return (x[..., 0] * x[..., 1]).sum(1) / 2
    ### END SOLUTION
"""),
("check", r"""
for length in (20, 200):
    task = gradreg.make_task("adding", length)
    x, y = task.sample(512, generator=torch.Generator().manual_seed(seed))
    target = adding_target(x)
    assert tuple(target.shape) == (512,), "one target per sequence"
    assert torch.allclose(target, y, atol=1e-6), f"T={length}: not the task's targets"
print("adding_target reproduces the targets at T = 20 and T = 200")
"""),
("exercise", r"""
### Exercise 4.3: decoding three-bit temporal order

In `temporal_order_3bit` every step shows one of six one-hot symbols: A (channel 0),
B (channel 1) or a distractor (channels 2..5). Exactly three steps show A or B, and with
$v_k = 1$ for B and $0$ for A, in order of appearance, the target class is
$v_0 + 2v_1 + 4v_2$. Write `decode_3bit(x)` that returns the classes of a batch
($(B, T, 6)$ inputs) as a $(B,)$ int64 tensor.
"""),
("solution", r"""
def decode_3bit(x):
    ### BEGIN SOLUTION
    relevant = (x[..., 0] + x[..., 1]) > 0                        # (B, T): the A/B steps
    bits = x[..., 1][relevant].reshape(x.shape[0], 3)             # in order of appearance
    return (bits * torch.tensor([1.0, 2.0, 4.0])).sum(1).long()
    ### END SOLUTION
"""),
("check", r"""
task = gradreg.make_task("temporal_order_3bit", 50)
x, y = task.sample(512, generator=torch.Generator().manual_seed(seed))
classes = decode_3bit(x)
assert classes.dtype == torch.int64 and tuple(classes.shape) == (512,), "a (B,) int64 tensor"
assert torch.equal(classes, y), f"{(classes != y).sum().item()} of 512 sequences decoded wrongly"
print("all 512 decoded; classes seen:", sorted(set(classes.tolist())))
"""),
]

EX05 = [
("md", exercises_intro("Two exercises on small SGR runs (temporal order, T = 10, 150 iterations, a second or two "
                       "each): changing the lag threshold, and how often the clipping acts.")),
("exercise", r"""
### Exercise 5.1: SGR with another lag threshold

Train `sgr/top` three times on temporal order at $T = 10$, with the lag threshold
$\tau = 1$, $5$ (the default, $\lfloor S/2 \rfloor$) and $9$ ($= S-1$), everything else equal
(use `settings` below with `.replace(lag=...)`), and store the results in `runs`, a dict
from $\tau$ to `TrainResult`. The check compares the runs' costs and their per-step logs
(`result.steps`: the minibatch long-term norm and the full gradient norm of every step).
Then say in the cell after the check what $\tau$ changes in an SGR step and what it does not.
"""),
("solution", r"""
settings = gradreg.TrainConfig(task="temporal_order", length=10, method="sgr", rule="top", seed=seed,
                               max_iterations=150, check_every=50, test_size=500, device=device)
### BEGIN SOLUTION
runs = {lag: gradreg.train(settings.replace(lag=lag)) for lag in (1, 5, 9)}
### END SOLUTION
"""),
("check", r"""
assert sorted(runs) == [1, 5, 9], "one run for each of tau = 1, 5, 9"
for lag, r in runs.items():
    assert r.config.lag == lag and r.config.method == "sgr" and r.config.rule == "top", f"run {lag}: not sgr/top at tau={lag}"
    assert r.examples == r.iterations * r.config.pool_size, "every step scores the whole pool"
lt = {lag: r.steps["minibatch_long_term_norm"].median() for lag, r in runs.items()}
full = {lag: r.steps["grad_norm"].median() for lag, r in runs.items()}
assert lt[1] > lt[5] > lt[9], "the long-term component of a smaller tau sums more steps"
for lag, r in runs.items():
    print(f"tau={lag}: {r.examples} sequences processed, median minibatch long-term norm {lt[lag]:.3f}, "
          f"median full gradient norm {full[lag]:.3f}, test error {r.final_error:.3f}")
"""),
("answer", r"""
$\tau$ changes only the **score** $s_i(\tau)$ by which the pool is ranked, and so which $n$
of the $M$ sequences are chosen. It changes neither the cost (every step scores the same pool
of $M = 80$ with one batched pass: the three runs process the same number of sequences) nor
the step itself: the step is the mean *full* gradient of the chosen sequences, clipped. With
$\tau = 1$ the score is nearly the norm of the whole recurrent gradient, so `top` picks the
sequences with the largest gradients overall, most of it short-term; with $\tau = S-1$ it ranks
by the terms of step 0 alone, a distractor step here. The logged long-term norms are norms of
different sums (more steps for a smaller $\tau$), so they fall with $\tau$ by construction and
do not compare the runs; the full gradient norm of the steps does.
"""),
("exercise", r"""
### Exercise 5.2: how often does the clipping act?

Write `clipped_fraction(result)`: the fraction of a run's steps whose gradient norm before
clipping (`result.steps["grad_norm"]`) exceeded the clipping threshold `result.config.clip`.
The check tries it on a made-up run, then on `sgr/top` and `sgr/random` (same seed, same
pools). Then say in the cell after the check why the two differ.
"""),
("solution", r"""
def clipped_fraction(result):
    ### BEGIN SOLUTION
    return float((result.steps["grad_norm"] > result.config.clip).mean())
    ### END SOLUTION
"""),
("check", r"""
from types import SimpleNamespace
import pandas as pd
made_up = SimpleNamespace(steps=pd.DataFrame({"grad_norm": [0.5, 2.0, 1.0, 3.0]}), config=SimpleNamespace(clip=1.0))
assert clipped_fraction(made_up) == 0.5, "norms 0.5, 2, 1, 3 with clip 1: two of four steps are clipped"
settings = gradreg.TrainConfig(task="temporal_order", length=10, method="sgr", seed=seed, max_iterations=150,
                               check_every=50, test_size=500, device=device)
top, random = gradreg.train(settings.replace(rule="top")), gradreg.train(settings.replace(rule="random"))
assert clipped_fraction(top) > clipped_fraction(random), "top should be clipped more often than random"
for r in (top, random):
    print(f"sgr/{r.config.rule}: {clipped_fraction(r):.0%} of {r.iterations} steps clipped, "
          f"test error {r.final_error:.3f}")
"""),
("answer", r"""
`top` keeps the sequences with the largest long-term gradients, and those carry large
gradients overall: the mean of 20 of them is far longer than the mean of 20 chosen at random,
whose directions partly cancel (notebook 3). So `top`'s steps exceed the threshold often and
get clipped: the clipped step then has length 1 whatever the gradient, and its direction is
that of the few extreme sequences. `random`'s steps are shorter and rarely clipped. In this
short run that even reverses the outcome (`random` gets far lower test error than `top`):
selection decides which sequences the step follows, and following the extreme ones is not
always what learning needs, which is the saturation story of this notebook.
"""),
]


NB07 = [
("md", r"""
# 7. Two protocols: Pascanu's conventions and the authors' own

*Part of `gradreg`, a reproduction of Chernodub & Nowicki (2016).*

The paper's full text is not public, so notebooks 1-6 follow the conventions of Pascanu et
al. (2013) for the tasks and their training. The same two authors published, the same year,
the MATLAB code of their ICANN 2016 experiments (github.com/achernodub/oplu_adding): their own
task generators, loss, optimiser, data and stopping rule. `gradreg` implements both as
*protocols* of one training engine: `TrainConfig(protocol="chernodub")` sets every choice of
the authors' code in one word, and any field given explicitly overrides it.

This notebook shows what differs, where the two variants of the task generators put the
inputs that matter, and, when the sweep `authors` has been run (`data/results/authors.csv`),
the results under each protocol, reported both ways.
"""),
("params", PARAMETERS + 'results_dir = "../data/results"\n'),
("code", setup("07_protocols")),
("md", r"""
## What the protocols set

One row per setting; `differs` marks the choices where the two protocols part. Under
`chernodub` the loss is $\tfrac12\sum_i \lVert y_i - t_i\rVert^2$ **summed** over the
minibatch (one-hot targets for the classification tasks), the update is momentum in the
classical form $v \leftarrow \mu v - \eta g,\ w \leftarrow w + v$, the data is a **fixed**
training set of 20,000 sequences drawn once per run and sampled with replacement, and a run
stops on a **validation** set: every 50 iterations its success rate and MSE on 1,000
sequences; the network of lowest validation MSE is kept; training stops when the validation
success rate exceeds 99%, and the result is the *kept* network's success rate on 10,000 test
sequences (solved when at least 99%). Under `pascanu` every step draws fresh sequences, the
mean of the task's loss (cross-entropy, squared error) is clipped at norm 1, and a run is
solved at the first test check with at most 1% of its test sequences wrong.
"""),
("code", r"""
display(figures.protocol_table())
"""),
("md", r"""
## Where the relevant inputs are

The two variants of the generators put the marked inputs in different places, and so ask the
network to carry them over different lags. The authors' adding problem marks its first value
in the first tenth of a stretched length $\tilde T = \lceil 1.1\,T \rceil$ and its second before
$\tilde T/2$ (values in $[-1, 1]$, wrong when $|o - t| > 0.08$); Pascanu's marks the second in
$[T/10, T/2)$ with values in $[0, 1]$ (wrong when $(o-t)^2 > 0.04$). The authors' temporal order
puts its two symbols in the second and the fifth tenth of the sequence; Pascanu's in the
second tenth and just after the middle. Lags are counted from the last step, $S - 1 - p$.
"""),
("code", r"""
positions = figures.variant_positions(cfg.tasks, cfg.lengths)
display(positions)
"""),
("code", r"""
for length in cfg.lengths:
    tasks, labels = figures.variant_tasks(cfg.tasks, length)
    fig = plotting.plot_position_ranges(tasks, labels=labels)
    fig.axes[0].set_title(f"Where the relevant inputs are, by variant, at T = {length}")
    plotting.save_figure(fig, f"07_relevant_positions_T{length}", output_dir)
    plt.show()
"""),
("md", r"""
## Results under each protocol

The authors report a setting as the **mean test success rate** over the networks they
trained (here with a 95% t interval over networks); this package reports the **fraction of
runs solved** (with a 95% Wilson interval). Both are computed for each protocol's runs: the
authors' from `data/results/authors.csv` (the sweep `python -m gradreg sweep --profile
authors --results data/results/authors.csv`), Pascanu's from `data/results/paper.csv`, for
the methods the authors' sweep runs (sgd, sgr/top, sgr/random).
"""),
("code", r"""
tables = figures.protocol_results(results_dir)
for protocol, table in tables.items():
    print(f"{protocol}: " + (f"{len(table)} finished runs" if table is not None else
                             "no results file with finished runs in " + results_dir))
if tables["chernodub"] is None:
    print("The authors' protocol has no committed results yet (data/results/authors.csv): "
          "run the sweep 'authors' to fill this section.")
summary = figures.protocol_summary(tables, compared=cfg.compared, tasks=("adding", "temporal_order"),
                                   lengths=cfg.lengths)
display(summary.round(2))
"""),
]

NOTEBOOKS = {
    "01_vanishing_gradients": NB01 + EX01,
    "02_per_example_estimation": NB02 + EX02,
    "03_minibatch_theory": NB03 + EX03,
    "04_tasks": NB04 + EX04,
    "05_training": NB05 + EX05,
    "06_long_range": NB06,
    "07_protocols": NB07,
}


#: notebooks that become lecture slides (gradreg.teaching.build_slides): their cells carry
#: metadata.slideshow.slide_type, from the cell's options or from `default_slide_type`
SLIDES = ("01_vanishing_gradients", "02_per_example_estimation", "03_minibatch_theory")

#: cell kinds: md, code, params (tagged "parameters"), setup (tagged "setup": the only cell an
#: exercise may rely on), and the exercise kinds, which carry nbgrader metadata (schema 3):
#: exercise (the question, read-only), solution (code between ### BEGIN/END SOLUTION),
#: check (asserts, autograded, 1 point), answer (a written answer, manually graded, 1 point)
NBGRADER = {
    "exercise": dict(grade=False, solution=False, locked=True),
    "solution": dict(grade=False, solution=True, locked=False),
    "check": dict(grade=True, solution=False, locked=True, points=1),
    "answer": dict(grade=True, solution=True, locked=False, points=1),
}
MARKDOWN_KINDS = ("md", "exercise", "answer")


def default_slide_type(kind: str, source: str) -> str:
    """Headings open slides (#, ##) and sub-slides (###); the hidden machinery (parameters,
    set-up) and the exercises' answers and checks are skipped; the rest continues a slide."""
    if kind in ("params", "setup", "solution", "check", "answer"):
        return "skip"
    if kind == "exercise":
        return "subslide"
    if kind == "md" and source.startswith(("# ", "## ")):
        return "slide"
    if kind == "md" and source.startswith("### "):
        return "subslide"
    return "-"


def build(stem: str, cells) -> nbformat.NotebookNode:
    """A cell is (kind, source) or (kind, source, options); options: "slide" (a slide type:
    slide, subslide, fragment, notes, skip, -) and "tags" (e.g. remove_input: the slides show
    the cell's output only)."""
    nb = nbformat.v4.new_notebook()
    nb.metadata = {
        "kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"},
        "language_info": {"name": "python"},
    }
    exercise, grade_ids = 0, set()
    for k, (kind, source, *rest) in enumerate(cells):
        options = rest[0] if rest else {}
        source = source.strip("\n")
        if kind in MARKDOWN_KINDS:
            cell = nbformat.v4.new_markdown_cell(source)
        else:
            cell = nbformat.v4.new_code_cell(source)
        tags = list(options.get("tags", ()))
        if kind == "params":
            tags.insert(0, "parameters")
        if kind == "setup":
            tags.insert(0, "setup")
        if kind in NBGRADER:
            exercise += kind == "exercise"
            grade_id = f"nb{stem[:2]}_ex{exercise}_{kind}"
            if grade_id in grade_ids or exercise == 0:
                raise ValueError(f"{stem}: cell {k}: {kind} cell outside an exercise, or a second one in it")
            grade_ids.add(grade_id)
            has_region = "### BEGIN SOLUTION" in source
            if (kind == "solution") != has_region:
                raise ValueError(f"{stem}: cell {k}: solution regions belong in solution cells, and every "
                                 "solution cell has one")
            cell.metadata["nbgrader"] = dict(NBGRADER[kind], grade_id=grade_id, schema_version=3, task=False)
        if stem in SLIDES:
            slide = options.get("slide") or default_slide_type(kind, source)
            if slide not in ("slide", "subslide", "fragment", "notes", "skip", "-"):
                raise ValueError(f"{stem}: cell {k}: unknown slide type {slide!r}")
            cell.metadata["slideshow"] = {"slide_type": slide}
        if tags:
            cell.metadata["tags"] = tags
        cell.id = f"{stem[:2]}-{k:02d}"
        nb.cells.append(cell)
    nbformat.validate(nb)
    return nb


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    check = "--check" in argv
    stale = []
    for stem, cells in NOTEBOOKS.items():
        path = HERE / f"{stem}.ipynb"
        text = nbformat.writes(build(stem, cells)) + "\n"
        if check:
            if not path.is_file() or path.read_text() != text:
                stale.append(path.name)
        else:
            path.write_text(text)
            print("wrote", path)
    if stale:
        print("out of date (run notebooks/_build.py):", ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
