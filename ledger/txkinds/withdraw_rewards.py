"""withdraw_rewards: move every accrued reward (mining, staking, utilisation) to the balance.

Staking positions are realised first (F1), so the whole amount earned up to this block is paid.
Withdrawing with nothing accrued is rejected, so a mistaken withdrawal cannot burn a fee.
"""

from __future__ import annotations

from ledger.economics import ledger_state
from ledger.registry import TxBody, tx_kind


@tx_kind("withdraw_rewards")
class WithdrawRewards(TxBody):
    def apply(self, state, ctx, tx):
        ledger_state.withdraw_rewards(state, tx.sender)
