"""mining_profile: a provider states its hardware class and bandwidth for the mining reward.

The weight of a machine in the daily mining reward is its class weight times its bandwidth factor
(ledger/ECONOMICS.md). Until the jobs issue measures them with the node's benchmark, the provider
declares them; the class must be one of the genesis `hardware_classes`.
"""

from __future__ import annotations

from typing import Annotated

from ledger.codec import Str, UInt
from ledger.economics import ledger_state
from ledger.registry import TxBody, tx_kind


@tx_kind("mining_profile")
class MiningProfileTx(TxBody):
    hardware_class: Annotated[str, Str(32)]
    bandwidth_kbps: Annotated[int, UInt(32)]

    def apply(self, state, ctx, tx):
        ledger_state.set_mining_profile(state, tx.sender, self.hardware_class, self.bandwidth_kbps)
