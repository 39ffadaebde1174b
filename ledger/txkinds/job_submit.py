"""job_submit: publish a training job and escrow its budget (rules: ledger/JOBS.md).

The body carries the scheduling terms as typed fields (the chain enforces them) and the canonical
JSON job spec as opaque bytes (its SHA-256 is the job's `spec_hash`; workers read the spec from
the chain). `mindnode.jobs.spec.submit_body` builds the body from a validated spec file.
"""

from __future__ import annotations

from typing import Annotated

from ledger.codec import BigUInt, Bytes, Str, UInt
from ledger.jobs import lifecycle, rules
from ledger.registry import TxBody, tx_kind


@tx_kind("job_submit")
class JobSubmit(TxBody):
    spec: Annotated[bytes, Bytes(max_len=rules.MAX_SPEC_BYTES)]
    mode: Annotated[str, Str(8)]
    workers: Annotated[int, UInt(8)]
    min_workers: Annotated[int, UInt(8)]
    min_class: Annotated[str, Str(32)]
    min_score: Annotated[int, UInt(64)]
    max_price: Annotated[int, BigUInt(32)]
    max_samples: Annotated[int, UInt(64)]
    steps: Annotated[int, UInt(32)]
    replay_steps: Annotated[int, UInt(16)]
    metric: Annotated[str, Str(32)]
    metric_op: Annotated[str, Str(2)]
    threshold_ppm: Annotated[int, UInt(64)]
    budget: Annotated[int, BigUInt(32)]
    offer_window: Annotated[int, UInt(16)]
    deadline_ms: Annotated[int, UInt(64)]
    strategy: Annotated[str, Str(32)]

    def check(self, params):
        lifecycle.check_submit_fields(params, self)

    def apply(self, state, ctx, tx):
        lifecycle.submit(state, ctx, tx.sender, tx.hash, self)
