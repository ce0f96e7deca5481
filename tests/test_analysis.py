"""Run tables: Wilson intervals, Fisher's exact test, the summary and the comparisons."""
import io
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sstats

from gradreg import analysis
from gradreg.results import COLUMNS


def test_wilson_interval_known_values():
    # by hand, z = 1.959964: denominator 1 + z^2/n, centre (p + z^2/2n)/denom,
    # half-width z sqrt(p(1-p)/n + z^2/4n^2)/denom
    z = 1.959963984540054
    for k, n in [(0, 5), (5, 5), (3, 5), (7, 10)]:
        p = k / n
        denom = 1 + z * z / n
        centre = (p + z * z / (2 * n)) / denom
        half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
        assert analysis.wilson_interval(k, n) == pytest.approx((max(0, centre - half), min(1, centre + half)),
                                                                abs=1e-12)
    assert analysis.wilson_interval(0, 5) == pytest.approx((0.0, 0.43448), abs=1e-5)
    low, high = analysis.wilson_interval(np.array([3, 0]), np.array([10, 0]))
    assert low[0] == pytest.approx(0.1078, abs=1e-4) and high[0] == pytest.approx(0.6032, abs=1e-4)
    assert (low[1], high[1]) == (0, 1)          # no runs: nothing known
    with pytest.raises(ValueError, match="successes"):
        analysis.wilson_interval(6, 5)


def test_fisher_exact_test_known_values():
    # 5/5 against 0/5: P(table) = 1 / C(10, 5) = 1/252 for each of the two extreme tables
    assert analysis.exact_test(5, 5, 0, 5) == pytest.approx(2 / 252, rel=1e-12)
    assert analysis.exact_test(3, 5, 3, 5) == pytest.approx(1.0)
    # 3/5 against 1/5, by hand: with 4 solved among 10 runs, the first method's count a has
    # P(a) = C(5, a) C(5, 4 - a) / 210 = 5, 50, 100, 50, 5 (/210) for a = 0..4; the two-sided p
    # adds the tables no more likely than the observed a = 3: (5 + 50 + 50 + 5) / 210
    assert analysis.exact_test(3, 5, 1, 5) == pytest.approx(110 / 210, rel=1e-12)
    assert analysis.exact_test(0, 0, 1, 5) == 1.0


CSV = """task,length,method,rule,seed,solved,iterations,examples,seconds,final_error,diverged,device,error
temporal_order,100,sgr,top,0,True,1000,80000,10.0,0.0,False,cpu,
temporal_order,100,sgr,top,1,True,3000,240000,30.0,0.004,False,cpu,
temporal_order,100,sgr,top,2,True,2000,160000,20.0,0.01,False,cpu,
temporal_order,100,sgr,top,3,True,5000,400000,50.0,0.0,False,cpu,
temporal_order,100,sgr,top,4,True,4000,320000,40.0,0.0,False,cpu,
temporal_order,100,sgr,random,0,False,50000,4000000,99.0,0.5,False,cpu,
temporal_order,100,sgr,random,1,False,50000,4000000,99.0,0.5,False,cpu,
temporal_order,100,sgr,random,2,False,50000,4000000,99.0,0.5,False,cpu,
temporal_order,100,sgr,random,3,False,50000,4000000,99.0,0.5,False,cpu,
temporal_order,100,sgr,random,4,False,0,0,0.0,nan,False,,RuntimeError: boom
temporal_order,100,pascanu,,0,True,100,2000,1.0,0.0,False,cpu,
temporal_order,100,pascanu,,1,False,30,600,1.0,nan,True,cpu,
adding,50,sgr,top,0,False,50000,4000000,99.0,0.3,False,cpu,
"""


