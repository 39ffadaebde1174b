"""A job's life as consensus rules: submit -> offers -> assignment -> result -> verification ->
settlement, with the faults (missing workers, failed verification, deadline, cancel) in between.

States: ``open`` (offer window) -> ``running`` (workers assigned) -> ``verifying`` (result on
chain) -> ``done`` | ``failed``; ``open``/``running`` -> ``expired`` (deadline) | ``cancelled``
(submitter); any non-terminal state -> ``failed`` when the rules run out of options (too few
offers after `max_offer_rounds` windows, too few workers left, no verifier). A finished job is
pruned to a `JobSummary` `job_retention_blocks` after it settled (`prune_finished`).

Verification: a first clean verdict is audited with probability `audit_bps` (drawn in the next
block); an accusation is confirmed by a second verifier; a disagreement (an audit against a
clean verdict, a confirmer against an accusation) is settled by a third, the decider. Every
verifier a verdict calls for is drawn from the next block's beacon (ledger/JOBS.md "Audits").

Transactions call the functions at the top; the end-block hook calls `tick`, which closes offer
windows, issues verification challenges (and draws audits, confirmers, deciders), times out
verifiers, expires deadlines, runs the control tasks and prunes old finished jobs. The policy numbers come from the genesis
(`state.params.jobs`, `ledger.jobs.params`). Each function either completes or raises `JobError` (the executor reverts).
Rules and numbers: ledger/JOBS.md.
"""

from __future__ import annotations

import dataclasses
import logging

from ledger.economics import ledger_state as econ
from ledger.economics.fees import MODES
from ledger.economics.schedule import MINING
from ledger.hashing import sha256
from ledger.jobs import beacon, control, providers, rules
from ledger.jobs.cid import check_cid
from ledger.jobs.errors import JobError
from ledger.jobs.records import (
    A_AUDIT,
    A_DISPUTE,
    A_DRAW,
    ABORT_CODES,
    ABORT_REASON_CHARS,
    CANCELLED,
    DONE,
    EXPIRED,
    FAILED,
    JOB_COUNTER_KEY,
    JOB_ESCROW,
    OPEN,
    RUNNING,
    T_AUDIT,
    T_CHALLENGE,
    T_VERIFY_TIMEOUT,
    T_WINDOW,
    TERMINAL,
    VERIFYING,
    Abort,
    Job,
    JobSummary,
    Metric,
    Offer,
    Report,
    Result,
    Work,
    Worker,
    deadline_key,
    finished_key,
    get_job,
    get_provider,
    get_summary,
    job_key,
    move_state_index,
    next_counter,
    offer_key,
    offers_of,
    put_job,
    store,
    submit_index_key,
    summary_key,
    timer_key,
)
from ledger.jobs.settlement import pay_and_refund, refund_all, settle_work
from ledger.jobs.strategy import Candidate, check_strategy, choose
from ledger.keys import address_to_text

log = logging.getLogger("mindnode.ledger.jobs")
METRIC_OPS = (">=", "<=")


def _job(state, job_id: int) -> Job:
    job = get_job(state, job_id)
    if job is None:
        summary = get_summary(state, job_id)
        if summary is not None:
            raise JobError(f"job {job_id} finished ({summary.state}) at height {summary.settled_height} and was "
                           f"pruned at height {summary.pruned_height}: only its summary is kept")
        raise JobError(f"no job {job_id}")
    return job


def _day(state, now_s: int) -> int:
    return max(0, econ.clock_of(state).day_of(now_s))


# -- submit and offers ----------------------------------------------------------------------------

def check_submit_fields(params, b) -> None:
    """Stateless rules of a job_submit body (`b` has the JobSubmit fields)."""
    if b.mode not in MODES:
        raise JobError(f"mode must be one of {', '.join(MODES)}, got {b.mode!r}")
    if not 1 <= b.workers <= rules.MAX_WORKERS:
        raise JobError(f"workers must be 1..{rules.MAX_WORKERS}, got {b.workers}")
    if not 1 <= b.min_workers <= b.workers:
        raise JobError(f"min_workers must be 1..workers ({b.workers}), got {b.min_workers}")
    providers.class_rank(params, b.min_class)
    if b.budget == 0:
        raise JobError("budget must be positive")
    if b.max_samples == 0 or b.steps == 0:
        raise JobError("max_samples and steps must be positive")
    if not 1 <= b.replay_steps <= min(rules.MAX_REPLAY_STEPS, b.steps):
        raise JobError(f"replay_steps must be 1..min({rules.MAX_REPLAY_STEPS}, steps), got {b.replay_steps}")
    if b.metric_op not in METRIC_OPS:
        raise JobError(f"metric_op must be one of {METRIC_OPS}, got {b.metric_op!r}")
    if not b.metric:
        raise JobError("the acceptance metric needs a name (e.g. accuracy)")
    if not rules.MIN_OFFER_WINDOW <= b.offer_window <= rules.MAX_OFFER_WINDOW:
        raise JobError(f"offer_window must be {rules.MIN_OFFER_WINDOW}..{rules.MAX_OFFER_WINDOW} blocks")
    if not b.spec:
        raise JobError("the job spec is empty")
    check_strategy(b.strategy)


