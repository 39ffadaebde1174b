"""Accountability: evidence that a validator signed two blocks on one parent (so at one height), or two
conflicting votes.

Evidence is self-contained and verifiable by any node from the evidence bytes alone (plus the chain
id): both signed objects travel in full, so the signatures prove the offence without any chain
lookup. Any node may submit it in a transaction; the state machine verifies it with the functions
here, refuses an offence it already punished (`Offense.key`), and applies `penalties.penalty_for`.

Header bytes are the block module's business, so double-seal verification takes an `open_header`
callable that decodes one encoded header into a `SealedHeader` (its chain id, height, hash, proposer,
seal signing message and seal signature) or raises a LedgerError if the bytes are malformed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from ledger.codec import Bytes, Optional, Record, Str, UInt, record
from ledger.errors import DecodeError, LedgerError
from ledger.genesis import Params
from ledger.hashing import tagged_hash
from ledger.keys import ADDRESS_LEN, verify

from .errors import InvalidEvidence
from .finality import votes_conflict
from .votes import Vote

DOUBLE_SEAL = "double-seal"
DOUBLE_VOTE_OFFENSE = "double-vote"
#: Bound on one encoded header inside evidence (headers are small; attestations dominate).
MAX_HEADER_BYTES = 64 * 1024
OFFENSE_TAG = b"mindnode/offense"


@dataclass(frozen=True)
class SealedHeader:
    """What double-seal verification needs to know about one encoded header."""

    chain_id: str
    height: int
    hash: bytes
    parent_hash: bytes
    proposer: bytes
    signing_message: bytes
    signature: bytes


#: Decodes one encoded header (the block module provides it); raises a LedgerError on bad bytes.
HeaderOpener = Callable[[bytes], SealedHeader]


@record
class Offense(Record):
    """A proven offence: who, what, at which height. `key()` makes "punish once" easy."""

    kind: Annotated[str, Str(16)]
    offender: Annotated[bytes, Bytes(ADDRESS_LEN)]
    height: Annotated[int, UInt(64)]

    def key(self) -> bytes:
        """The same offence (kind, offender, height) has one key however it was proven."""
        return tagged_hash(OFFENSE_TAG, self.encode())


@record
class DoubleSealEvidence(Record):
    header_a: Annotated[bytes, Bytes(max_len=MAX_HEADER_BYTES)]
    header_b: Annotated[bytes, Bytes(max_len=MAX_HEADER_BYTES)]


@record
class DoubleVoteEvidence(Record):
    """Two conflicting votes by one voter (same target height, or one surrounding the other)."""

    vote_a: Vote
    vote_b: Vote


@record
class Evidence(Record):
    """The envelope an evidence transaction carries: exactly one of the two kinds."""

    double_seal: Annotated[object, Optional(DoubleSealEvidence)] = None
    double_vote: Annotated[object, Optional(DoubleVoteEvidence)] = None

    def __post_init__(self):
        if (self.double_seal is None) == (self.double_vote is None):
            raise DecodeError("Evidence: give exactly one of double_seal or double_vote")


def _check_age(height: int, current_height: int, params: Params) -> None:
    if height + params.evidence_max_age < current_height:
        raise InvalidEvidence(f"evidence about height {height} is older than {params.evidence_max_age} blocks")


def verify_double_seal(ev: DoubleSealEvidence, chain_id: str, open_header: HeaderOpener,
                       current_height: int, params: Params) -> Offense:
    """The offence `ev` proves, or InvalidEvidence saying why it proves nothing."""
    try:
        a, b = open_header(ev.header_a), open_header(ev.header_b)
    except LedgerError as exc:
        raise InvalidEvidence(f"double-seal evidence holds a malformed header: {exc}") from None
    if a.chain_id != chain_id or b.chain_id != chain_id:
        raise InvalidEvidence(f"double-seal evidence headers are not both from chain {chain_id!r}")
    if a.height != b.height:
        raise InvalidEvidence(f"headers are at different heights ({a.height}, {b.height}): no double seal")
    if a.proposer != b.proposer:
        raise InvalidEvidence("headers are sealed by different proposers: no double seal")
    if a.parent_hash != b.parent_hash:
        raise InvalidEvidence("headers build on different parents: re-sealing a height after a reorganisation "
                              "is allowed, no double seal")
    if a.hash == b.hash:
        raise InvalidEvidence("both headers are the same block: no double seal")
    for h in (a, b):
        if not verify(h.proposer, h.signing_message, h.signature):
            raise InvalidEvidence(f"seal of header {h.hash.hex()[:12]} does not verify for its proposer")
    _check_age(a.height, current_height, params)
    return Offense(kind=DOUBLE_SEAL, offender=a.proposer, height=a.height)


def verify_double_vote(ev: DoubleVoteEvidence, chain_id: str, current_height: int, params: Params) -> Offense:
    a, b = ev.vote_a, ev.vote_b
    if a.data.chain_id != chain_id or b.data.chain_id != chain_id:
        raise InvalidEvidence(f"double-vote evidence votes are not both for chain {chain_id!r}")
    if a.voter != b.voter:
        raise InvalidEvidence("votes are by different voters: no double vote")
    if votes_conflict(a.data, b.data) is None:
        raise InvalidEvidence("the two votes do not conflict (different target heights, no surround)")
    for v in (a, b):
        if not verify(v.voter, v.data.signing_message(), v.signature):
            raise InvalidEvidence(f"vote for height {v.data.target.height} has a bad signature")
    height = min(a.data.target.height, b.data.target.height)
    _check_age(height, current_height, params)
    return Offense(kind=DOUBLE_VOTE_OFFENSE, offender=a.voter, height=height)


def verify_evidence(ev: Evidence, chain_id: str, open_header: HeaderOpener, current_height: int,
                    params: Params) -> Offense:
    """Dispatch on the envelope's kind; what an evidence transaction's execution calls."""
    if ev.double_seal is not None:
        return verify_double_seal(ev.double_seal, chain_id, open_header, current_height, params)
    return verify_double_vote(ev.double_vote, chain_id, current_height, params)


class DoubleSealWatch:
    """Remembers the first header seen per (height, parent, proposer) so the importer can spot a second one.

    Feed it every header whose seal verified (canonical or not). Bounded: heights more than
    `window` below the latest observed height are forgotten."""

    def __init__(self, window: int = 256):
        self.window = window
        self._first: dict[tuple[int, bytes, bytes], tuple[bytes, bytes]] = {}
        self._top = 0

    def observe(self, height: int, parent_hash: bytes, proposer: bytes, block_hash: bytes,
                header_bytes: bytes) -> DoubleSealEvidence | None:
        if height + self.window < self._top:
            return None
        key = (height, parent_hash, proposer)
        seen = self._first.get(key)
        if seen is None:
            self._first[key] = (block_hash, header_bytes)
            if height > self._top:
                self._top = height
                low = height - self.window
                for k in [k for k in self._first if k[0] < low]:
                    del self._first[k]
            return None
        if seen[0] == block_hash:
            return None
        return DoubleSealEvidence(header_a=seen[1], header_b=header_bytes)
