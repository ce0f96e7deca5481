# %% [markdown]
# # 1. Vanishing gradients in a simple recurrent network
#
# *Part of `gradreg`, a reproduction of Chernodub & Nowicki (2016), "Sampling-based gradient
# regularization for capturing long-term dependencies in recurrent neural networks".*
#
# A recurrent network learns a long-term dependency only if the error at the end of a
# sequence can reach the inputs far back in it. Backpropagation through time (BPTT) carries
# that error backwards one step at a time, and at every step it is multiplied by the same
# recurrent matrix. This notebook derives the recursion, proves the classic bound on how fast
# the carried error can shrink, and measures it on real networks: for three activation
# functions and for recurrent matrices of several spectral radii.

# %% [markdown] slide="notes"
# *For the lecturer.* The question of the hour: why does a recurrent network fail to learn
# what happened many steps ago? Announce the path: the recursion that carries the error back,
# a bound on how fast it shrinks, and measurements that show the bound is true but loose, the
# decay following the spectral radius instead. Everything on these slides was computed when
# the deck was built.

# %% kind="params"
profile = "quick"         # smoke (seconds) | quick (minutes) | paper (hours)
seed = 0
device = "auto"           # auto | cpu | cuda | cuda:N
output_dir = "../figures"  # where the figures are written (PNG + PDF)

# %% kind="setup"
import matplotlib.pyplot as plt
import torch
from IPython.display import display

import gradreg
from gradreg import plotting
from gradreg.experiments import vanishing
from gradreg.experiments.settings import notebook_settings, setup
from gradreg.model import make_model

dev = setup(profile, seed, device)   # figure style, seeds, device, one CPU thread
cfg = notebook_settings("01_vanishing_gradients", profile)
display(cfg)

# %% [markdown]
# ## The network
#
# The simple recurrent network (SRN, Elman) reads inputs $x_0, \dots, x_{S-1}$ and keeps a
# hidden state $h_t \in \mathbb{R}^H$, with $h_{-1} = 0$:
#
# $$z_t = W_{in}\, x_t + W_{rec}\, h_{t-1} + b, \qquad h_t = f(z_t), \qquad
# o = W_{out}\, h_{S-1} + b_{out}.$$
#
# The loss $E$ is computed from the last output $o$ (for the temporal-order task used here:
# cross-entropy over 4 classes). `gradreg.SRN` is this network; its default initialisation
# is Pascanu et al.'s "sparse" one (15 non-zeros per row of $W_{rec}$, rescaled to spectral
# radius 0.95). The `spectral_radius=` argument rescales $W_{rec}$ to any radius we like.

# %%
task = gradreg.make_task(cfg.task, cfg.length)
model = make_model(task, cfg.hidden_size, seed, dtype=torch.float64, device=dev)
x, y = task.sample(8, generator=torch.Generator().manual_seed(seed))
x, y = x.to(dev, torch.float64), y.to(dev)

print(task, "| steps S =", task.steps, "| input size", task.input_size,
      "| classes", task.output_size)
print(model)
print("x:", tuple(x.shape), "(batch, S, input)  ->  o = model(x):", tuple(model(x).shape))
print("spectral radius of W_rec:", round(gradreg.model.spectral_radius(model.W_rec), 4))

# %% [markdown]
# ## Backpropagation through time
#
# Write $\delta_t := \partial E / \partial z_t$ for the error at the pre-activation of step $t$.
# $E$ depends on $z_t$ only through $h_t = f(z_t)$. The loss is computed from the last output
# only, so the last state $h_{S-1}$ reaches $E$ through the readout $o$, and every earlier
# $h_t$ through the next step's $z_{t+1} = W_{rec} h_t + \dots$ alone. The chain rule gives
#
# $$\delta_{S-1} = f'(z_{S-1}) \odot W_{out}^\top \frac{\partial E}{\partial o}, \qquad
# \delta_t = f'(z_t) \odot W_{rec}^\top\, \delta_{t+1} \quad (t < S-1),$$
#
# and, since $z_t$ is linear in the weights, every gradient is a sum over steps of
# $\delta_t$ times what multiplied the weight at step $t$:
#
# $$\frac{\partial E}{\partial W_{rec}} = \sum_t \delta_t\, h_{t-1}^\top, \qquad
# \frac{\partial E}{\partial W_{in}} = \sum_t \delta_t\, x_t^\top, \qquad
# \frac{\partial E}{\partial b} = \sum_t \delta_t.$$

