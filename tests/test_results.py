"""gradreg.results: results files edited by hand or cut short (a last row without newline, CRLF, a
byte-order mark, corrupt lines located by number, half rows dropped), paths that are not
regular files, and damaged history files (a corrupt member costs no other)."""
from __future__ import annotations

import gzip
import math
import os

import pytest
from helpers import HEADER, ROW_CLIP, ROW_SGD, ROW_SGR, one_line, run_cli

from gradreg.results import (
    AUTHORS_COLUMNS,
    COLUMNS,
    HISTORY_COLUMNS,
    KEY,
    HistoryFile,
    ResultsFile,
    history_path,
    load_history,
    load_profiles,
    load_results,
)

# ------------------------------------------------------------------ the results file


def test_complete_last_row_without_newline_is_kept_and_the_newline_added(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text(HEADER + ROW_SGD + "\n" + ROW_SGR)           # an editor dropped the final newline
    df = load_results(path)
    assert [tuple(r) for r in df[list(KEY)].itertuples(index=False)] == [
        ("temporal_order", 10, "sgd", "", 0, ""), ("temporal_order", 10, "sgr", "top", 0, "")]
    out = ResultsFile(path)
    out.append({c: v for c, v in zip(COLUMNS, ROW_CLIP.split(","))})
    out.close()
    assert path.read_text() == HEADER + ROW_SGD + "\n" + ROW_SGR + "\n" + ROW_CLIP + "\n"
    assert len(load_results(path)) == 3


def test_half_row_is_dropped_and_truncated(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text(HEADER + ROW_SGD + "\n" + "temporal_order,10,clip,,0,False,10")
    assert len(load_results(path)) == 1
    ResultsFile(path).close()
    assert path.read_text() == HEADER + ROW_SGD + "\n"
    # a header without its newline (and nothing else) is completed, not truncated
    path.write_text(HEADER.strip())
    ResultsFile(path).close()
    assert path.read_text() == HEADER


@pytest.mark.parametrize("bad,what", [
    (b"hello world", "1 fields where a row has 13"),
    (b"\xff\xfe", "not UTF-8"),
    (ROW_SGD.replace("True", "yes").encode(), "solved 'yes' is not True or False"),
    (ROW_SGD.replace(",200,", ",lots,").encode(), "iterations 'lots' is not an integer"),
    (ROW_SGD.replace(",0,True", ",1e30,True").encode(), "seed '1e30' is not an integer"),
    (b'temporal_order,10,sgd,,0,True,200,4000,0.5,0.0,False,cpu,"unclosed', "not a CSV row"),
])
def test_corrupt_row_is_located(tmp_path, capsys, bad, what):
    path = tmp_path / "r.csv"
    path.write_bytes((HEADER + ROW_SGD + "\n").encode() + bad + b"\n" + (ROW_SGR + "\n").encode())
    with pytest.raises(ValueError) as info:
        load_results(path)
    message = str(info.value)
    assert message.startswith(f"{path}, line 3: ") and what in message and "fix or delete that line" in message
    assert "\n" not in message
    before = path.read_bytes()
    code, lines = run_cli(capsys, "sweep", "--profile", "smoke", "--results", str(path))
    one_line(lines, code, 2, f"{path}, line 3")
    assert path.read_bytes() == before                          # nothing touched


def test_hand_edited_files_that_are_still_readable(tmp_path):
    path = tmp_path / "r.csv"
    # CRLF line endings, a byte-order mark, an empty line, spreadsheet-style TRUE and 200.0
    text = ("\ufeff" + HEADER.replace("\n", "\r\n") + ROW_SGD + "\r\n\r\n" +
            ROW_CLIP.replace("False", "FALSE").replace(",300,", ",300.0,") + "\r\n")
    path.write_bytes(text.encode("utf-8"))
    df = load_results(path)
    assert len(df) == 2 and df["iterations"].tolist() == [200, 300] and df["iterations"].dtype == "int64"
    assert df["solved"].tolist() == [True, False]
    out = ResultsFile(path)                                     # the sweep accepts it and appends
    out.append({c: v for c, v in zip(COLUMNS, ROW_SGR.split(","))})
    out.close()
    assert len(load_results(path)) == 3


def test_results_path_that_is_not_a_regular_file_is_refused(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match="not a regular file"):
        ResultsFile(fifo)
    assert fifo.exists() and not fifo.is_file()                  # left as it was (think /dev/null)


def test_header_of_an_empty_results_file_behind_a_symlink_keeps_the_link(tmp_path):
    real = tmp_path / "real.csv"
    real.write_text("")
    link = tmp_path / "link.csv"
    link.symlink_to(real)
    ResultsFile(link).close()
    assert link.is_symlink() and real.read_text() == HEADER


def test_foreign_header_says_what_to_do(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="not a results file.*give a new file name"):
        load_results(path)
    with pytest.raises(ValueError, match="is a directory"):
        load_results(tmp_path)


def test_authors_results_file_edited_by_hand(tmp_path):
    """The authors' protocol writes AUTHORS_COLUMNS (COLUMNS + test_success): the same rules."""
    path = tmp_path / "authors.csv"
    header = ",".join(AUTHORS_COLUMNS) + "\n"
    path.write_text(header + ROW_SGD + ",99.5\n" + ROW_SGR + ",")        # last row: no newline
    df = load_results(path)
    assert list(df.columns) == list(AUTHORS_COLUMNS) + ["arm"] and len(df) == 2
    assert df["test_success"].iloc[0] == 99.5 and math.isnan(df["test_success"].iloc[1])
    ResultsFile(path, AUTHORS_COLUMNS).close()
    assert path.read_text().endswith(ROW_SGR + ",\n")
    with pytest.raises(ValueError, match="not a results file of this version and protocol"):
        ResultsFile(path)                                          # a pascanu sweep on it
    path.write_text(header + ROW_SGD + "\n")                         # 13 fields where 14 belong
    with pytest.raises(ValueError, match=r"line 2: 13 fields where a row has 14"):
        load_results(path)


# ------------------------------------------------------------------ the history file


def _member(seed: int) -> bytes:
    cols = ",".join(HISTORY_COLUMNS)
    row = f"temporal_order,10,sgd,,{seed},100,2000,1.0,0.5,0.25,2000,1.0,nan,0.9,nan,nan,nan"
    return gzip.compress(f"{cols}\n{row}\n".encode(), mtime=0)


def test_history_cut_short_is_truncated_and_a_corrupt_member_costs_no_other(tmp_path):
    results = tmp_path / "r.csv"
    hist = history_path(results)
    good = [_member(s) for s in range(4)]
    damaged = bytearray(good[1])
    damaged[len(damaged) // 2] ^= 0xFF                          # a flipped byte inside member 1
    hist.write_bytes(good[0] + bytes(damaged) + good[2] + good[3][:-7])   # member 3 cut short
    with pytest.warns(RuntimeWarning, match="1 corrupt part"):
        df = load_history(results)
    assert sorted(df["seed"]) == [0, 2]
    with pytest.warns(RuntimeWarning, match="1 corrupt part"):
        h = HistoryFile(hist)
    h.append(("temporal_order", 10, "sgd", "", 9), [{"iteration": 1, "examples": 20}])
    h.close()
    data = hist.read_bytes()
    assert data.startswith(good[0] + bytes(damaged) + good[2])   # nothing before the cut lost
    with pytest.warns(RuntimeWarning):
        assert sorted(load_history(results)["seed"]) == [0, 2, 9]


def test_load_profiles_gives_the_files_that_exist_with_their_histories(tmp_path):
    (tmp_path / "confirm.csv").write_text(HEADER + ROW_SGD + "\n" + ROW_SGR + "\n")
    history_path(tmp_path / "confirm.csv").write_bytes(_member(0))
    (tmp_path / "long.csv").write_text(HEADER + ROW_SGD + "\n")      # rows, but no history file yet
    found = load_profiles(tmp_path, ("control", "confirm", "long"))
    assert sorted(found) == ["confirm", "long"]                       # no control.csv: left out
    runs, history = found["confirm"]
    assert len(runs) == 2 and list(history["seed"]) == [0]
    assert len(found["long"][0]) == 1 and found["long"][1] is None


def test_history_that_is_not_gzip_is_kept_not_truncated(tmp_path):
    hist = tmp_path / "r-history.csv.gz"
    hist.write_text("iteration,loss\n1,2\n")                    # someone saved it as plain text
    with pytest.warns(RuntimeWarning, match="corrupt"):
        HistoryFile(hist).close()
    assert hist.read_text() == "iteration,loss\n1,2\n"
    (tmp_path / "d-history.csv.gz").mkdir()
    with pytest.raises(ValueError, match="is a directory"):
        HistoryFile(tmp_path / "d-history.csv.gz")


def test_history_member_of_another_table_is_skipped(tmp_path):
    hist = tmp_path / "r-history.csv.gz"
    hist.write_bytes(_member(0) + gzip.compress(b"a,b\n1,2\n", mtime=0))
    with pytest.warns(RuntimeWarning, match="not a check history"):
        assert load_history(hist)["seed"].tolist() == [0]
