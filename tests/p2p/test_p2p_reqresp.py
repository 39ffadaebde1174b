"""Request/response: happy path, limits, timeouts, cancellation, and every kind of bad input."""

import struct

import pytest
import trio
from conftest import connect_all, running, wait_until
from libp2p.custom_types import TProtocol

from p2p import MessageTooLarge, P2PError, PeerBanned, PeerTimeout, RemoteError
from p2p.identity import parse_peer_id
from p2p.scoring import PENALTY_OVERSIZE, PENALTY_TIMEOUT

ECHO = "/mindnode/echo/1.0.0"
SLOW = "/mindnode/slow/1.0.0"


def setup_server(server):
    server.serve(ECHO, lambda data, peer: data, max_request_bytes=1024, max_response_bytes=4096,
                 request_timeout=0.5)

    async def slow(data, peer):
        await trio.sleep(30)
        return data

    server.serve(SLOW, slow, max_request_bytes=1024)

    def broken(data, peer):
        raise KeyError("bug")

    server.serve("/mindnode/broken/1.0.0", broken)
    server.serve("/mindnode/fat/1.0.0", lambda data, peer: b"z" * 5000, max_response_bytes=4096)


async def raw_stream(client, server, protocol=ECHO):
    return await client.host.new_stream(parse_peer_id(server.peer_id), [TProtocol(protocol)])


async def still_serves(client, server):
    assert await client.request(server.peer_id, ECHO, b"ping", timeout=5) == b"ping"


@pytest.mark.timeout(60)
async def test_request_response_happy_and_errors():
    async with running(2) as (client, server):
        setup_server(server)
        await connect_all([client, server])
        assert await client.request(server.peer_id, ECHO, b"hello", timeout=5) == b"hello"
        assert await client.request(server.peer_id, ECHO, b"", timeout=5) == b""
        with pytest.raises(RemoteError, match="internal error: KeyError"):
            await client.request(server.peer_id, "/mindnode/broken/1.0.0", b"x", timeout=5)
        with pytest.raises(RemoteError, match="exceeds"):
            await client.request(server.peer_id, "/mindnode/fat/1.0.0", b"x", timeout=5)
        with pytest.raises(PeerTimeout):
            await client.request(server.peer_id, SLOW, b"x", timeout=0.3)
        assert client.score(server.peer_id) < 0  # a peer that does not answer loses a little score
        # response larger than what the client accepts
        with pytest.raises(MessageTooLarge):
            await client.request(server.peer_id, ECHO, b"y" * 1000, timeout=5, max_response_bytes=10)
        # cancellation by the caller resets the stream; the server keeps serving
        with trio.move_on_after(0.2):
            await client.request(server.peer_id, SLOW, b"x", timeout=10)
        await still_serves(client, server)


@pytest.mark.timeout(60)
async def test_bad_inputs_end_in_errors_and_server_keeps_serving():
    """Each abuse ends that stream with a clear outcome; honest peers are served throughout;
    the accumulated penalties finally ban the abuser (disconnected and refused)."""
    async with running(3) as (attacker, good, server):
        setup_server(server)
        await connect_all([attacker, good, server])
        events = server.events()

        # 1. slow-loris: opens a stream and never writes; cut off after request_timeout (0.5 s)
        s = await raw_stream(attacker, server)
        with trio.fail_after(5):
            while True:  # the server resets the stream: our read ends instead of hanging
                try:
                    if not await s.read(1):
                        break
                except Exception:
                    break
        assert server.score(attacker.peer_id) <= -PENALTY_TIMEOUT + 0.5
        await still_serves(good, server)

        # 2. truncated frame: announces 100 bytes, sends 10, closes
        before = server.score(attacker.peer_id)
        s = await raw_stream(attacker, server)
        await s.write(struct.pack(">I", 100) + b"0123456789")
        await s.close_write()
        await wait_until(lambda: server.score(attacker.peer_id) < before - 1, what="truncation penalty")
        await still_serves(good, server)

        # 3. oversized frame: a length prefix above the limit is refused before reading it
        before = server.score(attacker.peer_id)
        s = await raw_stream(attacker, server)
        await s.write(struct.pack(">I", 10_000_000) + b"abc")
        with trio.fail_after(5):
            assert await s.read(1) == b"\x01"  # an error answer, then the stream is reset
        await wait_until(lambda: server.score(attacker.peer_id) <= before - PENALTY_OVERSIZE + 1,
                         what="oversize penalty")
        await still_serves(good, server)
        assert not server.is_banned(attacker.peer_id)

        # 4. garbage bytes: junk read as an absurd length prefix -> same path, and now a ban
        s = await raw_stream(attacker, server)
        await s.write(b"\xff\xfe\xfd\xfc garbage garbage")
        await wait_until(lambda: server.is_banned(attacker.peer_id), what="ban")
        await wait_until(lambda: attacker.peer_id not in server.peers(), what="banned peer disconnected")
        await still_serves(good, server)
        kinds = []
        with trio.move_on_after(1):
            async for ev in events:
                if ev.peer_id == attacker.peer_id:
                    kinds.append(ev.kind)
                if "disconnected" in kinds:
                    break
        assert "banned" in kinds and "disconnected" in kinds

        # the banned peer is refused when it comes back
        try:
            await attacker.connect(server.addrs[0], timeout=5)
        except Exception:
            pass
        await trio.sleep(0.5)
        assert attacker.peer_id not in server.peers()
        with pytest.raises(P2PError):
            await attacker.request(server.peer_id, ECHO, b"hi", timeout=2)
        with pytest.raises(PeerBanned):
            await server.connect(attacker.addrs[0])


@pytest.mark.timeout(30)
async def test_request_to_unknown_protocol_or_peer():
    async with running(2) as (client, server):
        await connect_all([client, server])
        with pytest.raises(Exception) as info:
            await client.request(server.peer_id, "/mindnode/none/1.0.0", b"x", timeout=5)

        assert isinstance(info.value, P2PError)
