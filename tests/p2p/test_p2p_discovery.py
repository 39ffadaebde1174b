"""Discovery: bootnodes (re-dialed after loss), Kademlia DHT beyond them, max peers, shutdown."""

import os
import time

import pytest
import trio
from p2phelpers import running, start_background, wait_until

from p2p import ConfigError, DialError, NodeConfig


def test_config_validation():
    with pytest.raises(ConfigError):
        NodeConfig(seed=b"short")
    with pytest.raises(ConfigError):
        NodeConfig(seed=os.urandom(32), bootnodes=["/ip4/127.0.0.1/tcp/1"])  # no /p2p/ part
    with pytest.raises(ConfigError):
        NodeConfig(seed=os.urandom(32), listen=["not a multiaddr"])


@pytest.mark.slow
@pytest.mark.timeout(90)
async def test_bootnode_then_dht_discovery_and_bootnode_redial():
    boot_seed = os.urandom(32)
    async with trio.open_nursery() as nursery:
        boot = await start_background(nursery, seed=boot_seed, enable_dht=True)
        boot_id, boot_addr = boot.node.peer_id, boot.node.addrs[0]
        cfg = dict(bootnodes=[boot_addr], enable_dht=True, discovery_interval_s=0.3, redial_min_s=0.2)
        async with running(2, **cfg) as (b, c):
            # both reach the bootnode by themselves, then find each other through the DHT only
            await wait_until(lambda: boot_id in b.peers() and boot_id in c.peers(), 20, "bootnode connections")
            await wait_until(lambda: c.peer_id in b.peers(), 30, "DHT discovery of b <-> c")
            await boot.stop()
            await wait_until(lambda: boot_id not in b.peers(), 10, "bootnode loss noticed")
            # the same identity comes back on the same address: b and c re-dial it with backoff
            listen = "/".join(boot_addr.split("/")[:5])
            boot2 = await start_background(nursery, seed=boot_seed, listen=[listen])
            await wait_until(lambda: boot_id in b.peers() and boot_id in c.peers(), 30, "bootnode re-dial")
            await boot2.stop()


@pytest.mark.timeout(60)
async def test_max_peers_is_enforced():
    async with running(1, max_peers=1) as (hub,), running(2) as (x, y):
        await x.connect(hub.addrs[0])
        await wait_until(lambda: x.peer_id in hub.peers(), what="first peer")
        try:
            await y.connect(hub.addrs[0])
        except DialError:
            pass
        await wait_until(lambda: y.peer_id not in hub.peers(), 10, "second peer dropped")
        assert hub.peers() == [x.peer_id]
        with pytest.raises(DialError, match="max peers"):
            await hub.connect(y.addrs[0])


@pytest.mark.timeout(60)
async def test_shutdown_is_fast_and_clean():
    """Stopping a node with live connections, gossip and streams takes well under a second
    (the autouse fixture also fails the test on any unclosed socket)."""
    async with running(2) as (a, b), trio.open_nursery() as nursery:
        bg = await start_background(nursery, enable_dht=True)
        node = bg.node
        for other in (a, b):
            await node.connect(other.addrs[0])
        topic = node.topic("heartbeat")
        await node.subscribe(topic)
        sub = await a.subscribe(topic)
        await wait_until(lambda: len(node.gossip.topic_peers(topic)) == 1, what="subscription")
        await node.publish(topic, b"alive")
        await node.bulk.send(a.peer_id, "c", b"x" * 1000, timeout=20)
        t0 = time.monotonic()
        await bg.stop()
        print(f"shutdown took {time.monotonic() - t0:.3f} s")
        assert (await sub.get(timeout=20)).data == b"alive"  # trap 5: published before the stop
        await wait_until(lambda: node.peer_id not in a.peers(), 5, "peers notice the shutdown")
        with trio.fail_after(5):
            await a.connect(b.addrs[0])  # the survivors are unaffected
