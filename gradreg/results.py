"""The results file of a sweep (one CSV row per finished run) and its check histories.

Results file
------------
Columns, always in this order: task, length, method, rule, seed, solved, iterations,
examples, seconds, final_error, diverged, device, error (COLUMNS); a sweep with any run that is
not of the pascanu protocol (or stops by validation) writes AUTHORS_COLUMNS, the same followed by
test_success (%, the success rate of the run's result network on its 10,000 test sequences).
`load_results` reads either header and returns the file's own columns. The key of a run is
(task, length, method, rule, seed), rule being "" for methods other than sgr; other
settings are not part of the key, so use one results file per profile (or per
variant). `error` is "" for a run that finished, else the one-line message of the
exception it raised (then solved=False, diverged=False, iterations=examples=0,
final_error=nan); a failed run counts as done: delete its line to run it again.

Guarantee: a kill at any instant (SIGKILL, power loss after fsync) never leaves a half
row among the rows. The header is written to a temporary file, fsynced and renamed
over the results path (os.replace), so the file exists with its header or not at all.
Each row is one complete CSV line, fields free of newlines, appended by the single
process that runs the sweep with os.write on a descriptor opened with O_APPEND, then
fsynced. If a write is ever cut short, the fragment can only be the file's last line,
with no newline after it. A last line without its newline that parses into all columns
is a complete row (an editor may leave one): it is kept, and the next sweep adds
the newline. Only a line that does not parse into all columns is a half row:
`load_results` drops it, and the next sweep truncates it away before appending.
Any other line that does not parse (edited by hand, bytes that are not UTF-8) is an
error naming the file and the line number: fix or delete that line. Rows are de-duplicated
by key, keeping the first, and a rerun skips every key already in the file, so an interrupted
sweep resumes with no lost and no duplicated runs. A sweep holds an advisory lock (flock) on
the file so two sweeps cannot append to it at once (the second raises `ResultsLocked`).

History file
------------
Beside NAME.csv, NAME-history.csv.gz (`history_path`) holds every run's check history (one
row per check, HISTORY_COLUMNS): one gzip member per run, appended before the run's results
row, with the same no-half-row guarantee (`HistoryFile`); `load_history` reads it.

To run some keys again (after a change of the code that their rows no longer follow),
`drop_runs` takes their rows and histories out of both files, each rewritten atomically (a
temporary file renamed over it) under the sweep's lock; the sweep then runs them as new.

Faults of the environment (a file that cannot be written, the lock held by another sweep)
raise `EnvironmentFault` (an OSError) with a one-line message; bad arguments (a path that is
a directory or lies under a file, a corrupt results file) raise ValueError.
"""
from __future__ import annotations

import contextlib
import csv
import errno
import gzip
import io
import math
import os
import stat
import warnings
import zlib
from pathlib import Path

import pandas as pd

from .config import TrainConfig
from .errors import BadRow, EnvironmentFault, ResultsLocked

__all__ = ["COLUMNS", "AUTHORS_COLUMNS", "KEY", "HISTORY_COLUMNS", "VALIDATION_HISTORY_COLUMNS",
           "results_columns", "history_columns", "file_columns", "with_arm", "config_key", "row_key", "rows_of",
           "ResultsFile",
           "HistoryFile", "history_path", "load_results", "load_history", "empty_results", "drop_runs",
           "EnvironmentFault", "ResultsLocked"]


COLUMNS = ("task", "length", "method", "rule", "seed", "solved", "iterations", "examples",
           "seconds", "final_error", "diverged", "device", "error")
#: A row's key. `arm` (TrainConfig.arm: the settings that differ from the protocol's, "" for
#: none) is a column only of the files whose profile varies them; in the others it is "".
KEY = ("task", "length", "method", "rule", "seed", "arm")
#: The columns of a results file of the authors' protocol: COLUMNS, then test_success (%).
AUTHORS_COLUMNS = COLUMNS + ("test_success",)
#: The column that a file whose runs have arms adds at the end.
ARM = ("arm",)


def config_key(config: TrainConfig) -> tuple:
    """(task, length, method, rule, seed, arm), rule "" unless method is sgr (as TrainResult.to_row)."""
    return (config.task, int(config.length), config.method,
            config.rule if config.method == "sgr" else "", int(config.seed), config.arm)


def row_key(row) -> tuple:
    arm = row.get("arm", "")
    return (str(row["task"]), int(row["length"]), str(row["method"]), str(row["rule"]),
            int(row["seed"]), "" if arm is None or arm != arm else str(arm))


