"""The README's headline and docs/results.md: written from the committed results files, never by hand."""
from pathlib import Path

import pandas as pd
import pytest

from gradreg import readme
from gradreg.cli import main
from gradreg.results import COLUMNS, load_results

ROOT = Path(__file__).resolve().parents[1]


def test_the_committed_readme_is_what_the_committed_results_give():
    stale = readme.update_readme(ROOT / "README.md", ROOT / "data" / "results", check=True)
    assert not stale, "README.md's headline or docs/results.md is out of date: run python -m gradreg readme"


def _run(method, rule, seed, solved, length=100, error=0.0):
    return dict(zip(COLUMNS, ("temporal_order", length, method, rule, seed, solved, 50_000, 10**6, 60.0,
                              error, False, "cpu", "")))


def _checks(method, rule, seed, errors, norms, rho=1.0, length=100):
    return pd.DataFrame({"task": "temporal_order", "length": length, "method": method, "rule": rule,
                         "seed": seed, "iteration": [100 * (i + 1) for i in range(len(errors))],
                         "test_error": errors, "train_loss": 1.0, "grad_norm": 0.5,
                         "minibatch_long_term_norm": norms, "spectral_radius": rho})


def test_history_findings_from_hand_written_runs():
    runs = pd.DataFrame([_run("sgr", "top", 0, True), _run("sgr", "random", 0, False, error=0.75),
                         _run("sgr", "random", 1, False, error=0.7), _run("sgd", "", 0, False),
                         _run("clip", "", 0, False), _run("sgd", "", 1, False), _run("clip", "", 1, False),
                         _run("sgr", "top", 0, False, length=50)])
    history = pd.concat([
        _checks("sgr", "top", 0, [0.5, 0.004], [3.0, 60.0], rho=1.5),
        _checks("sgr", "random", 0, [0.75, 0.75], [1e-2, 1e-7], rho=0.8),   # its last check counts
        _checks("sgr", "random", 1, [0.75, 0.70], [1.0, 20.0], rho=1.8),
        _checks("sgd", "", 0, [0.75, 0.74], [1e-5, 1e-5]), _checks("clip", "", 0, [0.75, 0.74], [1e-5, 1e-5]),
        _checks("sgd", "", 1, [0.75, 0.74], [1e-5, 1e-5]), _checks("clip", "", 1, [0.75, 0.73], [1e-5, 1e-5]),
        _checks("sgr", "top", 0, [0.75], [1e-9], length=50)])
    assert readme.identical_to_sgd(history, "temporal_order", 100) == [0]
    (paragraph,) = readme.history_findings(runs, history, min_length=100)     # T = 50 left out
    assert readme.history_findings(runs[runs["method"] != "sgr"], history, 100)[0].startswith(
        "**temporal order, T = 100**, at each run's last check: no SGR run has finished yet.")
    assert paragraph.startswith("**temporal order, T = 100**")
    assert ("2 failed SGR runs: test error 0.70–0.75, ρ(W_rec) 0.8–1.8, minibatch long-term norm 1e-07–20 "
            "(below 0.001 in 1 of them)") in paragraph
    assert "1 solved SGR run: test error 0.00, ρ(W_rec) 1.5, minibatch long-term norm 60" in paragraph
    assert "The clip run of seed 0 was the sgd run of the same seed" in paragraph


def _readme_with_markers(path: Path) -> str:
    """A README with its headline markers, and docs/results.md beside it with the results markers."""
    text = f"# title\n\nbefore\n\n{readme.HEADLINE_BEGIN}\nold headline\n{readme.HEADLINE_END}\n\nafter\n"
    path.write_text(text)
    (path.parent / "docs").mkdir(exist_ok=True)
    (path.parent / "docs" / "results.md").write_text(
        f"# results\n\n{readme.RESULTS_BEGIN}\nold numbers\n{readme.RESULTS_END}\n\nafter\n")
    return text


def test_each_part_is_written_between_its_markers_only(tmp_path):
    path, doc = tmp_path / "README.md", tmp_path / "docs" / "results.md"
    _readme_with_markers(path)
    assert readme.update_readme(path, ROOT / "data" / "results")
    text, full = path.read_text(), doc.read_text()
    assert text.startswith(f"# title\n\nbefore\n\n{readme.HEADLINE_BEGIN}\n")
    assert text.endswith(f"{readme.HEADLINE_END}\n\nafter\n")
    headline = text[text.index(readme.HEADLINE_BEGIN) + len(readme.HEADLINE_BEGIN):text.index(readme.HEADLINE_END)]
    # the committed confirm.csv holds all 48 rows: C1-C4 on it, then the summary's six comparisons
    assert "old headline" not in text and "**Confirmatory verdict**" in headline and headline.count("\n") <= 26
    assert headline.count("hazard ratio of solving") == 4 + 6 and "**Positive control**" in headline
    assert "In words: on 12 seeds never run before, " in headline
    assert "The plan's rule carries **weighted-ht**" in headline and "adam 2 of 5" in headline
    assert full.startswith("# results\n\n") and full.endswith(f"{readme.RESULTS_END}\n\nafter\n")
    assert "old numbers" not in full and "## The reproduction" in full and "## The authors' protocol" in full
    assert not readme.update_readme(path, ROOT / "data" / "results", check=True)   # nothing left to change


