"""Audits of clean verdicts on a real LevelDB chain (ledger/JOBS.md "Audits").

Setup: audits always on (`audit_bps` 10,000), six providers: P1, P2, P3 train (offers at 1, 2, 3
NMT), P4, VER and OTHER are the verifier pool (first verifier, auditor, decider in beacon order).
Result: P1 1,000 samples, P2 1,000, P3 2,000 -> work value 9 NMT, each verifier whose verdict
stood gets 5% of it (0.45 NMT). Tolerance of two metrics: 5,000 ppm (default).
"""

import dataclasses

import pytest
from jobs_fixtures import (
    NMT,
    OTHER,
    P1,
    P2,
    P3,
    P4,
    PARAMS,
    SUB,
    VER,
    Chain,
    make_genesis,
    register_body,
    submit_body,
)

from ledger.jobs import records as R
from ledger.jobs.cid import cid_of
from ledger.jobs.params import JobParams
from ledger.jobs.views import job_view, provider_duties
from ledger.txkinds.job_offer import JobOffer
from ledger.txkinds.job_result import JobResult
from ledger.txkinds.job_verify import JobVerify

JP = dataclasses.replace(JobParams(), audit_bps=10_000)
KEY_OF = {k.address: k for k in (P1, P2, P3, P4, VER, OTHER)}
VFEE = 9 * NMT * 500 // 10_000
START = JP.reputation_start


def _chain(path, **jobs) -> Chain:
    c = Chain(path, make_genesis(dataclasses.replace(PARAMS, jobs=dataclasses.replace(JP, **jobs))))
    c.block(*(c.tx(k, register_body()) for k in KEY_OF.values()))
    return c


@pytest.fixture
def chain(tmp_path):
    c = _chain(tmp_path / "chain")
    yield c
    c.close()


def _to_verdict(chain, acc=960_000) -> R.Job:
    """Submit, offer, assign P1..P3, post the result, reach the first verifier's turn."""
    chain.block(chain.tx(SUB, submit_body()))
    jid = _last_id(chain)
    chain.block(*(chain.tx(k, JobOffer(job_id=jid, price=p * NMT, zone="lab")) for k, p in ((P1, 1), (P2, 2), (P3, 3))))
    chain.blocks_until(chain.job(jid).window_close_height)
    chain.block(chain.tx(P1, JobResult(job_id=jid, result_cid=cid_of(b"w"), checkpoints=(cid_of(b"c"),),
                                       metrics=(R.Metric(name="accuracy", value_ppm=acc),),
                                       work=tuple(R.Work(provider=k.address, samples=n)
                                                  for k, n in ((P1, 1000), (P2, 1000), (P3, 2000))))))
    chain.blocks_until(chain.job(jid).challenge_height)
    job = chain.job(jid)
    assert job.verifier in (P4.address, VER.address, OTHER.address)
    return job


def _last_id(chain) -> int:
    return R.load(chain.state(), R.JOB_COUNTER_KEY, R.Counter).next - 1


def _verdict(chain, job, bad=(), metric=960_000):
    return chain.tx(KEY_OF[job.verifier], JobVerify(job_id=job.id, replay_from=job.replay_from,
                                                    replay_steps=job.replay_steps,
                                                    bad_workers=tuple(k.address for k in bad), metric_ppm=metric))


def _clean_then_audit(chain, metric=960_000) -> tuple[R.Job, bytes]:
    """The first verifier posts clean; the next block draws the audit. Returns (job, first verifier)."""
    job = _to_verdict(chain)
    first = job.verifier
    chain.block(_verdict(chain, job, metric=metric))
    job = chain.job(job.id)
    # Recorded, not settled: the audit is drawn from the NEXT block's beacon, which the verifier
    # cannot know when it posts (this block's beacon was known before the block).
    assert job.state == R.VERIFYING and job.audit == R.A_DRAW and job.verifier == b""
    assert job.clean_by == first and job.clean_metric_ppm == metric and job.audit_height == chain.height + 1
    assert job_view(chain.state(), job.id)["audit"]["phase"] == "draw"
    chain.block()
    job = chain.job(job.id)
    assert job.audit == R.A_AUDIT and job.verifier not in (first, b"")
    assert job.tried_verifiers == (first, job.verifier)
    duties = provider_duties(chain.state(), job.verifier)
    assert [(v["job_id"], v["audit"]) for v in duties["verify"]] == [(job.id, True)]
    return job, first


def test_audit_that_agrees_settles_as_before_and_pays_both(chain):
    sub0 = chain.balance(SUB)
    job, first = _clean_then_audit(chain, metric=960_000)
    auditor = job.verifier
    before = {a: chain.balance(a) for a in (first, auditor)}
    replay = job.replay_from
    chain.block(_verdict(chain, job, metric=960_000 - 4_000))       # within the 5,000 ppm tolerance
    job = chain.job(job.id)
    assert job.state == R.DONE and job.replay_from == replay
    assert job.verified_metric_ppm == 960_000                         # the audited verdict's metric
    assert [(p.provider, p.amount) for p in job.verifier_payments] == [(first, VFEE), (auditor, VFEE)]
    assert {a: chain.balance(a) - before[a] for a in before} == {first: VFEE, auditor: VFEE}
    assert chain.balance(SUB) == sub0 - 9 * NMT - 2 * VFEE
    assert chain.provider(KEY_OF[first]).reputation == chain.provider(KEY_OF[auditor]).reputation == START + 20
    assert [chain.provider(k).reputation for k in (P1, P2, P3)] == [START + 100] * 3
    v = job_view(chain.state(), job.id)["audit"]
    assert v["phase"] == "audit" and v["auditor"] and v["audit_metric"] == 0.956
    chain.audit()