def submit(state, ctx, sender: bytes, tx_hash: bytes, b) -> Job:
    if b.deadline_ms <= ctx.timestamp_ms:
        raise JobError(f"deadline {b.deadline_ms} ms is not after the block time {ctx.timestamp_ms} ms")
    if state.pool(MINING) is None:
        raise JobError("this chain has no mining pool to return utilisation fees to")
    state.debit(sender, b.budget, "the job budget")
    state.credit(JOB_ESCROW, b.budget)
    job_id = next_counter(state, JOB_COUNTER_KEY)
    close = ctx.height + b.offer_window
    job = Job(id=job_id, submitter=sender, spec_hash=sha256(b.spec), spec=b.spec, mode=b.mode, workers=b.workers,
              min_workers=b.min_workers, min_class=b.min_class, min_score=b.min_score, max_price=b.max_price,
              max_samples=b.max_samples, steps=b.steps, replay_steps=b.replay_steps, metric=b.metric,
              metric_op=b.metric_op, threshold_ppm=b.threshold_ppm, budget=b.budget, escrow=b.budget,
              strategy=b.strategy, offer_window=b.offer_window, deadline_ms=b.deadline_ms, state=OPEN, reason="",
              created_height=ctx.height, window_close_height=close, offer_rounds=1, assigned=(), replacements=0,
              reports=(), result=None, challenge_height=0, verifier=b"", tried_verifiers=(), replay_from=0,
              accused=(), accuser=b"", verify_due_height=0, payments=(), fee_paid=0, refunded=0,
              verified_metric_ppm=0, rated=0, settled_height=0, submit_tx=tx_hash)
    put_job(state, job)
    move_state_index(state, job_id, None, OPEN)
    state.put(timer_key(close, job_id, T_WINDOW), b"")
    state.put(deadline_key(b.deadline_ms, job_id), b"")
    state.put(submit_index_key(tx_hash), job_id.to_bytes(8, "big"))
    return job


def _eligible(state, job: Job, addr: bytes) -> str | None:
    """Why provider `addr` cannot work on `job` now (None: it can)."""
    p = get_provider(state, addr)
    if p is None:
        return "is not a registered provider"
    if addr == job.submitter:
        return "submitted this job"
    if not providers.meets(state.params, p, job.min_class, job.min_score):
        return (f"does not meet the job's minimum hardware ({job.min_class}, score {job.min_score}; "
                f"it has {p.hardware_class}, score {p.score})")
    if p.active_jobs >= p.capacity:
        return f"is at its capacity of {p.capacity} jobs"
    return None


def offer(state, ctx, sender: bytes, job_id: int, price: int, zone: str) -> None:
    job = _job(state, job_id)
    if job.state != OPEN:
        raise JobError(f"job {job_id} is {job.state}, not open for offers")
    why = _eligible(state, job, sender)
    if why:
        raise JobError(f"{address_to_text(sender)} {why}")
    if price > job.max_price:
        raise JobError(f"price {price} is above the job's maximum of {job.max_price} per work unit")
    if state.get(offer_key(job_id, sender)) is not None:
        raise JobError(f"{address_to_text(sender)} already offered on job {job_id}")
    if len(offers_of(state, job_id)) >= rules.MAX_OFFERS:
        raise JobError(f"job {job_id} already has the maximum of {rules.MAX_OFFERS} offers")
    store(state, offer_key(job_id, sender), Offer(price=price, zone=zone, height=ctx.height))


def _candidates(state, job: Job) -> list[Candidate]:
    taken = {w.provider for w in job.assigned}
    out = []
    for addr, off in offers_of(state, job.id):
        if addr in taken or _eligible(state, job, addr) is not None:
            continue
        out.append(Candidate(addr, off, get_provider(state, addr)))
    return out


def _zones(state, job: Job) -> list[str]:
    zones = []
    for w in job.active_workers:
        off = state.get(offer_key(job.id, w.provider))
        z = (Offer.decode(off) if isinstance(off, bytes) else off).zone if off is not None else ""
        if z and z not in zones:
            zones.append(z)
    return zones


def _offer_price(state, job: Job, addr: bytes) -> int:
    raw = state.get(offer_key(job.id, addr))
    return (Offer.decode(raw) if isinstance(raw, bytes) else raw).price


def close_window(state, ctx, job: Job) -> Job:
    """The offer window of `job` closes in this block: assign, reopen, or fail."""
    cands = _candidates(state, job)
    if len(cands) < job.workers and job.offer_rounds < state.params.jobs.max_offer_rounds:
        close = ctx.height + job.offer_window
        job = dataclasses.replace(job, offer_rounds=job.offer_rounds + 1, window_close_height=close)
        state.put(timer_key(close, job.id, T_WINDOW), b"")
        return job
    if len(cands) < job.min_workers:
        return _finish(state, ctx, refund_all(state, job), FAILED,
                       f"not enough offers: {len(cands)} eligible, {job.min_workers} needed")
    n = _workers_leaving_a_verifier(state, job, min(job.workers, len(cands)))
    picked = choose(job.strategy, state.params, job.id, job.min_class, cands, n, beacon.current(state))
    by_addr = {c.provider: c for c in cands}
    assigned = tuple(Worker(provider=a, price=by_addr[a].offer.price, rank=i, active=True)
                     for i, a in enumerate(picked))
    for a in picked:
        providers.change_active(state, a, +1)
    move_state_index(state, job.id, OPEN, RUNNING)
    return dataclasses.replace(job, state=RUNNING, assigned=assigned)


