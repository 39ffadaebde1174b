"""provider_register: a node offers its compute: hardware class and benchmark score (from
`mindnode bench`), its own price per work unit, how many jobs at once, a zone hint and bandwidth.
Also becomes its economics mining profile. Reputation starts at REPUTATION_START."""

from __future__ import annotations

from typing import Annotated

from ledger.codec import BigUInt, Str, UInt
from ledger.jobs import providers
from ledger.registry import TxBody, tx_kind


@tx_kind("provider_register")
class ProviderRegister(TxBody):
    hardware_class: Annotated[str, Str(32)]
    score: Annotated[int, UInt(64)]
    price: Annotated[int, BigUInt(32)]
    capacity: Annotated[int, UInt(8)]
    zone: Annotated[str, Str(32)]
    bandwidth_kbps: Annotated[int, UInt(32)]

    def check(self, params):
        providers.check_offer_fields(params, self.hardware_class, self.score, self.capacity, self.bandwidth_kbps)

    def apply(self, state, ctx, tx):
        providers.register(state, tx.sender, ctx.height, hardware_class=self.hardware_class, score=self.score,
                           price=self.price, capacity=self.capacity, zone=self.zone,
                           bandwidth_kbps=self.bandwidth_kbps)