# %% [markdown] slide="subslide"
# `gradreg.bptt` runs one batched forward pass and this recursion once, for the whole batch,
# and keeps $h$ and $\delta$ (time-major: `delta[t]` is the $(B, H)$ block of step $t$). With
# examples as rows, $W_{rec}^\top \delta_{t+1}$ is `delta[t+1] @ W_rec`, and for tanh
# $f'(z_t) = 1 - \tanh^2(z_t) = 1 - h_t^2$:

# %%
rec = gradreg.bptt(model, task, x, y)
print("h:", tuple(rec.h.shape), " delta:", tuple(rec.delta.shape), "  (S, batch, H)")

t = task.steps - 5
f_prime = 1 - rec.h[t] ** 2                                      # f'(z_t) for tanh
recursion = f_prime * (rec.delta[t + 1] @ model.W_rec.detach())  # f'(z_t) * W_rec^T delta_{t+1}
print(f"delta_{t} == f'(z_{t}) * W_rec^T delta_{t + 1}:",
      torch.allclose(rec.delta[t], recursion))

# sum_t delta_t h_{t-1}^T over the batch is the gradient autograd finds for the summed loss
stats = gradreg.per_example_stats(model, task, x, y)
model.zero_grad()
task.loss(model(x), y).sum().backward()
print("sum_i sum_t delta_t h_{t-1}^T == autograd dE/dW_rec:",
      torch.allclose(stats.grads["W_rec"].sum(0), model.W_rec.grad))

# %% [markdown]
# ## How fast can the error vanish? The bound
#
# Take norms in the recursion. Let $\gamma = \max_z |f'(z)|$ ($\gamma = 1$ for tanh, relu and
# the identity; $1/4$ for the logistic sigmoid) and let $\|W_{rec}\|_2$ be the largest
# singular value of $W_{rec}$. Multiplying elementwise by $f'(z_t)$ scales each coordinate by
# at most $\gamma$, and $\|W_{rec}^\top v\| \le \|W_{rec}\|_2 \|v\|$, so
#
# $$\|\delta_t\| = \|f'(z_t) \odot W_{rec}^\top \delta_{t+1}\|
# \;\le\; \gamma\, \|W_{rec}^\top \delta_{t+1}\| \;\le\; \gamma\, \|W_{rec}\|_2\, \|\delta_{t+1}\|.$$
#
# Applying this $S-1-t$ times, from the last step down:
#
# $$\boxed{\;\|\delta_t\| \;\le\; \|\delta_{S-1}\|\, \big(\gamma\, \|W_{rec}\|_2\big)^{S-1-t}\;}$$

# %% [markdown] slide="subslide"
# Call $l = S-1-t$ the **lag** of step $t$: how far before the end it is. If
# $\gamma \|W_{rec}\|_2 < 1$ the error reaching lag $l$ shrinks at least geometrically in
# $l$, and so does that step's contribution $\delta_t h_{t-1}^\top$ to the gradient: the
# network cannot learn what it would need to remember for $l$ steps. (This is a sufficient
# condition for vanishing. Its converse is not a theorem: $\gamma \|W_{rec}\|_2 > 1$ allows
# growth but does not force it.)

# %% [markdown]
# Two numbers describe $W_{rec}$: the spectral norm $\|W_{rec}\|_2$ in the bound, and the
# spectral radius $\rho(W_{rec}) = \max |\lambda_i|$. Always $\rho \le \|W_{rec}\|_2$, with
# equality for normal matrices; and $\|W_{rec}^l\|^{1/l} \to \rho$ (Gelfand), so $\rho$ sets
# the asymptotic rate of a linear network while the bound uses the (larger) norm.

# %% [markdown] slide="subslide"
# `gradreg.experiments.vanishing.delta_profiles` builds one untrained SRN per activation and spectral
# radius, runs `per_example_stats` on a batch, and tabulates
# $r_i(l) = \|\delta_{i,S-1-l}\| / \|\delta_{i,S-1}\|$ (its median, quartiles and maximum
# over the examples) next to the bound $(\gamma \|W_{rec}\|_2)^l$:

