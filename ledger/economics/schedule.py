"""What the allocation table unlocks on a chain day: the pools' daily caps and every row's unlock.

The day's cap of a reward pool is what its rows (`AllocationRow.pool`) unlock during the day,
``unlocked_between(row, start, month_s, day_start, day_end)`` summed, i.e. unlocked by the end of the
day minus unlocked at its start; consecutive days telescope, so the whole amount is capped exactly
once and nothing falls between days. With month = 365/12 days, a 24-month phase is 730 days, and
its amount is spread evenly in the only exact way: floor of the linear curve at each day boundary
(20,000,000 NMT / 730 days gives 27,397.260273972602739726 NMT on most days and one base unit more
on some). A phase's unissued rest is NOT carried into later days' caps; it stays in the pool.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ledger.economics.days import ChainClock
from ledger.genesis import AllocationRow, Genesis
from ledger.vesting import unlocked, unlocked_between

MINING = "mining"
STAKING = "staking"
POOLS = (MINING, STAKING)


def _window(genesis: Genesis, day: int) -> tuple[int, int]:
    clock = ChainClock.of(genesis)
    return clock.day_start(day), clock.day_end(day)


def row_unlock_on_day(genesis: Genesis, row: AllocationRow, day: int) -> int:
    """Base units `row` unlocks during chain day `day`."""
    t0, t1 = _window(genesis, day)
    return unlocked_between(row, genesis.allocation_start, genesis.params.month_s, t0, t1)


def pool_daily_cap(genesis: Genesis, pool: str, day: int) -> int:
    """The day's cap of reward pool `pool` ("mining" or "staking"): its rows' unlocks that day."""
    return sum(row_unlock_on_day(genesis, r, day) for r in genesis.allocation if r.pool == pool)


def rows_daily_cap(rows: Iterable[AllocationRow], allocation_start: int, month_s: int, clock: ChainClock,
                   day: int) -> int:
    """The same for rows given directly (the state keeps a pool's rows, not the whole genesis)."""
    t0, t1 = clock.day_start(day), clock.day_end(day)
    return sum(unlocked_between(r, allocation_start, month_s, t0, t1) for r in rows)


@dataclass(frozen=True)
class RowUnlock:
    name: str
    pool: str | None
    account: bytes | None
    amount: int
    unlocks: int            # during the day
    unlocked: int           # in total by the end of the day


@dataclass(frozen=True)
class DaySchedule:
    day: int
    day_start: int          # unix seconds, inclusive
    day_end: int            # unix seconds, exclusive
    caps: dict[str, int]    # pool -> daily cap
    rows: tuple[RowUnlock, ...]


def day_schedule(genesis: Genesis, day: int) -> DaySchedule:
    """Every pool's cap and every row's unlock on `day` (what `mindnode genesis schedule` shows)."""
    clock = ChainClock.of(genesis)
    _, t1 = _window(genesis, day)
    rows = tuple(RowUnlock(name=r.name, pool=r.pool, account=r.account, amount=r.amount,
                           unlocks=row_unlock_on_day(genesis, r, day),
                           unlocked=unlocked(r, genesis.allocation_start, genesis.params.month_s, t1))
                 for r in genesis.allocation)
    caps = {p: sum(r.unlocks for r in rows if r.pool == p) for p in POOLS}
    return DaySchedule(day=day, day_start=clock.day_start(day), day_end=clock.day_end(day), caps=caps, rows=rows)