def test_summary_and_comparisons_from_a_hand_written_csv():
    df = pd.read_csv(io.StringIO(CSV), keep_default_na=False, na_values={"final_error": ["nan"]},
                     dtype={"rule": str, "error": str})
    assert list(df.columns) == list(COLUMNS)
    s = analysis.summarise(df).set_index(["task", "length", "label"])
    top = s.loc[("temporal_order", 100, "sgr/top")]
    assert (top["runs"], top["solved"], top["success_rate"]) == (5, 5, 1.0)
    assert top["median_examples"] == 240000 and top["median_iterations"] == 3000
    rnd = s.loc[("temporal_order", 100, "sgr/random")]
    assert (rnd["runs"], rnd["solved"], rnd["errors"]) == (4, 0, 1)     # the error row is not a run
    assert math.isnan(rnd["median_examples"])
    pas = s.loc[("temporal_order", 100, "pascanu")]
    assert (pas["runs"], pas["solved"], pas["diverged"]) == (2, 1, 1)
    assert (top["ci_low"], top["ci_high"]) == pytest.approx(analysis.wilson_interval(5, 5))

    c = analysis.comparisons(df).set_index(["task", "length", "against"])
    assert list(c.index) == [("temporal_order", 100, "sgr/random"), ("temporal_order", 100, "pascanu")]
    assert c.loc[("temporal_order", 100, "sgr/random"), "p_value"] == pytest.approx(
        analysis.exact_test(5, 5, 0, 4))
    assert c.loc[("temporal_order", 100, "pascanu"), "p_value"] == pytest.approx(analysis.exact_test(5, 5, 1, 2))
    assert c.loc[("temporal_order", 100, "sgr/random"), "p_value"] == pytest.approx(1 / 126, rel=1e-9)


def test_verdict_reads_the_runs():
    df = pd.read_csv(io.StringIO(CSV), keep_default_na=False, na_values={"final_error": ["nan"]},
                     dtype={"rule": str, "error": str})
    assert analysis.verdict(df[df["length"] < 100]).startswith("Not decidable at this budget: no sgr/top run")
    # 5/5 against 0/4 (p = 1/126) but against pascanu 1/2 (p = 0.29): not decidable
    undecided = analysis.verdict(df)
    assert undecided.startswith("Not decidable at this budget")
    # the fewest runs compared are pascanu's 2 against sgr/top's 5: only the complete splits reach
    # 0.05, and of the two the one with fewer solved runs is named: 0/5 against 2/2 (p = 1/21: of
    # the C(7, 2) = 21 tables with 2 solved, one has both on pascanu's side, and the other two
    # splits are each 10 times as likely; 5/5 against 0/2 is the mirror case, also 1/21)
    assert "with 5 runs against 2, Fisher's test needs a split at least as wide as 0/5 against 2/2" in undecided
    assert analysis.narrowest_significant_split(5, 2) == (0, 2)
    assert analysis.exact_test(0, 5, 2, 2) == pytest.approx(1 / 21, rel=1e-12)
    assert undecided.endswith("Smallest p: temporal_order T=100, sgr/top 5/5 against sgr/random 0/4 (p = 0.00794).")
    assert analysis.exact_test(5, 5, 0, 2) == pytest.approx(1 / 21, rel=1e-12)
    more = pd.concat([df] + [df[df["method"] == "pascanu"].iloc[[1]].assign(seed=s) for s in range(2, 6)])
    assert analysis.verdict(more).startswith("Supported")          # pascanu now 1/6: p = 0.015
    flipped = more.assign(solved=~more["solved"].astype(bool))
    assert analysis.verdict(flipped).startswith("Not supported")


def test_the_narrowest_significant_split_by_hand():
    # 4/5 against 0/5: of the C(10, 4) = 210 tables with 4 solved, 5 put all 4 on one side and
    # 5 on the other, p = 10/210; 3/5 against 0/5: p = (10 + 10)/120 = 1/6, too wide a p
    assert analysis.exact_test(4, 5, 0, 5) == pytest.approx(10 / 210, rel=1e-12)
    assert analysis.exact_test(3, 5, 0, 5) == pytest.approx(1 / 6, rel=1e-12)
    assert analysis.narrowest_significant_split(5, 5) == (4, 0)
    assert analysis.narrowest_significant_split(5, 5, alpha=0.01) == (5, 0)     # p = 2/252
    assert analysis.narrowest_significant_split(3, 3) is None                  # 3/3 against 0/3: p = 0.1
    assert analysis.narrowest_significant_split(10, 10) == (5, 0)               # p = 0.0325
    assert analysis.exact_test(5, 10, 0, 10) < 0.05 <= analysis.exact_test(6, 10, 1, 10)


# ------------------------------------------------------------------ the analysis plan (method.md section 11)
# The leukemia remission data of Freireich et al. (1963), as tabulated by Kleinbaum & Klein,
# Survival Analysis (3rd ed., chapters 2-3): 6-MP (21 patients, 9 relapses) against placebo
# (21, all relapse). Their textbook values: the log-rank chi-square 16.79 (p = 4.17e-5), the
# Cox hazard ratio of placebo against 6-MP 4.523 [2.027, 10.094], and the 6-MP Kaplan-Meier
# estimates 0.857, 0.807, 0.753, 0.690, 0.627, 0.538, 0.448 at 6, 7, 10, 13, 16, 22, 23 weeks.
SIX_MP = ([6, 6, 6, 7, 10, 13, 16, 22, 23], [6, 9, 10, 11, 17, 19, 20, 25, 32, 32, 34, 35])   # relapses, censored
PLACEBO = [1, 1, 2, 2, 3, 4, 4, 5, 5, 8, 8, 8, 8, 11, 11, 12, 12, 15, 17, 22, 23]


