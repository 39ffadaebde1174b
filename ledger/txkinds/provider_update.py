"""provider_update: a registered provider changes its hardware class, score, price, capacity, zone
or bandwidth (e.g. after a new benchmark). Reputation and counters are untouched.

Same body and field checks as `provider_register` (so the two can never drift apart); only the
effect differs."""

from __future__ import annotations

from ledger.jobs import providers
from ledger.registry import tx_kind
from ledger.txkinds.provider_register import ProviderRegister


@tx_kind("provider_update")
class ProviderUpdate(ProviderRegister):
    def apply(self, state, ctx, tx):
        providers.update(state, tx.sender, hardware_class=self.hardware_class, score=self.score, price=self.price,
                         capacity=self.capacity, zone=self.zone, bandwidth_kbps=self.bandwidth_kbps)
