# %% [markdown]
# # 4. The tasks
#
# The benchmark tasks of Hochreiter & Schmidhuber (1997), as used by Martens & Sutskever
# (2011) and Pascanu et al. (2013), in `gradreg.tasks`. Each is a family of synthetic
# sequences in which the answer depends on a few inputs placed far from the end, surrounded
# by irrelevant ones: to solve it, a network has to carry information across a known, long
# lag. Here $T$ is the task length, positions are 0-based, $[a, b)$ is half-open and
# $d = \lfloor T/10 \rfloor$.
#
# | task | input | relevant positions | target |
# |---|---|---|---|
# | `temporal_order` | 6 one-hot symbols A, B, c..f | A/B at $p_0 \in [d, 2d)$ and $p_1 \in [\lfloor T/2 \rfloor, \lfloor T/2\rfloor + d)$, distractors c..f elsewhere | the order: $v_0 + 2v_1$, 4 classes |
# | `temporal_order_3bit` | the same | three A/B symbols at $[d,2d)$, $[\lfloor 0.3T \rfloor, +d)$, $[\lfloor 0.6T\rfloor, +d)$ | $v_0 + 2v_1 + 4v_2$, 8 classes |
# | `adding` | value $\sim U[0,1]$ + marker channel | markers at $p_0 \in [0, d)$, $p_1 \in [d, d + \lfloor 0.4T \rfloor)$ | $(v_{p_0} + v_{p_1})/2$, regression |
# | `multiplication` | the same | the same | $v_{p_0} \cdot v_{p_1}$, regression |
# | `xor` | random bit + marker | the same | $v_{p_0} \oplus v_{p_1}$, 2 classes |
# | `random_permutation` | 100 one-hot symbols | step 0 shows 0 or 1; steps after it random symbols 2..99 | the first symbol, 100-way output |
# | `noiseless_memorization` | 5 values, blank, go | 10 values at steps 0..9, then blanks, "go" at step $T+10$ | blank until go, then the 10 values in order (every step scored) |
#
# A sequence is **wrong** if the argmax at the scored step is wrong (memorization: at any
# step) or, for regression, its squared error exceeds 0.04; a run is **solved** when at most
# 1% of 10,000 fresh test sequences are wrong.
#
# `Task.sample_with_positions` returns the relevant positions along with each batch, which is
# what the figure below marks.

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
from gradreg.experiments import gallery
from gradreg.experiments.settings import notebook_settings, setup

dev = setup(profile, seed, device)   # figure style, seeds, device, one CPU thread
cfg = notebook_settings("04_tasks", profile)
display(cfg)

# %%
gallery = gallery.task_gallery(cfg.length, seed=seed)
for item in gallery:
    t = item["task"]
    print(f"{t.name:24s} T={t.length:3d} steps S={t.steps:3d} input {t.input_size:3d} output {t.output_size:3d} "
          f"{t.kind:14s} readout={t.readout:4s} positions {item['positions'][0].tolist()}  "
          f"ranges {[(r.start, r.stop) for r in t.position_ranges()]}")

# %% [markdown]
# ## One sequence of each task
#
# Each panel is one input sequence as a heat-map: rows are input channels, columns time steps,
# dark = 1. The red boxes are the relevant inputs of this sequence; the orange bands are the
# ranges those positions are drawn from (for noiseless memorization the box is the go signal
# and the band the 10 stored values). The title gives the target; for noiseless
# memorization, which is scored at every step, the targets are written under the steps in
# blue (· = blank). For random permutation the 98 distractor symbols are folded into one row,
# with each step's symbol written in it.

# %%
fig = plotting.plot_task_gallery(gallery)
plotting.save_figure(fig, "04_task_gallery", output_dir)
plt.show()

# %% [markdown]
# ## How far back must the network look?
#
# What makes these tasks hard is the lag between the relevant inputs and the step where the
# answer is scored: for a last-step task, an input at position $p$ must be carried for
# $S-1-p$ steps, and by notebook 1 the gradient that could teach the network to do so shrinks
# geometrically in that lag. The figure draws, for every task at $T = 100$, where the relevant
# inputs can fall, as a fraction of the sequence.

# %%
tasks_100 = [gradreg.make_task(name, 100) for name in gradreg.TASK_NAMES]
fig = plotting.plot_position_ranges(tasks_100)
fig.axes[0].set_title("Where the relevant inputs are, at T = 100")
plotting.save_figure(fig, "04_relevant_positions", output_dir)
plt.show()

