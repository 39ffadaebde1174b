"""job_cancel: the submitter withdraws its job. Open: full refund. Running: 10% of the budget pays
the active workers for the work begun (through the utilisation split), the rest is refunded.
Verifying or finished: refused."""

from __future__ import annotations

from typing import Annotated

from ledger.codec import UInt
from ledger.jobs import lifecycle
from ledger.registry import TxBody, tx_kind


@tx_kind("job_cancel")
class JobCancel(TxBody):
    job_id: Annotated[int, UInt(64)]

    def apply(self, state, ctx, tx):
        lifecycle.cancel(state, ctx, tx.sender, self.job_id)