def results_columns(configs, arms: bool | None = None) -> tuple[str, ...]:
    """The columns of the results file of these configs: AUTHORS_COLUMNS if any of them is not
    of the pascanu protocol or stops by validation, else COLUMNS (the committed paper.csv's);
    then the `arm` column if `arms` (None: if any config has an arm)."""
    configs = list(configs)
    base = COLUMNS
    if any(c.protocol != "pascanu" or c.stopping != "test" for c in configs):
        base = AUTHORS_COLUMNS
    if arms is None:
        arms = any(c.arm for c in configs)
    return base + ARM if arms else base


def history_columns(columns) -> tuple[str, ...]:
    """The history columns that go with a results file's columns."""
    columns = tuple(columns)
    arm = ARM if columns[-1:] == ARM else ()
    base = columns[:len(columns) - len(arm)]
    return (HISTORY_COLUMNS if base == COLUMNS else HISTORY_COLUMNS + VALIDATION_HISTORY_COLUMNS) + arm


def file_columns(path) -> tuple[str, ...] | None:
    """The columns of an existing results file by its header, or None (no file, empty, not one)."""
    try:
        with open(path, "rb") as fh:
            first = fh.readline(4096).rstrip(b"\n")
    except OSError:
        return None
    return _header_columns(first)


def _encode(row: dict, columns=COLUMNS) -> bytes:
    values = []
    for c in columns:
        v = row.get(c, "")
        if isinstance(v, str):
            v = " ".join(v.split()) if c == "error" else v.replace("\r", " ").replace("\n", " ")
        elif isinstance(v, float) and math.isnan(v):
            v = "nan"
        values.append(v)
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(values)
    return buf.getvalue().encode("utf-8")


def _header(columns=COLUMNS) -> bytes:
    return _encode(dict(zip(columns, columns)), columns)


_HEADER = _header(COLUMNS)
_HEADERS = {_header(cols).decode().strip(): cols
            for cols in (COLUMNS, AUTHORS_COLUMNS, COLUMNS + ARM, AUTHORS_COLUMNS + ARM)}
_INT_COLUMNS = ("length", "seed", "iterations", "examples")
_FLOAT_COLUMNS = ("seconds", "final_error", "test_success")
_BOOL_COLUMNS = ("solved", "diverged")
_BOM = b"\xef\xbb\xbf"   # an editor's "UTF-8 with BOM" (Excel's CSV): harmless, ignored


def _header_columns(line: bytes):
    """The columns whose header `line` (without its newline) is, or None."""
    text = line.rstrip(b"\r").removeprefix(_BOM).decode("utf-8", errors="replace")
    return _HEADERS.get(text)


def _field(column: str, text: str):
    if column in _INT_COLUMNS:
        value = None
        with contextlib.suppress(ValueError):
            value = int(text)
        if value is None:
            with contextlib.suppress(ValueError, OverflowError):
                number = float(text)        # 50.0, as a spreadsheet or pandas may write it
                if number.is_integer():
                    value = int(number)
        if value is None or not -2 ** 63 <= value < 2 ** 63:
            raise BadRow(f"{column} {text!r} is not an integer")
        return value
    if column in _FLOAT_COLUMNS:
        if text.strip() == "":
            return float("nan")
        try:
            return float(text)
        except ValueError:
            raise BadRow(f"{column} {text!r} is not a number") from None
    if column in _BOOL_COLUMNS:
        if text.strip().lower() in ("true", "false"):
            return text.strip().lower() == "true"
        raise BadRow(f"{column} {text!r} is not True or False")
    return text


