"""Per-address reward bookkeeping: what was earned, per day and kind, and what can be withdrawn.

Why accrue instead of paying straight into balances: the white paper (6.4) has users withdraw
their rewards; settlement touches every rewarded address once a day, and a withdrawal is the
user's own transaction. Amounts credited here are already out of their pool and held in the
state's reward escrow (so total supply is unchanged); `withdraw` moves the whole withdrawable
amount to the balance. Staking rewards of delegators are credited when realised by F1 (on claim or
stake change), so a day's staking entry is what was realised that day; master-node shares are
credited at settlement. History keeps the last `accrual_history_days` days for display only.
"""

from __future__ import annotations

from typing import Annotated

from ledger.codec import BigUInt, ListOf, Record, UInt, record
from ledger.economics.errors import EconomicsError, NothingToWithdraw

MINING = "mining"
STAKING = "staking"
UTILISATION = "utilisation"
KINDS = (MINING, STAKING, UTILISATION)
#: Hard bound on the history list (a genesis may not ask for more days than this).
MAX_HISTORY_DAYS = 366


@record
class DayAccrual(Record):
    day: Annotated[int, UInt(32)]
    mining: Annotated[int, BigUInt()]
    staking: Annotated[int, BigUInt()]
    utilisation: Annotated[int, BigUInt()]


@record
class RewardAccount(Record):
    """Withdrawable amounts per kind, everything ever withdrawn, and recent days' credits."""

    mining: Annotated[int, BigUInt()]
    staking: Annotated[int, BigUInt()]
    utilisation: Annotated[int, BigUInt()]
    withdrawn: Annotated[int, BigUInt()]
    history: Annotated[tuple, ListOf(DayAccrual, MAX_HISTORY_DAYS)]


EMPTY = RewardAccount(mining=0, staking=0, utilisation=0, withdrawn=0, history=())


def withdrawable(acct: RewardAccount) -> int:
    return acct.mining + acct.staking + acct.utilisation


def credit(acct: RewardAccount, day: int, kind: str, amount: int, keep_days: int) -> RewardAccount:
    """`acct` with `amount` of `kind` earned on `day` added; history keeps days > newest - keep_days."""
    if kind not in KINDS:
        raise EconomicsError(f"unknown reward kind {kind!r} (one of {', '.join(KINDS)})")
    if type(amount) is not int or amount < 0:
        raise EconomicsError(f"a reward credit must be a non-negative integer, got {amount!r}")
    if not 1 <= keep_days <= MAX_HISTORY_DAYS:
        raise EconomicsError(f"history length must be 1..{MAX_HISTORY_DAYS} days, got {keep_days}")
    if amount == 0:
        return acct
    days = {h.day: h for h in acct.history}
    old = days.get(day, DayAccrual(day=day, mining=0, staking=0, utilisation=0))
    days[day] = DayAccrual(**{**{k: getattr(old, k) for k in ("day", *KINDS)}, kind: getattr(old, kind) + amount})
    newest = max(days)
    history = tuple(days[d] for d in sorted(days) if d > newest - keep_days)
    fields = {k: getattr(acct, k) for k in (*KINDS, "withdrawn")}
    fields[kind] += amount
    return RewardAccount(**fields, history=history)


def withdraw(acct: RewardAccount) -> tuple[RewardAccount, int]:
    """(account with nothing withdrawable, amount to add to the balance); history is kept."""
    amount = withdrawable(acct)
    if amount == 0:
        raise NothingToWithdraw("no accrued rewards to withdraw")
    return RewardAccount(mining=0, staking=0, utilisation=0, withdrawn=acct.withdrawn + amount,
                         history=acct.history), amount
