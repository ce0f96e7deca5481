"""What a sweep runs: the profiles, each a list of `TrainConfig`s in the order it is submitted.

    smoke   temporal_order T=10, hidden 20, lr 0.3 (so that they solve), clip / sgr-top /
            sgr-random / lstm, seeds 0-1, 300 iterations, 2,000 test sequences: 8 runs
    quick   temporal_order and adding at T = 20, 40; the 7 paper methods;
            seeds 0-2; 4,000 iterations: 84 runs
    paper   temporal_order and adding at T = 50, 100, 150, 200; methods sgd, clip,
            pascanu, sgr/top, sgr/random, sgr/weighted (no importance weights), lstm;
            seeds 0-4; PAPER_MAX_ITERATIONS = 50,000 iterations per run (TrainConfig's default): 280 runs,
            each stopping early once solved.
            T = 100 first, then 200 (clip, pascanu, sgr/top and sgr/random on both tasks, then
            sgr/weighted, then sgd and lstm), 150 and 50: the claim is about links at a range of
            about 100 and longer.
    authors the authors' protocol (TrainConfig(protocol="chernodub"), issue 12): adding and
            temporal_order in the authors' variants at T = 50 and 100; methods sgd (their own
            training: momentum SGD on 1/2 sum ||y - t||^2), sgr/top, sgr/random; seeds 0-4;
            AUTHORS_MAX_ITERATIONS = 100,000 iterations (their budget); T = 50 first, then T = 100
            seeds 0-2 (temporal order, then adding), then seeds 3-4: 60 runs.
            Its results file has the column test_success (`gradreg.results.AUTHORS_COLUMNS`).
    screen  docs/method.md section 11.6: temporal_order T = 100, seeds 0-4, 5,000 iterations, the
            13 settings of SCREEN_SETTINGS (sgr/top, its variants, sgr/random and pascanu): 65 runs.
    control section 11.7, the positive control: lstm trained with Adam (lr 1e-3, clip 1) and a
            forget-gate bias of 5, adding and temporal_order at T = 100 and 200, seeds 0-4: 20 runs.
    confirm section 11.2, the confirmatory runs: temporal_order T = 100, seeds 5-16, sgr/top,
            sgr/random, pascanu, and once the screen has named it the carried-forward variant
            (CARRIED_FORWARD = weighted-ht) with its own control (`variant_control`, amendment 2;
            for weighted-ht that is sgr/random itself): 48 runs.
    long    section 11.8: temporal_order T = 100, seeds 0-4, 250,000 iterations (LONG_MAX_ITERATIONS),
            pascanu, sgr/random, sgr/top and the variant (with its control where that is not
            sgr/random); then T = 150: 40 runs.

What each profile costs (measured, and projected by `python -m benchmarks.training --projection`):
docs/performance.md.

The files of screen, control, confirm and long have the `arm` column (PROFILES_WITH_ARMS): a
run's arm names the settings it changes (TrainConfig.arm), so variants of one method differ.

smoke and quick are submitted shortest length first, then by task and seed. All other settings
are `TrainConfig`'s defaults under the profile's protocol (pascanu: hidden 50, batch 20, lr 0.01,
clip 1, pool factor 4, lag floor(steps/2), test on 10,000 sequences every 100 iterations;
chernodub: see `gradreg.config.PROTOCOLS`).
"""
from __future__ import annotations

import functools

from .analysis import arm_label, label_of, method_label
from .config import TrainConfig

__all__ = ["SWEEP_PROFILES", "PAPER_MAX_ITERATIONS", "QUICK_MAX_ITERATIONS", "SMOKE_MAX_ITERATIONS",
           "AUTHORS_MAX_ITERATIONS", "SCREEN_MAX_ITERATIONS", "LONG_MAX_ITERATIONS", "PAPER_METHODS",
           "AUTHORS_METHODS", "SCREEN_SETTINGS", "SCREEN_REFERENCES", "CARRIED_FORWARD", "CONTROL_SETTINGS",
           "PROFILES_WITH_ARMS", "profile_configs", "setting_name", "setting_label", "variant_control",
           "variant_labels", "is_complete"]

#: Iterations per run in the paper profile: a run not solved by then counts as failed.
#: Each SGR iteration processes M = 4 n = 80 sequences, each baseline iteration n = 20.
PAPER_MAX_ITERATIONS = 50_000
QUICK_MAX_ITERATIONS = 4_000
SMOKE_MAX_ITERATIONS = 300
#: The authors' budget (Step_02_MAIN_MakeTrain.m: 2,000 x 50 iterations).
AUTHORS_MAX_ITERATIONS = 100_000
SCREEN_MAX_ITERATIONS = 5_000
#: Five times the paper budget: the pascanu runs that failed at T = 100 were still improving.
LONG_MAX_ITERATIONS = 250_000

