"""uptime: record providers' signed heartbeats of the current day (mining qualification).

Anyone may relay them (each hour carries the provider's own signature, re-verified here); the
proposer normally includes the heartbeats it saw, built with `ledger.economics.uptime.
build_uptime_entries`, in a zero-fee transaction of its own. See ledger/ECONOMICS.md.
"""

from __future__ import annotations

from typing import Annotated

from ledger.codec import ListOf
from ledger.economics import ledger_state
from ledger.economics.uptime import UptimeEntry
from ledger.errors import InvalidTransaction
from ledger.registry import TxBody, tx_kind

#: Entries per transaction (the transaction size limit binds first: ~24 signatures per entry).
MAX_ENTRIES_PER_TX = 1024


@tx_kind("uptime")
class Uptime(TxBody):
    entries: Annotated[tuple, ListOf(UptimeEntry, MAX_ENTRIES_PER_TX)]

    def check(self, params):
        if not self.entries:
            raise InvalidTransaction("an uptime transaction needs at least one entry")

    def apply(self, state, ctx, tx):
        ledger_state.record_uptime(state, ctx.chain_id, ctx.now_s, self.entries)