def _workers_leaving_a_verifier(state, job: Job, n: int) -> int:
    """How many workers to assign: `n`, less as far as `min_workers` allows when assigning `n`
    would leave no registered provider to verify the job (verifiers are providers that did not
    train it and did not submit it). Why: on a small network (a three-node devnet, every node a
    provider) assigning every offer made every such job fail unverified after training, with a
    refund; one worker fewer trains a little slower and gets verified and paid. One spare is kept,
    not two: a second (confirming) verifier is needed only after an accusation, and a job without
    one is refunded, never wrongly slashed. Scans the provider records, as drawing a verifier does."""
    others = sum(1 for key, _ in state.iter_prefix(b"Jp") if key[2:] != job.submitter)
    if others - n >= 1:
        return n
    return max(job.min_workers, min(n, others - 1))


# -- faults while running -------------------------------------------------------------------------

def report_missing(state, ctx, sender: bytes, job_id: int, accused: bytes) -> Job:
    """An active worker reports a co-worker missing. A majority of the other active workers
    (strictly more than half of them) marks it missing: it leaves the job, loses reputation and
    that day's mining reward, and the next-best offer replaces it (bounded), or the job continues
    with the others if at least `min_workers` remain, or fails."""
    job = _job(state, job_id)
    if job.state != RUNNING:
        raise JobError(f"job {job_id} is {job.state}; only running jobs take missing-worker reports")
    me, them = job.worker(sender), job.worker(accused)
    if me is None or not me.active:
        raise JobError(f"{address_to_text(sender)} is not an active worker of job {job_id}")
    if them is None or not them.active or accused == sender:
        raise JobError(f"{address_to_text(accused)} is not another active worker of job {job_id}")
    if any(r.reporter == sender and r.accused == accused for r in job.reports):
        raise JobError(f"{address_to_text(sender)} already reported {address_to_text(accused)}")
    reports = job.reports + (Report(reporter=sender, accused=accused),)
    active = {w.provider for w in job.active_workers}
    votes = sum(1 for r in reports if r.accused == accused and r.reporter in active)
    others = len(active) - 1
    if votes * 2 <= others:
        job = dataclasses.replace(job, reports=reports)
        put_job(state, job)
        return job
    # marked missing
    assigned = tuple(dataclasses.replace(w, active=False) if w.provider == accused else w for w in job.assigned)
    reports = tuple(r for r in reports if accused not in (r.reporter, r.accused))
    job = dataclasses.replace(job, assigned=assigned, reports=reports)
    providers.change_active(state, accused, -1)
    jp = state.params.jobs
    providers.adjust_reputation(state, accused, -jp.rep_dropped_penalty, jobs_failed=1)
    econ.record_job_outcome(state, _day(state, ctx.now_s), accused, dropped_job_failed=True)
    if job.replacements < jp.max_replacements and len(job.assigned) < rules.MAX_ASSIGNED:
        cands = _candidates(state, job)
        picked = choose(job.strategy, state.params, job.id, job.min_class, cands, 1, beacon.current(state),
                        _zones(state, job))
        if picked:
            a = picked[0]
            job = dataclasses.replace(job, replacements=job.replacements + 1, assigned=job.assigned + (
                Worker(provider=a, price=_offer_price(state, job, a), rank=len(job.assigned), active=True),))
            providers.change_active(state, a, +1)
    if len(job.active_workers) < job.min_workers:
        job = _finish(state, ctx, refund_all(state, job), FAILED,
                      f"only {len(job.active_workers)} workers left, {job.min_workers} needed")
    put_job(state, job)
    return job


def check_abort_fields(code: str, reason: str) -> None:
    """Stateless rules of a job_abort body. Why printable: the reason is shown to the submitter
    (`job status`), and a terminal must not take a worker's escape sequences."""
    if code not in ABORT_CODES:
        raise JobError(f"an abort code is one of {', '.join(ABORT_CODES)}, got {code!r}")
    if not reason.strip() or not reason.isprintable() or len(reason) > ABORT_REASON_CHARS:
        raise JobError("an abort needs a reason: printable text, no control characters, "
                       f"at most {ABORT_REASON_CHARS} characters")