# (method, rule, extra TrainConfig settings); rule only matters for sgr
PAPER_METHODS = (
    ("sgd", "top", {}),
    ("clip", "top", {}),
    ("pascanu", "top", {}),
    ("sgr", "top", {}),
    ("sgr", "random", {}),
    # "the best other SGR rule": weighted, as a plain sampler (no Horvitz-Thompson weights)
    ("sgr", "weighted", {"importance_weights": False}),
    ("lstm", "top", {}),
)
#: The paper profile's methods at T = 200, in the waves it submits them (each wave on both tasks)
PAPER_WAVES_AT_200 = (("clip", "pascanu", "sgr/top", "sgr/random"), ("sgr/weighted",), ("sgd", "lstm"))
SMOKE_METHODS = (("clip", "top", {}), ("sgr", "top", {}), ("sgr", "random", {}), ("lstm", "top", {}))
#: sgd is the authors' own training under their protocol (momentum, summed MSE, no clipping)
AUTHORS_METHODS = (("sgd", "top", {}), ("sgr", "top", {}), ("sgr", "random", {}))


#: The screen's settings (docs/method.md section 11.6): name -> (method, rule, TrainConfig settings)
SCREEN_SETTINGS = {
    "sgr/top": ("sgr", "top", {}),
    "sgr/random": ("sgr", "random", {}),
    "pascanu": ("pascanu", "top", {}),
    "no-clip": ("sgr", "top", {"clip": None}),
    "clip-10": ("sgr", "top", {"clip": 10.0}),
    "pool-2": ("sgr", "top", {"pool_factor": 2}),
    "pool-8": ("sgr", "top", {"pool_factor": 8}),
    # the long-term window is steps 0-19 at T = 100: the first relevant symbol's range, nothing after
    "lag-80": ("sgr", "top", {"lag": 80}),
    "weighted-ht": ("sgr", "weighted", {"importance_weights": True}),
    "band": ("sgr", "band", {}),
    "greedy": ("sgr", "greedy", {}),
    "momentum": ("sgr", "top", {"momentum": 0.9}),
    "adam": ("sgr", "top", {"optimizer": "adam", "lr": 1e-3}),
}
#: The screen's references: not candidates for the carried-forward variant
SCREEN_REFERENCES = ("sgr/top", "sgr/random", "pascanu")
#: The screen's variant that the confirm and long profiles carry forward: section 11.6's rule,
#: applied to the complete screen in notebook 08 (`experiments.sensitivity.screen_verdict`), names
#: it; tests/test_sweep.py checks that the committed screen still does.
CARRIED_FORWARD = "weighted-ht"
#: The positive control (section 11.7): an LSTM trained the way its users train it
CONTROL_SETTINGS = {"optimizer": "adam", "lr": 1e-3, "forget_bias": 5.0}
PROFILES_WITH_ARMS = ("screen", "control", "confirm", "long")


def setting_label(name: str) -> str:
    """The analysis label (`analysis.label_of`) of a screen setting: "sgr/top [clip=None]"."""
    return _arm_label(*SCREEN_SETTINGS[name])


def _arm_label(method: str, rule: str, settings: dict) -> str:
    # on the screen's cell: lag-80 is a lag of that length
    return arm_label(method, rule, TrainConfig(task="temporal_order", length=100, method=method, rule=rule,
                                               **settings).arm)


@functools.cache
def _setting_names() -> dict[str, str]:
    return {setting_label(name): name for name in SCREEN_SETTINGS}


def setting_name(run) -> str:
    """The screen's name of a run (a TrainConfig, a TrainResult or a results row): its
    SCREEN_SETTINGS key when its method, rule and arm are one of them, else its label."""
    label = label_of(run)
    return _setting_names().get(label, label)


def _grid(tasks, lengths, methods, seeds, **common) -> list[TrainConfig]:
    # shortest length first, then task, then seed: an interrupted sweep leaves whole
    # (length, task, seed) cells of every method, the most useful partial grid
    return [TrainConfig(task=task, length=length, method=method, rule=rule, seed=seed,
                        **{**common, **extra})
            for length in lengths for task in tasks for seed in seeds
            for method, rule, extra in methods]


SWEEP_PROFILES = {
    # lr 0.3 so that the tiny runs solve and the solved path is exercised end to end
    "smoke": lambda: _grid(("temporal_order",), (10,), SMOKE_METHODS, range(2), hidden_size=20,
                           lr=0.3, max_iterations=SMOKE_MAX_ITERATIONS, test_size=2_000),
    "quick": lambda: _grid(("temporal_order", "adding"), (20, 40), PAPER_METHODS, range(3),
                           max_iterations=QUICK_MAX_ITERATIONS),
    "paper": lambda: _paper_grid(),
    "authors": lambda: _authors_grid(),
    "screen": lambda: _grid(("temporal_order",), (100,), tuple(SCREEN_SETTINGS.values()), range(5),
                            max_iterations=SCREEN_MAX_ITERATIONS),
    "control": lambda: _grid(("adding", "temporal_order"), (100, 200), (("lstm", "top", CONTROL_SETTINGS),),
                             range(5), max_iterations=PAPER_MAX_ITERATIONS),
    "confirm": lambda: _grid(("temporal_order",), (100,), _confirmed_arms(), range(5, 17),
                             max_iterations=PAPER_MAX_ITERATIONS),
    "long": lambda: _grid(("temporal_order",), (100, 150), _confirmed_arms(("pascanu", "sgr/random", "sgr/top")),
                          range(5), max_iterations=LONG_MAX_ITERATIONS),
}


