"""The errors crossdata raises on purpose.

Each expected failure has its own class and a message a user can act on; the CLI prints those
as one line and exits non-zero, while anything else is a bug and keeps its stack trace.
"""

from __future__ import annotations


class CrossdataError(Exception):
    """Base of every error crossdata raises on purpose."""

    exit_code = 1


class ConfigError(CrossdataError):
    """The configuration is invalid: names the key, the file, the bad value and what is allowed."""

    exit_code = 2


class EnvironmentProblem(CrossdataError):
    """Something the stack needs is missing (Java, a jar, a writable lakehouse)."""

    exit_code = 3


class InputContractError(CrossdataError):
    """Input does not follow its documented contract and cannot be quarantined row by row."""

    exit_code = 4


class ReconciliationError(CrossdataError):
    """Counts do not add up: records read != loaded + quarantined + duplicates."""

    exit_code = 5


class DataQualityError(CrossdataError):
    """An expectation whose action is 'fail' was broken."""

    exit_code = 6


class ConcurrentWriteError(CrossdataError):
    """A Delta commit kept conflicting with another writer after all retries."""

    exit_code = 7


class InvariantViolation(CrossdataError):
    """A row broke a table's CHECK constraint: a bug, or an expectation missing in conf.

    Delta names the offending row's values in its error; this error names the table and the
    constraint only, since those values are usually personal data (an email, a phone).
    """

    exit_code = 8
