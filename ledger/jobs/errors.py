"""Errors of the jobs rules. A `JobError` is an `InvalidTransaction`, so a broken job rule rejects
the transaction (and reverts it) exactly like any other ledger rule."""

from ledger.errors import InvalidTransaction


class JobError(InvalidTransaction):
    """A job or provider transaction breaks a jobs rule; the message says which and why."""
