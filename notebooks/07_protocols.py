# %% [markdown]
# # 7. Two protocols: Pascanu's conventions and the authors' own
#
# *Part of `gradreg`, a reproduction of Chernodub & Nowicki (2016).*
#
# The paper's full text is not public, so notebooks 1-6 follow the conventions of Pascanu et
# al. (2013) for the tasks and their training. The same two authors published, the same year,
# the MATLAB code of their ICANN 2016 experiments (github.com/achernodub/oplu_adding): their own
# task generators, loss, optimiser, data and stopping rule. `gradreg` implements both as
# *protocols* of one training engine: `TrainConfig(protocol="chernodub")` sets every choice of
# the authors' code in one word, and any field given explicitly overrides it.
#
# This notebook shows what differs, where the two variants of the task generators put the
# inputs that matter, and, when the sweep `authors` has been run (`data/results/authors.csv`),
# the results under each protocol, reported both ways.

# %% kind="params"
profile = "quick"         # smoke (seconds) | quick (minutes) | paper (hours)
seed = 0
device = "auto"           # auto | cpu | cuda | cuda:N
output_dir = "../figures"  # where the figures are written (PNG + PDF)
results_dir = "../data/results"

# %%
import matplotlib.pyplot as plt
from IPython.display import display

from gradreg import plotting
from gradreg.experiments import protocols
from gradreg.experiments.settings import notebook_settings, setup

dev = setup(profile, seed, device)   # figure style, seeds, device, one CPU thread
cfg = notebook_settings("07_protocols", profile)
display(cfg)

# %% [markdown]
# ## What the protocols set
#
# One row per setting; `differs` marks the choices where the two protocols part. Under
# `chernodub` the loss is $\tfrac12\sum_i \lVert y_i - t_i\rVert^2$ **summed** over the
# minibatch (one-hot targets for the classification tasks), the update is momentum in the
# classical form $v \leftarrow \mu v - \eta g,\ w \leftarrow w + v$, the data is a **fixed**
# training set of 20,000 sequences drawn once per run and sampled with replacement, and a run
# stops on a **validation** set: every 50 iterations its success rate and MSE on 1,000
# sequences; the network of lowest validation MSE is kept; training stops when the validation
# success rate exceeds 99%, and the result is the *kept* network's success rate on 10,000 test
# sequences (solved when at least 99%). Under `pascanu` every step draws fresh sequences, the
# mean of the task's loss (cross-entropy, squared error) is clipped at norm 1, and a run is
# solved at the first test check with at most 1% of its test sequences wrong.

# %%
display(protocols.protocol_table())

# %% [markdown]
# ## Where the relevant inputs are
#
# The two variants of the generators put the marked inputs in different places, and so ask the
# network to carry them over different lags. The authors' adding problem marks its first value
# in the first tenth of a stretched length $\tilde T = \lceil 1.1\,T \rceil$ and its second before
# $\tilde T/2$ (values in $[-1, 1]$, wrong when $|o - t| > 0.08$); Pascanu's marks the second in
# $[T/10, T/2)$ with values in $[0, 1]$ (wrong when $(o-t)^2 > 0.04$). The authors' temporal order
# puts its two symbols in the second and the fifth tenth of the sequence; Pascanu's in the
# second tenth and just after the middle. Lags are counted from the last step, $S - 1 - p$.

# %%
positions = protocols.variant_positions(cfg.tasks, cfg.lengths)
display(positions)

# %%
for length in cfg.lengths:
    tasks, labels = protocols.variant_tasks(cfg.tasks, length)
    fig = plotting.plot_position_ranges(tasks, labels=labels)
    fig.axes[0].set_title(f"Where the relevant inputs are, by variant, at T = {length}")
    plotting.save_figure(fig, f"07_relevant_positions_T{length}", output_dir)
    plt.show()

# %% [markdown]
# ## Results under each protocol
#
# The authors report a setting as the **mean test success rate** over the networks they
# trained (here with a 95% t interval over networks); this package reports the **fraction of
# runs solved** (with a 95% Wilson interval). Both are computed for each protocol's runs: the
# authors' from `data/results/authors.csv` (the sweep `python -m gradreg sweep --profile
# authors --results data/results/authors.csv`), Pascanu's from `data/results/paper.csv`, for
# the methods the authors' sweep runs (sgd, sgr/top, sgr/random).

# %%
tables = protocols.protocol_results(results_dir)
for protocol, table in tables.items():
    print(f"{protocol}: " + (f"{len(table)} finished runs" if table is not None else
                             "no results file with finished runs in " + results_dir))
if tables["chernodub"] is None:
    print("The authors' protocol has no committed results yet (data/results/authors.csv): "
          "run the sweep 'authors' to fill this section.")
summary = protocols.protocol_summary(tables, compared=cfg.compared, tasks=("adding", "temporal_order"),
                                   lengths=cfg.lengths)
display(summary.round(2))
