"""`job_abort`: the active workers of a running job declare it untrainable (bad dataset artifact,
base model artifact or spec). A strict majority of the active workers fails the job with a FULL
refund; nobody is paid or penalised; the workers are released. Setup as in test_jobs_lifecycle:
P1, P2, P3 assigned to a 3-worker job (min 2), P4 a spare offer, VER never offers."""

import pytest
from jobs_fixtures import NMT, P1, P2, P3, P4, PROVIDERS, SUB, VER, registered_chain
from test_jobs_lifecycle import result_tx, running_job

from ledger.codec import DecodeError
from ledger.jobs import records as R
from ledger.txkinds.job_abort import JobAbort
from ledger.txkinds.job_report_missing import JobReportMissing


@pytest.fixture
def chain(tmp_path):
    c = registered_chain(tmp_path / "chain")
    yield c
    c.close()


def abort_tx(chain, key, jid, code="dataset", reason="DatasetError: not a safetensors file"):
    return chain.tx(key, JobAbort(job_id=jid, code=code, reason=reason))


def _standing(chain, keys):
    return [(chain.provider(k).reputation, chain.provider(k).jobs_failed, chain.provider(k).jobs_done,
             chain.utilisation(k), chain.balance(k)) for k in keys]


def test_a_majority_of_workers_fails_the_job_with_a_full_refund_and_nobody_paid_or_penalised(chain):
    sub0 = chain.balance(SUB)
    pool0 = chain.state().pool("mining").returned
    jid = running_job(chain)
    before = _standing(chain, (P1, P2, P3, P4))
    chain.block(abort_tx(chain, P1, jid))
    job = chain.job(jid)
    assert job.state == R.RUNNING                                  # 1 of 3 is not a majority
    assert [(a.worker, a.code, a.reason) for a in job.aborts] == [
        (P1.address, "dataset", "DatasetError: not a safetensors file")]
    assert "already declared" in chain.reject(abort_tx(chain, P1, jid))   # one declaration per worker
    chain.block(abort_tx(chain, P2, jid, code="base_model", reason="another reason"))
    job = chain.job(jid)
    assert job.state == R.FAILED
    assert job.reason == "untrainable: dataset: DatasetError: not a safetensors file"   # the first reason
    assert job.refunded == job.budget == 100 * NMT and job.escrow == 0
    assert job.fee_paid == 0 and job.payments == () and job.verifier_fees == 0
    assert chain.balance(SUB) == sub0 and chain.balance(R.JOB_ESCROW) == 0
    assert chain.state().pool("mining").returned == pool0
    assert _standing(chain, (P1, P2, P3, P4)) == before            # reputation, counters, pay: untouched
    assert all(chain.provider(k).active_jobs == 0 for k in (P1, P2, P3))
    assert chain.state().get(R.deadline_key(job.deadline_ms, jid)) is None
    assert "only a running job" in chain.reject(abort_tx(chain, P3, jid))
    chain.audit()


def test_a_lone_worker_s_own_declaration_suffices_two_workers_need_both(chain):
    one = running_job(chain, workers=1, min_workers=1)
    chain.block(abort_tx(chain, chain_key(chain.job(one).assigned[0].provider), one, code="spec",
                         reason="JobSpecError: unknown model"))
    assert chain.job(one).state == R.FAILED
    assert chain.job(one).reason == "untrainable: spec: JobSpecError: unknown model"
    two = running_job(chain, workers=2, min_workers=2)
    w1, w2 = (chain_key(w.provider) for w in chain.job(two).assigned)
    chain.block(abort_tx(chain, w1, two))
    assert chain.job(two).state == R.RUNNING                       # 1 of 2: exactly half, not more
    chain.block(abort_tx(chain, w2, two))
    assert chain.job(two).state == R.FAILED and chain.job(two).refunded == 100 * NMT
    chain.audit()


def chain_key(addr):
    return next(k for k in PROVIDERS if k.address == addr)


def test_who_and_when_may_abort(chain):
    jid = running_job(chain)
    assert "not an active worker" in chain.reject(abort_tx(chain, P4, jid))       # a spare offer
    assert "not an active worker" in chain.reject(abort_tx(chain, VER, jid))
    assert "not an active worker" in chain.reject(abort_tx(chain, SUB, jid))
    assert "abort code" in chain.reject(abort_tx(chain, P1, jid, code="peer"))
    assert "needs a reason" in chain.reject(abort_tx(chain, P1, jid, reason="  "))
    assert "needs a reason" in chain.reject(abort_tx(chain, P1, jid, reason="bad \x1b[31mred"))
    with pytest.raises(DecodeError, match="over the limit of 160"):
        JobAbort(job_id=jid, code="dataset", reason="x" * 161).encode()
    assert "no job 99" in chain.reject(abort_tx(chain, P1, 99))
    chain.block(result_tx(chain, jid))                             # a worker of a job that posted a result
    assert "has a result" in chain.reject(abort_tx(chain, P2, jid))
    assert chain.job(jid).state == R.VERIFYING and chain.job(jid).aborts == ()
    from jobs_fixtures import submit_body

    chain.block(chain.tx(SUB, submit_body()))
    assert "only a running job" in chain.reject(abort_tx(chain, P1, jid + 1))    # still open
    chain.audit()


def test_a_declaration_counts_only_while_its_worker_is_active(chain):
    jid = running_job(chain)
    chain.block(abort_tx(chain, P3, jid))
    chain.block(chain.tx(P1, JobReportMissing(job_id=jid, worker=P3.address)),
                chain.tx(P2, JobReportMissing(job_id=jid, worker=P3.address)))
    job = chain.job(jid)
    assert not job.worker(P3.address).active and job.worker(P4.address).active   # P4 replaced it
    assert "not an active worker" in chain.reject(abort_tx(chain, P3, jid))
    chain.block(abort_tx(chain, P1, jid))
    assert chain.job(jid).state == R.RUNNING          # P1 alone of P1, P2, P4 (P3's no longer counts)
    chain.block(abort_tx(chain, P4, jid))
    job = chain.job(jid)
    assert job.state == R.FAILED and job.reason.startswith("untrainable: dataset:")
    assert job.refunded == job.budget and all(chain.provider(k).active_jobs == 0 for k in (P1, P2, P3, P4))
    chain.audit()