# %% tags=["remove_input"]
profiles = vanishing.delta_profiles(cfg.task, cfg.length, cfg.activations, cfg.radii, cfg.batch_size,
                                  cfg.hidden_size, seed=seed, device=dev)
summary = vanishing.decay_summary(profiles)
# three significant digits: the ratios and bounds span 30 orders of magnitude, which rounding to
# a fixed number of decimals would show as 0
display(summary.style.format("{:.3g}", subset=list(summary.select_dtypes("number").columns))
        .format_index("{:g}", level="radius"))
assert summary["bound_holds"].all(), "the bound was violated"

# %% [markdown] slide="notes"
# *For the lecturer.* Point at the `spectral_norm` and `spectral_radius` columns: the norm is
# about twice the radius, so the bound's rate exceeds 1 for every radius of 0.9 and more. Then
# at `median_ratio_at_lag_...` against `bound_at_lag_...`: many orders of magnitude apart.

# %% [markdown]
# ### Measured profiles against the bound
#
# Each panel is one activation function; each colour one spectral radius of $W_{rec}$ (the
# network is otherwise identical: same sparse pattern, same inputs). Solid lines are the median
# of $r_i(l)$ over the batch with the interquartile band; dashed lines of the same colour are
# the bound $(\gamma \|W_{rec}\|_2)^l$. The y axis is logarithmic, so geometric decay is a
# straight line.

# %% tags=["remove_input"]
fig = plotting.plot_delta_profiles(profiles)
plotting.save_figure(fig, "01_delta_profiles", output_dir)
plt.show()

# %% [markdown] slide="notes"
# *For the lecturer.* Point at one panel, one colour: the solid line (measured median) falls
# while the dashed line of the same colour (the bound) rises. Then compare the slopes of the
# solid lines across colours: they follow the radius. relu's panel falls faster. (The sigmoid
# is not drawn: it is exercise 1.3.)

# %% [markdown] slide="subslide"
# What to read off the figure:
#
# * **Geometric decay below radius 1.** For tanh and the identity the profiles are straight
#   lines in log scale, with a slope set by the spectral radius, not by the norm: with the
#   default input scale the hidden units stay near zero, where $\tanh$ is nearly linear, so
#   $\delta_t \approx (W_{rec}^\top)^{l} \delta_{S-1}$ and its decay rate tends to $\rho$.
# * **The bound is loose.** The sparse $W_{rec}$ is far from normal: its spectral norm is
#   about twice its spectral radius (table above), so the dashed bound grows even where the
#   measured error shrinks. The bound is a guarantee, not a prediction.
# * **relu vanishes faster.** $f'(z) \in \{0, 1\}$: units that are off block the error, so
#   the effective matrix is smaller than $W_{rec}$.
# * **At and above radius 1** the identity network keeps or amplifies the error (exploding
#   gradients: the problem that gradient clipping addresses). tanh grows far less: as the
#   units grow, $f'(z) = 1 - h^2$ falls below 1 and holds the product back (saturation).

# %% [markdown] slide="subslide"
# The next figure checks the bound directly (left: for every activation and lag $l \ge 1$, the
# largest ratio over all examples and radii of the measured value to the bound; it must stay at
# or below 1; at $l = 0$ it is 1 by definition) and compares rates (right: the per-step factor by which the median
# $\|\delta\|$ shrinks, $\mathrm{median}_i\, r_i(l)^{1/l}$ at the largest lag, against the
# bound's factor $\gamma\|W_{rec}\|_2$ and against $\rho$).

# %% tags=["remove_input"]
fig = plotting.plot_bound_check(profiles, summary)
plotting.save_figure(fig, "01_bound_check", output_dir)
plt.show()

# %% slide="subslide"
# at lag 0 measured and bound are both ||delta_{S-1}||: the ratio is 1 there by definition
later = profiles[profiles["lag"] > 0]
worst = later.loc[later["max_over_bound"].idxmax()]
print("largest measured/bound ratio over every network, example and lag >= 1:",
      f"{worst['max_over_bound']:.3g} (<= 1; {worst['activation']}, radius {worst['radius']},",
      f"lag {worst['lag']})")
display(summary[["spectral_radius", "measured_rate", "bound_rate"]].round(3))

# %% [markdown] slide="notes"
# *For the lecturer.* Left panel: every curve stays under the line at 1 (the bound holds).
# Right panel: the measured markers hug the dotted diagonal (rho), far below the dashed line
# (the bound's rate).

