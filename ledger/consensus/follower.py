"""`Follower`: one node's consensus bookkeeping, the glue between the pure rules and a daemon.

Why a class here and not in the daemon: the order of the small steps matters for the guarantees
(advance finality only along the chosen head; vote only when the head changes, through the guard;
never seal twice on one parent), and the rule-level network simulation in tests/ledger/consensus
runs exactly this code, so the daemon inherits tested behaviour instead of re-deriving it.

Still pure: no clock (times come in), no I/O, no execution. The caller verifies each header
(`verify_header`, normally through the store's consensus hook), executes the block, computes its
snapshot (`Snapshot.apply` / `header_bridge.snapshot_after`), and then tells the follower with
`add_block`. What must be persisted after each call is returned (`HeadChange.persist`).
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger.keys import PrivateKey

from .finality import VoteGuard, decide_vote
from .fork_choice import BlockTree, advance_finalized
from .seal_guard import SealGuard
from .snapshot import ConsensusConfig, SealPlan, Snapshot
from .validators import ValidatorSet, epoch_of
from .vote_pool import AddResult, VotePool
from .votes import Attestation, Checkpoint, Vote


@dataclass(frozen=True)
class HeadChange:
    """What `add_block` changed. `vote` (if any) must be gossiped after `persist` is true and the
    follower's `vote_guard` and `finalized` are written to disk."""

    head_changed: bool
    old_head: Snapshot
    new_head: Snapshot
    finalized_changed: bool
    vote: Vote | None

    @property
    def persist(self) -> bool:
        return self.finalized_changed or self.vote is not None


class Follower:
    def __init__(self, cfg: ConsensusConfig, root: Snapshot, *, key: PrivateKey | None = None,
                 vote_guard: VoteGuard | None = None, seal_guard: SealGuard | None = None,
                 finalized: Checkpoint | None = None):
        """`root` is a trusted snapshot (genesis, or the node's finalized block on restart) and
        `finalized` the node's persisted finalized checkpoint (default: the root's own)."""
        self.cfg = cfg
        self.key = key
        self.tree = BlockTree(root)
        self.pool = VotePool(cfg)
        self.head = root
        self.finalized = finalized or root.finalized
        self.vote_guard = vote_guard or VoteGuard()
        self.seal_guard = seal_guard or SealGuard()
        self.voting = True  # the daemon turns this off while range-syncing

    def snapshot(self, block_hash: bytes) -> Snapshot | None:
        return self.tree.get(block_hash) if block_hash in self.tree else None

    def add_block(self, parent_hash: bytes, snap: Snapshot) -> HeadChange:
        """Record a verified, executed block and re-run fork choice (and voting, for a validator)."""
        self.tree.add(snap, parent_hash)
        old = self.head
        best = self.tree.head(self.finalized)
        if best is None or best.hash == old.hash:
            return HeadChange(False, old, old, False, None)
        self.head = best
        fin = advance_finalized(self.finalized, best)
        fin_changed = fin != self.finalized
        self.finalized = fin
        vote = None
        if self.key is not None and self.voting:
            decided = decide_vote(self.cfg, self.vote_guard, self.key, best)
            if decided is not None:
                vote, self.vote_guard = decided
                self.pool.add(vote, best.current, best.height)
        return HeadChange(True, old, best, fin_changed, vote)

    def voters_for(self, target: Checkpoint) -> ValidatorSet | None:
        """The validator set that votes on `target`: from its snapshot if known, else from the head's
        when the target is in the head's epoch or the next one; None if it cannot be known yet."""
        snap = self.snapshot(target.hash)
        if snap is not None:
            return snap.current
        L = self.cfg.params.epoch_length
        e = epoch_of(target.height, L)
        if e == epoch_of(self.head.height, L):
            return self.head.current
        if e == epoch_of(self.head.height + 1, L):
            return self.head.next
        return None

    def add_vote(self, vote: Vote) -> AddResult:
        """A gossiped vote. Raises InvalidVote for a bad one (penalise the sender); `accepted` -> re-gossip;
        `evidence` -> submit it in an evidence transaction."""
        voters = self.voters_for(vote.data.target)
        if voters is None:
            return AddResult(False)
        return self.pool.add(vote, voters, self.head.height)

    def seal_plan(self) -> SealPlan | None:
        """When this validator may seal on the current head (None: not now)."""
        if self.key is None:
            return None
        return self.head.plan_seal(self.key.address, self.cfg.params, self.seal_guard)

    def attestation(self) -> Attestation | None:
        """The attestation for the head, to put in the `extra` of the block sealed on it."""
        h = self.head
        return self.pool.attestation(h.justified, h.checkpoint, h.current)

    def sealing(self, plan: SealPlan) -> SealGuard:
        """Record that a block is being sealed per `plan` on the head; persist the returned guard
        before the block leaves the node."""
        self.seal_guard = self.seal_guard.after(plan.height, self.head.hash)
        return self.seal_guard

    def prune(self) -> None:
        """Forget blocks that can no longer matter (not descending from the finalized block)."""
        if self.finalized.hash in self.tree and self.finalized.hash != self.tree.root.hash:
            self.tree.prune(self.finalized)
