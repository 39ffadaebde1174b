"""The node service in-process: a real one-validator chain (LevelDB, libp2p host, hypercorn on trio),
driven through its HTTP API -- submit, mempool rules, lookups, bounds and errors."""

from __future__ import annotations

import dataclasses
import json
import socket

import httpx
import pytest
import trio

from ledger.genesis_file import parse_genesis_bytes, read_genesis_bytes
from ledger.keys import address_to_text, devnet_key
from ledger.registry import body_class
from ledger.tx import sign_tx
from mindnode.node.chain import Chain
from mindnode.node.service import NodeOptions, NodeService

pytestmark = [pytest.mark.timeout(60)]


def _port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def one_validator_genesis(block_time_ms: int = 300, age_s: int = 0):
    doc = json.loads(read_genesis_bytes("devnet"))
    doc["validators"] = doc["validators"][:1]
    doc.pop("total_supply", None)
    doc["bootnodes"] = []
    doc["params"]["block_time_ms"] = block_time_ms
    import time

    doc["timestamp"] = int(time.time()) - age_s
    return parse_genesis_bytes(json.dumps(doc).encode())


@pytest.fixture
async def node(tmp_path, nursery):
    genesis = one_validator_genesis()
    chain = Chain.open(str(tmp_path / "chain"), genesis)
    opts = NodeOptions(datadir=str(tmp_path), validator=True, listen=["/ip4/127.0.0.1/tcp/0"], bootnodes=[],
                       rpc_host="127.0.0.1", rpc_port=_port())
    svc = NodeService(chain, devnet_key(0), opts)
    await nursery.start(svc.run)
    yield svc
    nursery.cancel_scope.cancel()


def transfer(sender: int, to: int, amount: int, nonce: int, fee: int = 0, chain_id: str = "mindnode-devnet-1"):
    body = body_class("transfer")(to=devnet_key(to).address, amount=amount)
    return sign_tx(devnet_key(sender), chain_id, nonce, fee, body)


async def wait_included(c: httpx.AsyncClient, tx_hash: str) -> dict:
    with trio.fail_after(15):
        while True:
            r = await c.get(f"/txs/{tx_hash}")
            if r.status_code == 200 and r.json()["status"] == "included":
                return r.json()
            await trio.sleep(0.05)


async def test_submit_lookup_and_views(node):
    async with httpx.AsyncClient(base_url=node.rpc_url) as c:
        st = (await c.get("/status")).json()
        assert st["chain_id"] == "mindnode-devnet-1" and st["validator"] is True
        assert st["listen_addrs"][0].endswith("/p2p/" + st["peer_id"])
        tx = transfer(3, 4, 10**18, nonce=0)
        r = await c.post("/txs", content=tx.encode(), headers={"content-type": "application/msgpack"})
        assert r.status_code == 200, r.text
        info = await wait_included(c, tx.hash.hex())
        block = (await c.get(f"/blocks/{info['block_hash']}")).json()
        assert [t["hash"] for t in block["txs"]] == [tx.hash.hex()]
        assert (await c.get(f"/blocks/{info['height']}")).json()["hash"] == info["block_hash"]
        acct = (await c.get(f"/accounts/{address_to_text(devnet_key(3).address)}")).json()
        assert acct["nonce"] == 1
        # hex text and JSON bodies are accepted too
        tx2 = transfer(3, 4, 1, nonce=1)
        r = await c.post("/txs", content=tx2.encode().hex(), headers={"content-type": "text/plain"})
        assert r.status_code == 200, r.text
        tx3 = transfer(3, 4, 1, nonce=2)
        r = await c.post("/txs", json={"tx": "0x" + tx3.encode().hex()})
        assert r.status_code == 200, r.text
        await wait_included(c, tx3.hash.hex())
        vals = (await c.get("/validators")).json()
        assert vals["active"] == [address_to_text(devnet_key(0).address)]
        # a lone validator seals every slot: nobody missed one, nothing withheld
        assert vals["missed_slots"] == {} and vals["withheld"] == [] and vals["missed_blocks_jail"] >= 1
        metrics = (await c.get("/metrics")).text
        assert "mindnode_chain_height" in metrics and "mindnode_block_import_seconds_bucket" in metrics
        assert (await c.get("/openapi.json")).json()["info"]["title"] == "mindnode"
        assert (await c.post("/debug/deny")).status_code in (404, 405)  # test routes are off


