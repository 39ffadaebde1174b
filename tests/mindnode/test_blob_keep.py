"""Which blobs a node's jobs still need, read from a real LevelDB chain (mindnode/node/blob_keep.py),
and a collection over a real store at each stage of a job's life: the dataset, result weights,
checkpoints, evidence bundle and what the bundle names stay while the job runs, is verified and
for the retention after settlement; once the chain prunes the job they may go. A node that takes
no part in the job keeps none of it; the node's own blobs stay while it has an unfinished job."""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import sys
from pathlib import Path

import trio

from ledger.jobs import records as R
from ledger.txkinds.job_offer import JobOffer
from ledger.txkinds.job_result import JobResult
from ledger.txkinds.job_verify import JobVerify
from mindnode.jobs import evidence, examples
from mindnode.node.blob_keep import BlobKeeper, job_needs
from p2p import blob_gc
from p2p.blob import BlobStore

# the jobs tests' small chain (tests/ledger/jobs/jobs_fixtures.py: real LevelDB store, five providers)
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ledger" / "jobs"))
jf = importlib.import_module("jobs_fixtures")
NMT, OTHER, P1, P2, P3, P4, PROVIDERS, SUB = jf.NMT, jf.OTHER, jf.P1, jf.P2, jf.P3, jf.P4, jf.PROVIDERS, jf.SUB
PARAMS, make_genesis, registered_chain, submit_body = jf.PARAMS, jf.make_genesis, jf.registered_chain, jf.submit_body

RETAIN = 5
GENESIS = make_genesis(dataclasses.replace(PARAMS, jobs=dataclasses.replace(
    PARAMS.jobs, job_retention_blocks=RETAIN, max_prunes_per_block=1)))
KEY_OF = {k.address: k for k in PROVIDERS}


def _spec(dataset_cid: str) -> bytes:
    d = json.loads(examples.text("digits-mlp"))
    d["dataset"] = {"artifact": dataset_cid, "format": "tensors"}
    return json.dumps(d, sort_keys=True).encode()


class _Exchange:
    """The two things `BlobKeeper` asks of a `p2p.blob.BlobExchange` (no libp2p host needed here)."""

    def __init__(self, store: BlobStore):
        self.store = store

    def fetching(self) -> set[str]:
        return set()


def _left(store: BlobStore) -> set[str]:
    return {c for c, _, _ in store.entries()}


