"""Noise only: a plaintext dialer is refused (trap 1), and the refusal does not hurt the node."""

import os

import multiaddr
import pytest
import trio
from conftest import running
from libp2p import new_host
from libp2p.custom_types import TProtocol
from libp2p.network.exceptions import SwarmException
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.security.insecure.transport import PLAINTEXT_PROTOCOL_ID, InsecureTransport
from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_ID
from libp2p.stream_muxer.yamux.yamux import Yamux

from p2p.identity import key_pair_from_seed


@pytest.mark.timeout(60)
async def test_plaintext_dialer_is_refused():
    kp = key_pair_from_seed(os.urandom(32))
    plain = new_host(key_pair=kp, sec_opt={PLAINTEXT_PROTOCOL_ID: InsecureTransport(kp)},
                     muxer_opt={TProtocol(YAMUX_ID): Yamux})
    async with running(2) as (node, friend):
        async with plain.run(listen_addrs=[multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]):
            with pytest.raises(SwarmException) as info, trio.fail_after(20):
                await plain.connect(info_from_p2p_addr(multiaddr.Multiaddr(node.addrs[0])))
            assert "plaintext" not in str(info.value).lower() or "fail" in str(info.value).lower()
            assert str(plain.get_id()) not in node.peers()
            for peer in list(plain.get_network().connections):
                await plain.get_network().close_peer(peer)
        # the node still accepts a proper Noise peer
        await friend.connect(node.addrs[0])
        assert friend.peer_id in node.peers()


@pytest.mark.timeout(30)
async def test_standard_ping_and_identify_are_served():
    """Other implementations rely on /ipfs/ping/1.0.0 and /ipfs/id/1.0.0 (interop)."""
    from libp2p.identity.identify.pb.identify_pb2 import Identify

    from p2p.framing import StreamReader
    from p2p.identity import parse_peer_id

    async with running(2) as (a, b):
        await a.connect(b.addrs[0])
        pid = parse_peer_id(b.peer_id)
        s = await a.host.new_stream(pid, [TProtocol("/ipfs/ping/1.0.0")])
        probe = os.urandom(32)
        await s.write(probe)
        with trio.fail_after(5):
            assert await StreamReader(s).read_exactly(32) == probe
        await s.close()
        s = await a.host.new_stream(pid, [TProtocol("/ipfs/id/1.0.0")])
        raw = b""
        with trio.fail_after(5):
            while True:
                try:
                    chunk = await s.read(65536)
                except Exception:
                    break
                if not chunk:
                    break
                raw += chunk
        msg = Identify()
        # identify is varint-length-prefixed; skip the prefix
        i = 0
        while raw[i] & 0x80:
            i += 1
        msg.ParseFromString(raw[i + 1 :])
        assert "/meshsub/1.1.0" in msg.protocols and "/mindnode/tensor/1.0.0" in msg.protocols