async def test_mempool_rules_through_the_api(node):
    async with httpx.AsyncClient(base_url=node.rpc_url) as c:
        # a replay of an included transaction
        tx = transfer(5, 4, 10**18, nonce=0)
        await c.post("/txs", content=tx.encode(), headers={"content-type": "application/msgpack"})
        await wait_included(c, tx.hash.hex())
        r = await c.post("/txs", content=tx.encode(), headers={"content-type": "application/msgpack"})
        assert r.status_code == 422 and "already used" in r.json()["message"]
        # a gap keeps a tx pending: replacement needs a strictly higher fee
        low = transfer(5, 4, 1, nonce=2, fee=10)
        assert (await c.post("/txs", content=low.encode().hex())).status_code == 200
        same = transfer(5, 4, 2, nonce=2, fee=10)
        r = await c.post("/txs", content=same.encode().hex())
        assert r.status_code == 422 and "higher fee" in r.json()["message"]
        high = transfer(5, 4, 2, nonce=2, fee=11)
        assert (await c.post("/txs", content=high.encode().hex())).status_code == 200
        assert (await c.get(f"/txs/{low.hash.hex()}")).status_code == 404
        assert (await c.get(f"/txs/{high.hash.hex()}")).json()["status"] == "pending"
        # wrong chain, bad signature, unaffordable, malformed, oversized
        wrong_chain = transfer(6, 4, 1, nonce=0, chain_id="other-chain")
        r = await c.post("/txs", content=wrong_chain.encode().hex())
        assert r.status_code == 422 and "chain" in r.json()["message"]
        raw = bytearray(transfer(6, 4, 1, nonce=0).encode())
        raw[-5] ^= 0xFF  # inside the signature (the last field)
        r = await c.post("/txs", content=bytes(raw), headers={"content-type": "application/msgpack"})
        assert r.status_code == 422 and "signature" in r.json()["message"]
        rich = transfer(6, 4, 10**30, nonce=0)
        r = await c.post("/txs", content=rich.encode().hex())
        assert r.status_code == 422 and "balance" in r.json()["message"]
        r = await c.post("/txs", content=b"\x92\x01", headers={"content-type": "application/msgpack"})
        assert r.status_code == 422
        r = await c.post("/txs", content=b"nothex")
        assert r.status_code == 400
        r = await c.post("/txs", content=b"00" * 200_000)
        assert r.status_code == 413
        assert (await c.get("/blocks/999999")).status_code == 404
        assert (await c.get("/blocks/" + "9" * 40)).status_code == 404
        assert (await c.get("/blocks/zz")).status_code == 400
        assert (await c.get("/accounts/mn00")).status_code == 400
        assert (await c.get("/txs/" + "00" * 32)).status_code == 404


def _seal_and_vote(chain: Chain, key, t_ms: int):
    plan = chain.seal_plan(key.address)
    block = chain.seal(key, [], max(plan.not_before_ms, t_ms), plan.difficulty)
    chain.make_vote(key)
    return block


def test_chain_restart_recovers_snapshot_finality_and_guards(tmp_path):
    genesis = one_validator_genesis(age_s=60)
    key = devnet_key(0)
    chain = Chain.open(str(tmp_path / "chain"), genesis)
    t = genesis.timestamp * 1000
    for i in range(3):
        _seal_and_vote(chain, key, t + 1000 * (i + 1))
    assert chain.finalized_height == 1  # block 3 attests 2 with source 1: one validator is a quorum
    # a crash between the block's atomic write and its snapshot: import behind the chain's back
    plan = chain.seal_plan(key.address)
    from ledger.store import build_block

    b4 = build_block(chain.store, key, [], plan.not_before_ms, plan.difficulty)
    chain.store.import_block(b4)
    chain.close()
    chain = Chain.open(str(tmp_path / "chain"), genesis)
    assert chain.head.height == 4 and chain.snapshot().height == 4  # recomputed from block 3's
    assert chain.finalized_height == 1 and [x.height for x in chain.seal_guard().slots] == [1, 2, 3]
    assert chain.seal_plan(key.address) is not None  # block 4 came from outside the guard's view
    assert chain.make_vote(key) is not None  # voting resumes above the persisted guard
    assert chain.make_vote(key) is None      # ...and never twice for one target
    chain.close()
    # a re-initialised chain (new genesis) starts with a clean consensus database
    import shutil

    shutil.rmtree(tmp_path / "chain")
    other = one_validator_genesis(age_s=50)
    chain = Chain.open(str(tmp_path / "chain"), other)
    assert chain.head.height == 0 and chain.seal_guard().slots == () and chain.finalized_height == 0
    chain.seal(key, [], chain.seal_plan(key.address).not_before_ms, 2)
    assert chain.make_vote(key) is not None  # the old chain's guard (target 4) is gone
    chain.close()