# %% [markdown]
# Temporal order and the adding family put the first relevant input in the first fifth of
# the sequence, so the lag to bridge grows linearly with $T$; random permutation puts it at
# step 0 (the longest possible lag); noiseless memorization must hold 10 values across a
# blank stretch of $T$ steps. The SGR lag threshold $\tau = \lfloor S/2\rfloor$ splits the
# gradient roughly at the middle: its long-term component collects exactly the steps in the
# first half, where the first relevant input of every task lies.

# %% [markdown]
# ## Exercises
#
# Three exercises on the tasks' encodings: how far back a task's relevant inputs can lie, read from its own attributes, and two targets recomputed from the inputs alone.
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
# ### Exercise 4.1: how far back must the network look?
#
# For `xor` at $T = 60$, compute from the task's own attributes only (`task.steps`,
# `task.position_ranges()`), without sampling, `lag_ranges`: a list with one pair
# `(smallest, largest)` per relevant input, the lags $S-1-p$ its position $p$ can have. Then draw
# a histogram of the lags of 2,000 sampled sequences (`task.sample_with_positions`), one colour
# per relevant input, with the lag threshold $\tau = \lfloor S/2 \rfloor$ as a vertical line.

# %% kind="solution"
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

# %% kind="check"
_, _, seen = task.sample_with_positions(5000, generator=torch.Generator().manual_seed(seed + 1))
seen_lags = task.steps - 1 - seen
assert len(lag_ranges) == seen.shape[1], "one (smallest, largest) pair per relevant input"
for k, (low, high) in enumerate(lag_ranges):
    observed = (seen_lags[:, k].min().item(), seen_lags[:, k].max().item())
    assert (low, high) == observed, f"input {k}: 5,000 sequences show other extreme lags than ({low}, {high})"
print("lag ranges:", lag_ranges, f"| tau = {task.steps // 2}")


# %% [markdown] kind="exercise"
# ### Exercise 4.2: the adding target from the inputs
#
# Write `adding_target(x)`: from a batch of `adding` inputs alone ($(B, T, 2)$: channel 0 the
# marker, channel 1 the values), return the targets, $(v_{p_0} + v_{p_1})/2$ for the two marked
# values, as a $(B,)$ tensor.

# %% kind="solution"
def adding_target(x):
    ### BEGIN SOLUTION
    return (x[..., 0] * x[..., 1]).sum(1) / 2
    ### END SOLUTION


# %% kind="check"
for length in (20, 200):
    task = gradreg.make_task("adding", length)
    x, y = task.sample(512, generator=torch.Generator().manual_seed(seed))
    target = adding_target(x)
    assert tuple(target.shape) == (512,), "one target per sequence"
    assert torch.allclose(target, y, atol=1e-6), f"T={length}: not the task's targets"
print("adding_target reproduces the targets at T = 20 and T = 200")


# %% [markdown] kind="exercise"
# ### Exercise 4.3: decoding three-bit temporal order
#
# In `temporal_order_3bit` every step shows one of six one-hot symbols: A (channel 0),
# B (channel 1) or a distractor (channels 2..5). Exactly three steps show A or B, and with
# $v_k = 1$ for B and $0$ for A, in order of appearance, the target class is
# $v_0 + 2v_1 + 4v_2$. Write `decode_3bit(x)` that returns the classes of a batch
# ($(B, T, 6)$ inputs) as a $(B,)$ int64 tensor.

# %% kind="solution"
def decode_3bit(x):
    ### BEGIN SOLUTION
    relevant = (x[..., 0] + x[..., 1]) > 0                        # (B, T): the A/B steps
    bits = x[..., 1][relevant].reshape(x.shape[0], 3)             # in order of appearance
    return (bits * torch.tensor([1.0, 2.0, 4.0])).sum(1).long()
    ### END SOLUTION


# %% kind="check"
task = gradreg.make_task("temporal_order_3bit", 50)
x, y = task.sample(512, generator=torch.Generator().manual_seed(seed))
classes = decode_3bit(x)
assert classes.dtype == torch.int64 and tuple(classes.shape) == (512,), "a (B,) int64 tensor"
assert torch.equal(classes, y), f"{(classes != y).sum().item()} of 512 sequences decoded wrongly"
print("all 512 decoded; classes seen:", sorted(set(classes.tolist())))
