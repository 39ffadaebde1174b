"""The daily staking reward (white paper 6.2, 7.2.3) with Cosmos-style F1 distribution.

Each day's staking emission E (the staking rows of the allocation table, see `schedule`) splits:

* master nodes: ``M = E * master_node_share_bps // 10_000`` (10%), equally among the validator set
  (the top-21 by stake): ``M // n`` each; a validator whose rewards are withheld (missed slots,
  consensus issue) gets nothing; the ``M % n`` dust and withheld shares stay in the staking pool.
* stakers: ``S = E - M`` (90%) to everyone staked on a validator of the set, pro rata to WEIGHTED
  stake: amount x 4 (long-term), x 1 (flexible), x 2 (liquidity: a parameter only, nothing creates
  liquidity stake because there is no trading pair on this chain).

F1 (Cosmos "F1 fee distribution", Ojha 2019) makes the per-day cost independent of the number of
stakers: each validator v keeps an accumulator A_v of reward per unit of weighted stake, scaled by
``SCALE = 10**27``. A day adds the same ``r = floor((S - n_w) * SCALE / W)`` to every validator of the
set that has weighted stake (W = total weighted stake on them, n_w = how many of them), and moves
``alloc_v = ceil(r * W_v / SCALE)`` from the pool into v's OUTSTANDING bucket. A staker with weight w
who entered at accumulator a is owed ``floor(w * (A_v - a) / SCALE)``; it is paid from v's outstanding
when the staker claims, changes its stake (realise first, then re-enter at A_v with the new
weight), or leaves.

Why these roundings: every realised claim floors a piece of the exact sum ``sum_d r_d * W_v,d / SCALE``
and the pieces partition it, so claims never exceed ``sum_d alloc_v,d`` (each a ceiling): v's
outstanding never goes negative. Subtracting n_w from S before dividing makes ``sum_v alloc_v <= S``
in spite of the ceilings. So per day: ``E == master_paid + sum(alloc_v) + retained`` exactly, and
whatever rounding dust remains in an outstanding bucket when its validator's weight drops to zero
is swept back to the staking pool (`sweep_outstanding`).

The emission is distributed to whoever is staked when the day settles (the first block of the next
day); a flexible stake's unbonding period makes hopping in for one settlement costly.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ledger.economics.errors import EconomicsError
from ledger.genesis import Params

BPS = 10_000
SCALE = 10**27

LONG_TERM = "long_term"
FLEXIBLE = "flexible"
LIQUIDITY = "liquidity"
STAKE_KINDS = (LONG_TERM, FLEXIBLE, LIQUIDITY)


def stake_weight(params: Params, kind: str, amount: int) -> int:
    """Weighted stake of `amount` base units of stake `kind`."""
    if type(amount) is not int or amount < 0:
        raise EconomicsError(f"stake amount must be a non-negative integer, got {amount!r}")
    factor = {LONG_TERM: params.stake_weight_long_term, FLEXIBLE: params.stake_weight_flexible,
              LIQUIDITY: params.stake_weight_liquidity}.get(kind)
    if factor is None:
        raise EconomicsError(f"unknown stake kind {kind!r} (one of {', '.join(STAKE_KINDS)})")
    return amount * factor


@dataclass(frozen=True)
class ValidatorDay:
    """A validator of the day's set: its total weighted stake (own + delegated, unbonding excluded)."""

    address: bytes
    weighted_stake: int
    withheld: bool = False      # consensus withholds its rewards (too many missed slots)


@dataclass(frozen=True)
class StakingSettlement:
    """The staking outcome of one day. Conservation: emission == master_paid + allocated + retained."""

    day: int
    emission: int
    master_total: int                           # M = the master nodes' 10%
    master_payouts: tuple[tuple[bytes, int], ...]  # (validator, amount > 0), ascending address
    master_paid: int
    stakers_total: int                          # S = E - M
    reward_per_weight: int                      # r, scaled by SCALE; added to each A_v below
    allocations: tuple[tuple[bytes, int], ...]  # (validator, amount into its outstanding), ascending
    allocated: int
    retained: int                               # back into (stays in) the staking pool


def settle_staking(params: Params, day: int, emission: int,
                   validators: Iterable[ValidatorDay]) -> StakingSettlement:
    """Split `emission` between the validator set and the stakers on it (see module docstring)."""
    vals = sorted(validators, key=lambda v: v.address)
    if len({v.address for v in vals}) != len(vals):
        raise EconomicsError("a validator appears twice in one day's staking settlement")
    if len(vals) > params.max_validators:
        raise EconomicsError(f"{len(vals)} validators in the set, at most {params.max_validators}")
    if emission < 0 or any(v.weighted_stake < 0 for v in vals):
        raise EconomicsError("staking inputs must be non-negative")
    master_total = emission * params.master_node_share_bps // BPS
    stakers_total = emission - master_total
    master_payouts: list[tuple[bytes, int]] = []
    if vals:
        each = master_total // len(vals)
        master_payouts = [(v.address, each) for v in vals if not v.withheld and each > 0]
    master_paid = sum(a for _, a in master_payouts)
    staked = [v for v in vals if v.weighted_stake > 0]
    total_weight = sum(v.weighted_stake for v in staked)
    r = 0
    allocations: list[tuple[bytes, int]] = []
    if total_weight > 0 and stakers_total > len(staked):
        r = (stakers_total - len(staked)) * SCALE // total_weight
        allocations = [(v.address, -(-r * v.weighted_stake // SCALE)) for v in staked]
    allocated = sum(a for _, a in allocations)
    retained = emission - master_paid - allocated
    assert retained >= 0 and allocated <= stakers_total
    return StakingSettlement(day=day, emission=emission, master_total=master_total,
                             master_payouts=tuple(master_payouts), master_paid=master_paid,
                             stakers_total=stakers_total, reward_per_weight=r,
                             allocations=tuple(allocations), allocated=allocated, retained=retained)


def advance_accumulator(acc: int, settlement: StakingSettlement, validator: bytes) -> int:
    """A_v after the day: + r if v received an allocation, unchanged otherwise."""
    if any(addr == validator for addr, _ in settlement.allocations):
        return acc + settlement.reward_per_weight
    return acc


@dataclass(frozen=True)
class StakePosition:
    """A staker's F1 position on one validator: its weighted stake and the accumulator at entry."""

    weight: int
    entry: int


def pending_reward(position: StakePosition, acc: int) -> int:
    """What `position` is owed now that v's accumulator is `acc` (floor)."""
    if acc < position.entry:
        raise EconomicsError("accumulator went backwards (corrupt state)")
    return position.weight * (acc - position.entry) // SCALE


def realize(position: StakePosition, acc: int, new_weight: int | None = None) -> tuple[int, StakePosition]:
    """(reward owed, position re-entered at `acc` with `new_weight` or the same weight).

    Call on every claim and before every change of the stake; pay the reward from v's outstanding.
    """
    owed = pending_reward(position, acc)
    w = position.weight if new_weight is None else new_weight
    if w < 0:
        raise EconomicsError("weighted stake cannot be negative")
    return owed, StakePosition(weight=w, entry=acc)


def sweep_outstanding(outstanding: int, validator_weight: int) -> tuple[int, int]:
    """(left in outstanding, swept back to the staking pool): once nobody is staked on v any more
    (weight 0, so every position was realised), what is left is rounding dust and returns."""
    if validator_weight == 0:
        return 0, outstanding
    return outstanding, 0