def _parse_row(line: bytes, columns=COLUMNS) -> dict:
    """One line of a results file (without its newline) as a typed row; BadRow says why not."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRow(f"bytes that are not UTF-8 text at column {exc.start + 1}") from None
    try:
        fields = next(csv.reader([text.rstrip("\r")], strict=True))
    except (csv.Error, StopIteration) as exc:
        raise BadRow(f"not a CSV row ({exc})") from None
    if len(fields) != len(columns):
        raise BadRow(f"{len(fields)} fields where a row has {len(columns)} ({', '.join(columns)})")
    return {c: _field(c, v) for c, v in zip(columns, fields)}


def _parses(line: bytes, columns=COLUMNS) -> bool:
    try:
        _parse_row(line, columns)
    except BadRow:
        return False
    return True


def _show(line: bytes, limit: int = 60) -> str:
    text = line.decode("utf-8", errors="backslashreplace")
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _not_a_results_file(path, header: bytes) -> ValueError:
    return ValueError(f"{path} is not a results file: header {_show(header, 200)}, expected one of "
                      + " or ".join(repr(h) for h in _HEADERS) + "; give a new file name or the "
                      "results file of a sweep")


def _parse_results(path, data: bytes):
    """(columns, rows) of a results file's bytes. A last line without newline is a row when it
    parses into all columns, else a half row (dropped); any other bad line raises ValueError
    naming the file and the line number."""
    if not data:
        return COLUMNS, []
    lines = data.split(b"\n")
    tail = lines.pop()                          # b"" when the file ends with its newline
    for number, line in enumerate(lines, start=1):
        if b"\0" in line:      # csv would read it as text: a damaged file must not pass for results
            raise ValueError(f"{path}, line {number}: a NUL byte; this is not a results file as a sweep "
                             "writes it (a damaged copy?); restore it or fix that line")
    header = lines[0] if lines else tail
    columns = _header_columns(header)
    if columns is None:
        raise _not_a_results_file(path, header)
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():                    # an empty line (an editor's): nothing to read
            continue
        try:
            rows.append(_parse_row(line, columns))
        except BadRow as exc:
            raise ValueError(f"{path}, line {number}: {exc}: {_show(line)}; fix or delete that line "
                             "(a deleted run is redone by the next sweep)") from None
    if lines and tail.strip():
        with contextlib.suppress(BadRow):      # a half row (a cut-short write): dropped
            rows.append(_parse_row(tail, columns))
    return columns, rows


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _replace_file(path: Path, data: bytes) -> None:
    """Write `data` to a temporary file beside `path`, fsync it and rename it over `path` (a
    symbolic link keeps pointing at the file it names)."""
    target = path.resolve()
    tmp = target.parent / f".{target.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
    try:
        with open(tmp, "xb") as f:
            with contextlib.suppress(FileNotFoundError):    # the new file keeps the old one's permissions
                os.fchmod(f.fileno(), stat.S_IMODE(os.stat(target).st_mode))
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(target.parent)


def _path_error(path: Path, exc: OSError, what: str) -> Exception:
    """The one-line error for an OSError raised while creating or opening `path`: ValueError
    when the path itself is wrong (a directory, under a file, too long), EnvironmentFault
    when the machine refuses (permissions, read-only or full filesystem, ...)."""
    path = Path(path)
    code = getattr(exc, "errno", None)
    if path.is_dir():
        return ValueError(f"{what} {path} is a directory; give a file path, e.g. {path / 'results.csv'}")
    if code in (errno.ENOTDIR, errno.EEXIST, errno.ENOENT):
        blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
        if blocker is not None:
            return ValueError(f"{what} {path} cannot be created: {blocker} is a file, not a directory; "
                              "give another path")
    if code == errno.ENAMETOOLONG:
        return ValueError(f"{what} path is too long: {str(path)[:80]}...; give a shorter path")
    reason = exc.strerror or str(exc)
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        hint = "make it writable or give a path in a writable directory"
    elif code in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        hint = "free some disk space, then rerun the same command"
    else:
        hint = "check the path and the filesystem"
    return EnvironmentFault(f"cannot write {what} {path}: {reason}; {hint}")


class ResultsFile:
    """Appends rows to a results CSV; see the module docstring for the guarantee."""

    def __init__(self, path, columns=COLUMNS):
        self.path = Path(path)
        self.columns = tuple(columns)
        self.header = _header(self.columns)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self.path.is_dir():
                raise IsADirectoryError(errno.EISDIR, "Is a directory", str(self.path))
            if self.path.exists() and not self.path.is_file():   # /dev/null, a FIFO, a socket
                raise ValueError(f"results file {self.path} is not a regular file; give a file path")
            if not self.path.exists() or self.path.stat().st_size == 0:
                self._write_header()
            self.fd = os.open(self.path, os.O_RDWR | os.O_APPEND)
        except OSError as exc:
            raise _path_error(self.path, exc, "results file") from None
        try:
            self._lock()
            self._check_header()
            self._repair_tail()
        except BaseException:
            os.close(self.fd)
            raise

    def _write_header(self):
        _replace_file(self.path, self.header)

    def _lock(self):
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock
            return
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ResultsLocked(f"{self.path} is being written by another sweep; wait for it to end "
                                "(its rows are kept) or give another results file") from None
        except OSError:  # filesystem without flock support: go on unlocked
            pass

    def _check_header(self):
        first = os.pread(self.fd, len(self.header) + len(_BOM) + 1, 0).split(b"\n", 1)[0]
        if _header_columns(first) != self.columns:
            raise ValueError(f"{self.path} is not a results file of this version and protocol: its "
                             f"first line must be {self.header.decode().strip()!r}; give a new file "
                             "name or the results file of a sweep of the same protocol")

    def _repair_tail(self):
        """A last line without its newline: a complete row (or the header) gets its newline,
        a half row (one that does not parse into all columns) is truncated away."""
        size = os.fstat(self.fd).st_size
        if size == 0 or os.pread(self.fd, 1, size - 1) == b"\n":
            return
        data = os.pread(self.fd, size, 0)
        start = data.rfind(b"\n") + 1
        if start == 0 or _parses(data[start:], self.columns):
            newline = memoryview(b"\n")
            while newline:
                newline = newline[os.write(self.fd, newline):]
        else:
            os.ftruncate(self.fd, start)
        os.fsync(self.fd)

    def append(self, row: dict) -> None:
        if row.get("arm") and "arm" not in self.columns:
            raise ValueError(f"{self.path} has no arm column for the run of arm {row['arm']!r}; give a new file")
        data = memoryview(_encode(row, self.columns))
        try:
            while data:  # one write in practice; a cut-short write leaves only a trailing fragment
                data = data[os.write(self.fd, data):]
            os.fsync(self.fd)
        except OSError as exc:
            raise _path_error(self.path, exc, "results file") from None

    def close(self):
        if getattr(self, "history", None) is not None:
            self.history.close()
        os.close(self.fd)  # also releases the lock


HISTORY_COLUMNS = KEY[:5] + ("iteration", "examples", "seconds", "train_loss", "test_error", "test_counted",
                         "grad_norm", "minibatch_long_term_norm", "spectral_radius",
                         "pool_score_q10", "pool_score_q50", "pool_score_q90")
#: What the histories of runs that stop by validation add (gradreg.engine.VALIDATION_COLUMNS).
VALIDATION_HISTORY_COLUMNS = ("validation_error", "validation_mse", "kept")


def history_path(results) -> Path:
    """Where the check histories of a results file live: NAME.csv -> NAME-history.csv.gz."""
    results = Path(results)
    return results.with_name(results.stem + "-history.csv.gz")


_GZIP_MAGIC = b"\x1f\x8b\x08"


def _gzip_member(view, pos: int):
    """(end, text) of the gzip member at `pos`; "short" if the data ends inside it (a cut-short
    write), None if it is corrupt (not gzip, a bad CRC, text that is not UTF-8)."""
    d = zlib.decompressobj(wbits=31)
    parts, p = [], pos
    try:
        while not d.eof:                         # in chunks: the rest of the file is not copied
            if p >= len(view):
                return "short"
            chunk = view[p:p + 65536]
            p += len(chunk)
            parts.append(d.decompress(chunk))
        return p - len(d.unused_data), b"".join(parts).decode("utf-8")
    except (zlib.error, UnicodeDecodeError):
        return None


def _scan_gzip(data: bytes):
    """The members of a history file: ([(start, end, text)], [(start, end)] of corrupt parts,
    start of a cut-short last member or None). After a corrupt part, the scan goes on at the
    next gzip header that starts a good member, so one damaged member costs no others."""
    view, pos = memoryview(data), 0
    members, corrupt = [], []
    while pos < len(data):
        found = _gzip_member(view, pos)
        if isinstance(found, tuple):
            members.append((pos, found[0], found[1]))
            pos = found[0]
            continue
        nxt = data.find(_GZIP_MAGIC, pos + 1)
        while nxt != -1 and not isinstance(_gzip_member(view, nxt), tuple):
            nxt = data.find(_GZIP_MAGIC, nxt + 1)
        if nxt == -1 and found == "short":
            return members, corrupt, pos        # only a cut-short write leaves this: the last member
        corrupt.append((pos, len(data) if nxt == -1 else nxt))
        pos = len(data) if nxt == -1 else nxt
    return members, corrupt, None


def _warn_corrupt(path, corrupt) -> None:
    if corrupt:
        parts = ", ".join(f"{a}-{b}" for a, b in corrupt[:3]) + (", ..." if len(corrupt) > 3 else "")
        warnings.warn(f"{path}: {len(corrupt)} corrupt part(s) skipped (bytes {parts}); the check "
                      "histories in them are lost, the results rows are not", RuntimeWarning, stacklevel=3)


class HistoryFile:
    """The check histories of a sweep's runs: one gzip member per run (a CSV with its header,
    HISTORY_COLUMNS), appended as one write with O_APPEND and fsynced, before the run's results
    row. A cut-short member can only be the last one: it is truncated away on open and skipped
    by `load_history`. A corrupt part elsewhere (damaged on disk, edited) is left in place with a
    warning and skipped by `load_history`. Guarded by the results file's lock."""

    def __init__(self, path, columns=HISTORY_COLUMNS):
        self.path = Path(path)
        self.columns = tuple(columns)
        try:
            if self.path.is_dir():
                raise IsADirectoryError(errno.EISDIR, "Is a directory", str(self.path))
            self.fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o666)
        except OSError as exc:
            raise _path_error(self.path, exc, "history file") from None
        try:
            data = os.pread(self.fd, os.fstat(self.fd).st_size, 0)
            _, corrupt, short = _scan_gzip(data)
            _warn_corrupt(self.path, corrupt)
            if short is not None:
                os.ftruncate(self.fd, short)
                os.fsync(self.fd)
        except BaseException:
            os.close(self.fd)
            raise

    def append(self, key: tuple, records: list[dict]) -> None:
        if key[5:] and key[5] and "arm" not in self.columns:
            raise ValueError(f"{self.path} has no arm column for the run of arm {key[5]!r}; give a new file")
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(self.columns)
        for rec in records:
            values = dict(zip(KEY, key), **rec)
            writer.writerow(["nan" if isinstance(v, float) and math.isnan(v) else v
                             for v in (values.get(c, "nan") for c in self.columns)])
        data = memoryview(gzip.compress(buf.getvalue().encode("utf-8"), mtime=0))
        try:
            while data:
                data = data[os.write(self.fd, data):]
            os.fsync(self.fd)
        except OSError as exc:
            raise _path_error(self.path, exc, "history file") from None

    def close(self):
        os.close(self.fd)