# %% [markdown]
# ## What this means for training, and for SGR
#
# The gradient is a sum over steps. Its **long-term component** $g^{\ge\tau}$ collects the terms
# of lag $\ge \tau$ (default $\tau = \lfloor S/2 \rfloor$). The bound makes it exponentially
# small only for a contracting network, $\gamma \|W_{rec}\|_2 < 1$, which the default network
# is not (printed below); measured, its error shrinks at about $\rho$ per step (Gelfand), so on
# average $g^{\ge\tau}$ is still tiny. But the deltas differ from example to example, as the
# vanishing ratio $r_i(\tau)$ shows:

# %%
default = make_model(task, cfg.hidden_size, seed, device=dev)   # sparse init, radius 0.95
xs, ys = task.sample(cfg.batch_size, generator=torch.Generator().manual_seed(seed + 1))
s = gradreg.per_example_stats(default, task, xs.to(dev), ys.to(dev), norms_only=True)
r = s.vanishing_ratio().double()
rho_default = gradreg.model.spectral_radius(default.W_rec)
norm_default = torch.linalg.matrix_norm(default.W_rec.detach(), ord=2).item()
print(f"gamma ||W_rec||_2 = {norm_default:.2f} (tanh: gamma = 1), rho = {rho_default:.2f},",
      f"rho^tau = {rho_default ** s.lag:.1e}")
print(f"tau = {s.lag}: vanishing ratio r_i(tau) over {len(r)} sequences:",
      f"10% quantile {r.quantile(0.1):.2e}, median {r.median():.2e},",
      f"90% quantile {r.quantile(0.9):.2e}")
lt = s.long_term_norm
print(f"long-term score s_i(tau): max / median = {(lt.max() / lt.median()):.1f}")

# %% [markdown] slide="notes"
# *For the lecturer.* Point at the printed gamma ||W_rec||_2, above 1: the bound does not apply
# to this network, rho does. Then at the quantiles of r_i(tau) and the max / median of the
# scores: sequences differ, which is what SGR selects on.

# %% [markdown]
# Sequences differ in how much long-term gradient they carry (the quantiles and the max /
# median printed above). Sampling-based gradient regularization (SGR) exploits exactly this:
# score a pool of candidate sequences by their long-term gradient and train on the ones that
# carry it. Notebook 2 shows how to get every example's long-term component exactly from one
# batched pass; notebook 3 what selecting examples does to the minibatch gradient.

# %% [markdown]
# ## Exercises
#
# Three exercises on the backward pass and its bound: the two numbers that describe $W_{rec}$, the recursion for another activation, and the logistic sigmoid's $\gamma = 1/4$.
#
# Each exercise is answered with a few lines against `gradreg`, in the cell under the question
# (in the student edition it holds `raise NotImplementedError()`); some also ask for a sentence
# or two in the markdown cell after it. The names an exercise uses (`x, y`, a model, ...) are
# made at the top of its answer cell. Then run the **check** cell under your answer: it fails
# with a message when the answer is wrong, and otherwise prints what you computed; it never
# shows the right values, and a grader may run further tests that the student edition leaves
# out. The exercises use only the set-up cell at the top of the notebook (set the profile in
# the parameters cell to smoke, run that cell and the set-up cell), so they can be done right
# after it; each runs in seconds.

# %% [markdown] kind="exercise"
# ### Exercise 1.1: spectral norm, spectral radius and Gelfand's formula
#
# The bound uses the spectral norm $\|W_{rec}\|_2$, while the measured decay follows the
# spectral radius $\rho(W_{rec})$. Take the recurrent matrix of a network with the authors'
# initialisation (Glorot uniform, `init="xavier"`: unlike the sparse one, it does not rescale
# $W_{rec}$ to a chosen radius; 50 units, float64: `W`, defined at the top of the answer cell)
# and compute
#
# * `norm2`, the spectral norm (the largest singular value),
# * `rho`, the spectral radius $\max_i |\lambda_i(W)|$,
# * `gelfand`, a dict mapping $l = 1, 10, 100$ to $\|W^l\|_2^{1/l}$.
#
# Useful: `torch.linalg.matrix_norm(A, ord=2)`, `torch.linalg.eigvals`, `torch.linalg.matrix_power`.

