"""job_result: an active worker posts the job's result: the weights' content id, the metrics
(integer millionths), the samples each worker processed, and the checkpoint ids a verifier
replays from, and `evidence`: the content id of the workers' evidence bundle (per-rank signed
gradient sketches, per-worker checkpoint lists; see mindnode/jobs/evidence.py), or "" for none.
The chain does not read the bundle; a verifier does. The job then waits for its verification
challenge."""

from __future__ import annotations

from typing import Annotated

from ledger.codec import ListOf, Str, UInt
from ledger.jobs.records import Metric, Work
from ledger.registry import TxBody, tx_kind


@tx_kind("job_result")
class JobResult(TxBody):
    job_id: Annotated[int, UInt(64)]
    result_cid: Annotated[str, Str(128)]
    metrics: Annotated[tuple, ListOf(Metric, 16)]
    work: Annotated[tuple, ListOf(Work, 64)]
    checkpoints: Annotated[tuple, ListOf(Str(128), 64)]
    evidence: Annotated[str, Str(128)] = ""

    def apply(self, state, ctx, tx):
        from ledger.jobs import lifecycle

        lifecycle.post_result(state, ctx, tx.sender, self.job_id, self.result_cid, self.metrics, self.work,
                              self.checkpoints, self.evidence)
