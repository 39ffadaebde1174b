"""unstake: take stake back from a validator.

* Flexible stake leaves the validator's total at once and becomes an *unbonding* entry that is
  paid back to the staker's balance **automatically** by the first block whose timestamp is at or
  past ``unstake block time + Params.unbonding_period_s`` (a begin-block hook below). Automatic
  release was chosen over a claim transaction so users never strand funds or pay a fee to get
  their own stake back; the cost is bounded: the queue is ordered by release time, so a block
  only touches the entries that actually mature.
* Long-term stake can be unstaked only once its lock has expired, and is then paid back at once
  (the lock already served as the bonding period).
"""

from __future__ import annotations

from typing import Annotated

from ledger.codec import BigUInt, Bool, Bytes
from ledger.errors import InvalidTransaction
from ledger.registry import TxBody, block_hook, tx_kind
from ledger.state import FLEXIBLE, LONG_TERM


@tx_kind("unstake")
class Unstake(TxBody):
    validator: Annotated[bytes, Bytes(32)]
    amount: Annotated[int, BigUInt(32)]
    long_term: Annotated[bool, Bool()]

    def check(self, params):
        if self.amount == 0:
            raise InvalidTransaction("unstake amount must be positive")

    def apply(self, state, ctx, tx):
        kind = LONG_TERM if self.long_term else FLEXIBLE
        cur = state.stake(tx.sender, self.validator, kind)
        have = cur.amount if cur else 0
        label = "long-term" if self.long_term else "flexible"
        if have < self.amount:
            raise InvalidTransaction(f"cannot unstake {self.amount}: only {have} {label} stake on that validator")
        if self.long_term:
            if cur.lock_until_ms > ctx.timestamp_ms:
                raise InvalidTransaction(f"long-term stake is locked until {cur.lock_until_ms} ms "
                                         f"(block time is {ctx.timestamp_ms} ms)")
            state.change_stake(tx.sender, self.validator, kind, -self.amount)
            state.credit(tx.sender, self.amount)
        else:
            state.change_stake(tx.sender, self.validator, kind, -self.amount)
            release = ctx.timestamp_ms + ctx.params.unbonding_period_s * 1000
            state.add_unbonding(release, tx.sender, self.validator, self.amount)


@block_hook("begin", order=10, name="release_unbonding")
def release_unbonding(state, ctx) -> None:
    """Pay back every unbonding entry whose release time is at or before this block's time."""
    matured = []
    for key, entry in state.iter_prefix(b"q"):
        if int.from_bytes(key[1:9], "big") > ctx.timestamp_ms:
            break
        matured.append((key, entry))
    for key, entry in matured:
        state.delete(key)
        state.credit(key[9:41], entry.amount)
