"""InMemoryHub keeps the Transport contract: order, back-pressure, and the three failure kinds."""
import pytest
import trio

from trainer.errors import PeerFailure, PeerTimeout, TransportClosed
from trainer.transport import CountingTransport, InMemoryHub, Transport


async def test_in_order_per_peer_and_channel():
    hub = InMemoryHub()
    a, b = hub.transport("a"), hub.transport("b")
    assert isinstance(a, Transport)
    for i in range(5):
        await a.send("b", "x", bytes([i]), 1)
    await a.send("b", "y", b"other", 1)
    assert await b.recv("a", "y", 1) == b"other"
    assert [await b.recv("a", "x", 1) for _ in range(5)] == [bytes([i]) for i in range(5)]


async def test_sender_buffer_is_copied():
    hub = InMemoryHub()
    a, b = hub.transport("a"), hub.transport("b")
    buf = bytearray(b"abc")
    await a.send("b", "x", memoryview(buf), 1)
    buf[0] = ord("z")
    assert await b.recv("a", "x", 1) == b"abc"


async def test_back_pressure_times_out():
    hub = InMemoryHub(capacity=2)
    a = hub.transport("a")
    hub.transport("b")
    await a.send("b", "x", b"1", 1)
    await a.send("b", "x", b"2", 1)
    with pytest.raises(PeerTimeout) as info:
        await a.send("b", "x", b"3", 0.05)
    assert info.value.peer_id == "b"


async def test_recv_timeout_and_unknown_peer():
    hub = InMemoryHub()
    a = hub.transport("a")
    hub.transport("b")
    with pytest.raises(PeerTimeout):
        await a.recv("b", "x", 0.05)
    with pytest.raises(PeerFailure):
        await a.send("nobody", "x", b"", 1)


async def test_killed_peer_drains_then_fails_and_wakes_waiters():
    hub = InMemoryHub()
    a, b = hub.transport("a"), hub.transport("b")
    await b.send("a", "x", b"last words", 1)
    hub.kill("b")
    assert await a.recv("b", "x", 1) == b"last words"
    with pytest.raises(PeerFailure):
        await a.recv("b", "x", 5)
    with pytest.raises(PeerFailure):
        await a.send("b", "x", b"", 1)
    with pytest.raises(TransportClosed):
        await b.send("a", "x", b"", 1)

    hub2 = InMemoryHub()
    c, _ = hub2.transport("c"), hub2.transport("d")
    got = []

    async def waiter():
        with pytest.raises(PeerFailure):
            await c.recv("d", "x", 30)
        got.append(trio.current_time())

    async with trio.open_nursery() as n:
        n.start_soon(waiter)
        await trio.sleep(0.01)
        hub2.kill("d")
    assert got


async def test_fault_predicate_and_silence():
    hub = InMemoryHub()
    a, b = hub.transport("a"), hub.transport("b")
    hub.fault("a", "silent", lambda to, ch, data: data == b"2")
    await a.send("b", "x", b"1", 1)
    await a.send("b", "x", b"2", 1)  # vanishes, and so does everything after
    await a.send("b", "x", b"3", 1)
    assert await b.recv("a", "x", 1) == b"1"
    with pytest.raises(PeerTimeout):
        await b.recv("a", "x", 0.05)
    assert not hub.is_alive("a")
    with pytest.raises(ValueError):
        hub.fault("a", "explode", lambda *_: True)


async def test_counting_transport():
    hub = InMemoryHub()
    a, b = CountingTransport(hub.transport("a")), CountingTransport(hub.transport("b"))
    await a.send("b", "x", b"12345", 1)
    await b.recv("a", "x", 1)
    assert (a.bytes_sent, b.bytes_recv) == (5, 5)
