"""The by-state index and pruning of finished jobs.

A chain with ``job_retention_blocks`` 5 and ``max_prunes_per_block`` 1: a finished job keeps its
full record for 5 blocks, then the end-block hook replaces it by a `JobSummary` and deletes its
offers, timers, deadline entry and tx-hash index entry, one job per block. `job_view` still
answers (``pruned: true``); rating it is refused. Two stores fed the same blocks hold the same
state root at every height, pruning blocks included."""

import dataclasses

import pytest
from jobs_fixtures import (
    NMT,
    P1,
    P2,
    P3,
    P4,
    PARAMS,
    PROVIDERS,
    SUB,
    make_genesis,
    registered_chain,
    submit_body,
)

from ledger.jobs import records as R
from ledger.jobs import views
from ledger.jobs.cid import cid_of
from ledger.state import State
from ledger.store import DBView, Store
from ledger.txkinds.job_cancel import JobCancel
from ledger.txkinds.job_offer import JobOffer
from ledger.txkinds.job_rate import JobRate
from ledger.txkinds.job_result import JobResult
from ledger.txkinds.job_verify import JobVerify

KEY_OF = {k.address: k for k in PROVIDERS}
RETAIN = 5
GENESIS = make_genesis(dataclasses.replace(PARAMS, jobs=dataclasses.replace(
    PARAMS.jobs, job_retention_blocks=RETAIN, max_prunes_per_block=1)))


@pytest.fixture
def chain(tmp_path):
    c = registered_chain(tmp_path / "a", GENESIS)
    yield c
    c.close()


def _done_job(chain) -> int:
    chain.block(chain.tx(SUB, submit_body()))
    jid = max(j.id for j in views.iter_jobs(chain.state()))
    chain.block(*(chain.tx(k, JobOffer(job_id=jid, price=p * NMT, zone="lab"))
                  for k, p in ((P1, 1), (P2, 2), (P3, 3), (P4, 5))))
    chain.blocks_until(chain.job(jid).window_close_height)
    chain.block(chain.tx(P1, JobResult(job_id=jid, result_cid=cid_of(b"w"),
                                       metrics=(R.Metric(name="accuracy", value_ppm=990_000),),
                                       work=(R.Work(provider=P1.address, samples=1000),
                                             R.Work(provider=P2.address, samples=1000)), checkpoints=())))
    chain.blocks_until(chain.job(jid).challenge_height)
    job = chain.job(jid)
    chain.block(chain.tx(KEY_OF[job.verifier], JobVerify(job_id=jid, replay_from=job.replay_from, replay_steps=5,
                                                         bad_workers=(), metric_ppm=990_000)))
    assert chain.job(jid).state == R.DONE
    return jid


def _keys_of(state, job_id: int) -> list[bytes]:
    """Every jobs key that names `job_id` except its summary."""
    jid = job_id.to_bytes(8, "big")
    out = []
    for pre, pos in ((b"Jj", 2), (b"Jo", 2), (b"Js", 3)):
        out += [k for k, _ in state.iter_prefix(pre) if k[pos:pos + 8] == jid]
    for pre in (b"Jt", b"Jd", b"Jf"):
        out += [k for k, _ in state.iter_prefix(pre) if k[10:18] == jid]
    out += [k for k, v in state.iter_prefix(b"Jh") if v == jid]
    return out


def test_state_index_follows_every_transition(chain):
    s = chain.state
    chain.block(chain.tx(SUB, submit_body()))
    assert R.job_ids_in(s(), R.OPEN) == [1] and views.list_jobs(s(), states=("open",))[0]["id"] == 1
    chain.block(*(chain.tx(k, JobOffer(job_id=1, price=NMT, zone="")) for k in (P1, P2, P3)))
    chain.blocks_until(chain.job(1).window_close_height)
    assert (R.job_ids_in(s(), R.OPEN), R.job_ids_in(s(), R.RUNNING)) == ([], [1])
    chain.block(chain.tx(SUB, submit_body()), chain.tx(SUB, JobCancel(job_id=1)))
    assert R.job_ids_in(s(), R.RUNNING) == [] and R.job_ids_in(s(), R.OPEN) == [2]
    assert [j["id"] for j in views.list_jobs(s())] == [1, 2]
    assert [j["id"] for j in views.list_jobs(s(), states=("cancelled",))] == [1]
    assert list(s().iter_prefix(b"Jd"))[0][0][10:18] == (2).to_bytes(8, "big")   # 1's deadline entry is gone
    chain.audit()


def test_duties_and_listing_never_read_finished_jobs(chain):
    jid = _done_job(chain)
    chain.block(chain.tx(SUB, submit_body()))
    st = State(DBView(chain.store._db))
    st.put(R.job_key(jid), b"\xc1 not a job record")        # a scan over every job would fail to decode it
    d = views.provider_duties(st, P4.address)
    assert d["offerable"] == [jid + 1] and d["assigned"] == [] and d["verify"] == []
    assert [j["id"] for j in views.list_jobs(st, states=("open", "running", "verifying"))] == [jid + 1]