def abort(state, ctx, sender: bytes, job_id: int, code: str, reason: str) -> Job:
    """An active worker declares a running job untrainable (`job_abort`): its spec, dataset
    artifact or base model artifact is unusable, so no group of workers could ever train it. Once
    strictly more than half of the active workers have declared (one declaration each; a lone
    worker's own suffices), the job fails with a full refund. Nobody is paid or penalised: the
    fault is the job's, not the workers'. A colluding majority can abort any job this way, which
    only hands the submitter its whole budget back (ledger/JOBS.md, "Faults")."""
    job = _job(state, job_id)
    me = job.worker(sender)
    if job.state == VERIFYING and me is not None:
        raise JobError(f"job {job_id} has a result (posted at height {job.result.height}) being verified: "
                       "it cannot be declared untrainable")
    if job.state != RUNNING:
        raise JobError(f"job {job_id} is {job.state}; only a running job can be declared untrainable")
    if me is None or not me.active:
        raise JobError(f"{address_to_text(sender)} is not an active worker of job {job_id}")
    check_abort_fields(code, reason)
    if any(a.worker == sender for a in job.aborts):
        raise JobError(f"{address_to_text(sender)} already declared job {job_id} untrainable")
    aborts = job.aborts + (Abort(worker=sender, code=code, reason=reason, height=ctx.height),)
    job = dataclasses.replace(job, aborts=aborts)
    active = {w.provider for w in job.active_workers}
    votes = [a for a in aborts if a.worker in active]      # a worker marked missing since no longer counts
    if len(votes) * 2 <= len(active):
        put_job(state, job)
        return job
    first = votes[0]
    return _finish(state, ctx, refund_all(state, job), FAILED, f"untrainable: {first.code}: {first.reason}")


# -- result and verification ----------------------------------------------------------------------

def post_result(state, ctx, sender: bytes, job_id: int, result_cid: str, metrics: tuple, work: tuple,
                checkpoints: tuple, evidence: str = "") -> Job:
    job = _job(state, job_id)
    if job.state != RUNNING:
        raise JobError(f"job {job_id} is {job.state}; a result is accepted only while it runs")
    me = job.worker(sender)
    if me is None or not me.active:
        raise JobError(f"{address_to_text(sender)} is not an active worker of job {job_id}")
    check_cid(result_cid, "result id")
    for c in checkpoints:
        check_cid(c, "checkpoint id")
    if evidence:
        check_cid(evidence, "evidence id")
    names = [m.name for m in metrics]
    if len(set(names)) != len(names):
        raise JobError("a metric is listed twice")
    if job.metric not in names:
        raise JobError(f"the result must report the acceptance metric {job.metric!r}")
    seen = set()
    for w in work:
        if job.worker(w.provider) is None:
            raise JobError(f"work listed for {address_to_text(w.provider)}, which is not a worker of job {job_id}")
        if w.provider in seen:
            raise JobError(f"work of {address_to_text(w.provider)} is listed twice")
        seen.add(w.provider)
        if w.samples > job.max_samples:
            raise JobError(f"{w.samples} samples for one worker is above the job's max_samples {job.max_samples}")
    if not any(w.samples for w in work):
        raise JobError("the result reports no samples processed")
    res = Result(result_cid=result_cid, metrics=tuple(metrics), work=tuple(work), checkpoints=tuple(checkpoints),
                 poster=sender, height=ctx.height, evidence=evidence)
    ch = ctx.height + state.params.jobs.verify_delay_blocks
    move_state_index(state, job.id, RUNNING, VERIFYING)
    job = dataclasses.replace(job, state=VERIFYING, result=res, challenge_height=ch, reports=())
    state.put(timer_key(ch, job.id, T_CHALLENGE), b"")
    put_job(state, job)
    return job


def _draw_verifier(state, job: Job) -> bytes | None:
    """The registered provider with the lowest beacon draw of this block among those that never
    worked on the job, are not the submitter and were not tried yet (None: nobody is eligible)."""
    seed = beacon.current(state)
    jid = job.id.to_bytes(8, "big")
    excluded = {w.provider for w in job.assigned} | set(job.tried_verifiers) | {job.submitter}
    best = None
    for key, _ in state.iter_prefix(b"Jp"):
        addr = key[2:]
        if addr in excluded:
            continue
        d = beacon.draw(seed, b"verifier", jid, addr)
        if best is None or d < best[0]:
            best = (d, addr)
    return None if best is None else best[1]


def _assign_verifier(state, ctx, job: Job, addr: bytes) -> Job:
    due = ctx.height + state.params.jobs.verify_timeout_blocks
    state.put(timer_key(due, job.id, T_VERIFY_TIMEOUT), b"")
    return dataclasses.replace(job, verifier=addr, tried_verifiers=job.tried_verifiers + (addr,),
                               verify_due_height=due)


def _designate_verifier(state, ctx, job: Job) -> Job:
    """Draw the verifier (and, for the first verdict only, the replay range) from the beacon of
    this block. Confirmers, auditors and deciders replay the same steps as the first verifier."""
    if not job.accused and not job.audit:
        span = job.steps - job.replay_steps + 1
        job = dataclasses.replace(job, replay_from=beacon.draw(beacon.current(state), b"replay",
                                                               job.id.to_bytes(8, "big")) % span)
    addr = _draw_verifier(state, job)
    if addr is None and _contradicted_accusation(job):
        return _settle_contradicted(state, ctx, job)      # no decider for a contradicted accusation
    if addr is None:
        return _fail_unverified(state, ctx, job, "no eligible verifier (a registered provider that did not "
                                                 "train the job)")
    return _assign_verifier(state, ctx, job, addr)