# %% kind="solution"
task = gradreg.make_task("temporal_order", 30)
W = make_model(task, 50, seed, dtype=torch.float64, init="xavier").W_rec.detach()
### BEGIN SOLUTION
norm2 = torch.linalg.matrix_norm(W, ord=2).item()
rho = torch.linalg.eigvals(W).abs().max().item()
gelfand = {l: torch.linalg.matrix_norm(torch.linalg.matrix_power(W, l), ord=2).item() ** (1 / l)
           for l in (1, 10, 100)}
### END SOLUTION

# %% kind="check"
import math

assert sorted(gelfand) == [1, 10, 100], "gelfand: one entry for each of l = 1, 10, 100"
assert math.isclose(gelfand[1], norm2, rel_tol=1e-9), "gelfand[1] is ||W||_2 itself"
assert all(g >= rho * (1 - 1e-9) for g in gelfand.values()), \
    "rho(W)^l = rho(W^l) <= ||W^l||_2: no estimate is below rho"
### BEGIN HIDDEN TESTS
# numpy's LAPACK calls, not torch's: a reference the answer cannot have shared
import numpy as np

A = W.numpy()
assert math.isclose(norm2, np.linalg.svd(A, compute_uv=False)[0], rel_tol=1e-9), "norm2 is not ||W||_2"
assert math.isclose(rho, np.abs(np.linalg.eigvals(A)).max(), rel_tol=1e-9), "rho is not the spectral radius of W"
for l, g in gelfand.items():
    assert math.isclose(g, np.linalg.norm(np.linalg.matrix_power(A, l), 2) ** (1 / l), rel_tol=1e-9), \
        f"gelfand[{l}] is not ||W^{l}||_2^(1/{l})"
### END HIDDEN TESTS
print(f"||W||_2 = {norm2:.3f}, rho = {rho:.3f}; ||W^l||^(1/l): "
      + ", ".join(f"l={l}: {g:.3f}" for l, g in gelfand.items()))


# %% [markdown] kind="exercise"
# ### Exercise 1.2: the recursion for relu
#
# The notebook checked $\delta_t = f'(z_t) \odot W_{rec}^\top \delta_{t+1}$ for tanh at one
# step. Write `relu_deltas(rec, W_rec)`: given the `BPTTRecord` of a **relu** network (`rec.h`
# and `rec.delta` are $(S, B, H)$, time-major), return $f'(z_t) \odot W_{rec}^\top \delta_{t+1}$
# for all $t = 0, \dots, S-2$ at once, as an $(S-1, B, H)$ tensor. For relu $f'(z) = 1$ where
# $z > 0$ and $0$ elsewhere; read it off $h_t = \max(z_t, 0)$.

# %% kind="solution"
def relu_deltas(rec, W_rec):
    ### BEGIN SOLUTION
    f_prime = (rec.h[:-1] > 0).to(rec.delta.dtype)       # f'(z_t) for t = 0..S-2
    return f_prime * (rec.delta[1:] @ W_rec)              # rows are examples: W_rec^T delta_{t+1}
    ### END SOLUTION


# %% kind="check"
task = gradreg.make_task("adding", 20)
relu_net = make_model(task, 30, seed, dtype=torch.float64, activation="relu")
x, y = task.sample(16, generator=torch.Generator().manual_seed(seed))
rec = gradreg.bptt(relu_net, task, x.double(), y)
predicted = relu_deltas(rec, relu_net.W_rec.detach())
assert tuple(predicted.shape) == tuple(rec.delta[:-1].shape), f"expected shape {tuple(rec.delta[:-1].shape)}"
assert torch.allclose(predicted, rec.delta[:-1], rtol=1e-10, atol=1e-15), "the recursion does not give bptt's deltas"
off = (rec.h[:-1] == 0).double().mean().item()
### BEGIN HIDDEN TESTS
# deltas that bptt never made: an answer that returns rec.delta[:-1] instead of the recursion fails
from types import SimpleNamespace

noise = torch.randn(rec.delta.shape, generator=torch.Generator().manual_seed(seed + 2), dtype=torch.float64)
W_rec = relu_net.W_rec.detach()
expected = torch.stack([(rec.h[t] > 0).double() * torch.stack([W_rec.T @ d for d in noise[t + 1]])
                        for t in range(task.steps - 1)])
