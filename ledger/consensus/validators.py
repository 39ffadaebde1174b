"""The validator set: who may seal and vote, in which order, and how it changes at epoch boundaries.

Why a fixed set per epoch: turns, the recent-signer limit and the vote quorum all depend on the
set, and every node must compute them identically from the chain alone. Recomputing the set only
at epoch boundaries, from the state committed by the last block of the previous epoch, gives
every header of an epoch the same, already-agreed set (clique's checkpoints, Parlia's epochs).

Ordering, documented once because everything depends on it:

* *Selection*: candidates that are not jailed and have a positive stake are ranked by total stake,
  highest first; equal stakes are ranked by address, lowest first (raw 32 bytes compared as
  unsigned big-endian). The first `max_validators` form the set.
* *Turn order*: the selected addresses sorted ascending by raw bytes. Height ``h`` belongs to
  ``addresses[h % n]``. Sorting by address (not by stake) means a stake change that does not
  change membership does not reshuffle the turns.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated

from ledger.codec import Bytes, ListOf, Record, record
from ledger.errors import DecodeError, GenesisError
from ledger.genesis import Params
from ledger.keys import ADDRESS_LEN

#: Hard cap on a set's size (bounds attestation bitsets and decoded lists, so a full attestation fits the
#: 16 KiB header `extra`); Params.max_validators (21) is far below.
MAX_SET_SIZE = 128


@record
class ValidatorSet(Record):
    """A non-empty, strictly ascending tuple of validator addresses (the turn order)."""

    addresses: Annotated[tuple, ListOf(Bytes(ADDRESS_LEN), MAX_SET_SIZE)]

    def __post_init__(self):
        addrs = tuple(self.addresses)
        object.__setattr__(self, "addresses", addrs)
        if not addrs:
            raise DecodeError("ValidatorSet.addresses: a validator set cannot be empty")
        for a, b in zip(addrs, addrs[1:], strict=False):
            if not a < b:
                raise DecodeError("ValidatorSet.addresses: addresses must be strictly ascending (sorted, no duplicates)")

    @classmethod
    def of(cls, addresses: Iterable[bytes]) -> ValidatorSet:
        """Build a set from addresses in any order (sorted and de-duplicated here)."""
        return cls(addresses=tuple(sorted(set(addresses))))

    @property
    def n(self) -> int:
        return len(self.addresses)

    @functools.cached_property
    def _index(self) -> dict[bytes, int]:
        return {a: i for i, a in enumerate(self.addresses)}

    def __contains__(self, address: object) -> bool:
        return address in self._index

    def __len__(self) -> int:
        return len(self.addresses)

    def index(self, address: bytes) -> int:
        """Position of `address` in the turn order; KeyError if it is not a validator."""
        return self._index[address]

    def in_turn_validator(self, height: int) -> bytes:
        return self.addresses[height % self.n]

    def in_turn(self, height: int, address: bytes) -> bool:
        return self.in_turn_validator(height) == address

    @property
    def quorum(self) -> int:
        """Votes needed to justify a block: ceil(2n/3). Any two quorums share >= n/3 validators."""
        return quorum(self.n)

    @property
    def recent_limit(self) -> int:
        """A validator may seal at most one of any `recent_limit` = floor(n/2)+1 consecutive blocks."""
        return self.n // 2 + 1


def quorum(n: int) -> int:
    """ceil(2n/3) in integers."""
    return (2 * n + 2) // 3


@dataclass(frozen=True)
class Candidate:
    """What the selection needs to know about one validator candidate (the state supplies it).

    `stake` is the candidate's total stake (own plus delegated) in base units; `jailed_until_ms` is the
    block time (ms) before which the candidate may not be selected (0 = never jailed)."""

    address: bytes
    stake: int
    jailed_until_ms: int = 0


def select_validators(candidates: Iterable[Candidate], max_validators: int, at_ms: int,
                      previous: ValidatorSet | None = None) -> ValidatorSet:
    """The validator set for an epoch: top `max_validators` eligible candidates by stake.

    `at_ms` is the timestamp of the block whose state is read (the last block of the previous
    epoch); a candidate is eligible when its stake is positive and `jailed_until_ms <= at_ms`.
    If no candidate is eligible the `previous` set carries over (a chain with no validators could
    never produce another block to fix that); with no previous set that is an error.
    """
    if max_validators < 1:
        raise ValueError("max_validators must be at least 1")
    seen: set[bytes] = set()
    eligible = []
    for c in candidates:
        if len(c.address) != ADDRESS_LEN:
            raise ValueError(f"candidate address must be {ADDRESS_LEN} bytes")
        if c.address in seen:
            raise ValueError(f"candidate {c.address.hex()} listed twice")
        seen.add(c.address)
        if c.stake > 0 and c.jailed_until_ms <= at_ms:
            eligible.append(c)
    eligible.sort(key=lambda c: (-c.stake, c.address))
    chosen = [c.address for c in eligible[:max_validators]]
    if not chosen:
        if previous is None:
            raise ValueError("no eligible validator candidate and no previous set to keep")
        return previous
    return ValidatorSet.of(chosen)


def epoch_of(height: int, epoch_length: int) -> int:
    return height // epoch_length


def is_epoch_start(height: int, epoch_length: int) -> bool:
    """True for the first height of an epoch (0, L, 2L, ...): its set was just recomputed."""
    return height % epoch_length == 0


def set_source_height(height: int, epoch_length: int) -> int:
    """Height of the block whose post-state defines the validator set used at `height`.

    The last block of the previous epoch, or genesis (0) for epoch 0."""
    return max(0, (height // epoch_length) * epoch_length - 1)


def check_consensus_params(params: Params) -> None:
    """Raise GenesisError naming the first consensus parameter that makes the rules meaningless.

    The genesis loader calls it, so a typo in a genesis file fails at `init`, not at the first epoch."""
    def need(ok: bool, msg: str) -> None:
        if not ok:
            raise GenesisError(f"genesis params: {msg}")

    need(params.block_time_ms >= 1, "block_time_ms must be at least 1")
    need(params.epoch_length >= 1, "epoch_length must be at least 1")
    need(1 <= params.max_validators <= MAX_SET_SIZE, f"max_validators must be between 1 and {MAX_SET_SIZE}")
    need(params.out_of_turn_delay_ms >= 0 and params.out_of_turn_step_ms >= 0,
         "out_of_turn_delay_ms and out_of_turn_step_ms cannot be negative")
    need(params.max_future_ms >= 0, "max_future_ms cannot be negative")
    need(params.vote_window >= 2, "vote_window must be at least 2")
    need(0 <= params.slash_fraction_bps <= 10_000, "slash_fraction_bps must be between 0 and 10000")
    need(params.jail_period_s >= 0, "jail_period_s cannot be negative")
    need(1 <= params.missed_blocks_withhold <= params.missed_blocks_jail,
         "need 1 <= missed_blocks_withhold <= missed_blocks_jail")
    need(params.evidence_max_age >= 1, "evidence_max_age must be at least 1")
