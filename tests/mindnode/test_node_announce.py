"""Job announcements on the ``job`` topic (mindnode/node/job_announce.py) in-process, over real
libp2p gossip between two nodes: the validator's verdicts on every kind of bad input (REJECT,
which costs the sender score) and on progress messages sharing the topic; an accepted
announcement makes a providing node prefetch the job's dataset blob before the job is on chain;
a node with announcements off sends none and prefetches nothing."""

from __future__ import annotations

import dataclasses
import json
import time

import msgpack
import pytest
import trio
from test_node_service import _port, one_validator_genesis, transfer

from ledger.jobs import records as R
from ledger.keys import devnet_key, peer_id_from_address
from ledger.tx import sign_tx
from mindnode.jobs import examples
from mindnode.jobs import spec as job_spec
from mindnode.node.chain import Chain
from mindnode.node.job_announce import MAX_TRACKED, encode_announcement
from mindnode.node.network import ACCEPT, IGNORE, REJECT
from mindnode.node.service import NodeOptions, NodeService

pytestmark = [pytest.mark.timeout(120)]
CHAIN = "mindnode-devnet-1"


def spec_doc(dataset_cid: str | None = None) -> dict:
    doc = json.loads(examples.text("digits-mlp"))
    if dataset_cid:
        doc["dataset"] = {"artifact": dataset_cid, "format": "tensors"}
    return doc


def submit_tx(doc: dict, key=None, chain_id: str = CHAIN, nonce: int = 0):
    spec = job_spec.parse(json.dumps(doc).encode(), "test spec")
    return sign_tx(key or devnet_key(3), chain_id, nonce, 0, spec.submit_body(int(time.time() * 1000)))


def flip_signature(raw: bytes, sig: bytes) -> bytes:
    i = raw.index(sig) + 5
    return raw[:i] + bytes([raw[i] ^ 1]) + raw[i + 1:]


async def start(tmp_path, nursery, name: str, key, **opts) -> NodeService:
    base = NodeOptions(datadir=str(tmp_path / name), validator=False, listen=["/ip4/127.0.0.1/tcp/0"],
                       bootnodes=[], rpc_host="127.0.0.1", rpc_port=_port(), provide=False)
    svc = NodeService(Chain.open(str(tmp_path / name / "chain"), one_validator_genesis()), key,
                      dataclasses.replace(base, **opts))
    await nursery.start(svc.run)
    return svc


async def test_validator_verdicts(tmp_path, nursery):
    svc = await start(tmp_path, nursery, "a", devnet_key(0), validator=True)
    v = svc.jobs.validate_job_gossip
    peer = peer_id_from_address(devnet_key(1).address)
    tx = submit_tx(spec_doc())
    good = encode_announcement(tx.encode())
    assert v(good, peer) == ACCEPT and tx.hash in svc.jobs.announcer.seen
    assert v(good, peer) == IGNORE                                        # a repeat
    ann = lambda raw: msgpack.packb({"t": "announce", "tx": raw})          # noqa: E731
    assert v(ann(flip_signature(tx.encode(), tx.signature)), peer) == REJECT
    assert v(ann(submit_tx(spec_doc(), chain_id="other-chain").encode()), peer) == REJECT
    assert v(ann(transfer(3, 4, 1, nonce=0).encode()), peer) == REJECT    # signed, but not a job_submit
    assert v(ann(b"\x93garbage"), peer) == REJECT
    assert v(ann(tx.encode()[:-3]), peer) == REJECT                       # truncated
    assert v(msgpack.packb({"t": "announce", "tx": tx.encode().hex()}), peer) == REJECT
    assert v(msgpack.packb({"t": "announce", "tx": tx.encode(), "x": 1}), peer) == REJECT
    assert v(msgpack.packb({"t": "announce", "tx": b"\0" * (70 * 1024)}), peer) == REJECT   # oversized
    assert v(msgpack.packb({"t": "other", "job": 1}), peer) == REJECT
    assert v(msgpack.packb([1, 2]), peer) == REJECT
    assert v(b"\xc1", peer) == REJECT
    # a valid, signed submit whose spec no provider would train: not forwarded, not the sender's fault
    bad_spec = sign_tx(devnet_key(3), CHAIN, 1, 0, dataclasses.replace(tx.body, spec=b'{"not": "a spec"}'))
    assert v(ann(bad_spec.encode()), peer) == IGNORE
    # progress shares the topic: tagged and untagged messages still reach its validator
    prog = {"job": 7, "step": 3, "total_steps": 400, "loss": 0.5, "samples_per_s": 1.0, "peers": 2, "t_ms": 1}
    assert v(msgpack.packb({"t": "progress", **prog}), peer) == IGNORE   # job 7 does not exist
    assert v(msgpack.packb(prog), peer) == IGNORE
    assert v(msgpack.packb({"t": "progress", **prog, "step": -1}), peer) == REJECT
    # memory is bounded
    for i in range(MAX_TRACKED + 5):
        assert v(encode_announcement(submit_tx(spec_doc(), nonce=10 + i).encode()), peer) == ACCEPT
    assert len(svc.jobs.announcer.seen) == MAX_TRACKED