assert torch.allclose(relu_deltas(SimpleNamespace(h=rec.h, delta=noise), W_rec), expected,
                      rtol=1e-10, atol=1e-15), "relu_deltas does not apply the recursion to the deltas it is given"
### END HIDDEN TESTS
print(f"all {task.steps - 1} steps reproduced; {off:.0%} of the units are off (f' = 0) at a typical step, "
      "and block the error there")

# %% [markdown] kind="exercise"
# ### Exercise 1.3: the logistic sigmoid, $\gamma = 1/4$
#
# Write `decay_rate(activation)`: build the default network with that activation
# (`make_model(task, 50, seed, dtype=torch.float64, activation=activation)`), run
# `gradreg.per_example_stats` on the 64 temporal-order sequences `x, y` (T = 30) that the answer cell draws (`norms_only=True` is enough),
# and return the measured per-step factor $\mathrm{median}_i\, r_i(L)^{1/L}$ at the largest lag
# $L = S-1$, with $r_i(l) = \|\delta_{i,S-1-l}\| / \|\delta_{i,S-1}\|$ (`stats.delta_norm` is
# $(B, S)$, column $t$ holds $\|\delta_{i,t}\|$).
#
# Then say in the cell after the check how the sigmoid's rate compares with the bound's
# $\gamma\|W_{rec}\|_2$ and with $\rho/4$, and why.

# %% kind="solution"
task = gradreg.make_task("temporal_order", 30)
x, y = task.sample(64, generator=torch.Generator().manual_seed(seed))


def decay_rate(activation):
    ### BEGIN SOLUTION
    net = make_model(task, 50, seed, dtype=torch.float64, activation=activation)
    stats = gradreg.per_example_stats(net, task, x.double(), y, norms_only=True)
    L = task.steps - 1
    r = stats.delta_norm[:, 0] / stats.delta_norm[:, L]          # r_i(L): step 0 against step S-1
    return r.pow(1 / L).median().item()
    ### END SOLUTION


# %% kind="check"
sigmoid_rate, tanh_rate = decay_rate("sigmoid"), decay_rate("tanh")
W = make_model(task, 50, seed, dtype=torch.float64, activation="sigmoid").W_rec.detach()
bound_rate = 0.25 * torch.linalg.matrix_norm(W, ord=2).item()          # gamma ||W_rec||_2
rho = gradreg.model.spectral_radius(W)
reference = vanishing.decay_summary(vanishing.delta_profiles("temporal_order", 30, ("sigmoid", "tanh"), (rho,), 64,
                                                         50, seed=seed))["measured_rate"]
assert abs(sigmoid_rate / reference["sigmoid"].item() - 1) < 0.05, "the sigmoid rate differs from vanishing.decay_summary's"
assert abs(tanh_rate / reference["tanh"].item() - 1) < 0.05, "the tanh rate differs from vanishing.decay_summary's"
assert 0 < sigmoid_rate <= bound_rate, "a measured rate above the bound's: impossible"
print(f"per-step factor: sigmoid {sigmoid_rate:.3f}, tanh {tanh_rate:.3f}; bound for the sigmoid "
      f"gamma ||W_rec||_2 = {bound_rate:.3f}; rho/4 = {rho / 4:.3f}")

# %% [markdown] kind="answer"
# The sigmoid loses a factor of about 0.22 per step: well below the bound's
# $\gamma\|W_{rec}\|_2 \approx 0.47$ and just under $\rho/4 \approx 0.24$. Near $z = 0$,
# $\sigma'(z) = \sigma(z)(1-\sigma(z)) \approx 1/4$, its maximum, so
# $\delta_t \approx \frac14 W_{rec}^\top \delta_{t+1}$: the error decays like the powers of the
# linear map $\frac14 W_{rec}^\top$, at the rate $\rho/4$ (Gelfand), not at the norm's. Units away
# from $z = 0$ have $\sigma' < 1/4$, which pulls the rate a little below $\rho/4$. With the same
# $W_{rec}$, tanh ($\gamma = 1$) loses only a factor 0.95 per step; after 29 steps the sigmoid's
# error is about $10^{-19}$ of what entered, tanh's about $0.2$. A sigmoid SRN would need
# $\rho \approx 4$ to carry gradient across long lags.
