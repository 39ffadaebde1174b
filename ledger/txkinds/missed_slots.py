"""Block hooks of consensus liveness (no transaction kind here): the missed in-turn slot counters.

* begin-block, order 1 (before the day's reward settlement at order 5, which reads the counters
  to withhold master-node shares): count the block's slot, withhold / jail at the thresholds.
* end-block, last: at the end of an epoch, record the next epoch's validator set from the state
  after everything the block did (`ledger.consensus.slots`).
"""

from __future__ import annotations

from ledger.consensus import slots
from ledger.registry import block_hook

#: The end hook must see the block's final stakes and jails, so it runs after any other end hook.
LAST = 1 << 30


@block_hook("begin", order=1, name="missed_slots")
def count_slot(state, ctx) -> None:
    slots.begin_block(state, ctx.height, ctx.timestamp_ms, ctx.proposer)


@block_hook("end", order=LAST, name="record_epoch_set")
def record_epoch_set(state, ctx) -> None:
    slots.end_block(state, ctx.height, ctx.timestamp_ms)