def _leukemia_runs(task="temporal_order", length=100, copies=1) -> pd.DataFrame:
    """The leukemia data as runs: "solved" = relapsed, iterations = weeks; 6-MP as sgr/random,
    placebo as sgr/top; `copies` strata (lengths 100, 101, ...) each holding the whole data."""
    rows = []
    for c in range(copies):
        for label, times, event in (("random", SIX_MP[0], True), ("random", SIX_MP[1], False),
                                    ("top", PLACEBO, True)):
            for t in times:
                rows.append(dict(task=task, length=length + c, method="sgr", rule=label, seed=len(rows),
                                 solved=event, iterations=t, examples=0, seconds=0.0, final_error=0.0,
                                 diverged=False, device="cpu", error=""))
    return pd.DataFrame(rows)


def test_log_rank_hazard_ratio_and_kaplan_meier_give_the_textbook_values():
    c = analysis.compare_arms(_leukemia_runs(), None, "sgr/top", "sgr/random", "temporal_order")
    assert c["chi2"] == pytest.approx(16.79, abs=0.005) and c["p_logrank"] == pytest.approx(4.17e-5, rel=1e-2)
    assert c["hazard_ratio"] == pytest.approx(4.523, abs=5e-4)
    assert (c["hr_low"], c["hr_high"]) == (pytest.approx(2.027, abs=1e-3), pytest.approx(10.094, abs=1e-3))
    km = analysis.kaplan_meier(_leukemia_runs())
    six_mp = km[km["label"] == "sgr/random"].set_index("time")["unsolved"]
    assert six_mp.loc[[6, 7, 10, 13, 16, 22, 23]].round(3).tolist() == [0.857, 0.807, 0.753, 0.690, 0.627,
                                                                         0.538, 0.448]
    assert six_mp.iloc[0] == 1.0 and six_mp.index[-1] == 35       # from (0, 1) to the last run


def test_the_stratified_log_rank_adds_the_strata_and_a_second_copy_doubles_the_chi_square():
    """Two strata holding the same data: the observed-minus-expected and its variance both
    double, so the stratified chi-square is twice one stratum's (an unstratified test of the
    pooled data would give the same, but here the strata are really used: lengths differ)."""
    c = analysis.compare_arms(_leukemia_runs(copies=2), None, "sgr/top", "sgr/random", "temporal_order")
    assert c["lengths"] == [100, 101]
    assert c["chi2"] == pytest.approx(2 * 16.793, abs=0.01)
    assert c["hazard_ratio"] == pytest.approx(4.523, abs=5e-4)      # the same ratio in every stratum


def test_the_paired_area_test_is_the_exact_signed_rank_p_by_enumeration():
    """Five seeds, two arms, hand-made histories: the Wilcoxon p equals the fraction of the 2^5
    sign flips of the ranked differences whose rank sum is at least as extreme."""
    import itertools
    diffs = [0.05, 0.11, -0.02, 0.2, 0.08]
    runs, history = [], []
    for seed, d in enumerate(diffs):
        for rule, level in (("top", 0.5 + d), ("random", 0.5)):
            runs.append(dict(task="adding", length=100, method="sgr", rule=rule, seed=seed, solved=False,
                             iterations=300, examples=0, seconds=0.0, final_error=level, diverged=False,
                             device="cpu", error=""))
            history += [dict(task="adding", length=100, method="sgr", rule=rule, seed=seed, iteration=i,
                             test_error=level) for i in (100, 200, 300)]
    c = analysis.compare_arms(pd.DataFrame(runs), pd.DataFrame(history), "sgr/top", "sgr/random", "adding",
                              budget=300)
    ranks = sstats.rankdata(np.abs(diffs))
    observed = sum(r for r, d in zip(ranks, diffs) if d > 0)
    total = ranks.sum()
    extreme = [max(s, total - s) >= max(observed, total - observed) - 1e-12
               for s in (sum(r for r, keep in zip(ranks, signs) if keep)
                         for signs in itertools.product((0, 1), repeat=len(diffs)))]
    assert c["pairs"] == 5 and c["median_area_difference"] == pytest.approx(0.08)
    assert c["p_area"] == pytest.approx(sum(extreme) / 2 ** len(diffs))


