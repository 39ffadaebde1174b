"""Gossip: delivery to every subscriber, validation before delivery and forwarding, limits."""

import os

import pytest
import trio
from p2phelpers import connect_all, running, wait_until

from p2p import ACCEPT, IGNORE, REJECT, MessageTooLarge, PeerTimeout, topic_name
from p2p.scoring import PENALTY_INVALID_GOSSIP


async def drain(sub, n, timeout):
    got = []
    with trio.move_on_after(timeout):
        while len(got) < n:
            got.append(await sub.get())
    return got


def test_topic_names():
    assert topic_name("devnet", "tx") == "/mindnode/devnet/tx/1"
    with pytest.raises(ValueError):
        topic_name("dev/net", "tx")
    with pytest.raises(ValueError):
        topic_name("devnet", "")


@pytest.mark.timeout(60)
async def test_delivery_to_all_and_no_echo():
    async with running(3) as nodes:
        await connect_all(nodes)
        topic = nodes[0].topic("tx")
        subs = [await n.subscribe(topic) for n in nodes]
        await wait_until(lambda: all(len(n.gossip.topic_peers(topic)) == 2 for n in nodes), what="subscriptions")
        for i, n in enumerate(nodes):
            await n.publish(topic, f"hello from {i}".encode())
        for i, sub in enumerate(subs):
            got = await drain(sub, 2, 10)
            assert sorted(m.data for m in got) == sorted(f"hello from {j}".encode() for j in range(3) if j != i)
            assert all(m.from_peer != nodes[i].peer_id for m in got)
        with pytest.raises(PeerTimeout):
            await subs[0].get(timeout=0.3)  # nothing more, in particular not our own message


@pytest.mark.timeout(60)
async def test_invalid_message_dropped_not_forwarded_and_penalised():
    """Line a - b - c: b rejects what a sends, so c (which would accept it) never sees it."""
    async with running(3) as (a, b, c):
        await a.connect(b.addrs[0])
        await b.connect(c.addrs[0])
        topic = a.topic("block")
        seen_by_c = []

        def b_rules(data: bytes, from_peer: str):
            if data.startswith(b"bad"):
                return REJECT
            if data.startswith(b"old"):
                return IGNORE
            return ACCEPT

        await a.subscribe(topic)
        sub_b = await b.subscribe(topic, b_rules)

        async def c_rules(data: bytes, from_peer: str):
            seen_by_c.append(data)
            return ACCEPT

        sub_c = await c.subscribe(topic, c_rules)
        await wait_until(lambda: topic in b.gossip.router.mesh and len(b.gossip.mesh_peers(topic)) == 2,
                         what="b's mesh")
        await a.publish(topic, b"bad block")
        await a.publish(topic, b"old block")
        await a.publish(topic, b"good block")
        assert [m.data for m in await drain(sub_b, 1, 10)] == [b"good block"]
        assert [m.data for m in await drain(sub_c, 1, 10)] == [b"good block"]
        assert seen_by_c == [b"good block"]  # neither the rejected nor the ignored one was forwarded
        assert b.score(a.peer_id) == pytest.approx(-PENALTY_INVALID_GOSSIP, abs=1)  # IGNORE costs nothing