@pytest.mark.slow
async def test_announcement_prefetches_and_bad_gossip_costs_score(tmp_path, nursery):
    """B (a follower whose API takes the submit, announcements on) and A (the validator, a
    provider); the dataset blob is on B only. A prefetches it from the announcement alone."""
    a = await start(tmp_path, nursery, "a", devnet_key(0), validator=True, provide=True)
    b = await start(tmp_path, nursery, "b", devnet_key(6), bootnodes=[a.net.listen_addrs()[0]])
    with trio.fail_after(60):
        while a.jobs.agent is None or not b.net.connected_peers():
            await trio.sleep(0.05)
        while R.get_provider(a.jobs.state(), a.jobs.address) is None:
            await trio.sleep(0.1)
        # B must know A is on the job topic (else the announcement goes nowhere: under load the
        # subscription exchange can take longer than a fixed pause)
        while a.net.peer_id not in b.net.node.gossip.topic_peers(b.net.topic("job")):
            await trio.sleep(0.05)
        await trio.sleep(1.5)                          # let gossipsub graft the job topic mesh
    blob = b"pretend dataset " * 70_000                 # ~1.1 MB: two chunks
    cid = b.jobs.put(blob)
    assert not a.jobs.blobs.store.has(cid)
    doc = spec_doc(cid)
    # B does not provide: it announces but does not prefetch for itself
    tx = submit_tx(doc, key=devnet_key(3), nonce=0)
    await b.submit_tx(tx.encode())
    with trio.fail_after(30):
        while not a.jobs.blobs.store.has(cid):
            await trio.sleep(0.05)
    assert a.jobs.announcer.prefetched.get(tx.hash) == [cid] or tx.hash in a.jobs.announcer.prefetching
    assert a.jobs.blobs.store.get(cid) == blob and b.jobs.announcer.prefetching == {}

    # garbage on the job topic from B: A rejects it and B's score on A falls
    b_on_a = b.net.peer_id
    before = a.net.node.score(b_on_a)
    await b.net.node.publish(b.net.topic("job"), msgpack.packb({"t": "announce", "tx": b"junk"}))
    with trio.fail_after(20):
        while a.net.node.score(b_on_a) >= before:
            await trio.sleep(0.05)


async def test_announcements_off(tmp_path, nursery, monkeypatch):
    monkeypatch.setenv("MINDNODE_JOB_ANNOUNCE", "0")
    a = await start(tmp_path, nursery, "a", devnet_key(0), validator=True)
    sent: list[str] = []
    orig = a.net.publish

    async def spy(kind: str, data: bytes) -> None:
        sent.append(kind)
        await orig(kind, data)

    a.net.publish = spy
    await a.submit_tx(submit_tx(spec_doc()).encode())
    assert sent == ["tx"] and not a.jobs.announcer.enabled


async def test_prefetch_is_cancelled_once_the_job_does_not_need_this_node(tmp_path, nursery):
    """`prune` (run on every new head) keeps a prefetch while its job waits for inclusion or is
    open, and cancels it once the job is on chain and over (here: cancelled by its submitter)."""
    from ledger.jobs.views import job_id_of_tx
    from ledger.txkinds.job_cancel import JobCancel

    a = await start(tmp_path, nursery, "a", devnet_key(0), validator=True)
    ann = a.jobs.announcer
    tx = submit_tx(spec_doc(), key=devnet_key(3), nonce=0)
    scope = trio.CancelScope()
    ann.prefetching[tx.hash] = scope          # stands for a prefetch in flight
    ann.prune()
    assert not scope.cancel_called             # not on chain yet
    await a.submit_tx(tx.encode())
    with trio.fail_after(20):
        while (job_id := job_id_of_tx(a.jobs.state(), tx.hash)) is None:
            await trio.sleep(0.05)
    ann.prune()
    assert not scope.cancel_called             # open: this node may still be assigned
    await a.submit_tx(sign_tx(devnet_key(3), CHAIN, 1, 0, JobCancel(job_id=job_id)).encode())
    with trio.fail_after(20):
        while R.get_job(a.jobs.state(), job_id).state != R.CANCELLED:
            await trio.sleep(0.05)
    await trio.sleep(0.5)                      # the announcer's own head loop prunes too
    assert scope.cancel_called
    assert ann.cancel(b"\0" * 32) is False


async def test_head_waiter_does_not_miss_a_head_that_came_while_busy(tmp_path, nursery):
    """The agent polls, then waits for the next head: a head sealed during its poll must wake it at
    once (else its offer on a just-opened job waits a block longer)."""
    a = await start(tmp_path, nursery, "a", devnet_key(0), validator=True)
    new_head = a.jobs._head_waiter()
    start_height = a.chain.head.height
    with trio.fail_after(20):
        while a.chain.head.height < start_height + 2:      # "busy polling" while heads arrive
            await trio.sleep(0.05)
    h = a.chain.head.height
    await new_head()                                     # returns without waiting for another head
    assert a.chain.head.height == h
    await new_head()                                     # now it waits for the next one
    assert a.chain.head.height > h