def test_curve_area_keeps_a_solved_runs_last_error_to_the_budget():
    runs = pd.DataFrame([dict(task="adding", length=100, method="sgd", rule="", seed=0, solved=True, iterations=200,
                              examples=0, seconds=0.0, final_error=0.0, diverged=False, device="cpu", error="")])
    history = pd.DataFrame([dict(task="adding", length=100, method="sgd", rule="", seed=0, iteration=i, test_error=e)
                            for i, e in ((100, 0.6), (200, 0.0))])
    assert analysis.curve_areas(runs, history, budget=400)["area"].tolist() == [pytest.approx(0.15)]


def _timed_runs(first_times, second_times, budget=50_000):
    """Runs of sgr/top (first) and pascanu (second) on temporal order T = 100: a time under the
    budget is a solved run, the budget an unsolved one."""
    rows = []
    for method, rule, times in (("sgr", "top", first_times), ("pascanu", "", second_times)):
        for seed, t in enumerate(times):
            rows.append(dict(task="temporal_order", length=100, method=method, rule=rule, seed=seed,
                             solved=t < budget, iterations=t, examples=0, seconds=0.0, final_error=0.0,
                             diverged=False, device="cpu", error=""))
    return pd.DataFrame(rows)


def test_the_verdict_of_hand_made_results_whose_answer_is_known():
    pairs = [("sgr/top", "pascanu")]
    fast = [1_000 + 100 * s for s in range(12)]
    better = analysis.plan_comparisons(_timed_runs(fast, [50_000] * 12), None, pairs)
    assert better["verdict"].tolist() == ["better"] and better["hazard_ratio"].iloc[0] == float("inf")
    worse = analysis.plan_comparisons(_timed_runs([50_000] * 12, fast), None, pairs)
    assert worse["verdict"].tolist() == ["worse"] and worse["hazard_ratio"].iloc[0] == 0.0
    nobody = analysis.plan_comparisons(_timed_runs([50_000] * 5, [50_000] * 5), None, pairs)
    assert nobody["verdict"].tolist() == ["undecided"] and np.isnan(nobody["p_logrank"].iloc[0])
    same = [1_000 * (s + 1) for s in range(40)]
    twins = analysis.plan_comparisons(_timed_runs(same * 3, same * 3), None, pairs)
    assert twins["verdict"].tolist() == ["equivalent"] and twins["hazard_ratio"].iloc[0] == pytest.approx(1.0)
    assert "**equivalent**" in analysis.verdict_sentence(twins.iloc[0].to_dict())
    # the plain sentence groups comparisons by their second arm and verdict
    rows = pd.concat([better, better.assign(first="sgr/random"), twins.assign(second="sgr/random"),
                      nobody.assign(first="sgr/band")])
    assert analysis.verdict_in_words(rows) == (
        "sgr/top and sgr/random solved sooner than pascanu; sgr/top solved as fast as sgr/random, within a "
        "factor of two; sgr/band could not be told from pascanu (no difference shown, and no equivalence "
        "within a factor of two).")
    assert analysis.verdict_in_words(rows.assign(task=["adding", "temporal_order", "adding", "adding"])) \
        .startswith("at adding, sgr/top solved sooner than pascanu; at temporal order, sgr/random solved sooner")


def test_the_harness_passes_where_three_of_each_tasks_control_runs_solve():
    def control(solved_per_task, length=100):
        return pd.DataFrame([dict(task=task, length=length, method="lstm", rule="", seed=seed,
                                  solved=seed < k, iterations=7_000, examples=10**5, seconds=1.0,
                                  final_error=0.0, diverged=False, device="cpu", error="")
                             for task, k in solved_per_task.items() for seed in range(5)])
    assert analysis.harness_passes(control({"adding": 3, "temporal_order": 5}), 100) is True
    assert analysis.harness_passes(control({"adding": 2, "temporal_order": 5}), 100) is False
    assert analysis.harness_passes(control({"adding": 5}, length=200), 100) is None


