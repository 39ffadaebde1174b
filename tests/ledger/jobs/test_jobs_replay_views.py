"""Every node agrees: a second store importing the same blocks (bytes) reaches the same state
roots through assignment, verification and settlement; a rewound block restores the jobs state;
the read views a node serves."""

import pytest
from jobs_fixtures import (
    NMT,
    P1,
    P2,
    P3,
    P4,
    PROVIDERS,
    SUB,
    VER,
    Chain,
    make_genesis,
    register_body,
    submit_body,
)

from ledger.jobs import records as R
from ledger.jobs import views
from ledger.jobs.cid import cid_of
from ledger.keys import address_to_text
from ledger.store import Store
from ledger.txkinds.job_offer import JobOffer
from ledger.txkinds.job_result import JobResult
from ledger.txkinds.job_verify import JobVerify

KEY_OF = {k.address: k for k in PROVIDERS}


@pytest.fixture
def chain(tmp_path):
    c = Chain(tmp_path / "a")
    c.block(*(c.tx(k, register_body()) for k in PROVIDERS))
    yield c
    c.close()


def _run_job(chain):
    chain.block(chain.tx(SUB, submit_body()))
    chain.block(*(chain.tx(k, JobOffer(job_id=1, price=p * NMT, zone="lab")) for k, p in ((P1, 1), (P2, 2), (P3, 3))))
    chain.blocks_until(chain.job(1).window_close_height)
    chain.block(chain.tx(P1, JobResult(job_id=1, result_cid=cid_of(b"w"), metrics=(R.Metric(name="accuracy",
                                                                                             value_ppm=990_000),),
                                       work=(R.Work(provider=P1.address, samples=100),), checkpoints=())))
    chain.blocks_until(chain.job(1).challenge_height)
    job = chain.job(1)
    chain.block(chain.tx(KEY_OF[job.verifier], JobVerify(job_id=1, replay_from=job.replay_from, replay_steps=5,
                                                         bad_workers=(), metric_ppm=990_000)))
    assert chain.job(1).state == R.DONE


def test_an_independent_store_reaches_the_same_roots(chain, tmp_path):
    _run_job(chain)
    other = Store.create(tmp_path / "b", make_genesis(), sync=False)
    try:
        for h in range(1, chain.store.height + 1):
            other.import_block(chain.store.get_block_bytes(h))      # re-executes; the state root must match
            assert other.head.state_root == chain.store.get_header(h).state_root
        assert views.job_view(other.state(), 1) == views.job_view(chain.state(), 1)
    finally:
        other.close()


def test_rewind_restores_the_assignment(chain):
    chain.block(chain.tx(SUB, submit_body()))
    chain.block(*(chain.tx(k, JobOffer(job_id=1, price=NMT, zone="")) for k in (P1, P2, P3)))
    chain.blocks_until(chain.job(1).window_close_height - 1)
    before = chain.store.head
    assert chain.job(1).state == R.OPEN
    chain.block()
    assert chain.job(1).state == R.RUNNING and chain.provider(P1).active_jobs == 1
    chain.store.rewind_head()
    assert chain.store.head.hash == before.hash
    assert chain.job(1).state == R.OPEN and chain.provider(P1).active_jobs == 0
    chain.block()
    assert chain.job(1).state == R.RUNNING


def test_views_and_duties(chain):
    chain.block(chain.tx(SUB, submit_body()))
    d = views.provider_duties(chain.state(), P1.address)
    assert d["offerable"] == [1] and d["assigned"] == [] and d["verify"] == []
    chain.block(*(chain.tx(k, JobOffer(job_id=1, price=NMT, zone="")) for k in (P1, P2, P3)))
    assert views.provider_duties(chain.state(), P1.address)["offerable"] == []     # already offered
    assert views.provider_duties(chain.state(), P4.address)["offerable"] == [1]
    chain.blocks_until(chain.job(1).window_close_height)
    d = views.provider_duties(chain.state(), P2.address)
    assert [a["job_id"] for a in d["assigned"]] == [1] and len(d["assigned"][0]["peers"]) == 3
    v = views.job_view(chain.state(), 1)
    assert v["state"] == "running" and v["budget"] == str(100 * NMT) and v["threshold"] == 0.95
    assert [o["provider"] for o in v["offers"]] == sorted(address_to_text(k.address) for k in (P1, P2, P3))
    assert views.list_jobs(chain.state(), submitter=SUB.address)[0]["id"] == 1
    assert views.list_jobs(chain.state(), states=("done",)) == []
    p = views.provider_view(chain.state(), VER.address)
    assert p["reputation"] == 5_000 and p["price"] == str(NMT) and p["control_task"] is None
    assert views.provider_view(chain.state(), SUB.address) is None
    blk = next(chain.store.get_block(h) for h in range(1, chain.store.height + 1)
               if any(t.body.kind == "job_submit" for t in chain.store.get_block(h).txs))
    assert views.job_id_of_tx(chain.state(), blk.txs[0].hash) == 1
