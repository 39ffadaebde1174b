"""The full life of a job on a real LevelDB chain, with exact balance movements.

Setup (jobs_fixtures): P1..P4 and VER register as cpu providers; SUB submits a sync job for 3
workers (min 2), budget 100 NMT, max price 10 NMT per work unit (1,000 samples), offer window 3
blocks. P1, P2, P3, P4 offer at 1, 2, 3 and 5 NMT. The default strategy ranks by price here
(everything else is equal): P1, P2, P3 are assigned; P4 stays a spare offer.

Result: P1 1,000 samples, P2 1,000, P3 2,000. Verified ->
    fee = (1*1000 + 2*1000 + 3*2000) NMT / 1000 = 9 NMT
    sync: 50% = 4.5 NMT to providers by price*samples (1 : 2 : 6): 0.5, 1, 3 NMT; 4.5 NMT to the mining pool
    verifier: 5% (verifier_fee_bps 500) of the claimed work value 9 NMT = 0.45 NMT; refund 90.55 NMT
"""

import pytest
from jobs_fixtures import (
    NMT,
    OTHER,
    P1,
    P2,
    P3,
    P4,
    PROVIDERS,
    SUB,
    T0,
    VER,
    Chain,
    register_body,
    submit_body,
)

from ledger.economics import ledger_state as econ
from ledger.jobs import records as R
from ledger.jobs import rules
from ledger.jobs.cid import cid_of
from ledger.txkinds.job_cancel import JobCancel
from ledger.txkinds.job_offer import JobOffer
from ledger.txkinds.job_rate import JobRate
from ledger.txkinds.job_report_missing import JobReportMissing
from ledger.txkinds.job_result import JobResult
from ledger.txkinds.job_verify import JobVerify
from ledger.txkinds.stake import StakeTx

KEY_OF = {k.address: k for k in PROVIDERS}
VFEE = 9 * NMT * 500 // 10_000          # 0.45 NMT: each verifier whose verdict stood
RESULT = cid_of(b"weights")
CKPT = cid_of(b"checkpoint-50")


@pytest.fixture
def chain(tmp_path):
    c = Chain(tmp_path / "chain")
    c.block(*(c.tx(k, register_body()) for k in PROVIDERS))
    yield c
    c.close()


def running_job(chain, **kw) -> int:
    """Submit, offer (P1..P4 at 1, 2, 3, 5 NMT), close the window; returns the job id."""
    chain.block(chain.tx(SUB, submit_body(**kw)))
    jid = max(j.id for j in _jobs(chain))
    chain.block(*(chain.tx(k, JobOffer(job_id=jid, price=p * NMT, zone="lab"))
                  for k, p in ((P1, 1), (P2, 2), (P3, 3), (P4, 5))))
    chain.blocks_until(chain.job(jid).window_close_height)
    assert chain.job(jid).state == R.RUNNING
    return jid


def _jobs(chain):
    from ledger.jobs.views import iter_jobs

    return list(iter_jobs(chain.state()))


def result_tx(chain, jid, poster=P1, work=((P1, 1000), (P2, 1000), (P3, 2000)), acc=960_000):
    return chain.tx(poster, JobResult(job_id=jid, result_cid=RESULT,
                                      metrics=(R.Metric(name="accuracy", value_ppm=acc),),
                                      work=tuple(R.Work(provider=k.address, samples=n) for k, n in work),
                                      checkpoints=(CKPT,)))


def to_challenge(chain, jid) -> R.Job:
    chain.blocks_until(chain.job(jid).challenge_height)
    job = chain.job(jid)
    assert job.verifier in (P4.address, VER.address)        # providers that did not train it
    return job


def verify_tx(chain, job, bad=(), metric=960_000, **kw):
    body = dict(job_id=job.id, replay_from=job.replay_from, replay_steps=job.replay_steps,
                bad_workers=tuple(k.address for k in bad), metric_ppm=metric)
    body.update(kw)
    return chain.tx(KEY_OF[job.verifier], JobVerify(**body))


