"""Block and stake hooks of the economics (no transaction kind here).

* begin-block: the first block of a new day settles the finished days' mining and staking
  rewards before any transaction runs (`ledger.economics.ledger_state.settle_due_days`).
* stake: before any stake changes, F1 realises what the old stake earned.
"""

from __future__ import annotations

from ledger.economics import ledger_state
from ledger.registry import block_hook


@block_hook("begin", order=5, name="settle_rewards")
def settle_rewards(state, ctx) -> None:
    ledger_state.settle_due_days(state, ctx.timestamp_ms)


@block_hook("stake", order=0, name="f1_realize")
def f1_realize(state, staker, validator, kind, delta) -> None:
    ledger_state.on_stake_change(state, staker, validator, kind, delta)