def test_audit_accusation_confirmed_the_clean_verifier_loses_fee_and_reputation(chain):
    job, first = _clean_then_audit(chain)
    auditor = job.verifier
    first0 = chain.balance(first)
    chain.block(_verdict(chain, job, bad=(P2,)))
    job = chain.job(job.id)
    assert job.audit == R.A_DISPUTE and job.accused == (P2.address,) and job.accuser == auditor
    assert job.verifier == b"" and job.challenge_height == chain.height + 1   # drawn from the next block
    chain.block()
    job = chain.job(job.id)
    decider = job.verifier
    assert decider not in (first, auditor, b"") and job.tried_verifiers == (first, auditor, decider)
    chain.block(_verdict(chain, job, bad=(P2,)))
    job = chain.job(job.id)
    assert job.state == R.FAILED and "failed the replay" in job.reason
    assert [(p.provider, p.amount) for p in job.verifier_payments] == [(auditor, VFEE), (decider, VFEE)]
    assert chain.balance(first) == first0
    assert chain.provider(KEY_OF[first]).reputation == START - JP.rep_false_clean
    assert chain.provider(P2).reputation == START - JP.rep_failed_verification_penalty
    assert job.fee_paid == 7 * NMT                       # P1 and P3 are paid their samples
    chain.audit()


def test_a_lying_auditor_alone_cannot_slash_or_unpay(chain):
    """The auditor accuses honest workers; the decider finds nothing: settled on the decider's
    clean verdict, the auditor is a false accuser, the first verifier is paid."""
    job, first = _clean_then_audit(chain)
    auditor = job.verifier
    chain.block(_verdict(chain, job, bad=(P1, P2, P3)))
    chain.block()
    job = chain.job(job.id)
    decider = job.verifier
    chain.block(_verdict(chain, job, metric=961_000))
    job = chain.job(job.id)
    assert job.state == R.DONE and job.fee_paid == 9 * NMT and job.verified_metric_ppm == 961_000
    assert [(p.provider, p.amount) for p in job.verifier_payments] == [(first, VFEE), (decider, VFEE)]
    assert chain.provider(KEY_OF[auditor]).reputation == START - JP.rep_false_accusation_penalty
    assert chain.provider(KEY_OF[first]).reputation == START + 20
    assert [chain.provider(k).reputation for k in (P1, P2, P3)] == [START + 100] * 3
    chain.audit()


def test_metric_dispute_the_decider_sides_with_the_auditor(chain):
    """A lazy verifier copied the claimed 0.96; the auditor measured 0.90 (criterion 0.95 not met);
    the decider measures 0.901: the job fails on the criterion (work paid), the copier loses."""
    job, first = _clean_then_audit(chain, metric=960_000)
    auditor = job.verifier
    chain.block(_verdict(chain, job, metric=900_000))
    chain.block()
    job = chain.job(job.id)
    assert job.audit == R.A_DISPUTE and job.accused == () and job.auditor == auditor
    decider = job.verifier
    chain.block(_verdict(chain, job, bad=(P3,), metric=901_000))     # a decider alone cannot accuse
    job = chain.job(job.id)
    assert job.state == R.FAILED and "criterion not met" in job.reason and job.verified_metric_ppm == 901_000
    assert job.fee_paid == 9 * NMT and chain.provider(P3).reputation == START
    assert [(p.provider, p.amount) for p in job.verifier_payments] == [(auditor, VFEE), (decider, VFEE)]
    assert chain.provider(KEY_OF[first]).reputation == START - JP.rep_false_clean
    assert chain.provider(KEY_OF[auditor]).reputation == START + 20
    chain.audit()


def test_metric_dispute_the_decider_sides_with_the_first_verifier(chain):
    job, first = _clean_then_audit(chain, metric=960_000)
    auditor = job.verifier
    chain.block(_verdict(chain, job, metric=800_000))
    chain.block()
    job = chain.job(job.id)
    decider = job.verifier
    chain.block(_verdict(chain, job, metric=959_000))
    job = chain.job(job.id)
    assert job.state == R.DONE and job.verified_metric_ppm == 959_000
    assert [(p.provider, p.amount) for p in job.verifier_payments] == [(first, VFEE), (decider, VFEE)]
    assert chain.provider(KEY_OF[auditor]).reputation == START - JP.rep_false_clean
    chain.audit()