def _draw_next_verifier(state, ctx, job: Job) -> Job:
    """A verdict that calls for another verifier (a confirmer, a decider) has it drawn by the NEXT
    block's end-block hook (the challenge timer), not by this block's beacon: that one is known
    before the block, so the verdict's poster could time its verdict to pick who is drawn next."""
    h = ctx.height + 1
    state.put(timer_key(h, job.id, T_CHALLENGE), b"")
    return dataclasses.replace(job, verifier=b"", challenge_height=h)


def _fail_unverified(state, ctx, job: Job, reason: str) -> Job:
    return _finish(state, ctx, refund_all(state, job), FAILED, reason)


def verify_timeout(state, ctx, job: Job) -> Job:
    jp = state.params.jobs
    providers.adjust_reputation(state, job.verifier, -jp.rep_silent_verifier_penalty)
    if job.audit == A_AUDIT:
        # A silent auditor: another one, else the clean verdict stands (the audit could not take
        # place; the workers and the first verifier did nothing wrong that anyone saw).
        addr = _draw_verifier(state, job) if len(job.tried_verifiers) < jp.max_verify_rounds else None
        return _settle_clean(state, ctx, job) if addr is None else _assign_verifier(state, ctx, job, addr)
    if len(job.tried_verifiers) >= jp.max_verify_rounds:
        if _contradicted_accusation(job):             # silent deciders: the confirmer's verdict settles
            return _settle_contradicted(state, ctx, job)
        return _fail_unverified(state, ctx, job, f"no verdict from {len(job.tried_verifiers)} verifiers")
    return _designate_verifier(state, ctx, job)


def _ppm_text(v: int) -> str:
    """Millionths as a decimal, with integers only (the text is stored in the job record)."""
    return f"{v // rules.PPM}.{v % rules.PPM:06d}"


def criterion_met(job: Job, metric_ppm: int) -> bool:
    return metric_ppm >= job.threshold_ppm if job.metric_op == ">=" else metric_ppm <= job.threshold_ppm


def metrics_agree(state, a_ppm: int, b_ppm: int) -> bool:
    """Two verdicts measured the same metric of the same published weights on the same split: on
    one machine bitwise, across CPUs a held-out sample whose top logits tie within rounding may
    flip. `audit_metric_tolerance_ppm` bounds that (ledger/JOBS.md "Audits")."""
    return abs(a_ppm - b_ppm) <= state.params.jobs.audit_metric_tolerance_ppm


def verify(state, ctx, sender: bytes, job_id: int, replay_from: int, replay_steps: int, bad_workers: tuple,
           metric_ppm: int) -> Job:
    job = _job(state, job_id)
    if job.state != VERIFYING or not job.verifier:
        raise JobError(f"job {job_id} is {job.state} and waits for no verdict now")
    if sender != job.verifier:
        raise JobError(f"{address_to_text(sender)} is not the designated verifier of job {job_id}")
    if (replay_from, replay_steps) != (job.replay_from, job.replay_steps):
        raise JobError(f"the verdict must cover steps {job.replay_from}..{job.replay_from + job.replay_steps - 1}, "
                       f"not {replay_from}..{replay_from + replay_steps - 1}")
    workers = {w.provider for w in job.result.work}
    if len(set(bad_workers)) != len(bad_workers) or not set(bad_workers) <= workers:
        raise JobError("bad_workers must list distinct workers of the result")
    jp = state.params.jobs
    if job.audit == A_AUDIT:
        job = _audit_verdict(state, ctx, job, sender, tuple(sorted(bad_workers)), metric_ppm)
        put_job(state, job)
        return job
    if bad_workers and not job.accused and job.audit != A_DISPUTE:
        # An accusation slashes only once a second, independently drawn verifier confirms it on the
        # same steps: a lone (or the submitter's sybil) verifier cannot get honest workers slashed.
        job = dataclasses.replace(job, accused=tuple(sorted(bad_workers)), accuser=sender, verifier=b"")
        job = _to_decider(state, ctx, job, "an accusation")
        put_job(state, job)
        return job
    if not bad_workers and not job.accused and not job.audit and jp.audit_bps:
        # A first clean verdict: recorded, and the beacon of the NEXT block decides whether it is
        # audited. This block's beacon is known before the block (it hashes the parent), so a
        # verifier could time its verdict to a block that draws no audit.
        h = ctx.height + 1
        state.put(timer_key(h, job.id, T_AUDIT), b"")
        job = dataclasses.replace(job, audit=A_DRAW, clean_by=sender, clean_metric_ppm=metric_ppm, verifier=b"",
                                  audit_height=h)
        put_job(state, job)
        return job
    return _decide(state, ctx, job, sender, bad_workers, metric_ppm)


