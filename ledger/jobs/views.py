"""Read-only views of the jobs state for the node's HTTP API and the CLI (JSON-ready: amounts as
decimal strings of base units, addresses as ``mn...`` text, metrics as floats for display only),
plus `audit_jobs`, the escrow check used by tests and tools.

A provider node polls `provider_duties(state, address)` after each new head: it lists the open
jobs it may offer on, the jobs it is assigned to, the verifications it is designated for, and its
open control task (see ledger/JOBS.md, "What a node does"). Both it and `list_jobs` read the
unfinished jobs through the ``Js`` state index, never the finished ones.

A pruned job (finished longer than `job_retention_blocks` ago) still answers `job_view`, from
its `JobSummary`, in the same shape with ``"pruned": true`` and what was dropped empty or null.
"""

from __future__ import annotations

from ledger.jobs import rules
from ledger.jobs.control import open_task
from ledger.jobs.errors import JobError
from ledger.jobs.lifecycle import _eligible
from ledger.jobs.records import (
    A_AUDIT,
    DONE,
    JOB_ESCROW,
    OPEN,
    RUNNING,
    SLASH_ACCOUNT,
    STATE_CODE,
    TERMINAL,
    VERIFYING,
    Job,
    JobSummary,
    finished_key,
    get_job,
    get_provider,
    get_summary,
    job_ids_in,
    offers_of,
    submit_index_key,
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
        summary = get_summary(state, job_id)
        if summary is None:
            raise JobError(f"no job {job_id}")
        return summary_to_dict(summary)
    return job_to_dict(state, job)


def _payments(ps) -> list[dict]:
    return [{"provider": _a(p.provider), "amount": str(p.amount)} for p in ps]


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
        "aborts": [{"provider": _a(a.worker), "code": a.code, "reason": a.reason, "height": a.height}
                   for a in job.aborts],
        "audit": audit_view(job),
        # a verified figure only where a verdict stood (not for a job failed without any verifier)
        "verified_metric": (job.verified_metric_ppm / rules.PPM
                            if job.state in TERMINAL and res and (job.state == DONE or job.verifier_payments)
                            else None),
        "fee_paid": str(job.fee_paid), "refunded": str(job.refunded), "payments": _payments(job.payments),
        "verifier_fees": str(job.verifier_fees), "verifier_payments": _payments(job.verifier_payments),
        "rated": job.rated, "settled_height": job.settled_height,
        "submit_tx": job.submit_tx.hex(), "pruned": False, "pruned_height": None,
    }


def audit_view(job: Job) -> dict | None:
    """The audit of the job's clean verdict (ledger/JOBS.md "Audits"), None when there was none:
    phase ``draw`` (the next block decides), ``audit`` (an auditor replays, or replayed: see
    `auditor`), ``dispute`` (a decider settles a disagreement)."""
    if not job.audit:
        return None
    return {"phase": job.audit, "clean_verifier": _a(job.clean_by), "clean_metric": job.clean_metric_ppm / rules.PPM,
            "draw_height": job.audit_height, "auditor": _a(job.auditor),
            "audit_metric": job.audit_metric_ppm / rules.PPM if job.auditor else None}


def summary_to_dict(s: JobSummary) -> dict:
    """A pruned job in the `job_to_dict` shape: the summary's fields, the dropped ones empty/null."""
    return {
        "id": s.id, "state": s.state, "reason": s.reason, "submitter": _a(s.submitter),
        "spec_hash": s.spec_hash.hex(), "mode": s.mode, "workers": None, "min_workers": None,
        "min_class": None, "min_score": None, "max_price": None, "steps": None, "metric": s.metric,
        "metric_op": None, "threshold": None, "budget": str(s.budget), "escrow": "0", "deadline_ms": None,
        "created_height": s.created_height, "window_close_height": None, "offers": [], "assigned": [],
        "result": None if not s.result_cid else {
            "result_id": s.result_cid, "checkpoints": [], "evidence": "",
            "metrics": {m.name: m.value_ppm / rules.PPM for m in s.metrics}, "work": [], "height": None},
        "verifier": "", "replay_from": None, "replay_steps": None, "accused": [], "accuser": "", "aborts": [],
        "audit": None,
        "verified_metric": (s.verified_metric_ppm / rules.PPM
                            if s.result_cid and (s.state == DONE or s.verifier_payments) else None),
        "fee_paid": str(s.fee_paid), "refunded": str(s.refunded), "payments": _payments(s.payments),
        "verifier_fees": str(s.verifier_fees), "verifier_payments": _payments(s.verifier_payments),
        "rated": s.rated, "settled_height": s.settled_height,
        "submit_tx": "", "pruned": True, "pruned_height": s.pruned_height,
    }


def job_id_of_tx(state, tx_hash: bytes) -> int | None:
    """The job a job_submit created (None once the job is pruned: its index entry goes with it)."""
    raw = state.get(submit_index_key(tx_hash))
    return None if raw is None else int.from_bytes(raw, "big")


def iter_jobs(state):
    """Every job record still in state (unfinished and retained finished ones): a full scan, for
    audits and tests."""
    for _, raw in state.iter_prefix(b"Jj"):
        yield raw if isinstance(raw, Job) else Job.decode(raw)


def iter_summaries(state):
    for _, raw in state.iter_prefix(b"Jx"):
        yield raw if isinstance(raw, JobSummary) else JobSummary.decode(raw)