def test_silent_auditors_then_the_clean_verdict_stands(tmp_path):
    """max_verify_rounds 3: first verifier, a silent auditor (-100), a second silent auditor; no
    round left -> settled on the clean verdict, the first verifier paid, no refund of the work."""
    c = _chain(tmp_path / "c", max_verify_rounds=3)
    try:
        job, first = _clean_then_audit(c)
        a1 = job.verifier
        c.blocks_until(job.verify_due_height)
        job = c.job(job.id)
        a2 = job.verifier
        assert job.state == R.VERIFYING and job.audit == R.A_AUDIT and a2 not in (first, a1, b"")
        assert c.provider(KEY_OF[a1]).reputation == START - JP.rep_silent_verifier_penalty
        c.blocks_until(job.verify_due_height)
        job = c.job(job.id)
        assert job.state == R.DONE and job.fee_paid == 9 * NMT
        assert [(p.provider, p.amount) for p in job.verifier_payments] == [(first, VFEE)]
        c.audit()
    finally:
        c.close()


def test_no_audit_drawn_or_no_auditor_left_settles_on_the_clean_verdict(tmp_path):
    """audit_bps 0 settles in the verdict's block; audit_bps 10,000 with max_verify_rounds 1 has no
    round for an auditor and settles in the next block."""
    for bps, rounds, extra in ((0, 4, 0), (10_000, 1, 1)):
        c = _chain(tmp_path / f"c{bps}", audit_bps=bps, max_verify_rounds=rounds)
        try:
            job = _to_verdict(c)
            c.block(_verdict(c, job))
            for _ in range(extra):
                assert c.job(job.id).state == R.VERIFYING
                c.block()
            job = c.job(job.id)
            assert job.state == R.DONE and [p.provider for p in job.verifier_payments] == [job.tried_verifiers[0]]
            c.audit()
        finally:
            c.close()


def test_audit_params_are_validated():
    from ledger.errors import GenesisError
    from ledger.jobs.params import job_params_from_plain

    assert job_params_from_plain({"audit_bps": 2_500}).audit_bps == 2_500
    with pytest.raises(GenesisError, match="params.jobs.audit_bps"):
        job_params_from_plain({"audit_bps": 10_001})
    with pytest.raises(GenesisError, match="audit_metric_tolerance_ppm"):
        job_params_from_plain({"audit_metric_tolerance_ppm": -1})


@pytest.mark.parametrize("decider_confirms", [True, False])
def test_a_contradicted_accusation_goes_to_a_decider(chain, decider_confirms):
    """Accuser names P2, the confirmer finds nothing: one of the two is wrong, so a third verifier
    decides (the confirmer's clean verdict is judged like an audited one)."""
    job = _to_verdict(chain)
    accuser = job.verifier
    chain.block(_verdict(chain, job, bad=(P2,)))
    chain.block()
    job = chain.job(job.id)
    confirmer = job.verifier
    chain.block(_verdict(chain, job))
    chain.block()
    job = chain.job(job.id)
    assert job.state == R.VERIFYING and job.audit == R.A_DISPUTE and job.clean_by == confirmer
    decider = job.verifier
    assert decider not in (accuser, confirmer, b"") and job.accused == (P2.address,)
    chain.block(_verdict(chain, job, bad=(P2,) if decider_confirms else ()))
    job = chain.job(job.id)
    paid = [(p.provider, p.amount) for p in job.verifier_payments]
    if decider_confirms:
        assert job.state == R.FAILED and job.fee_paid == 7 * NMT
        assert paid == [(accuser, VFEE), (decider, VFEE)]
        assert chain.provider(KEY_OF[confirmer]).reputation == START - JP.rep_false_clean
        assert chain.provider(P2).reputation == START - JP.rep_failed_verification_penalty
    else:
        assert job.state == R.DONE and job.fee_paid == 9 * NMT
        assert paid == [(confirmer, VFEE), (decider, VFEE)]
        assert chain.provider(KEY_OF[accuser]).reputation == START - JP.rep_false_accusation_penalty
        assert chain.provider(P2).reputation == START + 100
    chain.audit()


def test_a_silent_decider_in_the_last_round_leaves_the_confirmer_verdict(tmp_path):
    """max_verify_rounds 3: accuser, contradicting confirmer, silent decider -> settled on the
    confirmer's verdict as before deciders (work paid, the accuser -1,000), not refunded."""
    c = _chain(tmp_path / "c", max_verify_rounds=3)
    try:
        job = _to_verdict(c)
        accuser = job.verifier
        c.block(_verdict(c, job, bad=(P2,)))
        c.block()
        job = c.job(job.id)
        confirmer = job.verifier
        c.block(_verdict(c, job))
        c.block()
        job = c.job(job.id)
        decider = job.verifier
        assert job.audit == R.A_DISPUTE and decider not in (accuser, confirmer, b"")
        c.blocks_until(job.verify_due_height)
        job = c.job(job.id)
        assert job.state == R.DONE and job.fee_paid == 9 * NMT
        assert [(p.provider, p.amount) for p in job.verifier_payments] == [(confirmer, VFEE)]
        assert c.provider(KEY_OF[accuser]).reputation == START - JP.rep_false_accusation_penalty
        assert c.provider(KEY_OF[decider]).reputation == START - JP.rep_silent_verifier_penalty
        c.audit()
    finally:
        c.close()