async def test_job_blobs_stay_until_the_job_is_pruned(tmp_path):
    chain = registered_chain(tmp_path / "chain", GENESIS)
    store = BlobStore(tmp_path / "blobs")
    put = {name: store.put(name.encode() * 512) for name in
           ("dataset", "weights", "ckpt", "worker_ckpt", "sketch", "unrelated", "own_scratch")}
    store.mark_own(put["own_scratch"])                   # an intermediate checkpoint this node made
    ev = evidence.build(1, worker_checkpoints=[evidence.WorkerCheckpoints(provider=P1.address,
                                                                          checkpoints=(put["worker_ckpt"],))],
                        sketch_logs=[evidence.SketchLogRef(provider=P1.address, rank=0, log=put["sketch"])])
    put["evidence"] = store.put(ev)
    everything = set(put.values())
    keepers = {k: BlobKeeper(_Exchange(store), chain.state, k.address, max_bytes=0, recent_s=0)
               for k in (P1, SUB, OTHER)}

    def needed(key) -> set[str]:
        return keepers[key].keep()

    async def collect_for(key) -> set[str]:
        """What a collection by `key`'s node would leave (the store is restored afterwards)."""
        keep = needed(key)
        gone = everything - _left(store)
        assert not gone, gone
        r = blob_gc.collect(store, 0, keep=keep, recent_s=0)
        left = _left(store)
        for c, _ in r.freed:                         # put them back for the next stage
            store.put({v: k for k, v in put.items()}[c].encode() * 512 if c != put["evidence"] else ev)
            os.utime(store.path(c), (1, 1))
        store.mark_own(put["own_scratch"])              # (an eviction drops the mark with the blob)
        store._touched.clear()
        return left

    for c in everything:
        os.utime(store.path(c), (1, 1))
    try:
        chain.block(chain.tx(SUB, submit_body(spec=_spec(put["dataset"]))))
        jid = 1
        assert chain.job(jid).state == R.OPEN
        # open: the submitter keeps its dataset; a provider only once it offered; nobody else
        assert needed(SUB) == {put["dataset"]} and needed(P1) == set() and needed(OTHER) == set()
        chain.block(*(chain.tx(k, JobOffer(job_id=jid, price=p * NMT, zone="lab"))
                      for k, p in ((P1, 1), (P2, 2), (P3, 3), (P4, 5))))
        assert needed(P1) == {put["dataset"]}
        chain.blocks_until(chain.job(jid).window_close_height)
        assert chain.job(jid).state == R.RUNNING and chain.job(jid).worker(P1.address) is not None
        # running: the worker also keeps what it produced itself (ids not on chain yet)
        assert needed(P1) == {put["dataset"], put["own_scratch"]}
        assert await collect_for(P1) == {put["dataset"], put["own_scratch"]}
        chain.block(chain.tx(P1, JobResult(job_id=jid, result_cid=put["weights"],
                                           metrics=(R.Metric(name="accuracy", value_ppm=990_000),),
                                           work=(R.Work(provider=P1.address, samples=1000),
                                                 R.Work(provider=P2.address, samples=1000)),
                                           checkpoints=(put["ckpt"],), evidence=put["evidence"])))
        job_files = {put[n] for n in ("dataset", "weights", "ckpt", "evidence", "worker_ckpt", "sketch")}
        assert chain.job(jid).state == R.VERIFYING
        assert needed(P1) == job_files | {put["own_scratch"]}
        assert needed(SUB) == job_files and needed(OTHER) == set()
        chain.blocks_until(chain.job(jid).challenge_height)
        job = chain.job(jid)
        verifier = KEY_OF[job.verifier]
        chain.block(chain.tx(verifier, JobVerify(job_id=jid, replay_from=job.replay_from, replay_steps=5,
                                                 bad_workers=(), metric_ppm=990_000)))
        assert chain.job(jid).state == R.DONE
        # settled: no unfinished job, so the scratch checkpoint may go; the job's files stay (grace)
        assert needed(P1) == job_files
        assert await collect_for(P1) == job_files
        assert await collect_for(OTHER) == set()
        settled = chain.job(jid).settled_height
        chain.blocks_until(settled + RETAIN)
        assert chain.job(jid) is not None and needed(SUB) == job_files     # the last block of the grace
        chain.block()
        assert chain.job(jid) is None                     # pruned: nothing is needed any more
        assert needed(P1) == set() and needed(SUB) == set()
        assert await collect_for(SUB) == set()
        # the listing says which job needs what (here: none) and the budget
        listing = keepers[P1].listing()
        assert listing["budget"] == 0 and {b["cid"] for b in listing["blobs"]} == everything
        assert all(b["job"] is None and b["pinned"] is False for b in listing["blobs"])
        assert next(b for b in listing["blobs"] if b["cid"] == put["own_scratch"])["own"] is True
    finally:
        chain.close()


async def test_job_needs_ignores_specs_it_cannot_read(tmp_path):
    chain = registered_chain(tmp_path / "chain", GENESIS)
    try:
        chain.block(chain.tx(SUB, submit_body()))        # an opaque spec the ledger accepts
        assert job_needs(chain.state(), SUB.address) == ({}, False)
    finally:
        chain.close()


async def test_the_keeper_loop_collects_periodically(tmp_path, autojump_clock):
    chain = registered_chain(tmp_path / "chain", GENESIS)
    store = BlobStore(tmp_path / "blobs")
    try:
        cids = [store.put(os.urandom(1000)) for _ in range(3)]
        for i, c in enumerate(cids):
            os.utime(store.path(c), (1 + i, 1 + i))
        keeper = BlobKeeper(_Exchange(store), chain.state, OTHER.address, max_bytes=2100, recent_s=0, every_s=60)
        async with trio.open_nursery() as n:
            n.start_soon(keeper.run)
            await trio.sleep(59)
            assert keeper.last is None and len(_left(store)) == 3
            await trio.sleep(2)
            for _ in range(100):                          # the collection runs in a worker thread
                if keeper.last is not None:
                    break
                await trio.sleep(0.01)
            n.cancel_scope.cancel()
        assert keeper.last is not None and [c for c, _ in keeper.last.freed] == cids[:1]
        assert _left(store) == set(cids[1:]) and blob_gc.usage(store) <= 2100
    finally:
        chain.close()