def _to_decider(state, ctx, job: Job, what: str) -> Job:
    """Draw the verifier who settles a disagreement (an accusation to confirm, or an audit that
    contradicts a clean verdict); no round left -> refund, nobody punished or paid."""
    if len(job.tried_verifiers) >= state.params.jobs.max_verify_rounds:
        # Drawing one anyway would also overflow `Job.tried_verifiers`.
        return _fail_unverified(state, ctx, job, f"{what} by verifier {len(job.tried_verifiers)} of "
                                                 f"{len(job.tried_verifiers)} left no round to confirm it")
    return _draw_next_verifier(state, ctx, job)


def audit_draw(state, ctx, job: Job) -> Job:
    """End-block of the block after a clean verdict: with probability `audit_bps` (this block's
    beacon) an auditor is drawn like a verifier, on the same steps; else the verdict settles."""
    jp = state.params.jobs
    d = beacon.draw(beacon.current(state), b"audit", job.id.to_bytes(8, "big")) % 10_000
    if d >= jp.audit_bps or len(job.tried_verifiers) >= jp.max_verify_rounds:
        return _settle_clean(state, ctx, job)
    addr = _draw_verifier(state, job)
    if addr is None:                  # nobody left to audit: the clean verdict stands as before audits
        return _settle_clean(state, ctx, job)
    return _assign_verifier(state, ctx, dataclasses.replace(job, audit=A_AUDIT), addr)


def _contradicted_accusation(job: Job) -> bool:
    """A dispute opened by a confirmer that found none of the accused (not by an auditor)."""
    return job.audit == A_DISPUTE and bool(job.accused) and not job.auditor


def _settle_contradicted(state, ctx, job: Job) -> Job:
    """No decider for a contradicted accusation: the confirmer's clean verdict settles, the
    accuser loses `rep_false_accusation_penalty` (as before deciders existed)."""
    providers.adjust_reputation(state, job.accuser, -state.params.jobs.rep_false_accusation_penalty)
    return _settle(state, ctx, job, set(), job.clean_metric_ppm, (job.clean_by,))


def _settle_clean(state, ctx, job: Job) -> Job:
    """The recorded clean verdict stands alone (not audited, or the audit could not take place)."""
    return _settle(state, ctx, job, set(), job.clean_metric_ppm, (job.clean_by,))


def _audit_verdict(state, ctx, job: Job, sender: bytes, bad: tuple, metric_ppm: int) -> Job:
    job = dataclasses.replace(job, auditor=sender, audit_metric_ppm=metric_ppm)
    if not bad and metrics_agree(state, metric_ppm, job.clean_metric_ppm):
        # The audit agrees: settle exactly as the clean verdict alone would have; both are paid.
        return _settle(state, ctx, job, set(), job.clean_metric_ppm, (job.clean_by, sender))
    # Disagreement: one of the two is wrong and neither outweighs the other, so a third verifier
    # decides. If the auditor named workers, it is an accusation like a first verdict's.
    if bad:
        job = dataclasses.replace(job, accused=bad, accuser=sender)
    job = dataclasses.replace(job, audit=A_DISPUTE, verifier=b"")
    return _to_decider(state, ctx, job, "an audit that contradicts the clean verdict")


def _decide(state, ctx, job: Job, sender: bytes, bad_workers: tuple, metric_ppm: int) -> Job:
    """The verdict that settles the job: a lone clean one (audits off), a confirmer's after an
    accusation, or a decider's after a disputed audit. Only what two verdicts agree on punishes."""
    jp = state.params.jobs
    bad = set(bad_workers)
    stood: list[bytes] = []
    if job.accused and not job.clean_by and not bad & set(job.accused):
        # A confirmer contradicts the accusation: one of the two is wrong (a lying accuser, or a
        # lazy or lying confirmer), so a decider (drawn next block) breaks the tie when a round is
        # left; the confirmer's verdict is then judged like an audited clean verdict.
        job = dataclasses.replace(job, audit=A_DISPUTE, clean_by=sender, clean_metric_ppm=metric_ppm)
        if len(job.tried_verifiers) >= jp.max_verify_rounds:
            return _settle_contradicted(state, ctx, job)
        job = _draw_next_verifier(state, ctx, job)
        put_job(state, job)
        return job
    if job.clean_by:
        # A disputed audit. The clean verdict stands if the decider confirms no accused worker and
        # measured the same metric; otherwise it was lazy or lying: not paid, `rep_false_clean`.
        bad &= set(job.accused)          # a decider alone (after two clean verdicts) cannot accuse
        if not bad and metrics_agree(state, job.clean_metric_ppm, metric_ppm):
            stood.append(job.clean_by)
        else:
            providers.adjust_reputation(state, job.clean_by, -jp.rep_false_clean)
        if not job.accused:              # the auditor's verdict was clean too, its metric differed
            if metrics_agree(state, job.audit_metric_ppm, metric_ppm):
                stood.append(job.auditor)
            else:
                providers.adjust_reputation(state, job.auditor, -jp.rep_false_clean)
    if job.accused:
        bad &= set(job.accused)
        if bad:
            stood.append(job.accuser)
        else:
            providers.adjust_reputation(state, job.accuser, -jp.rep_false_accusation_penalty)
    stood.append(sender)
    return _settle(state, ctx, job, bad, metric_ppm, tuple(stood))


