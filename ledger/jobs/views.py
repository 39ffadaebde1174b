"""Read-only views of the jobs state for the node's HTTP API and the CLI (JSON-ready: amounts as
decimal strings of base units, addresses as ``mn...`` text, metrics as floats for display only),
plus `audit_jobs`, the escrow check used by tests and tools.

A provider node polls `provider_duties(state, address)` after each new head: it lists the open
jobs it may offer on, the jobs it is assigned to, the verifications it is designated for, and its
open control task (see ledger/JOBS.md, "What a node does").
"""

from __future__ import annotations

from ledger.jobs import rules
from ledger.jobs.control import open_task
from ledger.jobs.errors import JobError
from ledger.jobs.lifecycle import _eligible, submit_index_key
from ledger.jobs.records import (
    JOB_ESCROW,
    OPEN,
    RUNNING,
    SLASH_ACCOUNT,
    TERMINAL,
    VERIFYING,
    Job,
    get_job,
    get_provider,
    offers_of,
)
from ledger.keys import address_to_text


def _a(addr: bytes) -> str:
    return address_to_text(addr) if addr else ""


def provider_view(state, addr: bytes) -> dict | None:
    p = get_provider(state, addr)
    if p is None:
        return None
    task = open_task(state, addr)
    return {"address": _a(addr), "hardware_class": p.hardware_class, "score": p.score, "price": str(p.price),
            "capacity": p.capacity, "zone": p.zone, "bandwidth_kbps": p.bandwidth_kbps, "reputation": p.reputation,
            "active_jobs": p.active_jobs, "jobs_done": p.jobs_done, "jobs_failed": p.jobs_failed,
            "controls_passed": p.controls_passed, "controls_failed": p.controls_failed,
            "registered_height": p.registered_height,
            "control_task": None if task is None else {"task_id": task.task_id, "seed": task.seed.hex(),
                                                       "due_height": task.due_height}}


def job_view(state, job_id: int) -> dict:
    job = get_job(state, job_id)
    if job is None:
        raise JobError(f"no job {job_id}")
    return job_to_dict(state, job)


def job_to_dict(state, job: Job) -> dict:
    res = job.result
    return {
        "id": job.id, "state": job.state, "reason": job.reason, "submitter": _a(job.submitter),
        "spec_hash": job.spec_hash.hex(), "mode": job.mode, "workers": job.workers, "min_workers": job.min_workers,
        "min_class": job.min_class, "min_score": job.min_score, "max_price": str(job.max_price),
        "steps": job.steps, "metric": job.metric, "metric_op": job.metric_op,
        "threshold": job.threshold_ppm / rules.PPM, "budget": str(job.budget), "escrow": str(job.escrow),
        "deadline_ms": job.deadline_ms, "created_height": job.created_height,
        "window_close_height": job.window_close_height,
        "offers": [{"provider": _a(a), "price": str(o.price), "zone": o.zone} for a, o in offers_of(state, job.id)],
        "assigned": [{"provider": _a(w.provider), "price": str(w.price), "rank": w.rank, "active": w.active}
                     for w in job.assigned],
        "result": None if res is None else {
            "result_id": res.result_cid, "checkpoints": list(res.checkpoints),
            "evidence": res.evidence,
            "metrics": {m.name: m.value_ppm / rules.PPM for m in res.metrics},
            "work": [{"provider": _a(w.provider), "samples": w.samples} for w in res.work], "height": res.height},
        "verifier": _a(job.verifier), "replay_from": job.replay_from, "replay_steps": job.replay_steps,
        "accused": [_a(a) for a in job.accused], "accuser": _a(job.accuser),
        "verified_metric": job.verified_metric_ppm / rules.PPM if job.state in TERMINAL and res else None,
        "fee_paid": str(job.fee_paid), "refunded": str(job.refunded),
        "payments": [{"provider": _a(p.provider), "amount": str(p.amount)} for p in job.payments],
        "rated": job.rated, "settled_height": job.settled_height,
    }


def job_id_of_tx(state, tx_hash: bytes) -> int | None:
    raw = state.get(submit_index_key(tx_hash))
    return None if raw is None else int.from_bytes(raw, "big")


def iter_jobs(state):
    for _, raw in state.iter_prefix(b"Jj"):
        yield raw if isinstance(raw, Job) else Job.decode(raw)


def list_jobs(state, *, submitter: bytes | None = None, states: tuple[str, ...] | None = None) -> list[dict]:
    """Summaries of jobs (a full scan: fine for a node's API, not for block execution)."""
    out = []
    for job in iter_jobs(state):
        if submitter is not None and job.submitter != submitter:
            continue
        if states is not None and job.state not in states:
            continue
        out.append({"id": job.id, "state": job.state, "mode": job.mode, "workers": job.workers,
                    "budget": str(job.budget), "submitter": _a(job.submitter), "reason": job.reason})
    return out


def provider_duties(state, addr: bytes) -> dict:
    """What a provider node should act on now (see module docstring)."""
    offerable, assigned, verify = [], [], []
    for job in iter_jobs(state):
        if job.state == OPEN:
            if _eligible(state, job, addr) is None and state.get(b"Jo" + job.id.to_bytes(8, "big") + addr) is None:
                offerable.append(job.id)
        elif job.state == RUNNING:
            w = job.worker(addr)
            if w is not None and w.active:
                assigned.append({"job_id": job.id, "rank": w.rank,
                                 "peers": [_a(x.provider) for x in job.active_workers]})
        elif job.state == VERIFYING and job.verifier == addr:
            verify.append({"job_id": job.id, "replay_from": job.replay_from, "replay_steps": job.replay_steps,
                           "due_height": job.verify_due_height})
    task = open_task(state, addr)
    return {"offerable": offerable, "assigned": assigned, "verify": verify,
            "control_task": None if task is None else {"task_id": task.task_id, "seed": task.seed.hex(),
                                                       "due_height": task.due_height}}


def audit_jobs(state) -> dict[str, int]:
    """The escrow holds exactly what the unfinished jobs still escrow; finished jobs hold nothing;
    the slash passage account is empty (when the chain has a staking pool). Raises JobError."""
    held = 0
    for job in iter_jobs(state):
        if job.state in TERMINAL and job.escrow:
            raise JobError(f"job {job.id} is {job.state} but still escrows {job.escrow}")
        if job.state in (OPEN, RUNNING, VERIFYING):
            held += job.escrow
        if job.fee_paid + job.refunded + job.escrow != job.budget:
            raise JobError(f"job {job.id}: fee {job.fee_paid} + refund {job.refunded} + escrow {job.escrow} "
                           f"!= budget {job.budget}")
    bal = state.account(JOB_ESCROW).balance
    if bal != held:
        raise JobError(f"job escrow holds {bal} but unfinished jobs escrow {held}")
    return {"escrow": bal, "slash_passage": state.account(SLASH_ACCOUNT).balance}