def test_a_stale_part_alone_fails_the_check(tmp_path, monkeypatch):
    # stand-ins for the two parts: this is about which files are compared and written, not their numbers
    monkeypatch.setattr(readme, "_load", lambda results_dir: None)
    monkeypatch.setattr(readme, "headline_block", lambda d, _: f"{readme.HEADLINE_BEGIN}\nH\n{readme.HEADLINE_END}")
    monkeypatch.setattr(readme, "results_section", lambda d, _: f"{readme.RESULTS_BEGIN}\nR\n{readme.RESULTS_END}")
    path, doc = tmp_path / "README.md", tmp_path / "docs" / "results.md"
    _readme_with_markers(path)
    assert readme.update_readme(path)
    assert not readme.update_readme(path, check=True)
    for stale in (path, doc):
        fresh = stale.read_text()
        stale.write_text(fresh.replace("\nH\n", "\nold\n").replace("\nR\n", "\nold\n"))
        assert main(["readme", "--check", "--readme", str(path)]) == 1
        assert stale.read_text() != fresh                                # --check writes nothing
        assert main(["readme", "--readme", str(path)]) == 0 and stale.read_text() == fresh


def test_bad_input(tmp_path, capsys):
    path = tmp_path / "README.md"
    path.write_text("# no markers\n")
    with pytest.raises(ValueError, match="markers"):
        readme.update_readme(path, ROOT / "data" / "results")
    _readme_with_markers(path)
    (tmp_path / "docs" / "results.md").write_text("# no markers\n")
    with pytest.raises(ValueError, match="markers"):
        readme.update_readme(path, ROOT / "data" / "results")
    _readme_with_markers(path)
    with pytest.raises(ValueError, match="paper.csv does not exist"):
        readme.update_readme(path, tmp_path)
    (tmp_path / "docs" / "results.md").unlink()
    with pytest.raises(ValueError, match="results.md does not exist"):
        readme.update_readme(path, ROOT / "data" / "results")
    assert main(["readme", "--readme", str(tmp_path / "missing.md")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "missing.md does not exist" in err and "Traceback" not in err


def test_progress_says_how_much_of_a_profile_ran_and_how_to_resume_it_only_while_unfinished():
    runs = load_results(ROOT / "data" / "results" / "paper.csv")
    missing = runs[runs["length"] != 150]
    assert readme._progress(runs, "paper").startswith(f"All {len(runs)} of its runs ran (")
    assert readme._resume_note(runs) == ""
    assert readme._progress(missing, "paper").startswith(f"{len(missing)} of its {len(runs)} runs ran so far (")
    assert "T = 150: 0 of 70" in readme._progress(missing, "paper")
    assert "resumes it with the same command" in readme._resume_note(missing)


def _complete_confirm() -> pd.DataFrame:
    """A made-up confirm.csv with all its rows: every sgr/top run solves, a third of the others."""
    from gradreg.profiles import profile_configs
    from gradreg.results import config_key
    rows = []
    for config in profile_configs("confirm"):
        task, length, method, rule, seed, arm = config_key(config)
        solved = (method, rule) == ("sgr", "top") or seed % 3 == 0
        rows.append(dict(zip(COLUMNS + ("arm",), (task, length, method, rule, seed, solved,
                                                  10_000 + 1_000 * seed if solved else 50_000, 10**6, 60.0,
                                                  0.0 if solved else 0.7, False, "cpu", "", arm))))
    return pd.DataFrame(rows)


def test_a_complete_confirm_profile_puts_its_verdict_and_the_summary_in_the_headline():
    paper = load_results(ROOT / "data" / "results" / "paper.csv")
    authors = load_results(ROOT / "data" / "results" / "authors.csv")
    confirm = _complete_confirm()
    text = readme.headline(paper, authors, confirm=confirm)
    assert "**Confirmatory verdict**" in text and f"{len(confirm)} runs" in text
    assert "Confirmatory runs" not in text and "Exploratory verdict" not in text
    confirmatory, summary = text.split("**Summary**")
    assert confirmatory.count("- temporal order (T = 100): ") == 4        # C1-C4, one family
    assert "sgr/top against sgr/random is **better**: solved 12/12 against 4/12" in confirmatory
    assert "sgr/weighted [importance_weights=True] against pascanu is " in confirmatory
    assert "In words: on 12 seeds never run before, sgr/top solved sooner than sgr/random; " in confirmatory
    assert "has no finished run at T = 100 (section 11.7), so this verdict is conditional" in confirmatory
    control = pd.DataFrame([dict(zip(COLUMNS, (task, 100, "lstm", "", seed, seed < 3, 7_000, 10**5, 60.0,
                                               0.0, False, "cpu", "")))
                            for task in ("adding", "temporal_order") for seed in range(5)])
    assert "The positive control passed at T = 100" in readme.headline(paper, authors, control, confirm)
    failed = control.assign(solved=control["seed"] < 2)
    assert "The positive control did not pass at T = 100" in readme.headline(paper, authors, failed, confirm)
    # the summary pools the paper grid's seeds 0-4 with confirm's 5-16, stratified by length
    solved_top = int(paper.query("task == 'temporal_order' and length >= 100 and method == 'sgr' and "
                                 "rule == 'top'")["solved"].sum())
    assert "- temporal order (T = 100, 150, 200): sgr/top against sgr/random is " in summary
    assert f"solved {solved_top + 12}/27 against " in summary
    assert "- adding (T = 100, 150, 200): sgr/top against pascanu" in summary
    # with one row missing, the exploratory verdict stays and no confirmatory one is drawn
    partial = readme.headline(paper, authors, confirm=confirm.iloc[1:])
    assert "**Exploratory verdict**" in partial and "Confirmatory verdict" not in partial
    assert "47 of 48 written so far" in partial
    long = confirm.iloc[:3].assign(seed=[0, 1, 2], iterations=60_000)     # sgr/top seeds 0-2
    assert ("**Five-times budget** (profile `long`, section 11.8: temporal order, 250,000 iterations; "
            "exploratory): 3 of its 40 runs ran so far (T = 100: 3 of 20, T = 150: 0 of 20)") in \
        readme.headline(paper, authors, confirm=confirm, long=long)
    assert "in its complete arms" not in readme.headline(paper, authors, confirm=confirm, long=long)
    top = confirm[confirm["rule"] == "top"]
    long = top.iloc[:5].assign(seed=range(5), iterations=[50_000, 60_000, 70_000, 80_000, 90_000])
    assert ("in its complete arms, sgr/top at T = 100 solved 1 of 5 runs within 50,000 iterations and 5 of 5 "
            "within 250,000; notebook 06") in readme.headline(paper, authors, confirm=confirm, long=long)
    with pytest.raises(ValueError, match="in both files"):
        readme.analysis.summary_comparisons(paper, paper.iloc[:1], [("sgr/top", "pascanu")])


def test_the_plan_section_shows_confirm_only_when_complete(tmp_path):
    """docs/results.md's part on the plan's runs: progress of every profile, the exploratory
    table, and the confirmatory table and the summary only once confirm has all its rows."""
    import shutil

    from gradreg.results import load_history
    for name in ("paper.csv", "paper-history.csv.gz", "control.csv"):
        shutil.copy(ROOT / "data" / "results" / name, tmp_path / name)
    paper, history = load_results(tmp_path / "paper.csv"), load_history(tmp_path / "paper.csv")
    confirm = _complete_confirm()
    confirm.iloc[1:].to_csv(tmp_path / "confirm.csv", index=False)
    text = readme.plan_section(tmp_path, paper, history)
    assert "| `confirm` | the confirmatory verdict (11.2) | 47 of 48 | 0.8 |" in text
    assert "| `long` | a five-times budget; exploratory (11.8) | none yet | – |" in text
    assert "47 of the 48 rows of `confirm.csv` are written" in text and "**Summary**" not in text
    assert "| temporal_order | 200 | 5 | 5 | 100% [57%, 100%] |" in text          # the control's table
    assert "| temporal_order | 100, 150, 200 | sgr/top | pascanu | 1/15 against 5/15 | 0.13 [0.015, 1.1] |" in text
    confirm.to_csv(tmp_path / "confirm.csv", index=False)
    text = readme.plan_section(tmp_path, paper, history)
    confirmatory = text.split("**Confirmatory**")[1].split("**Summary**")[0]
    assert confirmatory.count("| temporal_order | 100 |") == 4
    assert "| temporal_order | 100 | sgr/top | sgr/random | 12/12 against 4/12 |" in confirmatory
    assert "| temporal_order | 100, 150, 200 | sgr/top | sgr/random | 13/27 against 5/27 |" in text
    # one long run: progress, and no table until some pair has runs in both arms
    confirm.iloc[:1].assign(seed=0, iterations=60_000).to_csv(tmp_path / "long.csv", index=False)
    text = readme.plan_section(tmp_path, paper, history)
    assert ("250,000 iterations; 1 run so far, the 0 in arms with all their runs written enter the tests):\n\n"
            "No comparison yet: no pair of the plan has finished runs") in text