#: The settings that steer only the selection: a random choice from the pool ignores them
SELECTION_ONLY = ("lag", "importance_weights")


def variant_control(name: str) -> tuple[str, str, dict]:
    """The same-cost control of a screen setting (docs/method.md section 11, amendment 2):
    sgr/random with the setting's training settings (optimiser, clipping, pool, momentum, lr),
    without those that steer only the selection."""
    _, _, settings = SCREEN_SETTINGS[name]
    return ("sgr", "random", {k: v for k, v in settings.items() if k not in SELECTION_ONLY})


def variant_labels() -> tuple[str | None, str | None]:
    """The analysis labels (`analysis.label_of`) of the carried-forward variant and of its
    same-cost control (None, None before the screen has named it)."""
    if not CARRIED_FORWARD:
        return None, None
    return setting_label(CARRIED_FORWARD), _arm_label(*variant_control(CARRIED_FORWARD))


def _confirmed_arms(fixed=("sgr/top", "sgr/random", "pascanu")) -> list[tuple]:
    """The fixed arms, then, once the screen has named it, the carried-forward variant and its
    own control where that is not plain sgr/random."""
    arms = [SCREEN_SETTINGS[name] for name in fixed]
    if CARRIED_FORWARD:
        arms.append(SCREEN_SETTINGS[CARRIED_FORWARD])
        control = variant_control(CARRIED_FORWARD)
        if control[2]:
            arms.append(control)
    return arms


def _authors_grid() -> list[TrainConfig]:
    """The authors' profile in the order it is submitted: T = 50 complete, then T = 100 seeds
    0-2 of both tasks (the minimum of issue 12), then T = 100 seeds 3-4. At T = 100 temporal
    order comes first: under this protocol its runs stop within a few thousand iterations at
    T = 50, while adding's go on for tens of thousands, so its cells are complete sooner."""
    common = {"protocol": "chernodub", "max_iterations": AUTHORS_MAX_ITERATIONS}
    order = ((50, ("adding", "temporal_order"), range(5)), (100, ("temporal_order", "adding"), range(3)),
             (100, ("temporal_order", "adding"), range(3, 5)))
    return [config for length, tasks, seeds in order
            for config in _grid(tasks, (length,), AUTHORS_METHODS, seeds, **common)]


def _paper_grid() -> list[TrainConfig]:
    """The paper profile in the order it is submitted: the question is about links at a range
    of about 100 and longer, so T = 100 comes first (every method), then T = 200: the methods
    under test and their controls before sgd and lstm, and among those the four of issue 11's
    minimum (clip, pascanu, sgr/top, sgr/random) on both tasks before sgr/weighted, so that the
    minimum is reached a unit of SGR runs sooner; then T = 150, then T = 50."""
    tasks, seeds, common = ("temporal_order", "adding"), range(5), {"max_iterations": PAPER_MAX_ITERATIONS}
    at_200 = [[m for m in PAPER_METHODS if method_label(m[0], m[1]) in wave] for wave in PAPER_WAVES_AT_200]
    order = [(100, PAPER_METHODS), *((200, methods) for methods in at_200), (150, PAPER_METHODS),
             (50, PAPER_METHODS)]
    return [config for length, methods in order
            for config in _grid(tasks, (length,), methods, seeds, **common)]


def profile_configs(name: str) -> list[TrainConfig]:
    """The configs of a profile (SWEEP_PROFILES: smoke, quick, paper, authors, screen, control,
    confirm, long)."""
    if name not in SWEEP_PROFILES:
        raise ValueError(f"unknown profile {name!r}; allowed: {', '.join(SWEEP_PROFILES)}")
    return SWEEP_PROFILES[name]()


def is_complete(runs, name: str) -> bool:
    """Whether every run of profile `name` has its row in `runs` (a results table)."""
    from .results import config_key, row_key
    done = {row_key(r) for r in runs.to_dict("records")} if len(runs) else set()
    return all(config_key(c) in done for c in profile_configs(name))


def complete_arms(runs, name: str):
    """The rows of `runs` (a results table of profile `name`) whose arm at their (task, length)
    has all its planned runs written: a partly run arm is left out, since its first rows are
    the runs that ended first, the early solvers, and would draw it too good."""
    from .results import config_key, row_key
    if not len(runs):
        return runs
    def cell(key):                                 # the key without its seed
        return key[:4] + key[5:]
    done = {row_key(r) for r in runs.to_dict("records")}
    planned = [config_key(c) for c in profile_configs(name)]
    partial = {cell(key) for key in planned if key not in done}
    keep = [cell(row_key(r)) not in partial for r in runs.to_dict("records")]
    return runs[keep].reset_index(drop=True)