def jobs_in(state, job_state: str) -> list[Job]:
    """The jobs in unfinished state `job_state`, through the ``Js`` index (id order)."""
    return [j for j in (get_job(state, i) for i in job_ids_in(state, job_state)) if j is not None]


def finished_jobs(state) -> list[Job]:
    """The finished jobs not pruned yet, in settling order (the ``Jf`` queue)."""
    jobs = (get_job(state, int.from_bytes(k[10:18], "big")) for k, _ in state.iter_prefix(b"Jf"))
    return [j for j in jobs if j is not None]


def list_jobs(state, *, submitter: bytes | None = None, states: tuple[str, ...] | None = None) -> list[dict]:
    """Summaries of the jobs still in state, by id. Unfinished states come from the ``Js`` index;
    finished ones (asked for, or no `states` given) from the pruning queue: pruned jobs are not
    listed (`job_view` still answers for them)."""
    wanted = states if states is not None else (OPEN, RUNNING, VERIFYING, *TERMINAL)
    jobs: list[Job] = []
    for st in (OPEN, RUNNING, VERIFYING):
        if st in wanted:
            jobs.extend(jobs_in(state, st))
    if any(st in TERMINAL for st in wanted):
        jobs.extend(j for j in finished_jobs(state) if j.state in wanted)
    out = []
    for job in sorted(jobs, key=lambda j: j.id):
        if submitter is not None and job.submitter != submitter:
            continue
        out.append({"id": job.id, "state": job.state, "mode": job.mode, "workers": job.workers,
                    "budget": str(job.budget), "submitter": _a(job.submitter), "reason": job.reason})
    return out


def provider_duties(state, addr: bytes) -> dict:
    """What a provider node should act on now (see module docstring). Reads only the open,
    running and verifying jobs (the ``Js`` index)."""
    offerable, assigned, verify = [], [], []
    for job in jobs_in(state, OPEN):
        if _eligible(state, job, addr) is None and state.get(b"Jo" + job.id.to_bytes(8, "big") + addr) is None:
            offerable.append(job.id)
    for job in jobs_in(state, RUNNING):
        w = job.worker(addr)
        if w is not None and w.active:
            assigned.append({"job_id": job.id, "rank": w.rank,
                             "peers": [_a(x.provider) for x in job.active_workers]})
    for job in jobs_in(state, VERIFYING):
        if job.verifier == addr:
            verify.append({"job_id": job.id, "replay_from": job.replay_from, "replay_steps": job.replay_steps,
                           "due_height": job.verify_due_height, "audit": job.audit == A_AUDIT})
    task = open_task(state, addr)
    return {"offerable": offerable, "assigned": assigned, "verify": verify,
            "control_task": None if task is None else {"task_id": task.task_id, "seed": task.seed.hex(),
                                                       "due_height": task.due_height}}


def audit_jobs(state) -> dict[str, int]:
    """The escrow holds exactly what the unfinished jobs still escrow; finished jobs hold nothing;
    per job (and per pruned summary) ``fee_paid + verifier_fees + refunded + escrow == budget``;
    the ``Js`` index lists exactly the unfinished jobs under their states and the ``Jf`` queue
    exactly the finished ones not pruned yet; a job is never both a record and a summary. Raises
    JobError (a full scan: for tests and tools, not for block execution)."""
    held = 0
    index, queue = set(), set()
    for job in iter_jobs(state):
        if job.state in TERMINAL:
            if job.escrow:
                raise JobError(f"job {job.id} is {job.state} but still escrows {job.escrow}")
            queue.add(finished_key(job.settled_height, job.id))
        else:
            held += job.escrow
            index.add(b"Js" + STATE_CODE[job.state] + job.id.to_bytes(8, "big"))
        paid = job.fee_paid + job.verifier_fees + job.refunded
        if paid + job.escrow != job.budget:
            raise JobError(f"job {job.id}: fee {job.fee_paid} + verifier fees {job.verifier_fees} + refund "
                           f"{job.refunded} + escrow {job.escrow} != budget {job.budget}")
        if job.verifier_fees != sum(p.amount for p in job.verifier_payments):
            raise JobError(f"job {job.id}: verifier fees {job.verifier_fees} != its verifier payments")
        if get_summary(state, job.id) is not None:
            raise JobError(f"job {job.id} has both a record and a pruned summary")
    for s in iter_summaries(state):
        if s.fee_paid + s.verifier_fees + s.refunded != s.budget:
            raise JobError(f"pruned job {s.id}: fee {s.fee_paid} + verifier fees {s.verifier_fees} + refund "
                           f"{s.refunded} != budget {s.budget}")
    got_index = {k for k, _ in state.iter_prefix(b"Js")}
    if got_index != index:
        raise JobError(f"the state index has {len(got_index - index)} stale and misses {len(index - got_index)} "
                       "entries")
    got_queue = {k for k, _ in state.iter_prefix(b"Jf")}
    if got_queue != queue:
        raise JobError(f"the pruning queue has {len(got_queue - queue)} stale and misses {len(queue - got_queue)} "
                       "entries")
    bal = state.account(JOB_ESCROW).balance
    if bal != held:
        raise JobError(f"job escrow holds {bal} but unfinished jobs escrow {held}")
    return {"escrow": bal, "slash_passage": state.account(SLASH_ACCOUNT).balance}
