"""The vote pool: collects gossiped votes, spots conflicting ones, and builds attestations.

Why a pool and not "count votes on arrival": votes for one block arrive from many peers in any order,
some before the block itself, and the sealer of the *next* block needs, at its slot, the set of
signatures that reaches quorum for its parent. The pool is pure bookkeeping (no clock, no network):
the daemon feeds it votes and asks it for an attestation when it seals.

Bounds (everything here comes from the network): votes are kept only for targets within
`Params.vote_window` blocks below the head (and at most 2 above it), and at most two different
votes per (voter, target height) — the second is already slashable evidence, a third adds nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from .evidence import DoubleVoteEvidence
from .finality import votes_conflict
from .snapshot import ConsensusConfig
from .validators import ValidatorSet
from .votes import Attestation, Checkpoint, Vote, VoteData, build_attestation, check_vote

#: Votes for targets this far above the node's head are kept (the vote may outrun the block).
AHEAD = 2


@dataclass(frozen=True)
class AddResult:
    """`accepted`: the vote was new and valid (gossip it on); `evidence`: it conflicts with an earlier
    vote of the same voter (submit it in an evidence transaction)."""

    accepted: bool
    evidence: DoubleVoteEvidence | None = None


class VotePool:
    def __init__(self, cfg: ConsensusConfig):
        self.cfg = cfg
        self._by_data: dict[VoteData, dict[bytes, Vote]] = {}
        self._by_voter: dict[bytes, dict[int, list[Vote]]] = {}
        self._floor = 0

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_data.values())

    def add(self, vote: Vote, voters: ValidatorSet, head_height: int) -> AddResult:
        """Add a gossiped vote. `voters` is the validator set of the vote's target height.

        Raises InvalidVote for a vote that is bad in itself (wrong chain, bad signature, non-validator);
        returns ``accepted=False`` for a vote that is merely stale, too far ahead, or already known."""
        t = vote.data.target.height
        if t + self.cfg.params.vote_window < head_height or t > head_height + AHEAD:
            return AddResult(False)
        check_vote(vote, self.cfg.chain_id, voters)
        mine = self._by_voter.setdefault(vote.voter, {})
        same_height = mine.setdefault(t, [])
        if any(v.data == vote.data for v in same_height):
            return AddResult(False)
        evidence = None
        for earlier in (v for vs in mine.values() for v in vs):
            if votes_conflict(earlier.data, vote.data) is not None:
                evidence = DoubleVoteEvidence(vote_a=earlier, vote_b=vote)
                break
        if len(same_height) >= 2:
            return AddResult(False, evidence)
        same_height.append(vote)
        self._by_data.setdefault(vote.data, {})[vote.voter] = vote
        self.prune(head_height - self.cfg.params.vote_window)
        return AddResult(True, evidence)

    def votes_for(self, data: VoteData) -> list[Vote]:
        return list(self._by_data.get(data, {}).values())

    def attestation(self, source: Checkpoint, target: Checkpoint, voters: ValidatorSet) -> Attestation | None:
        """An attestation for ``source -> target`` if the pool holds a quorum of `voters`' votes, else None.

        The sealer of the block on top of `target` calls it with ``source = snapshot.justified`` and
        ``voters = snapshot.current`` of the target's snapshot, and puts the result in `extra`."""
        data = VoteData(chain_id=self.cfg.chain_id, source=source, target=target)
        votes = [v for v in self._by_data.get(data, {}).values() if v.voter in voters]
        if len(votes) < voters.quorum:
            return None
        return build_attestation(data, votes, voters)

    def prune(self, below_height: int) -> None:
        """Forget votes whose target height is below `below_height`."""
        if below_height <= self._floor:
            return
        self._floor = below_height
        stale = [d for d in self._by_data if d.target.height < below_height]
        for d in stale:
            del self._by_data[d]
        for voter in list(self._by_voter):
            heights = self._by_voter[voter]
            for h in [h for h in heights if h < below_height]:
                del heights[h]
            if not heights:
                del self._by_voter[voter]
