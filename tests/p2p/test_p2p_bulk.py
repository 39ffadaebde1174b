"""Bulk tensor path (/mindnode/tensor/1.0.0) in both modes: order, limits, back-pressure, failures."""

import os

import pytest
import trio
from conftest import connect_all, running, wait_until

from p2p import MessageTooLarge, PeerGone, PeerTimeout

MODES = ["direct", "stream"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.timeout(60)
async def test_round_trip_and_order(mode):
    async with running(2, bulk_mode=mode) as (a, b):
        await connect_all([a, b])
        big = os.urandom(5 * 1024 * 1024 + 3)
        payloads = [b"", b"x", bytearray(b"abc" * 1000), memoryview(big)]
        async with trio.open_nursery() as nursery:
            async def sender():
                for p in payloads:
                    await a.bulk.send(b.peer_id, "grads", p, timeout=20)
                for i in range(20):  # interleaved channels keep their own order
                    await a.bulk.send(b.peer_id, f"ch{i % 2}", b"%d" % i, timeout=20)
            nursery.start_soon(sender)
            for p in payloads:
                got = await b.bulk.recv(a.peer_id, "grads", timeout=20)
                assert isinstance(got, bytearray) and got == bytes(p)
            assert [int(await b.bulk.recv(a.peer_id, "ch1", 10)) for _ in range(10)] == list(range(1, 20, 2))
            assert [int(await b.bulk.recv(a.peer_id, "ch0", 10)) for _ in range(10)] == list(range(0, 20, 2))
        # and the other direction, concurrently with a send the same way
        async with trio.open_nursery() as nursery:
            nursery.start_soon(b.bulk.send, a.peer_id, "params", big, 20)
            nursery.start_soon(a.bulk.send, b.peer_id, "params", big[::-1], 20)
            assert await a.bulk.recv(b.peer_id, "params", 20) == big
            assert await b.bulk.recv(a.peer_id, "params", 20) == big[::-1]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.timeout(60)
async def test_limits_timeouts_and_peer_gone(mode):
    async with running(1, bulk_mode=mode, bulk_max_message_bytes=1 << 20) as (a,), \
            running(1, bulk_mode=mode, bulk_max_message_bytes=1 << 20) as (b,):
        await connect_all([a, b])
        with pytest.raises(MessageTooLarge):
            await a.bulk.send(b.peer_id, "c", b"x" * ((1 << 20) + 1), timeout=5)
        with pytest.raises(PeerTimeout):
            await b.bulk.recv(a.peer_id, "c", timeout=0.2)
        await a.bulk.send(b.peer_id, "c", b"still fine", timeout=5)
        assert await b.bulk.recv(a.peer_id, "c", timeout=5) == b"still fine"

        async def wait_then_expect_gone():
            with pytest.raises(PeerGone):
                await b.bulk.recv(a.peer_id, "never", timeout=20)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(wait_then_expect_gone)
            await trio.sleep(0.2)
            await b.disconnect(a.peer_id)
        with pytest.raises(PeerGone):  # not connected: immediate, not a timeout
            await b.bulk.recv(a.peer_id, "c", timeout=20)


@pytest.mark.timeout(60)
async def test_oversized_header_from_peer_is_a_violation():
    """A peer announcing more than our limit is cut off and penalised (its own limit was larger)."""
    async with running(1, bulk_mode="stream", bulk_max_message_bytes=64 << 20) as (a,), \
            running(1, bulk_mode="stream", bulk_max_message_bytes=1 << 20) as (b,):
        await connect_all([a, b])
        try:  # may complete into socket/yamux buffers before b reacts: b's side is what matters
            await a.bulk.send(b.peer_id, "c", b"x" * (4 << 20), timeout=3)
        except (PeerGone, PeerTimeout):
            pass
        await wait_until(lambda: b.score(a.peer_id) < 0, what="penalty for oversized bulk message")
        with pytest.raises(PeerTimeout):
            await b.bulk.recv(a.peer_id, "c", timeout=0.2)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.timeout(60)
async def test_back_pressure_bounds_receiver_memory(mode):
    msg = 4 << 20
    async with running(1, bulk_mode=mode) as (a,), \
            running(1, bulk_mode=mode, bulk_max_buffered_bytes=1 << 20) as (b,):
        await connect_all([a, b])
        sent = 0
        with pytest.raises(PeerTimeout):
            for _ in range(16):  # 64 MiB: far beyond socket buffers and the 1 MiB budget
                await a.bulk.send(b.peer_id, "c", bytes([sent]) * msg, timeout=1.5)
                sent += 1
        assert sent < 16, "the sender should have been held back"
        buffered = b.bulk._in[a.peer_id].buffered
        assert buffered <= (1 << 20) + msg, f"receiver buffered {buffered} bytes"
        for k in range(sent):  # everything fully sent arrives, in order
            got = await b.bulk.recv(a.peer_id, "c", timeout=10)
            assert len(got) == msg and got[0] == k and got[-1] == k
        await a.bulk.send(b.peer_id, "c", b"after", timeout=10)  # a fresh pipe replaces the broken one
        while (got := await b.bulk.recv(a.peer_id, "c", timeout=10)) != b"after":
            assert len(got) == msg  # at most the message that was in flight when the send gave up


@pytest.mark.timeout(30)
async def test_direct_port_rejects_strangers():
    async with running(2) as (a, b):
        await connect_all([a, b])
        for junk in (b"", b"\x00" * 16, os.urandom(64)):
            stream = await trio.open_tcp_stream("127.0.0.1", b.bulk.direct_port)
            async with stream:
                with trio.fail_after(15):
                    try:
                        if junk:
                            await stream.send_all(junk)
                        await stream.send_eof()
                        assert await stream.receive_some(1) == b""  # closed without an ack
                    except trio.BrokenResourceError:
                        pass  # reset: also a refusal
        await a.bulk.send(b.peer_id, "c", b"ok", timeout=5)
        assert await b.bulk.recv(a.peer_id, "c", timeout=5) == b"ok"


@pytest.mark.timeout(60)
async def test_sender_stopping_mid_transfer():
    """The receiver of a half-sent message learns the peer is gone instead of hanging."""
    async with running(1) as (a,):
        async with running(1) as (b,):
            await connect_all([a, b])

            async def big_send():
                try:
                    await b.bulk.send(a.peer_id, "c", bytes(300 << 20), timeout=30)
                except (PeerGone, PeerTimeout):
                    pass

            async with trio.open_nursery() as nursery:
                nursery.start_soon(big_send)
                await trio.sleep(0.15)
                nursery.cancel_scope.cancel()
        with trio.fail_after(10), pytest.raises(PeerGone):
            await a.bulk.recv(b.peer_id, "c", timeout=30)


@pytest.mark.parametrize("how", ["listener_closed", "port_unreachable"])
@pytest.mark.timeout(30)
async def test_unreachable_direct_port_falls_back_to_the_stream(how):
    async with running(2) as (a, b):
        await connect_all([a, b])
        if how == "listener_closed":  # the receiver has no direct path: it answers "N"
            b.bulk._listener.close()
            await wait_until(lambda: b.bulk.direct_port is None, what="listener closed")
        else:  # the receiver offers a port the sender cannot reach (firewall, other interface)
            probe = trio.socket.socket()
            await probe.bind(("127.0.0.1", 0))
            b.bulk.direct_port = probe.getsockname()[1]
            probe.close()
        data = os.urandom(3 << 20)
        for _ in range(2):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(a.bulk.send, b.peer_id, "c", data, 15)
                assert await b.bulk.recv(a.peer_id, "c", timeout=15) == data
        assert a.bulk._out[b.peer_id].kind == "stream"


@pytest.mark.timeout(60)
async def test_connection_flood_on_direct_port_only_degrades_to_the_stream():
    async with running(2) as (a, b):
        await connect_all([a, b])
        idle = [await trio.open_tcp_stream("127.0.0.1", b.bulk.direct_port) for _ in range(80)]
        try:
            await wait_until(lambda: b.bulk._unauthenticated >= 64, what="pending connections")
            data = os.urandom(1 << 20)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(a.bulk.send, b.peer_id, "c", data, 20)
                assert await b.bulk.recv(a.peer_id, "c", timeout=20) == data
            assert b.bulk._unauthenticated <= 64
        finally:
            for s in idle:
                await s.aclose()
