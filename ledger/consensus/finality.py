"""Voting rules: when an honest validator votes, and which pairs of votes are slashable.

The finality rule itself is applied in `Snapshot.apply` (a header's attestation justifies its parent;
a justified block whose direct child is justified with it as source becomes finalized). This module
holds the two sides of the voters' discipline, which are the same rules seen from two angles:

* `votes_conflict` says when two votes by one validator are a slashable offence
  (double vote: two different votes for one target height; surround vote: one vote's span strictly
  contains the other's);
* `VoteGuard` / `decide_vote` are what an honest validator runs so that it never casts such a pair:
  target heights strictly increase and source heights never decrease across its votes, and it only
  votes for its head, linking it from that chain's latest justified block.

The guard must be persisted (atomically, before the vote leaves the node): a validator that forgets
its last vote after a crash can double vote.
"""

from __future__ import annotations

from typing import Annotated

from ledger.codec import Record, UInt, record
from ledger.keys import PrivateKey

from .snapshot import ConsensusConfig, Snapshot
from .votes import Vote, VoteData

DOUBLE_VOTE = "double-vote"
SURROUND_VOTE = "surround-vote"


def votes_conflict(a: VoteData, b: VoteData) -> str | None:
    """The slashing condition two votes of one validator break, or None if they are compatible."""
    if a == b or a.chain_id != b.chain_id:
        return None
    if a.target.height == b.target.height:
        return DOUBLE_VOTE
    if a.source.height < b.source.height and b.target.height < a.target.height:
        return SURROUND_VOTE
    if b.source.height < a.source.height and a.target.height < b.target.height:
        return SURROUND_VOTE
    return None


@record
class VoteGuard(Record):
    """An honest validator's voting memory: its last vote's source and target heights (0 = none yet)."""

    last_source_height: Annotated[int, UInt(64)] = 0
    last_target_height: Annotated[int, UInt(64)] = 0

    def allows(self, data: VoteData) -> bool:
        """True if voting `data` after every earlier vote can never be slashable.

        New target above every earlier target rules out double votes and being surrounded; source no
        lower than every earlier source rules out surrounding an earlier vote."""
        return (data.target.height > self.last_target_height
                and data.source.height >= self.last_source_height
                and data.target.height > data.source.height)

    def after(self, data: VoteData) -> VoteGuard:
        return VoteGuard(last_source_height=data.source.height, last_target_height=data.target.height)


def decide_vote(cfg: ConsensusConfig, guard: VoteGuard, key: PrivateKey,
                head: Snapshot) -> tuple[Vote, VoteGuard] | None:
    """The vote an honest validator casts for its new head, with its updated guard; or None.

    Call it whenever fork choice moves the head to a fully verified and executed block while the node
    follows the chain live (not while range-syncing old blocks). Persist the returned guard before
    gossiping the vote."""
    if key.address not in head.current:
        return None
    data = VoteData(chain_id=cfg.chain_id, source=head.justified, target=head.checkpoint)
    if not guard.allows(data):
        return None
    return Vote.sign(key, data), guard.after(data)
