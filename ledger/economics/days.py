"""The chain's day and its 24 hours, from a block timestamp alone.

Why from the timestamp: the ledger has no wall clock (ARCHITECTURE.md), and every node must put a
block in the same day. Day 0 starts at the genesis `allocation_start` (2024-04-16 00:00 UTC on
mainnet, a UTC midnight, so chain days ARE UTC days there); a day lasts `Params.day_s` seconds (a
couple of minutes on the devnet). Each day has 24 "hours" of `day_s / 24` seconds; when `day_s` is
not a multiple of 24, hour h starts ceil(h * day_s / 24) seconds into the day, so `hour_of` and
`hour_start` agree exactly in integers.
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger.economics.errors import EconomicsError
from ledger.genesis import Genesis

HOURS_PER_DAY = 24


@dataclass(frozen=True)
class ChainClock:
    """Maps unix seconds to (day, hour) and back. `origin` is the first second of day 0."""

    origin: int
    day_s: int

    def __post_init__(self) -> None:
        if type(self.day_s) is not int or self.day_s < HOURS_PER_DAY:
            raise EconomicsError(f"a chain day must last at least {HOURS_PER_DAY} s, got {self.day_s!r}")

    @classmethod
    def of(cls, genesis: Genesis) -> ChainClock:
        return cls(genesis.allocation_start, genesis.params.day_s)

    def day_of(self, t: int) -> int:
        """The day containing unix second `t` (negative before the schedule starts)."""
        return (t - self.origin) // self.day_s

    def day_start(self, day: int) -> int:
        """First second of `day`."""
        return self.origin + day * self.day_s

    def day_end(self, day: int) -> int:
        """First second AFTER `day` (= start of the next day); the day is [start, end)."""
        return self.origin + (day + 1) * self.day_s

    def hour_of(self, t: int) -> tuple[int, int]:
        """(day, hour in 0..23) of unix second `t`."""
        day = self.day_of(t)
        return day, (t - self.day_start(day)) * HOURS_PER_DAY // self.day_s

    def hour_start(self, day: int, hour: int) -> int:
        """First second of `hour` of `day`."""
        if not 0 <= hour < HOURS_PER_DAY:
            raise EconomicsError(f"hour must be 0..23, got {hour}")
        return self.day_start(day) + -(-hour * self.day_s // HOURS_PER_DAY)

    def is_first_block_of_day(self, parent_time: int, time: int) -> bool:
        """True when a block at `time` is the first of its day (its parent lies in an earlier day):
        that block settles every day from the parent's day up to the day before its own."""
        return self.day_of(time) > self.day_of(parent_time)
