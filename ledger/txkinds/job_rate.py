"""job_rate: the submitter rates a finished job once, 1..5; each paid worker's reputation moves by
(score - 3) * REP_RATING_STEP (at most +-100)."""

from __future__ import annotations

from typing import Annotated

from ledger.codec import UInt
from ledger.jobs import lifecycle
from ledger.jobs.errors import JobError
from ledger.registry import TxBody, tx_kind


@tx_kind("job_rate")
class JobRate(TxBody):
    job_id: Annotated[int, UInt(64)]
    score: Annotated[int, UInt(8)]

    def check(self, params):
        if not 1 <= self.score <= 5:
            raise JobError(f"a rating is 1..5, got {self.score}")

    def apply(self, state, ctx, tx):
        lifecycle.rate(state, ctx, tx.sender, self.job_id, self.score)