def _read_member(text: str, nrows: int | None = None) -> pd.DataFrame:
    """One history member's CSV text as a table (its first `nrows` rows)."""
    numeric = HISTORY_COLUMNS[5:] + VALIDATION_HISTORY_COLUMNS[:2]
    return pd.read_csv(io.StringIO(text), dtype={"rule": str, "arm": str}, keep_default_na=False, nrows=nrows,
                       na_values={c: ["nan", "NaN", ""] for c in numeric})


#: The column sets a history member may have (without and with validation, without and with arm)
_HISTORY_LAYOUTS = tuple(h + a for h in (HISTORY_COLUMNS, HISTORY_COLUMNS + VALIDATION_HISTORY_COLUMNS)
                         for a in ((), ARM))


def load_history(path) -> pd.DataFrame:
    """The check histories of a sweep, one row per check (HISTORY_COLUMNS, and the validation
    columns when its runs stopped by validation): `path` is the results CSV or its
    `-history.csv.gz`. A run written more than once (rerun after its row was deleted, or killed
    between its history and its row) keeps its last history. A cut-short last member is
    skipped; corrupt parts and members that are not a history table are skipped with a
    RuntimeWarning."""
    path = Path(path)
    if not path.name.endswith(".gz"):
        path = history_path(path)
    if path.is_dir():
        raise ValueError(f"history file {path} is a directory; give the results CSV or its -history.csv.gz")
    members, corrupt, _ = _scan_gzip(path.read_bytes())
    _warn_corrupt(path, corrupt)
    blocks, bad = {}, 0
    columns = HISTORY_COLUMNS
    for _, _, text in members:
        try:
            block = _read_member(text)
            if tuple(block.columns) not in _HISTORY_LAYOUTS:
                raise ValueError("columns")
            block = with_arm(block)
            if len(block):
                blocks[row_key(block.iloc[0])] = block
                if "validation_error" in block.columns:
                    columns = HISTORY_COLUMNS + VALIDATION_HISTORY_COLUMNS
        except (ValueError, KeyError, pd.errors.ParserError):
            bad += 1
    if bad:
        warnings.warn(f"{path}: {bad} member(s) that are not a check history skipped", RuntimeWarning,
                      stacklevel=2)
    if not blocks:
        return pd.DataFrame({c: [] for c in HISTORY_COLUMNS + ARM})
    return pd.concat(blocks.values(), ignore_index=True).reindex(columns=list(columns + ARM))


