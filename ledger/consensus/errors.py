"""Domain exceptions of the consensus rules.

They subclass the ledger's own exceptions so a caller that already catches `InvalidBlock` or
`LedgerError` needs no new clause; the finer classes exist because the daemon reacts differently:
a `FutureHeader` is kept and retried once the local clock has caught up, every other
`InvalidBlock` is dropped (and its sender may be penalised).
"""

from ledger.errors import InvalidBlock, LedgerError


class FutureHeader(InvalidBlock):
    """The header's timestamp is ahead of the importer's clock by more than `Params.max_future_ms`.

    Not proof of misbehaviour (clocks drift): keep the block and retry after `retry_at_ms`."""

    def __init__(self, message: str, retry_at_ms: int):
        super().__init__(message)
        self.retry_at_ms = retry_at_ms


class InvalidVote(LedgerError):
    """A finality vote is malformed, badly signed, from a non-validator, or for another chain."""


class InvalidAttestation(InvalidBlock):
    """A header's vote attestation does not prove a quorum for the block it claims to justify."""


class InvalidEvidence(LedgerError):
    """A piece of misbehaviour evidence does not prove an offence (wrong signatures, no conflict, too old)."""
