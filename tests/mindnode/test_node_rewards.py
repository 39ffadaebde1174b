"""The node as a provider: heartbeat gossip verdicts, the heartbeat pool, the proposer's uptime
transaction (relay account, size bound), and a real one-validator node that declares its profile,
records its own uptime and serves ``GET /rewards/{addr}``."""

from __future__ import annotations

import json
import socket
import time

import httpx
import pytest
import trio

from ledger.economics.days import ChainClock
from ledger.economics.uptime import Heartbeat, sign_heartbeat
from ledger.genesis_file import parse_genesis_bytes, read_genesis_bytes
from ledger.keys import PrivateKey, address_to_text, devnet_key
from mindnode.node import provider
from mindnode.node.chain import Chain
from mindnode.node.provider import ACCEPT, IGNORE, REJECT, HeartbeatPool, classify
from mindnode.node.service import NodeOptions, NodeService

pytestmark = [pytest.mark.timeout(60)]

CHAIN = "mindnode-devnet-1"
CLOCK = ChainClock(1_000_000, 240)   # 10 s hours


def _verdict(hb: Heartbeat | bytes, now: int, chain_id: str = CHAIN) -> str:
    data = hb if isinstance(hb, bytes) else hb.encode()
    return classify(data, chain_id=chain_id, clock=CLOCK, now_s=now)[0]


def test_heartbeat_gossip_verdicts():
    key = devnet_key(3)
    now = CLOCK.hour_start(5, 7) + 3                      # day 5, hour 7
    assert _verdict(sign_heartbeat(key, CHAIN, 5, 7), now) == ACCEPT
    assert _verdict(sign_heartbeat(key, CHAIN, 5, 0), now) == ACCEPT          # an earlier hour of today
    # honest timing trouble at a boundary: dropped quietly, the forwarder keeps its score
    assert _verdict(sign_heartbeat(key, CHAIN, 5, 8), now) == IGNORE          # the next hour (clock skew)
    assert _verdict(sign_heartbeat(key, CHAIN, 5, 23), CLOCK.day_start(6) + 2) == IGNORE   # late, day over
    # defects and replays: REJECT
    assert _verdict(sign_heartbeat(key, "other-chain", 5, 7), now) == REJECT
    assert _verdict(sign_heartbeat(key, CHAIN, 3, 7), now) == REJECT          # two days old
    assert _verdict(sign_heartbeat(key, CHAIN, 5, 20), now) == REJECT         # far in the future
    assert _verdict(sign_heartbeat(key, CHAIN, 9, 0), now) == REJECT
    good = sign_heartbeat(key, CHAIN, 5, 7)
    forged = Heartbeat(chain_id=CHAIN, provider=devnet_key(4).address, day=5, hour=7, signature=good.signature)
    assert _verdict(forged, now) == REJECT
    near = sign_heartbeat(key, CHAIN, 5, 8)       # a bad signature is REJECT even when the timing is borderline
    assert _verdict(Heartbeat(**{**near.to_plain(), "signature": good.signature}), now) == REJECT
    assert _verdict(Heartbeat(**{**good.to_plain(), "hour": 24}), now) == REJECT
    assert _verdict(b"\x00garbage", now) == REJECT
    assert _verdict(good.encode() + b"\x00" * 300, now) == REJECT            # over the 256-byte bound


def test_late_heartbeats_on_short_days_do_not_cost_the_forwarder():
    """A 120 s-day devnet: a late joiner was handed heartbeats 147 s old and banned its bootnode."""
    clock, key = ChainClock(1_000_000, 120), devnet_key(3)
    now = clock.hour_start(2, 0) + 2
    old = sign_heartbeat(key, CHAIN, 0, 19)                               # 147 s old, over a day
    assert now - clock.hour_start(0, 19) == 147
    assert classify(old.encode(), chain_id=CHAIN, clock=clock, now_s=now)[0] == IGNORE
    assert classify(old.encode(), chain_id=CHAIN, clock=clock, now_s=now + 300)[0] == REJECT


def test_heartbeat_pool_keeps_one_per_hour_of_the_newest_day():
    keys = [PrivateKey(bytes([i]) * 32) for i in range(4)]
    pool = HeartbeatPool(max_providers=3)
    assert pool.add(sign_heartbeat(keys[0], CHAIN, 2, 1))
    assert not pool.add(sign_heartbeat(keys[0], CHAIN, 2, 1))            # duplicate
    assert pool.add(sign_heartbeat(keys[0], CHAIN, 2, 2))
    assert pool.add(sign_heartbeat(keys[1], CHAIN, 2, 2)) and pool.add(sign_heartbeat(keys[2], CHAIN, 2, 0))
    assert not pool.add(sign_heartbeat(keys[3], CHAIN, 2, 0))            # full of other providers
    assert len(pool) == 4 and pool.hours_of(keys[0].address) == [1, 2]
    assert not pool.add(sign_heartbeat(keys[0], CHAIN, 1, 5))            # an older day
    assert pool.heartbeats(1) == [] and len(pool.heartbeats(2)) == 4
    assert pool.add(sign_heartbeat(keys[3], CHAIN, 3, 0))                # a new day starts a new pool
    assert len(pool) == 1 and pool.heartbeats(2) == []


def test_relay_key_is_derived_and_stable():
    k = devnet_key(0)
    assert provider.relay_key(k).address == provider.relay_key(devnet_key(0)).address != k.address
    assert provider.detect_hardware_class() in ("cpu", "gpu-consumer")


def _genesis(**params):
    doc = json.loads(read_genesis_bytes("devnet"))
    doc["validators"] = doc["validators"][:1]
    doc.pop("total_supply", None)
    doc["bootnodes"] = []
    now = int(time.time())
    doc["timestamp"] = doc["allocation_start"] = now - 1
    doc["params"].update(params)
    return parse_genesis_bytes(json.dumps(doc).encode())


