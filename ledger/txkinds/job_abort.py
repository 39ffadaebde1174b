"""job_abort: an active worker of a running job declares it untrainable: its dataset artifact, its
base model artifact or its spec is unusable (`code` "dataset", "base_model" or "spec"; `reason`
a short message, <= 160 characters). When strictly more than half of the active workers have
declared, the job fails with a full refund and nobody is paid or penalised (ledger/JOBS.md,
"Faults"). Why a transaction: otherwise such a job sat `running` at step 0 until its deadline,
and the submitter's only way out, `job_cancel`, paid the workers the running-cancel fee for
nothing."""

from __future__ import annotations

from typing import Annotated

from ledger.codec import Str, UInt
from ledger.jobs import lifecycle
from ledger.jobs.records import ABORT_REASON_CHARS
from ledger.registry import TxBody, tx_kind


@tx_kind("job_abort")
class JobAbort(TxBody):
    job_id: Annotated[int, UInt(64)]
    code: Annotated[str, Str(16)]
    reason: Annotated[str, Str(ABORT_REASON_CHARS)]

    def check(self, params):
        lifecycle.check_abort_fields(self.code, self.reason)

    def apply(self, state, ctx, tx):
        lifecycle.abort(state, ctx, tx.sender, self.job_id, self.code, self.reason)