@pytest.mark.timeout(30)
async def test_oversized_publish_refused():
    async with running(2) as (a, b):
        await connect_all([a, b])
        topic = a.topic("job")
        sub = await b.subscribe(topic)
        await wait_until(lambda: len(a.gossip.topic_peers(topic)) == 1, what="subscription")
        with pytest.raises(MessageTooLarge, match="request/response"):
            await a.publish(topic, b"x" * (1024 * 1024 + 1))
        big = b"y" * (1024 * 1024)  # exactly the limit passes (trap 4: envelope headroom)
        await a.publish(topic, big)
        assert (await sub.get(timeout=10)).data == big


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_burst_reaches_every_subscriber():
    """Traps 2 and 3: a burst far beyond 32 queued RPCs and 10 msgs/s is delivered completely."""
    n = 300
    async with running(3) as nodes:
        await connect_all(nodes)
        topic = nodes[0].topic("tx")
        subs = [await node.subscribe(topic) for node in nodes]
        await wait_until(lambda: all(len(x.gossip.mesh_peers(topic)) == 2 for x in nodes), what="mesh")
        results = {}

        async def collect(i):
            results[i] = await drain(subs[i], n, 90)

        async with trio.open_nursery() as nursery:
            for i in (1, 2):
                nursery.start_soon(collect, i)
            for k in range(n):
                await nodes[0].publish(topic, b"%d" % k)
        for i in (1, 2):
            assert sorted(int(m.data) for m in results[i]) == list(range(n))
        assert await nodes[0].gossip.flush(5)


@pytest.mark.timeout(60)
async def test_stalled_subscriber_is_reported_not_silently_skipped():
    """A peer that subscribes and then never reads fills its queue: publish says who missed out."""
    import multiaddr
    from libp2p.custom_types import TProtocol
    from libp2p.peer.peerinfo import info_from_p2p_addr
    from libp2p.pubsub.gossipsub import PROTOCOL_ID_V11
    from libp2p.pubsub.pb import rpc_pb2
    from libp2p.utils.varint import encode_varint_prefixed

    from p2p import PublishError
    from p2p.libp2p_host import build_host

    async with running(1, gossip_queue_size=160) as (a,):
        topic = a.topic("stall")
        stalled = build_host(os.urandom(32))
        held = []

        async def never_read(stream):  # accept our pubsub stream, then never read from it
            held.append(stream)
            await trio.sleep_forever()

        stalled.set_stream_handler(TProtocol(PROTOCOL_ID_V11), never_read)
        async with stalled.run(listen_addrs=[multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]):
            await stalled.connect(info_from_p2p_addr(multiaddr.Multiaddr(a.addrs[0])))
            out = await stalled.new_stream(a.host.get_id(), [TProtocol(PROTOCOL_ID_V11)])
            rpc = rpc_pb2.RPC(subscriptions=[rpc_pb2.RPC.SubOpts(subscribe=True, topicid=topic)])
            await out.write(encode_varint_prefixed(rpc.SerializeToString()))
            stalled_id = str(stalled.get_id())
            await wait_until(lambda: stalled_id in a.gossip.topic_peers(topic), what="stalled subscription")
            with pytest.raises(PublishError) as info:
                for i in range(2000):
                    await a.publish(topic, bytes([i % 256]) * 60_000, timeout=0.5)
            assert info.value.undelivered == [stalled_id]
            for peer in list(stalled.get_network().connections):
                await stalled.get_network().close_peer(peer)


async def test_a_subscription_delivers_one_copy_of_a_message_that_arrives_twice():
    """py-libp2p marks a message seen only after its (awaited) validation, so two copies arriving
    together over two links can both reach the subscription: it must deliver one."""
    from types import SimpleNamespace

    from libp2p.peer.id import ID

    from p2p import gossip as g

    me, other = ID(b"\x00\x01me"), ID(b"\x00\x02other")
    send, receive = trio.open_memory_channel(10)
    fake = SimpleNamespace(host=SimpleNamespace(get_id=lambda: me))
    sub = g.Subscription(fake, "tx", receive)

    def msg(origin, seqno, data):
        return SimpleNamespace(from_id=origin.to_bytes(), seqno=seqno, data=data)

    for m in (msg(other, b"\x01", b"tx-1"), msg(other, b"\x01", b"tx-1"), msg(me, b"\x02", b"own"),
              msg(other, b"\x02", b"tx-2")):
        send.send_nowait(m)
    assert (await sub.get(1)).data == b"tx-1"
    assert (await sub.get(1)).data == b"tx-2"          # the copy of tx-1 and our own publish skipped
    with pytest.raises(PeerTimeout):
        await sub.get(0.05)