def _settle(state, ctx, job: Job, bad: set, metric_ppm: int, stood: tuple[bytes, ...]) -> Job:
    """Pay the work minus `bad` and the verifiers whose verdict stood (in posting order, each
    +`rep_verifier`); punish `bad`; finish done (accepted) or failed."""
    day = _day(state, ctx.now_s)
    jp = state.params.jobs
    for addr in stood:
        providers.adjust_reputation(state, addr, jp.rep_verifier)
    for addr in sorted(bad):
        providers.adjust_reputation(state, addr, -jp.rep_failed_verification_penalty, jobs_failed=1)
        providers.slash_provider(state, addr, jp.slash_fraction_bps)
        econ.record_job_outcome(state, day, addr, failed_work=1)
    accepted = not bad and criterion_met(job, metric_ppm)
    prices = {w.provider: w.price for w in job.assigned}
    work = [(w.provider, prices[w.provider], w.samples) for w in job.result.work if w.provider not in bad]
    job = settle_work(state, dataclasses.replace(job, verified_metric_ppm=metric_ppm), work, stood)
    if accepted:
        active = {w.provider for w in job.active_workers}
        for addr, _, samples in work:
            if not samples:
                continue
            if addr in active:
                providers.adjust_reputation(state, addr, jp.rep_verified_work, jobs_done=1)
                econ.record_job_outcome(state, day, addr, done=1)
            else:
                econ.record_job_outcome(state, day, addr, left=1)
        return _finish(state, ctx, job, DONE, "verified")
    if bad:
        reason = f"{len(bad)} worker(s) failed the replay of steps {job.replay_from}..."
    else:
        reason = (f"acceptance criterion not met: {job.metric} {_ppm_text(metric_ppm)} {job.metric_op} "
                  f"{_ppm_text(job.threshold_ppm)} is false")
    return _finish(state, ctx, job, FAILED, reason)


# -- cancel, expiry, rating -----------------------------------------------------------------------