def test_holm_adjusts_a_tasks_log_rank_p_values_together():
    from statsmodels.stats.multitest import multipletests
    runs = _timed_runs([1_000 * (s + 1) for s in range(8)], [50_000] * 4 + [3_000 * (s + 1) for s in range(4)])
    extra = runs[runs["method"] == "pascanu"].assign(method="sgr", rule="random", iterations=50_000, solved=False)
    table = analysis.plan_comparisons(pd.concat([runs, extra]), None, [("sgr/top", "pascanu"),
                                                                       ("sgr/top", "sgr/random")])
    assert table["p_holm"].tolist() == pytest.approx(list(multipletests(table["p_logrank"], method="holm")[1]))


def test_the_screen_rule_keeps_stable_variants_and_takes_the_lowest_test_error():
    rows = []
    for seed in range(5):
        for name, rho, norm, err in (("sgr/random", 0.95, 1.0, 0.7), ("a", 1.1, 0.5, 0.40), ("b", 1.5, 1.0, 0.1),
                                     ("c", 1.0, 1e-5, 0.2), ("d", 1.0, 0.9, 0.45)):
            rows.append(dict(setting=name, seed=seed, check=5_000, spectral_radius=rho, long_term_norm=norm,
                             clipped_checks=0.0, test_error=err, relative_long_term_norm=norm))
    name, medians, how = analysis.screen_choice(pd.DataFrame(rows), references=("sgr/random",))
    assert name == "a" and medians["kept"].to_dict() == {"a": True, "b": False, "c": False, "d": True}
    assert "2 of 4 variants" in how
    none_kept = pd.DataFrame([r for r in rows if r["setting"] in ("sgr/random", "b", "c")])
    name, _, how = analysis.screen_choice(none_kept, references=("sgr/random",))
    assert name == "b" and "fallback" in how


def test_the_screen_verdict_waits_for_every_setting_then_names_the_variant(tmp_path):
    """A hand-made screen: every setting of the profile with checks at 100..5,000; `pool-8` is
    the one that keeps rho low and the long-term norm up with the lowest test error, `no-clip`
    has a lower error but rho 1.5. Without one seed of `band` the rule waits."""
    import matplotlib.pyplot as plt

    from gradreg import plotting
    from gradreg.experiments import sensitivity
    from gradreg.profiles import SCREEN_REFERENCES, profile_configs, setting_name
    from gradreg.results import config_key
    error = {"no-clip": 0.1, "pool-8": 0.3}
    runs, history = [], []
    for c in profile_configs("screen"):
        name = setting_name(c)
        key = dict(zip(("task", "length", "method", "rule", "seed", "arm"), config_key(c)))
        runs.append(dict(key, solved=False, iterations=5_000, examples=0, seconds=0.0, final_error=0.5,
                         diverged=False, device="cpu", error=""))
        for it in range(100, 5_001, 100):
            history.append(dict(key, iteration=it, test_error=error.get(name, 0.6), grad_norm=0.5,
                                spectral_radius=1.5 if name == "no-clip" else 0.95,
                                minibatch_long_term_norm=1e-6 if name == "lag-80" else 1.0))
    runs, history = pd.DataFrame(runs), pd.DataFrame(history)
    table, chosen, medians, how = sensitivity.screen_verdict(runs, history)
    assert chosen == "pool-8" and not medians.loc["no-clip", "kept"] and not medians.loc["lag-80", "kept"]
    assert set(medians.index) == set(table["setting"]) - set(SCREEN_REFERENCES)
    assert table.loc[table["setting"] == "pool-8", "relative_long_term_norm"].eq(1.0).all()
    fig = plotting.plot_screen(table, 5_000, references=SCREEN_REFERENCES, chosen=chosen)
    plt.close(fig)
    partial = runs[~((runs["rule"] == "band") & (runs["seed"] == 4))]
    _, chosen, _, how = sensitivity.screen_verdict(partial, history)
    assert chosen is None and "band" in how


def test_the_variants_own_control_keeps_its_training_settings_and_drops_the_selections():
    import gradreg.profiles as profiles
    assert profiles.variant_control("adam") == ("sgr", "random", {"optimizer": "adam", "lr": 1e-3})
    assert profiles.variant_control("lag-80") == ("sgr", "random", {})
    assert profiles.variant_control("weighted-ht") == ("sgr", "random", {})
    assert analysis.plan_pairs("sgr/top [optimizer=adam]", "sgr/random [optimizer=adam]")[2:] == [
        ("sgr/top [optimizer=adam]", "sgr/random [optimizer=adam]"), ("sgr/top [optimizer=adam]", "pascanu")]
    assert analysis.plan_pairs("sgr/band")[2] == ("sgr/band", "sgr/random")
