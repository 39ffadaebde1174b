"""The honest sealer's memory: never seal two different blocks on one parent.

Sealing two different blocks on the same parent is a *double seal*, slashable through
`DoubleSealEvidence` (as in BSC, whose double-sign evidence also requires a common parent). Sealing
at a height again on a *different* parent, after a reorganisation moved the head back, is allowed
and necessary: justified-first fork choice (or a heavier, shorter branch) can move every node's head
below heights that all live validators already sealed on the losing branch, and a rule of "never
seal a height twice" then halts the chain for good (found by the randomized network simulation in
tests/ledger/consensus: three validators each barred, by that rule or by the recent-signer limit).

The guard remembers the (height, parent) slots this validator sealed, the latest `MAX_SLOTS`, and
must be persisted before the block leaves the node. A validator that finds it already sealed on its
head re-gossips that block instead (its own block always beats its parent in fork choice, so that
only happens when the block has not reached the node's own tree).
"""

from __future__ import annotations

from typing import Annotated

from ledger.codec import Bytes, ListOf, Record, UInt, record
from ledger.hashing import HASH_LEN

MAX_SLOTS = 64


@record
class SealedSlot(Record):
    height: Annotated[int, UInt(64)]
    parent_hash: Annotated[bytes, Bytes(HASH_LEN)]


@record
class SealGuard(Record):
    slots: Annotated[tuple, ListOf(SealedSlot, MAX_SLOTS)] = ()

    def __post_init__(self):
        object.__setattr__(self, "slots", tuple(self.slots))

    def allows(self, height: int, parent_hash: bytes) -> bool:
        return SealedSlot(height=height, parent_hash=parent_hash) not in self.slots

    def after(self, height: int, parent_hash: bytes) -> SealGuard:
        return SealGuard(slots=(*self.slots, SealedSlot(height=height, parent_hash=parent_hash))[-MAX_SLOTS:])
