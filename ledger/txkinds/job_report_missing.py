"""job_report_missing: an active worker reports a co-worker that stopped answering. When strictly
more than half of the other active workers have reported it, it is marked missing (reputation,
that day's mining reward) and replaced by the next-best offer (ledger/JOBS.md, "Faults")."""

from __future__ import annotations

from typing import Annotated

from ledger.codec import Bytes, UInt
from ledger.jobs import lifecycle
from ledger.registry import TxBody, tx_kind


@tx_kind("job_report_missing")
class JobReportMissing(TxBody):
    job_id: Annotated[int, UInt(64)]
    worker: Annotated[bytes, Bytes(32)]

    def apply(self, state, ctx, tx):
        lifecycle.report_missing(state, ctx, tx.sender, self.job_id, self.worker)