def test_full_life_pays_exactly_and_refunds_the_rest(chain):
    sub0 = chain.balance(SUB)
    pool0 = chain.state().pool("mining").returned
    jid = running_job(chain)
    assert chain.balance(SUB) == sub0 - 100 * NMT
    assert chain.balance(R.JOB_ESCROW) == 100 * NMT
    job = chain.job(jid)
    assert [w.provider for w in job.assigned] == [P1.address, P2.address, P3.address]
    assert [w.price for w in job.assigned] == [NMT, 2 * NMT, 3 * NMT]
    assert all(chain.provider(k).active_jobs == 1 for k in (P1, P2, P3))
    chain.block(result_tx(chain, jid))
    assert chain.job(jid).state == R.VERIFYING
    job = to_challenge(chain, jid)
    assert 0 <= job.replay_from <= job.steps - job.replay_steps
    verifier, ver0 = job.verifier, chain.balance(job.verifier)
    chain.block(verify_tx(chain, job))
    job = chain.job(jid)
    assert job.state == R.DONE and job.fee_paid == 9 * NMT and job.escrow == 0
    assert job.verifier_fees == VFEE and job.refunded == 100 * NMT - 9 * NMT - VFEE
    assert [(p.provider, p.amount) for p in job.verifier_payments] == [(verifier, VFEE)]
    assert chain.balance(verifier) == ver0 + VFEE                   # straight to its balance
    assert chain.balance(SUB) == sub0 - 9 * NMT - VFEE
    assert chain.balance(R.JOB_ESCROW) == 0
    assert [chain.utilisation(k) for k in (P1, P2, P3, P4)] == [NMT // 2, NMT, 3 * NMT, 0]
    assert chain.state().pool("mining").returned - pool0 == 9 * NMT // 2
    assert [(p.provider, p.amount) for p in job.payments] == sorted(
        [(P1.address, NMT // 2), (P2.address, NMT), (P3.address, 3 * NMT)])
    assert [chain.provider(k).reputation for k in (P1, P2, P3)] == [5_100, 5_100, 5_100]
    assert chain.provider(KEY_OF[job.tried_verifiers[0]]).reputation == 5_000 + rules.DEFAULTS.rep_verifier
    assert all(chain.provider(k).active_jobs == 0 for k in PROVIDERS)
    assert chain.state().get(R.offer_key(jid, P4.address)) is None       # spare offers are dropped
    day = econ.clock_of(chain.state()).day_of(chain.store.head.timestamp // 1000)
    rec = econ._load(chain.state(), econ.jobs_key(day, P1.address), econ.JobsDay)
    assert rec.jobs_done == 1
    chain.audit()
    # the submitter rates it once: +2 * 50 for each paid worker
    chain.block(chain.tx(SUB, JobRate(job_id=jid, score=5)))
    assert chain.provider(P1).reputation == 5_200
    assert "already rated" in chain.reject(chain.tx(SUB, JobRate(job_id=jid, score=1)))
    # providers withdraw what they earned
    from ledger.txkinds.withdraw_rewards import WithdrawRewards

    b = chain.balance(P3)
    chain.block(chain.tx(P3, WithdrawRewards()))
    assert chain.balance(P3) == b + 3 * NMT
    chain.audit()


def test_failed_verification_not_paid_slashed_reputation_down(chain):
    validator = list(chain.state().iter_prefix(b"c"))[0][0][1:]
    chain.block(chain.tx(P2, StakeTx(validator=validator, amount=50 * NMT, lock_days=0)))
    staking0 = chain.state().pool("staking").returned
    sub0 = chain.balance(SUB)
    jid = running_job(chain)
    chain.block(result_tx(chain, jid))
    job = to_challenge(chain, jid)
    first = job.verifier
    first0 = chain.balance(first)
    chain.block(verify_tx(chain, job, bad=(P2, P3)))
    chain.block()              # the next verifier is drawn from the next block's beacon
    job = chain.job(jid)       # an accusation waits for a second verifier, on the same steps
    assert chain.balance(first) == first0 and job.verifier_fees == 0    # paid only once its verdict stands
    assert job.state == R.VERIFYING and job.accused == tuple(sorted((P2.address, P3.address)))
    assert job.verifier not in (first, b"") and job.accuser == first
    assert chain.utilisation(P2) == 0 and chain.state().stake(P2.address, validator, b"F").amount == 50 * NMT
    chain.block(verify_tx(chain, job, bad=(P2,)))          # confirms P2 only: only P2 is punished
    job = chain.job(jid)
    assert job.state == R.FAILED and "failed the replay" in job.reason
    assert chain.provider(KEY_OF[first]).reputation == 5_000 + rules.DEFAULTS.rep_verifier
    assert chain.provider(P3).reputation == 5_000
    # P1 and P3 are paid for their samples: fee (1*1000 + 3*2000)/1000 = 7 NMT, providers get 3.5 by 1:6;
    # the accusation was confirmed, so both verifiers are paid 5% of the claimed 9 NMT
    assert job.fee_paid == 7 * NMT and job.verifier_fees == 2 * VFEE
    assert [p.provider for p in job.verifier_payments] == [first, job.tried_verifiers[1]]
    assert job.refunded == 100 * NMT - 7 * NMT - 2 * VFEE
    assert chain.balance(SUB) == sub0 - 7 * NMT - 2 * VFEE and chain.balance(first) == first0 + VFEE
    assert [chain.utilisation(k) for k in (P1, P2, P3)] == [NMT // 2, 0, 3 * NMT]
    assert chain.provider(P2).reputation == 5_000 - rules.DEFAULTS.rep_failed_verification_penalty
    assert chain.provider(P2).jobs_failed == 1
    assert chain.state().stake(P2.address, validator, b"F").amount == 45 * NMT      # 10% slashed
    assert chain.state().pool("staking").returned - staking0 == 5 * NMT
    day = econ.clock_of(chain.state()).day_of(chain.store.head.timestamp // 1000)
    assert econ._load(chain.state(), econ.jobs_key(day, P2.address), econ.JobsDay).failed_work == 1
    chain.audit()


def test_unconfirmed_accusation_slashes_nobody(chain):
    sub0 = chain.balance(SUB)
    jid = running_job(chain)
    chain.block(result_tx(chain, jid))
    job = to_challenge(chain, jid)
    accuser = job.verifier
    acc0 = chain.balance(accuser)
    chain.block(verify_tx(chain, job, bad=(P1, P2, P3)))
    chain.block()              # the next verifier is drawn from the next block's beacon
    job = chain.job(jid)
    confirmer = job.verifier
    chain.block(verify_tx(chain, job))                     # the confirming verifier finds nothing wrong
    assert chain.job(jid).audit == R.A_DISPUTE                # a decider would be drawn next block...
    chain.block()                                             # ...but nobody is left: the confirmer's verdict
    job = chain.job(jid)
    assert job.state == R.DONE and job.fee_paid == 9 * NMT and chain.balance(SUB) == sub0 - 9 * NMT - VFEE
    # the false accuser is not paid; the confirmer is
    assert [(p.provider, p.amount) for p in job.verifier_payments] == [(confirmer, VFEE)]
    assert chain.balance(accuser) == acc0
    assert chain.provider(KEY_OF[accuser]).reputation == 5_000 - rules.DEFAULTS.rep_false_accusation_penalty
    assert [chain.provider(k).reputation for k in (P1, P2, P3)] == [5_100] * 3
    chain.audit()


def test_accusation_without_a_confirmer_refunds_without_slashing(chain):
    sub0 = chain.balance(SUB)
    jid = running_job(chain, workers=4)                    # P1..P4 train: only VER can verify
    chain.block(result_tx(chain, jid, work=((P1, 10), (P4, 10))))
    job = to_challenge(chain, jid)
    assert job.verifier == VER.address
    chain.block(verify_tx(chain, job, bad=(P4,)))
    chain.block()              # the next verifier is drawn from the next block's beacon
    job = chain.job(jid)
    assert job.state == R.FAILED and "no eligible verifier" in job.reason
    assert chain.balance(SUB) == sub0 and chain.provider(P4).reputation == 5_000
    assert job.verifier_fees == 0 and job.verifier_payments == ()     # an unconfirmed verdict did not stand
    chain.audit()


def test_acceptance_criterion_not_met_pays_work_but_fails(chain):
    jid = running_job(chain)
    chain.block(result_tx(chain, jid, acc=900_000))
    job = to_challenge(chain, jid)
    chain.block(verify_tx(chain, job, metric=900_000))
    job = chain.job(jid)
    assert job.state == R.FAILED and "criterion not met" in job.reason
    assert job.fee_paid == 9 * NMT
    assert job.verifier_fees == VFEE                        # the verifier did the work: paid all the same
    assert chain.provider(P1).reputation == 5_000          # no bonus without an accepted result
    chain.audit()


def test_verifier_fee_is_capped_by_what_the_escrow_holds_after_the_workers(chain):
    sub0 = chain.balance(SUB)
    jid = running_job(chain, budget=9 * NMT + NMT // 10)     # the work (9 NMT) + 0.1 NMT of the 0.45 owed
    chain.block(result_tx(chain, jid))
    job = to_challenge(chain, jid)
    verifier = job.verifier
    chain.block(verify_tx(chain, job))
    job = chain.job(jid)
    assert job.state == R.DONE and job.fee_paid == 9 * NMT                 # the workers first, in full
    assert [(p.provider, p.amount) for p in job.verifier_payments] == [(verifier, NMT // 10)]
    assert job.refunded == 0 and chain.balance(SUB) == sub0 - 9 * NMT - NMT // 10
    chain.audit()


def test_verdict_rules(chain):
    jid = running_job(chain)
    chain.block(result_tx(chain, jid))
    job = chain.job(jid)
    assert "waits for no verdict" in chain.reject(chain.tx(VER, JobVerify(
        job_id=jid, replay_from=0, replay_steps=5, bad_workers=(), metric_ppm=1)))
    job = to_challenge(chain, jid)
    other = P4 if job.verifier == VER.address else VER
    assert "not the designated verifier" in chain.reject(chain.tx(other, JobVerify(
        job_id=jid, replay_from=job.replay_from, replay_steps=5, bad_workers=(), metric_ppm=1)))
    assert "must cover steps" in chain.reject(verify_tx(chain, job, replay_from=(job.replay_from + 1) % 90))
    assert "distinct workers" in chain.reject(verify_tx(chain, job, bad=(P4,)))
    assert "cannot be cancelled" in chain.reject(chain.tx(SUB, JobCancel(job_id=jid)))


def test_verifier_timeout_redesignates_then_fails_with_full_refund(chain):
    sub0 = chain.balance(SUB)
    jid = running_job(chain)
    chain.block(result_tx(chain, jid))
    first = to_challenge(chain, jid).verifier
    chain.blocks_until(chain.job(jid).verify_due_height)
    job = chain.job(jid)
    assert job.state == R.VERIFYING and job.verifier not in (first, b"") and len(job.tried_verifiers) == 2
    assert chain.provider(KEY_OF[first]).reputation == 5_000 - rules.DEFAULTS.rep_silent_verifier_penalty
    chain.blocks_until(job.verify_due_height)
    job = chain.job(jid)          # only two non-workers exist: the third round finds nobody
    assert job.state == R.FAILED and "no eligible verifier" in job.reason
    assert chain.balance(SUB) == sub0 and job.refunded == 100 * NMT and job.verifier_fees == 0
    assert all(chain.provider(k).active_jobs == 0 for k in PROVIDERS)
    chain.audit()


def test_missing_worker_is_replaced_by_the_next_best_offer(chain):
    jid = running_job(chain)
    r = chain.tx(P1, JobReportMissing(job_id=jid, worker=P3.address))
    chain.block(r)
    assert chain.job(jid).worker(P3.address).active          # 1 of the 2 others: not yet a majority
    assert "already reported" in chain.reject(chain.tx(P1, JobReportMissing(job_id=jid, worker=P3.address)))
    chain.block(chain.tx(P2, JobReportMissing(job_id=jid, worker=P3.address)))
    job = chain.job(jid)
    assert not job.worker(P3.address).active
    assert [w.provider for w in job.active_workers] == [P1.address, P2.address, P4.address]
    assert job.worker(P4.address).price == 5 * NMT and job.replacements == 1
    assert chain.provider(P3).reputation == 5_000 - rules.DEFAULTS.rep_dropped_penalty and chain.provider(P3).active_jobs == 0
    day = econ.clock_of(chain.state()).day_of(chain.store.head.timestamp // 1000)
    assert econ._load(chain.state(), econ.jobs_key(day, P3.address), econ.JobsDay).dropped_job_failed
    # the dropped worker cannot post; its samples before it left are still paid
    assert "not an active worker" in chain.reject(result_tx(chain, jid, poster=P3))
    chain.block(result_tx(chain, jid, work=((P1, 1000), (P2, 1000), (P3, 500), (P4, 1000))))
    job = to_challenge(chain, jid)
    assert job.verifier == VER.address                       # P4 trained it now
    chain.block(verify_tx(chain, job))
    job = chain.job(jid)
    # fee = (1 + 2 + 1.5 + 5) = 9.5 NMT; 4.75 NMT by weights 1:2:1.5:5 (of 9.5)
    assert job.state == R.DONE and job.fee_paid == 19 * NMT // 2
    assert [chain.utilisation(k) for k in (P1, P2, P3, P4)] == [NMT // 2, NMT, 3 * NMT // 4, 5 * NMT // 2]
    assert chain.provider(P3).reputation == 5_000 - rules.DEFAULTS.rep_dropped_penalty       # no bonus for leaving
    assert econ._load(chain.state(), econ.jobs_key(day, P3.address), econ.JobsDay).jobs_left == 1
    chain.audit()


def test_job_continues_with_the_others_or_fails_below_min_workers(chain):
    jid = running_job(chain, workers=2, min_workers=2)         # P1, P2 assigned; P3, P4 spare
    assert [w.provider for w in chain.job(jid).assigned] == [P1.address, P2.address]
    for _ in range(rules.DEFAULTS.max_replacements):
        job = chain.job(jid)
        if job.state != R.RUNNING:
            break
        a, b = (w.provider for w in job.active_workers)
        chain.block(chain.tx(KEY_OF[a], JobReportMissing(job_id=jid, worker=b)))
    job = chain.job(jid)
    # P2 -> P3 -> P4 replaced; then no offer is left and one worker < min_workers 2: failed, refunded
    assert job.state == R.FAILED and "workers left" in job.reason and job.refunded == 100 * NMT
    chain.audit()


def test_offer_rules(chain):
    chain.block(chain.tx(SUB, submit_body(min_score=500, min_class="cpu", max_price=4 * NMT, offer_window=20)))
    jid = 1
    assert "not a registered provider" in chain.reject(chain.tx(OTHER, JobOffer(job_id=jid, price=1, zone="")))
    assert "above the job's maximum" in chain.reject(chain.tx(P1, JobOffer(job_id=jid, price=5 * NMT, zone="")))
    chain.block(chain.tx(P1, JobOffer(job_id=jid, price=NMT, zone="")))
    assert "already offered" in chain.reject(chain.tx(P1, JobOffer(job_id=jid, price=NMT, zone="")))
    assert "no job 9" in chain.reject(chain.tx(P2, JobOffer(job_id=9, price=NMT, zone="")))
    from ledger.txkinds.provider_update import ProviderUpdate

    chain.block(chain.tx(P2, ProviderUpdate(hardware_class="cpu", score=400, price=NMT, capacity=1, zone="",
                                            bandwidth_kbps=1)))
    assert "minimum hardware" in chain.reject(chain.tx(P2, JobOffer(job_id=jid, price=NMT, zone="")))
    chain.blocks_until(chain.job(jid).window_close_height)
    assert (chain.job(jid).state, chain.job(jid).reason, chain.job(jid).offer_rounds) == (R.OPEN, "", 2)


def test_assignment_leaves_one_provider_to_verify_when_min_workers_allows(chain):
    """Every registered provider offers (P1..P4, VER): assigning all five would leave nobody to
    verify, so four are assigned and the fifth (the dearest offer) can be drawn as verifier."""
    chain.block(chain.tx(SUB, submit_body(workers=5, min_workers=2)))
    jid = max(j.id for j in _jobs(chain))
    chain.block(*(chain.tx(k, JobOffer(job_id=jid, price=p * NMT, zone="lab"))
                  for k, p in ((P1, 1), (P2, 2), (P3, 3), (P4, 5), (VER, 6))))
    chain.blocks_until(chain.job(jid).window_close_height)
    job = chain.job(jid)
    assert job.state == R.RUNNING
    assert [w.provider for w in job.assigned] == [P1.address, P2.address, P3.address, P4.address]
    # when min_workers asks for everyone, nobody is held back (the job may then fail unverified)
    chain.block(chain.tx(SUB, submit_body(workers=5, min_workers=5)))
    jid2 = max(j.id for j in _jobs(chain))
    chain.block(*(chain.tx(k, JobOffer(job_id=jid2, price=p * NMT, zone="lab"))
                  for k, p in ((P1, 1), (P2, 2), (P3, 3), (P4, 5), (VER, 6))))
    chain.blocks_until(chain.job(jid2).window_close_height)
    assert len(chain.job(jid2).assigned) == 5


def test_too_few_offers_fail_after_bounded_rounds_with_full_refund(chain):
    sub0 = chain.balance(SUB)
    chain.block(chain.tx(SUB, submit_body(workers=3, min_workers=2)))
    chain.block(chain.tx(P1, JobOffer(job_id=1, price=NMT, zone="")))
    for _ in range(rules.DEFAULTS.max_offer_rounds):
        chain.blocks_until(chain.job(1).window_close_height)
    job = chain.job(1)
    assert job.state == R.FAILED and "not enough offers" in job.reason
    assert chain.balance(SUB) == sub0
    chain.audit()


def test_window_with_min_workers_after_last_round_runs_short(chain):
    chain.block(chain.tx(SUB, submit_body(workers=3, min_workers=2)))
    chain.block(*(chain.tx(k, JobOffer(job_id=1, price=NMT, zone="")) for k in (P1, P2)))
    for _ in range(rules.DEFAULTS.max_offer_rounds):
        chain.blocks_until(chain.job(1).window_close_height)
    job = chain.job(1)
    assert job.state == R.RUNNING and len(job.assigned) == 2


def test_deadline_refunds_open_and_running_jobs(chain):
    sub0 = chain.balance(SUB)
    deadline = (chain.store.head.timestamp // 1000 + 30) * 1000      # 30 s = 15 blocks
    jid = running_job(chain, deadline_ms=deadline)
    chain.block(chain.tx(SUB, submit_body(deadline_ms=deadline, offer_window=50)))   # job 2 stays open
    while chain.store.head.timestamp < deadline:
        chain.block()
    assert chain.job(jid).state == R.EXPIRED and chain.job(2).state == R.EXPIRED
    assert chain.balance(SUB) == sub0 and chain.balance(R.JOB_ESCROW) == 0
    assert [chain.provider(k).reputation for k in (P1, P2, P3)] == [5_000 - rules.DEFAULTS.rep_expired_penalty] * 3
    assert all(chain.provider(k).active_jobs == 0 for k in PROVIDERS)
    assert "not open for offers" in chain.reject(chain.tx(P1, JobOffer(job_id=2, price=1, zone="")))
    chain.audit()


def test_cancel_open_running_and_not_by_others(chain):
    sub0 = chain.balance(SUB)
    chain.block(chain.tx(SUB, submit_body()))
    assert "only the submitter" in chain.reject(chain.tx(P1, JobCancel(job_id=1)))
    chain.block(chain.tx(SUB, JobCancel(job_id=1)))
    assert chain.job(1).state == R.CANCELLED and chain.balance(SUB) == sub0
    assert "already cancelled" in chain.reject(chain.tx(SUB, JobCancel(job_id=1)))
    jid = running_job(chain)
    chain.block(chain.tx(SUB, JobCancel(job_id=jid)))
    job = chain.job(jid)
    # running: 10% of 100 NMT = 10 NMT; 5 NMT shared equally by P1..P3 (floor), 5 NMT + dust to the pool
    assert job.state == R.CANCELLED and job.fee_paid == 10 * NMT and job.refunded == 90 * NMT
    assert chain.balance(SUB) == sub0 - 10 * NMT
    assert [chain.utilisation(k) for k in (P1, P2, P3)] == [5 * NMT // 3] * 3
    assert all(chain.provider(k).active_jobs == 0 for k in PROVIDERS)
    chain.audit()


def test_result_rules(chain):
    jid = running_job(chain)
    assert "not an active worker" in chain.reject(result_tx(chain, jid, poster=P4))
    assert "not a worker" in chain.reject(result_tx(chain, jid, work=((P1, 10), (P4, 10))))
    assert "above the job's max_samples" in chain.reject(result_tx(chain, jid, work=((P1, 10_001),)))
    assert "no samples" in chain.reject(result_tx(chain, jid, work=((P1, 0),)))
    bad = chain.tx(P1, JobResult(job_id=jid, result_cid="bafy-not-a-cid", metrics=(), work=(), checkpoints=()))
    assert "not a CIDv1" in chain.reject(bad)
    no_metric = chain.tx(P1, JobResult(job_id=jid, result_cid=RESULT, metrics=(R.Metric(name="loss", value_ppm=1),),
                                       work=(R.Work(provider=P1.address, samples=1),), checkpoints=()))
    assert "acceptance metric" in chain.reject(no_metric)


def test_submit_rules(chain):
    assert "deadline" in chain.reject(chain.tx(SUB, submit_body(deadline_ms=T0 * 1000)))
    assert "insufficient" in chain.reject(chain.tx(OTHER, submit_body(budget=10**9 * NMT))).lower()
    from ledger.errors import InvalidTransaction

    for kw, msg in ((dict(mode="swarm"), "mode"), (dict(workers=0), "workers"), (dict(min_workers=4), "min_workers"),
                    (dict(min_class="tpu"), "unknown hardware class"), (dict(budget=0), "budget"),
                    (dict(replay_steps=101), "replay_steps"), (dict(metric_op="=="), "metric_op"),
                    (dict(offer_window=0), "offer_window"), (dict(strategy="random"), "unknown assignment")):
        with pytest.raises(InvalidTransaction, match=msg):
            submit_body(**kw).check(chain.store.params)


def test_provider_register_update_and_mining_profile(chain):
    assert "already a registered provider" in chain.reject(chain.tx(P1, register_body()))
    assert "unknown hardware class" in chain.reject(chain.tx(OTHER, register_body(hw="tpu")))
    chain.block(chain.tx(OTHER, register_body(hw="gpu-high", score=9_000, price=3 * NMT, zone="eu")))
    p = chain.provider(OTHER)
    assert (p.hardware_class, p.score, p.price, p.reputation) == ("gpu-high", 9_000, 3 * NMT, rules.DEFAULTS.reputation_start)
    prof = econ._load(chain.state(), econ.profile_key(OTHER.address), econ.MiningProfile)
    assert (prof.hardware_class, prof.bandwidth_kbps) == ("gpu-high", 100_000)
    from ledger.txkinds.provider_update import ProviderUpdate

    chain.block(chain.tx(OTHER, ProviderUpdate(hardware_class="cpu", score=10, price=0, capacity=1, zone="",
                                               bandwidth_kbps=5)))
    assert chain.provider(OTHER).hardware_class == "cpu"
    assert econ._load(chain.state(), econ.profile_key(OTHER.address), econ.MiningProfile).hardware_class == "cpu"
