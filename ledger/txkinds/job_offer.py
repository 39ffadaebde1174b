"""job_offer: a registered provider that meets a job's minimum hardware offers to work on it,
during its offer window, at `price` base units per work unit (at most the job's max_price)."""

from __future__ import annotations

from typing import Annotated

from ledger.codec import BigUInt, Str, UInt
from ledger.jobs import lifecycle
from ledger.registry import TxBody, tx_kind


@tx_kind("job_offer")
class JobOffer(TxBody):
    job_id: Annotated[int, UInt(64)]
    price: Annotated[int, BigUInt(32)]
    zone: Annotated[str, Str(32)]

    def apply(self, state, ctx, tx):
        lifecycle.offer(state, ctx, tx.sender, self.job_id, self.price, self.zone)
