"""The consensus snapshot: everything the rules need to judge the next header, as a pure value.

A `Snapshot` is the consensus state *after* a block (clique's and Parlia's snapshot, extended with
total difficulty and the justified/finalized checkpoints). It is derived only from headers plus, at
epoch boundaries, the validator set read from the ledger state, so any node that holds the same
chain holds the same snapshot. It is a canonical record: the store may persist one per block hash
and never replay headers on restart.

Turns and timing (all in integer milliseconds, documented in ledger/CONSENSUS.md):

* the in-turn validator of height h is ``set.addresses[h % n]``; its header has difficulty 2 and may
  be stamped from ``parent.timestamp + block_time_ms``;
* any other validator that has not sealed one of the previous ``floor(n/2)`` blocks may seal out of
  turn with difficulty 1, from ``parent.timestamp + block_time_ms + backoff``, where
  ``backoff = (out_of_turn_delay_ms if the in-turn validator is itself allowed to seal else 0)
  + rank * out_of_turn_step_ms`` and ``rank`` (0, 1, ...) orders the eligible out-of-turn validators
  by their distance ``(index - in_turn_index) mod n`` after the in-turn slot. No jitter, so tests and
  nodes agree exactly; the back-off is *enforced* through the header timestamp, so nobody gains by
  sealing early.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from ledger.codec import BigUInt, Bytes, ListOf, Record, UInt, record
from ledger.genesis import Genesis, Params
from ledger.hashing import HASH_LEN
from ledger.keys import ADDRESS_LEN

from .seal_guard import SealGuard
from .validators import MAX_SET_SIZE, ValidatorSet, epoch_of
from .votes import Attestation, Checkpoint

DIFF_IN_TURN = 2
DIFF_NO_TURN = 1


@dataclass(frozen=True)
class ConsensusConfig:
    """The chain id plus the consensus parameters: the only configuration the rules read."""

    chain_id: str
    params: Params

    @classmethod
    def from_genesis(cls, genesis: Genesis) -> ConsensusConfig:
        return cls(chain_id=genesis.chain_id, params=genesis.params)


@dataclass(frozen=True)
class HeaderView:
    """The consensus-relevant fields of a block header (the block module's header maps onto it).

    `attestation` is the decoded `extra` (see `votes.decode_extra`), or None."""

    height: int
    hash: bytes
    parent_hash: bytes
    proposer: bytes
    difficulty: int
    timestamp_ms: int
    attestation: Attestation | None = None

    @property
    def checkpoint(self) -> Checkpoint:
        return Checkpoint(height=self.height, hash=self.hash)


@record
class RecentSeal(Record):
    height: Annotated[int, UInt(64)]
    proposer: Annotated[bytes, Bytes(ADDRESS_LEN)]


@dataclass(frozen=True)
class SealPlan:
    """What a validator needs to seal the next block: its height, the earliest timestamp it may
    carry, and the difficulty to put in the header."""

    height: int
    not_before_ms: int
    difficulty: int
    in_turn: bool
    rank: int  # 0 for in-turn; 0, 1, ... among the eligible out-of-turn sealers


@record
class Snapshot(Record):
    """Consensus state after the block (`height`, `hash`)."""

    height: Annotated[int, UInt(64)]
    hash: Annotated[bytes, Bytes(HASH_LEN)]
    timestamp_ms: Annotated[int, UInt(64)]
    total_difficulty: Annotated[int, BigUInt(32)]
    current: ValidatorSet        # the set of this block's height: it sealed it and votes on it
    next: ValidatorSet           # the set of height + 1: who may seal the next block
    recents: Annotated[tuple, ListOf(RecentSeal, MAX_SET_SIZE)]  # ascending heights
    justified: Checkpoint        # latest justified block of this chain
    finalized: Checkpoint        # latest finalized block of this chain

    def __post_init__(self):
        object.__setattr__(self, "recents", tuple(self.recents))

    # ----- construction -------------------------------------------------------------------------

    @classmethod
    def genesis(cls, header: HeaderView, validators: ValidatorSet) -> Snapshot:
        """The snapshot of the genesis block: justified and finalized by definition."""
        cp = header.checkpoint
        return cls(height=header.height, hash=header.hash, timestamp_ms=header.timestamp_ms,
                   total_difficulty=header.difficulty, current=validators, next=validators, recents=(),
                   justified=cp, finalized=cp)

    @property
    def checkpoint(self) -> Checkpoint:
        return Checkpoint(height=self.height, hash=self.hash)

    # ----- turns --------------------------------------------------------------------------------

    def in_turn_validator(self) -> bytes:
        """Whose turn the next block (height + 1) is."""
        return self.next.in_turn_validator(self.height + 1)

    def in_turn(self, height: int, address: bytes) -> bool:
        """True if `address` is in turn at `height` (which must be this block's or the next one's)."""
        if height == self.height + 1:
            return self.next.in_turn(height, address)
        if height == self.height:
            return self.current.in_turn(height, address)
        raise ValueError(f"snapshot at {self.height} answers for heights {self.height} and {self.height + 1} only")

    def recently_sealed(self, address: bytes) -> bool:
        """True if `address` sealed one of the last floor(n/2) blocks, so it may not seal the next."""
        lowest = self.height + 2 - self.next.recent_limit
        return any(r.proposer == address and r.height >= lowest for r in self.recents)

    def can_seal(self, address: bytes) -> bool:
        """May `address` seal the next block at all (in or out of turn)?"""
        return address in self.next and not self.recently_sealed(address)

    def expected_difficulty(self, address: bytes) -> int:
        return DIFF_IN_TURN if self.next.in_turn(self.height + 1, address) else DIFF_NO_TURN

    def out_of_turn_rank(self, address: bytes) -> int:
        """0, 1, ... among the validators allowed to seal the next block out of turn, ordered by
        distance after the in-turn slot. ValueError if `address` is in turn or may not seal."""
        nxt, h = self.next, self.height + 1
        if not self.can_seal(address) or nxt.in_turn(h, address):
            raise ValueError("out_of_turn_rank is defined for eligible out-of-turn validators only")
        start = h % nxt.n
        rank = 0
        for step in range(1, nxt.n):
            a = nxt.addresses[(start + step) % nxt.n]
            if a == address:
                return rank
            if self.can_seal(a):
                rank += 1
        raise AssertionError("unreachable: address is in the set")

    def seal_delay_ms(self, address: bytes, params: Params) -> int:
        """Extra wait beyond the block time before `address` may seal the next block (ValueError if it may not)."""
        if not self.can_seal(address):
            raise ValueError("seal_delay_ms is defined for validators allowed to seal the next block only")
        if self.next.in_turn(self.height + 1, address):
            return 0
        rank = self.out_of_turn_rank(address)
        base = params.out_of_turn_delay_ms if self.can_seal(self.in_turn_validator()) else 0
        return base + rank * params.out_of_turn_step_ms

    def earliest_seal_ms(self, address: bytes, params: Params) -> int:
        """The lowest timestamp a header sealed by `address` on top of this block may carry."""
        return self.timestamp_ms + params.block_time_ms + self.seal_delay_ms(address, params)

    def plan_seal(self, address: bytes, params: Params, guard: SealGuard | None = None) -> SealPlan | None:
        """When and how `address` may seal the next block, or None if it may not.

        `guard` is this validator's persisted `SealGuard`: if it already sealed a block on this very
        parent, sealing another would be a slashable double seal, so it is refused here."""
        h = self.height + 1
        if not self.can_seal(address):
            return None
        if guard is not None and not guard.allows(h, self.hash):
            return None
        in_turn = self.next.in_turn(h, address)
        return SealPlan(height=h, not_before_ms=self.earliest_seal_ms(address, params),
                        difficulty=DIFF_IN_TURN if in_turn else DIFF_NO_TURN, in_turn=in_turn,
                        rank=0 if in_turn else self.out_of_turn_rank(address))

    def missed_in_turn(self, header: HeaderView) -> bytes | None:
        """The validator that missed its in-turn slot if `header` (the next block) was sealed out of
        turn, else None. A validator barred by the recent-signer limit did not miss anything."""
        v = self.in_turn_validator()
        if header.proposer == v or not self.can_seal(v):
            return None
        return v

    # ----- transition ---------------------------------------------------------------------------

    def apply(self, header: HeaderView, params: Params, next_validators: ValidatorSet | None = None) -> Snapshot:
        """The snapshot after `header`, which must already have passed `verify_header` on this snapshot.

        `next_validators` is required exactly when ``header.height + 1`` starts an epoch: the set
        selected from the state after executing `header` (see `validators.select_validators`)."""
        h = header.height
        if h != self.height + 1 or header.parent_hash != self.hash:
            raise ValueError(f"header {h} does not extend snapshot {self.height}/{self.hash.hex()[:12]}")
        boundary = epoch_of(h + 1, params.epoch_length) != epoch_of(h, params.epoch_length)
        if boundary and next_validators is None:
            raise ValueError(f"height {h + 1} starts an epoch: pass the validator set read from the state after {h}")
        if not boundary and next_validators is not None:
            raise ValueError(f"height {h + 1} does not start an epoch: the validator set cannot change there")
        nxt = next_validators if boundary else self.next
        # Keep enough recent seals for the largest set the parameters allow, so a set that grows at an
        # epoch boundary still sees the seals it needs.
        keep = min(params.max_validators, MAX_SET_SIZE) // 2 + 1
        recents = (*self.recents, RecentSeal(height=h, proposer=header.proposer))[-keep:]
        justified, finalized = self.justified, self.finalized
        att = header.attestation
        if att is not None:
            justified = att.data.target
            if att.data.target.height == att.data.source.height + 1 and att.data.source.height > finalized.height:
                finalized = att.data.source
        return Snapshot(height=h, hash=header.hash, timestamp_ms=header.timestamp_ms,
                        total_difficulty=self.total_difficulty + header.difficulty,
                        current=self.next, next=nxt, recents=recents,
                        justified=justified, finalized=finalized)
