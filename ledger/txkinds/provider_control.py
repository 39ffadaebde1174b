"""provider_control: a provider's answer to its open control task (`ledger.jobs.control`). The
chain computes the known answer itself; right or wrong, the task closes and reputation moves."""

from __future__ import annotations

from typing import Annotated

from ledger.codec import Bytes, UInt
from ledger.jobs import control
from ledger.registry import TxBody, tx_kind


@tx_kind("provider_control")
class ProviderControl(TxBody):
    task_id: Annotated[int, UInt(64)]
    answer: Annotated[bytes, Bytes(32)]

    def apply(self, state, ctx, tx):
        control.answer(state, tx.sender, self.task_id, self.answer)
