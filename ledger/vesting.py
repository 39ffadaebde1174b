"""Linear vesting with a cliff, in integers: what an allocation row has unlocked at a given time.

The white paper (section 7.1) gives each row a cliff and a vesting length in months from
2024-04-16; a row unlocks linearly from the end of its cliff to the end of its vesting. We round
down (floor) at every instant, so nothing unlocks early and the last base unit unlocks exactly at
the end; the not-yet-unlocked remainder stays locked, so supply is conserved to the unit.
"""

from __future__ import annotations

from ledger.genesis import AllocationRow


def unlocked(row: AllocationRow, start: int, month_s: int, t: int) -> int:
    """Base units of `row` unlocked at unix time `t`, for a schedule starting at `start`."""
    cliff_end = start + row.cliff_months * month_s
    duration = row.vesting_months * month_s
    if t <= cliff_end:
        return 0 if duration > 0 or t < cliff_end else row.amount
    if duration == 0 or t >= cliff_end + duration:
        return row.amount
    return row.amount * (t - cliff_end) // duration


def unlocked_between(row: AllocationRow, start: int, month_s: int, t0: int, t1: int) -> int:
    """Base units that unlock in the half-open interval (t0, t1]; sums telescope exactly."""
    return unlocked(row, start, month_s, t1) - unlocked(row, start, month_s, t0)
