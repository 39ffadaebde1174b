"""stake: put balance behind a validator candidate, flexible or long-term.

`lock_days == 0` is flexible stake (unstake any time; it then unbonds for
Params.unbonding_period_s). `lock_days` in [min_long_term_days, max_long_term_days] is long-term
stake, locked until ``block time + lock_days * day_s``. Adding long-term stake to an existing
long-term position on the same validator moves the whole position's lock to the later of the two
expiries (one position per staker/validator/kind keeps state and reward accounting small).
"""

from __future__ import annotations

from typing import Annotated

from ledger.codec import BigUInt, Bytes, UInt
from ledger.errors import InvalidTransaction
from ledger.registry import TxBody, tx_kind
from ledger.state import FLEXIBLE, LONG_TERM


@tx_kind("stake")
class StakeTx(TxBody):
    validator: Annotated[bytes, Bytes(32)]
    amount: Annotated[int, BigUInt(32)]
    lock_days: Annotated[int, UInt(16)]

    def check(self, params):
        if self.amount == 0:
            raise InvalidTransaction("stake amount must be positive")
        if self.lock_days and not params.min_long_term_days <= self.lock_days <= params.max_long_term_days:
            raise InvalidTransaction(f"a long-term lock is {params.min_long_term_days} to "
                                     f"{params.max_long_term_days} days, not {self.lock_days}")

    def apply(self, state, ctx, tx):
        if state.candidate(self.validator) is None:
            raise InvalidTransaction("stake target is not a validator candidate")
        state.debit(tx.sender, self.amount, "the stake")
        if self.lock_days:
            lock = ctx.timestamp_ms + self.lock_days * ctx.params.day_s * 1000
            state.change_stake(tx.sender, self.validator, LONG_TERM, self.amount, lock)
        else:
            state.change_stake(tx.sender, self.validator, FLEXIBLE, self.amount)
