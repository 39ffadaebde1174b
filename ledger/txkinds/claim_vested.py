"""claim_vested: withdraw what the sender's genesis vesting rows have unlocked by the block's time.

Unlocking follows `ledger.vesting.unlocked` (integer, floor-rounded linear vesting after a cliff,
clock starting at the genesis `allocation_start`, months of Params.month_s). A claim pays out
``unlocked(now) - withdrawn`` of every row of the sender; claiming when nothing new has unlocked is
rejected so it cannot be used to burn fees by mistake.
"""

from __future__ import annotations

import dataclasses

from ledger.errors import InvalidTransaction
from ledger.registry import TxBody, tx_kind
from ledger.state import vesting_row
from ledger.vesting import unlocked


@tx_kind("claim_vested")
class ClaimVested(TxBody):
    def apply(self, state, ctx, tx):
        rows = state.vesting_rows(tx.sender)
        if not rows:
            raise InvalidTransaction("the sender has no vesting allocation")
        total = 0
        for key, v in rows:
            due = unlocked(vesting_row(v), ctx.allocation_start, ctx.params.month_s, ctx.now_s) - v.withdrawn
            if due > 0:
                state.put(key, dataclasses.replace(v, withdrawn=v.withdrawn + due))
                total += due
        if total == 0:
            raise InvalidTransaction("nothing new has unlocked yet")
        state.credit(tx.sender, total)