async def test_gossip_validators_and_sync_server_refuse_bad_input(node):
    from ledger.block import Block
    from mindnode.node import sync
    from mindnode.node.network import ACCEPT, IGNORE, REJECT

    with trio.fail_after(10):
        while node.chain.head.height < 1:
            await trio.sleep(0.05)
    good = node.chain.block_by_height(1)
    assert node._validate_block_gossip(good.encode(), "peer") == ACCEPT
    # a block sealed by a key that is not a validator, and plain garbage
    forged = Block(header=dataclasses.replace(good.header, proposer=devnet_key(5).address, seal=b"")
                   .sealed(devnet_key(5)), txs=good.txs)
    assert node._validate_block_gossip(forged.encode(), "peer") == REJECT
    assert node._validate_block_gossip(b"\x00garbage", "peer") == REJECT
    # transactions: garbage and bad signatures are REJECTed, duplicates IGNOREd
    tx = transfer(4, 3, 1, nonce=0)
    assert node._validate_tx_gossip(tx.encode(), "peer") == ACCEPT
    assert node._validate_tx_gossip(tx.encode(), "peer") == IGNORE
    assert node._validate_tx_gossip(b"\x81\xa1x\x01", "peer") == REJECT
    raw = bytearray(transfer(4, 3, 2, nonce=1).encode())
    raw[-3] ^= 1
    assert node._validate_tx_gossip(bytes(raw), "peer") == REJECT
    assert node._validate_vote_gossip(b"\x01\x02", "peer") == REJECT
    # the sync server answers within bounds and refuses malformed requests
    ans = sync.decode_blocks(await node._serve_sync(sync.encode_request("blocks", **{"from": 0, "count": 1000}),
                                                    "peer"))
    assert 1 <= len(ans) <= sync.MAX_BLOCKS_PER_REQUEST
    for bad in (b"\xc1", sync.encode_request("nope"), sync.encode_request("blocks", **{"from": -1, "count": 1}),
                sync.encode_request("blocks", **{"from": "x", "count": 1})):
        with pytest.raises(sync.SyncProtocolError):
            await node._serve_sync(bad, "peer")
    with pytest.raises(sync.SyncProtocolError):
        sync.decode_blocks(sync.pack_plain({"blocks": ["not bytes"]}))


async def test_follower_syncs_and_gets_pending_txs_by_regossip(tmp_path, nursery):
    """Two in-process nodes over real libp2p: a late follower range-syncs the validator's chain,
    then follows gossip, and receives a transaction that was pending before it joined."""
    genesis = one_validator_genesis()
    a_chain = Chain.open(str(tmp_path / "a" / "chain"), genesis)
    a = NodeService(a_chain, devnet_key(0), NodeOptions(
        datadir=str(tmp_path / "a"), validator=True, listen=["/ip4/127.0.0.1/tcp/0"], bootnodes=[],
        rpc_port=_port(), regossip_s=0.3))
    await nursery.start(a.run)
    pending = transfer(3, 4, 1, nonce=1)  # nonce gap: stays pending on A
    await a.submit_tx(pending.encode())
    with trio.fail_after(20):
        while a.chain.head.height < 5:
            await trio.sleep(0.05)
    b_chain = Chain.open(str(tmp_path / "b" / "chain"), genesis)
    b = NodeService(b_chain, devnet_key(6), NodeOptions(
        datadir=str(tmp_path / "b"), validator=False, listen=["/ip4/127.0.0.1/tcp/0"],
        bootnodes=[a.net.listen_addrs()[0]], rpc_port=_port()))
    await nursery.start(b.run)
    with trio.fail_after(30):
        while b.chain.head.height < a.chain.head.height or pending.hash not in b.mempool:
            await trio.sleep(0.05)
    h = a.chain.head.height
    with trio.fail_after(20):  # and keeps following by gossip
        while b.chain.head.height < h + 2:
            await trio.sleep(0.05)
    assert b.chain.hash_at(h) == a.chain.hash_at(h)
    assert b.status()["validator"] is False and b.status()["peers"] == 1
    nursery.cancel_scope.cancel()
