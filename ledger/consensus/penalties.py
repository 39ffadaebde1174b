"""Penalties: slashing and jailing for proven offences, and the missed-slot counter for liveness.

These are the integer functions the state machine calls; it owns the accounts. Conventions:

* Slashing takes ``floor(amount * slash_fraction_bps / 10_000)`` from *each* stake entry backing the
  offender (its own stake and every delegation to it, each rounded down on its own), and moves the
  sum into the staking reward pool: supply is conserved to the unit, and delegators share the risk
  of the validator they chose. The remainder of each floor stays with its owner.
* Jailing sets ``jailed_until_ms = block_timestamp_ms + jail_period_s * 1000`` (the later of that and
  any earlier jail); a jailed candidate is skipped by `select_validators` at the next epoch
  boundary whose block time is before that instant, and is eligible again afterwards without any
  transaction. Within the current epoch the set is fixed, so a jailed validator keeps its slots
  until the epoch ends (its blocks are still valid; its stake is already slashed).
* Liveness: each in-turn slot a validator misses (someone else sealed that height out of turn while
  the validator was allowed to seal) adds one to its counter; each block it seals takes one off
  (floor 0; `after_sealed_in_turn`, applied by `slots.begin_block` to any block the validator seals,
  in turn or not: see `slots` for why). So a validator that seals at least as many blocks as it
  misses slots never accumulates, and one that is down climbs by one per slot. At `missed_blocks_withhold` its block
  rewards are withheld (returned to the pool they came from) while it stays there; at
  `missed_blocks_jail` it is jailed (no slash) and the counter resets to 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

from ledger.genesis import Params

from .evidence import Offense
from .snapshot import DIFF_IN_TURN, HeaderView, Snapshot

BPS = 10_000
K = TypeVar("K")

NONE = "none"
WITHHOLD = "withhold"
JAIL = "jail"


def slash_amount(amount: int, bps: int) -> int:
    """floor(amount * bps / 10000): the part of one stake entry that is slashed."""
    if amount < 0 or not 0 <= bps <= BPS:
        raise ValueError("slash_amount needs a non-negative amount and 0 <= bps <= 10000")
    return amount * bps // BPS


def split_slash(stakes: Mapping[K, int], bps: int) -> dict[K, int]:
    """The slashed part of every stake entry backing an offender (each floored on its own).

    The state debits each entry by its value and credits the total to the staking reward pool."""
    return {k: slash_amount(v, bps) for k, v in stakes.items()}


def jail_until_ms(block_timestamp_ms: int, params: Params, current_until_ms: int = 0) -> int:
    """When a validator jailed in the block stamped `block_timestamp_ms` becomes eligible again."""
    return max(current_until_ms, block_timestamp_ms + params.jail_period_s * 1000)


def is_jailed(jailed_until_ms: int, at_ms: int) -> bool:
    return at_ms < jailed_until_ms


@dataclass(frozen=True)
class Penalty:
    offender: bytes
    slash_bps: int
    jailed_until_ms: int


def penalty_for(offense: Offense, block_timestamp_ms: int, params: Params, current_until_ms: int = 0) -> Penalty:
    """The penalty for a proven double seal or double vote, applied in the block that includes the evidence."""
    return Penalty(offender=offense.offender, slash_bps=params.slash_fraction_bps,
                   jailed_until_ms=jail_until_ms(block_timestamp_ms, params, current_until_ms))


# ----- liveness -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SlotOutcome:
    """What one block says about liveness: who missed its in-turn slot, who sealed its own slot."""

    missed: bytes | None
    sealed_in_turn: bytes | None


def slot_outcome(parent_snapshot: Snapshot, header: HeaderView) -> SlotOutcome:
    """Classify `header` (already verified on `parent_snapshot`) for the missed-slot counters."""
    return SlotOutcome(missed=parent_snapshot.missed_in_turn(header),
                       sealed_in_turn=header.proposer if header.difficulty == DIFF_IN_TURN else None)


def after_missed(count: int, params: Params) -> tuple[int, str]:
    """The counter after one more missed slot, and the action it triggers now (NONE, WITHHOLD or JAIL).

    JAIL resets the counter; WITHHOLD is reported on the miss that reaches the threshold (rewards
    stay withheld while `rewards_withheld` is true)."""
    count += 1
    if count >= params.missed_blocks_jail:
        return 0, JAIL
    if count == params.missed_blocks_withhold:
        return count, WITHHOLD
    return count, NONE


def after_sealed_in_turn(count: int) -> int:
    return max(0, count - 1)


def rewards_withheld(count: int, params: Params) -> bool:
    return count >= params.missed_blocks_withhold
