"""Domain exceptions of the economics rules.

Each also subclasses the generic ledger error a caller already handles (a bad heartbeat entry makes
its block invalid; a bad price post or withdrawal makes its transaction invalid), so the state
machine needs no new except clauses, while tests and the CLI can tell the cases apart.
"""

from ledger.errors import InvalidBlock, InvalidTransaction, LedgerError


class EconomicsError(LedgerError):
    """An economics rule was given inconsistent input (unknown hardware class, duplicate address...)."""


class InvalidHeartbeat(EconomicsError, InvalidBlock):
    """A heartbeat or a block's uptime entry is malformed, forged, out of its hour, or a duplicate."""


class InvalidPricePost(EconomicsError, InvalidTransaction):
    """A price post did not come from the genesis price oracle, or its price is not positive."""


class NothingToWithdraw(EconomicsError, InvalidTransaction):
    """A withdrawal was asked for while no reward is accrued."""