def empty_results(columns=COLUMNS) -> pd.DataFrame:
    return _typed(pd.DataFrame({c: [] for c in columns}))


def _typed(df: pd.DataFrame) -> pd.DataFrame:
    df = with_arm(df)
    for c in ("task", "method", "rule", "device", "error", "arm"):
        df[c] = df[c].fillna("").astype(str)
    for c in ("length", "seed", "iterations", "examples"):
        df[c] = df[c].astype("int64")
    for c in ("seconds", "final_error", "test_success"):
        if c in df:
            df[c] = df[c].astype("float64")
    for c in ("solved", "diverged"):
        df[c] = df[c].map(lambda v: v if isinstance(v, bool) else str(v) == "True").astype(bool)
    return df


def load_results(path) -> pd.DataFrame:
    """The rows of a results file, typed, with the file's own columns (COLUMNS, or
    AUTHORS_COLUMNS for the authors' protocol) and `arm` ("" where the file has no such
    column), de-duplicated by key (the first kept). A last
    line without its newline is kept when it parses into all columns, else dropped (a half
    row). Raises FileNotFoundError if there is no file, ValueError naming the file and the line
    for a line that does not parse."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except IsADirectoryError:
        raise ValueError(f"results file {path} is a directory; give a file path") from None
    columns, rows = _parse_results(path, data)
    if not rows:
        return empty_results(columns)
    df = _typed(pd.DataFrame(rows, columns=list(columns)))
    return df.drop_duplicates(list(KEY), keep="first").reset_index(drop=True)


def load_profiles(results_dir, names) -> dict:
    """The results files of the profiles `names` that exist in `results_dir`: name -> (its rows,
    as `load_results` gives them; its check history, or None where it has no history file)."""
    found = {}
    for name in names:
        path = Path(results_dir) / f"{name}.csv"
        if path.is_file():
            history = load_history(path) if history_path(path).is_file() else None
            found[name] = (load_results(path), history)
    return found


def with_arm(df: pd.DataFrame) -> pd.DataFrame:
    """`df` with an `arm` column ("" where it had none): a table made by hand, or by an older
    version, keyed like a results file's."""
    if "arm" in df:
        return df
    return df.assign(arm="")