def cancel(state, ctx, sender: bytes, job_id: int) -> Job:
    job = _job(state, job_id)
    if sender != job.submitter:
        raise JobError(f"only the submitter can cancel job {job_id}")
    if job.state == OPEN:
        return _finish(state, ctx, refund_all(state, job), CANCELLED, "cancelled by the submitter")
    if job.state == RUNNING:
        fee = min(job.escrow, job.budget * state.params.jobs.cancel_running_fee_bps // 10_000)
        weights = [(w.provider, 1) for w in job.active_workers]
        job = pay_and_refund(state, job, fee, weights)
        return _finish(state, ctx, job, CANCELLED, "cancelled by the submitter while running")
    if job.state == VERIFYING:
        raise JobError(f"job {job_id} has a result being verified and cannot be cancelled")
    raise JobError(f"job {job_id} is already {job.state}")


def expire(state, ctx, job: Job) -> Job:
    if job.state == RUNNING:
        for w in job.active_workers:
            providers.adjust_reputation(state, w.provider, -state.params.jobs.rep_expired_penalty, jobs_failed=1)
    return _finish(state, ctx, refund_all(state, job), EXPIRED, "deadline passed before a result")


def rate(state, ctx, sender: bytes, job_id: int, score: int) -> Job:
    summary = get_summary(state, job_id) if get_job(state, job_id) is None else None
    if summary is not None:
        raise JobError(f"job {job_id} can no longer be rated: it finished at height {summary.settled_height} and "
                       f"was pruned at height {summary.pruned_height} (a job can be rated until "
                       f"{state.params.jobs.job_retention_blocks} blocks after it finished)")
    job = _job(state, job_id)
    if sender != job.submitter:
        raise JobError(f"only the submitter can rate job {job_id}")
    if job.state != DONE:
        raise JobError(f"job {job_id} is {job.state}; only a finished (done) job can be rated")
    if job.rated:
        raise JobError(f"job {job_id} is already rated")
    if not 1 <= score <= 5:
        raise JobError(f"a rating is 1..5, got {score}")
    for p in job.payments:
        providers.adjust_reputation(state, p.provider, (score - 3) * state.params.jobs.rep_rating_step)
    job = dataclasses.replace(job, rated=score)
    put_job(state, job)
    return job


def _finish(state, ctx, job: Job, final: str, reason: str) -> Job:
    """Move to a terminal state: release the active workers, drop the offers and the deadline
    entry, leave the state index for the pruning queue."""
    assert final in TERMINAL and job.escrow == 0
    if job.state in (RUNNING, VERIFYING):
        for w in job.active_workers:
            providers.change_active(state, w.provider, -1)
    for addr, _ in offers_of(state, job.id):
        state.delete(offer_key(job.id, addr))
    _delete_if_present(state, deadline_key(job.deadline_ms, job.id))
    move_state_index(state, job.id, job.state, final)
    state.put(finished_key(ctx.height, job.id), b"")
    job = dataclasses.replace(job, state=final, reason=reason[:160], settled_height=ctx.height, verifier=b"",
                              reports=())
    put_job(state, job)
    log.debug("job %d %s: %s", job.id, final, reason)
    return job


def _delete_if_present(state, key: bytes) -> None:
    if state.get(key) is not None:
        state.delete(key)


# -- pruning --------------------------------------------------------------------------------------

def summarize(job: Job, pruned_height: int) -> JobSummary:
    res = job.result
    return JobSummary(id=job.id, submitter=job.submitter, spec_hash=job.spec_hash, mode=job.mode, metric=job.metric,
                      state=job.state, reason=job.reason, result_cid=res.result_cid if res else "",
                      metrics=res.metrics if res else (), verified_metric_ppm=job.verified_metric_ppm,
                      budget=job.budget, payments=job.payments, fee_paid=job.fee_paid,
                      verifier_payments=job.verifier_payments, verifier_fees=job.verifier_fees,
                      refunded=job.refunded, rated=job.rated, created_height=job.created_height,
                      settled_height=job.settled_height, pruned_height=pruned_height)


def prune_job(state, ctx, job_id: int) -> JobSummary | None:
    """Replace finished job `job_id` by its summary and delete everything else it left in state:
    the record, offers, timers, deadline entry, the tx-hash index entry, its pruning-queue entry."""
    job = get_job(state, job_id)
    if job is None or job.state not in TERMINAL:
        return None
    summary = summarize(job, ctx.height)
    store(state, summary_key(job_id), summary)
    state.delete(job_key(job_id))
    for addr, _ in offers_of(state, job_id):
        state.delete(offer_key(job_id, addr))
    for h, kind in ((job.window_close_height, T_WINDOW), (job.challenge_height, T_CHALLENGE),
                    (job.verify_due_height, T_VERIFY_TIMEOUT), (job.audit_height, T_AUDIT)):
        if h:
            _delete_if_present(state, timer_key(h, job_id, kind))
    _delete_if_present(state, deadline_key(job.deadline_ms, job_id))
    if job.submit_tx:
        _delete_if_present(state, submit_index_key(job.submit_tx))
    state.delete(finished_key(job.settled_height, job_id))
    return summary


def prune_finished(state, ctx) -> list[int]:
    """End-block: prune the jobs finished more than `job_retention_blocks` ago, oldest first, at
    most `max_prunes_per_block` of them (the rest in the next blocks). Reads only the head of the
    `Jf` queue, so a block with nothing to prune costs one ordered-index probe."""
    jp = state.params.jobs
    due = []
    for key, _ in state.iter_prefix(b"Jf"):
        settled = int.from_bytes(key[2:10], "big")
        if len(due) >= jp.max_prunes_per_block or settled + jp.job_retention_blocks >= ctx.height:
            break
        due.append((settled, int.from_bytes(key[10:18], "big")))
    for key_height, job_id in due:
        if prune_job(state, ctx, job_id) is None:
            # Cannot happen with a consistent queue (audit_jobs checks it). Raising here would make
            # every block invalid and halt the chain, so drop the stale entry, deterministically.
            log.warning("pruning queue names job %d, which is not a finished job: entry dropped", job_id)
            state.delete(finished_key(key_height, job_id))
    return [job_id for _, job_id in due]


# -- the end-block hook ---------------------------------------------------------------------------

def tick(state, ctx) -> None:
    """End-block: due timers (offer windows, challenges, verifier timeouts), deadlines, control tasks."""
    due = []
    for key, _ in state.iter_prefix(b"Jt"):
        if int.from_bytes(key[2:10], "big") > ctx.height:
            break
        due.append(key)
    for key in due:
        state.delete(key)
        h, job_id, kind = int.from_bytes(key[2:10], "big"), int.from_bytes(key[10:18], "big"), key[18:19]
        job = get_job(state, job_id)
        if job is None:
            continue
        if kind == T_WINDOW and job.state == OPEN and job.window_close_height == h:
            job = close_window(state, ctx, job)
        elif kind == T_CHALLENGE and job.state == VERIFYING and job.challenge_height == h and not job.verifier:
            job = _designate_verifier(state, ctx, job)
        elif kind == T_VERIFY_TIMEOUT and job.state == VERIFYING and job.verify_due_height == h and job.verifier:
            job = verify_timeout(state, ctx, job)
        elif kind == T_AUDIT and job.state == VERIFYING and job.audit == A_DRAW and job.audit_height == h:
            job = audit_draw(state, ctx, job)
        else:
            continue
        put_job(state, job)
    expired = []
    for key, _ in state.iter_prefix(b"Jd"):
        if int.from_bytes(key[2:10], "big") > ctx.timestamp_ms:
            break
        expired.append(key)
    for key in expired:
        state.delete(key)
        job = get_job(state, int.from_bytes(key[10:18], "big"))
        if job is not None and job.state in (OPEN, RUNNING):
            expire(state, ctx, job)
    control.expire(state, ctx.height)
    control.issue(state, ctx.height)
    prune_finished(state, ctx)


__all__ = ["Metric", "Work", "abort", "audit_draw", "cancel", "close_window", "offer", "post_result", "prune_finished",
           "prune_job", "rate", "report_missing", "submit", "submit_index_key", "tick", "verify"]