def test_a_finished_job_is_pruned_to_its_summary_after_the_retention(chain):
    jid = _done_job(chain)
    full = views.job_view(chain.state(), jid)
    settled = chain.job(jid).settled_height
    assert full["verifier_payments"] and full["pruned"] is False
    chain.blocks_until(settled + RETAIN)
    assert chain.job(jid) is not None                       # retained for RETAIN blocks
    chain.block(chain.tx(SUB, JobRate(job_id=jid, score=4)))   # ... and ratable meanwhile
    chain.block()
    st = chain.state()
    assert chain.job(jid) is None and _keys_of(st, jid) == []
    summary = R.get_summary(st, jid)
    assert (summary.state, summary.settled_height, summary.pruned_height) == (R.DONE, settled, settled + RETAIN + 1)
    assert summary.fee_paid + summary.verifier_fees + summary.refunded == summary.budget and summary.rated == 4
    v = views.job_view(st, jid)
    assert v["pruned"] is True and v["pruned_height"] == settled + RETAIN + 1
    assert set(v) == set(full)                               # the same shape
    for k in ("id", "state", "reason", "submitter", "budget", "fee_paid", "refunded", "payments", "verifier_fees",
              "verifier_payments", "verified_metric", "settled_height", "created_height", "metric", "mode"):
        assert v[k] == full[k], k
    assert v["result"]["result_id"] == full["result"]["result_id"] and v["result"]["metrics"] == {"accuracy": 0.99}
    assert v["assigned"] == [] and v["offers"] == [] and v["escrow"] == "0"
    assert views.list_jobs(st) == [] and views.job_id_of_tx(st, bytes(32)) is None
    err = chain.reject(chain.tx(SUB, JobRate(job_id=jid, score=5)))
    assert "can no longer be rated" in err and "pruned at height" in err
    assert "was pruned" in chain.reject(chain.tx(SUB, JobCancel(job_id=jid)))
    with pytest.raises(Exception, match="no job 99"):
        views.job_view(st, 99)
    chain.audit()


def test_pruning_is_bounded_per_block(chain):
    chain.block(*(chain.tx(SUB, submit_body()) for _ in range(3)))
    chain.block(*(chain.tx(SUB, JobCancel(job_id=i)) for i in (1, 2, 3)))     # three finish in one block
    settled = chain.job(1).settled_height
    chain.blocks_until(settled + RETAIN + 1)
    assert [R.get_summary(chain.state(), i) is not None for i in (1, 2, 3)] == [True, False, False]
    chain.audit()
    chain.block()
    assert [R.get_summary(chain.state(), i) is not None for i in (1, 2, 3)] == [True, True, False]
    chain.block()
    assert all(R.get_job(chain.state(), i) is None for i in (1, 2, 3))
    assert list(chain.state().iter_prefix(b"Jf")) == []
    chain.audit()


def test_two_stores_fed_the_same_blocks_agree_through_pruning(chain, tmp_path):
    _done_job(chain)
    chain.block(*(chain.tx(SUB, submit_body()) for _ in range(2)))
    chain.block(chain.tx(SUB, JobCancel(job_id=2)), chain.tx(SUB, JobCancel(job_id=3)))
    chain.blocks_until(chain.height + RETAIN + 3)
    assert all(R.get_summary(chain.state(), i) for i in (1, 2, 3))
    other = Store.create(tmp_path / "b", GENESIS, sync=False)
    try:
        for h in range(1, chain.store.height + 1):
            other.import_block(chain.store.get_block_bytes(h))       # re-executes; roots must match
            assert other.head.state_root == chain.store.get_header(h).state_root
        assert [views.job_view(other.state(), i) for i in (1, 2, 3)] == \
               [views.job_view(chain.state(), i) for i in (1, 2, 3)]
        # and a rewind of a pruning block restores the full record
        while R.get_summary(other.state(), 3) is not None:
            other.rewind_head()
        assert R.get_job(other.state(), 3).state == R.CANCELLED
        views.audit_jobs(other.state())
    finally:
        other.close()


def test_a_stale_queue_entry_is_dropped_not_fatal():
    """A queue entry without a finished job (impossible with a consistent index) must not halt the
    chain: the end-block hook drops it."""
    from jobs_fixtures import MemChain

    c = MemChain(GENESIS)
    c.state().put(R.finished_key(0, 999), b"")
    c.blocks_until(RETAIN + 2)
    assert list(c.state().iter_prefix(b"Jf")) == [] and R.get_summary(c.state(), 999) is None
