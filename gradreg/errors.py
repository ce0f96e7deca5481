"""gradreg's own exceptions, in one place. Bad input raises the built-in ValueError or TypeError
(docs/errors.md); these name the faults that the command line tells apart by exit code.

    EnvironmentFault      exit 1: the machine or its surroundings, not the arguments
      ResultsLocked         the results file is being written by another sweep
      SchedulerUnreachable  nothing answers at the Dask scheduler's address
    NotebookFailed        exit 1: a notebook's cell raised
    UsageError            exit 2: a bad argument of the command line
      ResultsMissing        a results file to read that is not there
    BadRow                a results line that is not a row (gradreg.results names the line)
"""
from __future__ import annotations


class EnvironmentFault(OSError):
    """A fault of the machine or its surroundings, not of the arguments: a file that cannot be
    written, a scheduler that cannot be reached, a lock held by another process. Its message
    is one line that names the path or address and what to do."""


class ResultsLocked(EnvironmentFault):
    """The results file is being written by another sweep."""


class SchedulerUnreachable(EnvironmentFault, ConnectionError):
    """Nothing answers at the scheduler address within `gradreg.sweep.SCHEDULER_TIMEOUT` seconds."""


class NotebookFailed(RuntimeError):
    """A notebook's cell raised: the message names the notebook, the cell and the error."""


class UsageError(ValueError):
    """A bad argument of the command line (exit 2)."""


class ResultsMissing(UsageError, FileNotFoundError):
    """A results file to read that is not there (the user's path: exit 2)."""


class BadRow(ValueError):
    """One line of a results file that does not parse into a row; the message says why, and the
    reader adds the file and the line number (or drops a cut-short last line)."""