def rows_of(df: pd.DataFrame, keys: set[tuple]) -> pd.DataFrame:
    """The rows of a results table whose key is in `keys` (an empty table stays a table)."""
    mask = [k in keys for k in map(row_key, df[list(KEY)].to_dict("records"))]
    return df[pd.Series(mask, index=df.index, dtype=bool)]


def drop_runs(results, keys) -> tuple[int, int]:
    """Take the runs of `keys` ((task, length, method, rule, seed[, arm]) tuples) out of a results file
    and its history file, so that the next sweep runs them again; returns (rows, histories)
    removed. Each file is rewritten whole and atomically (its other bytes unchanged, corrupt
    parts of the history included) while the results file's lock is held: a sweep that is
    writing it makes this raise `ResultsLocked`. A missing results file is a ValueError."""
    path = Path(results)
    if not path.is_file():
        raise ValueError(f"results file {path} does not exist; give the CSV of a sweep")
    keys = {(str(k[0]), int(k[1]), str(k[2]), str(k[3]), int(k[4]), str(k[5]) if len(k) > 5 else "")
            for k in keys}
    columns, _ = _parse_results(path, path.read_bytes())
    out = ResultsFile(path, columns)             # the lock, and a repaired last line
    try:
        lines = path.read_bytes().splitlines(keepends=True)
        kept = lines[:1] + [line for line in lines[1:]
                            if not line.strip() or row_key(_parse_row(line.rstrip(b"\r\n"), columns)) not in keys]
        rows = len(lines) - len(kept)
        histories = 0
        hist = history_path(path)
        if hist.is_file():
            data = hist.read_bytes()
            members, _, _ = _scan_gzip(data)
            cut = []
            for start, end, text in members:
                with contextlib.suppress(ValueError, KeyError, pd.errors.ParserError):  # not a history: kept
                    block = _read_member(text, nrows=1)
                    if len(block) and row_key(block.iloc[0]) in keys:
                        cut.append((start, end))
            if cut:
                pieces, pos = [], 0
                for start, end in cut:
                    pieces.append(data[pos:start])
                    pos = end
                pieces.append(data[pos:])
                _replace_file(hist, b"".join(pieces))
                histories = len(cut)
        if rows:
            _replace_file(path, b"".join(kept))
    finally:
        out.close()
    return rows, histories
