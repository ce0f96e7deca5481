"""Run tables: Wilson intervals, Fisher's exact test, the summary and the comparisons."""
import io
import math

import numpy as np
import pandas as pd
import pytest

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
    assert list(df.columns) == list(COLUMNS) + ["arm"]
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