def test_uptime_tx_is_relayed_zero_fee_and_fits_the_size_bound(tmp_path):
    genesis = _genesis(block_time_ms=300, max_tx_bytes=2048)
    chain = Chain.open(str(tmp_path / "chain"), genesis)
    try:
        relay = provider.relay_key(devnet_key(0))
        t_ms = chain.head.timestamp_ms + 300
        day, hour = chain.clock.hour_of(t_ms // 1000)
        keys = [PrivateKey(bytes([i + 1]) * 32) for i in range(40)]
        hbs = [sign_heartbeat(k, CHAIN, day, hour) for k in keys]
        tx = chain.uptime_tx(relay, hbs, t_ms)
        assert tx.sender == relay.address and tx.fee == 0 and tx.nonce == 0
        assert len(tx.encode()) <= 2048 and 0 < len(tx.body.entries) < 40
        block = chain.seal(devnet_key(0), [tx], t_ms, 2)
        assert [t.kind for t in block.txs] == ["uptime"]
        recorded = [e.provider for e in tx.body.entries]
        assert chain.rewards_json(recorded[0])["hours_today"] == 1
        assert chain.account_nonce(relay.address) == 1
        # recorded hours are not offered again; nothing new -> no transaction
        again = chain.uptime_tx(relay, [h for h in hbs if h.provider in recorded], t_ms + 300)
        assert again is None
        # an uptime body renders as JSON (nested signatures as hex)
        js = chain.block_json(block)["txs"][0]["body"]["entries"][0]
        assert js["provider"] == address_to_text(recorded[0]) and len(js["signatures"][0]) == 128
    finally:
        chain.close()


def _port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as s:
        return s.getsockname()[1]


async def test_provider_node_declares_profile_records_uptime_and_serves_rewards(tmp_path, nursery):
    genesis = _genesis(block_time_ms=300, day_s=24)         # 1 s chain hours
    chain = Chain.open(str(tmp_path / "chain"), genesis)
    opts = NodeOptions(datadir=str(tmp_path), validator=True, listen=["/ip4/127.0.0.1/tcp/0"], bootnodes=[],
                       rpc_host="127.0.0.1", rpc_port=_port(), provide=True, hardware_class="gpu-high",
                       bandwidth_kbps=85_000)
    node = NodeService(chain, devnet_key(0), opts)
    await nursery.start(node.run)
    me = address_to_text(devnet_key(0).address)
    try:
        async with httpx.AsyncClient(base_url=node.rpc_url) as c:
            with trio.fail_after(30):
                while True:
                    r = (await c.get(f"/rewards/{me}")).json()
                    if r["profile"] and r["hours_today"] >= 2:
                        break
                    await trio.sleep(0.1)
            assert r["profile"] == {"hardware_class": "gpu-high", "bandwidth_kbps": 85_000}
            assert r["address"] == me and r["mining"] == "0" and r["withdrawable"].isdigit()
            assert (await c.get("/rewards/not-an-address")).status_code == 400
            # every block renders, uptime transactions included
            for h in range(1, node.chain.head.height + 1):
                assert (await c.get(f"/blocks/{h}")).status_code == 200
        # gossip: this provider's heartbeat is kept once; an unregistered provider's is ignored
        day, hour = node.chain.clock.hour_of(int(time.time()))
        stranger = sign_heartbeat(devnet_key(7), CHAIN, day, hour)
        assert node._validate_heartbeat_gossip(stranger.encode(), "peer") == IGNORE
        assert node._validate_heartbeat_gossip(b"\x01", "peer") == REJECT
        own = sign_heartbeat(devnet_key(0), CHAIN, day, hour)
        assert node._validate_heartbeat_gossip(own.encode(), "peer") in (ACCEPT, IGNORE)
        assert node._validate_heartbeat_gossip(own.encode(), "peer") == IGNORE
    finally:
        nursery.cancel_scope.cancel()


async def test_a_benchmarked_jobs_provider_keeps_its_measured_profile(tmp_path, nursery):
    """`mindnode provider register` wrote the class from the benchmark: a start-up guess (or an
    explicit --hardware-class) must not overwrite it, while heartbeats still flow."""
    from ledger.registry import body_class
    from ledger.tx import sign_tx

    genesis = _genesis(block_time_ms=300, day_s=24)
    chain = Chain.open(str(tmp_path / "chain"), genesis)
    key = devnet_key(0)
    reg = sign_tx(key, CHAIN, 0, 0, body_class("provider_register")(
        hardware_class="gpu-high", score=1000, price=1, capacity=1, zone="eu", bandwidth_kbps=90_000))
    plan = chain.seal_plan(key.address)
    chain.seal(key, [reg], max(plan.not_before_ms, int(time.time() * 1000)), plan.difficulty)
    opts = NodeOptions(datadir=str(tmp_path), validator=True, listen=["/ip4/127.0.0.1/tcp/0"], bootnodes=[],
                       rpc_host="127.0.0.1", rpc_port=_port(), provide=True, hardware_class="cpu")
    node = NodeService(chain, key, opts)
    await nursery.start(node.run)
    try:
        with trio.fail_after(30):
            while node.chain.rewards_json(key.address)["hours_today"] < 2:
                await trio.sleep(0.1)
        assert node.chain.rewards_json(key.address)["profile"] == {"hardware_class": "gpu-high",
                                                                    "bandwidth_kbps": 90_000}
        kinds = {t.kind for h in range(1, node.chain.head.height + 1) for t in node.chain.block_by_height(h).txs}
        assert "mining_profile" not in kinds and "uptime" in kinds
    finally:
        nursery.cancel_scope.cancel()
