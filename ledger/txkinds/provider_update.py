"""provider_update: a registered provider changes its hardware class, score, price, capacity, zone
or bandwidth (e.g. after a new benchmark). Reputation and counters are untouched."""

from __future__ import annotations

from typing import Annotated

from ledger.codec import BigUInt, Str, UInt
from ledger.jobs import providers
from ledger.registry import TxBody, tx_kind


@tx_kind("provider_update")
class ProviderUpdate(TxBody):
    hardware_class: Annotated[str, Str(32)]
    score: Annotated[int, UInt(64)]
    price: Annotated[int, BigUInt(32)]
    capacity: Annotated[int, UInt(8)]
    zone: Annotated[str, Str(32)]
    bandwidth_kbps: Annotated[int, UInt(32)]

    def check(self, params):
        providers.check_offer_fields(params, self.hardware_class, self.score, self.capacity, self.bandwidth_kbps)

    def apply(self, state, ctx, tx):
        providers.update(state, tx.sender, hardware_class=self.hardware_class, score=self.score, price=self.price,
                         capacity=self.capacity, zone=self.zone, bandwidth_kbps=self.bandwidth_kbps)
