"""job_verify: the designated verifier's verdict: the replayed step range (must be the one the
chain drew), the workers whose replay failed, and the acceptance metric it measured on the
held-out split (integer millionths). Settles the job (ledger/JOBS.md, "Verification")."""

from __future__ import annotations

from typing import Annotated

from ledger.codec import Bytes, ListOf, UInt
from ledger.jobs import lifecycle
from ledger.registry import TxBody, tx_kind


@tx_kind("job_verify")
class JobVerify(TxBody):
    job_id: Annotated[int, UInt(64)]
    replay_from: Annotated[int, UInt(32)]
    replay_steps: Annotated[int, UInt(16)]
    bad_workers: Annotated[tuple, ListOf(Bytes(32), 64)]
    metric_ppm: Annotated[int, UInt(64)]

    def apply(self, state, ctx, tx):
        lifecycle.verify(state, ctx, tx.sender, self.job_id, self.replay_from, self.replay_steps,
                         self.bad_workers, self.metric_ppm)
