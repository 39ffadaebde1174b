"""The node's view of the libp2p network: one host, gossip topics with validators, one
request/response protocol for sync, bootnode redialing and a deny list.

Why here and not in `p2p/`: this is the small adapter the node service needs (gossip topics named
``/mindnode/<chain_id>/<kind>/1``, a framed request/response). It builds on `p2p.libp2p_host`
(Noise-only, yamux-only host) and `p2p.framing`; when `p2p` grows a gossip service of its own this
module should shrink to a thin wrapper of it.

py-libp2p 0.8.1 settings that matter here (see shared/LIBP2P-NOTES.md):
* GossipSub's eclipse protection wants peers from >= 3 distinct IPs in a mesh; on 127.0.0.1 every
  peer has one IP, so it is off. Spam protection (10 msg/s per topic per peer, counting our own
  publishes) is off: a validator's gossip validator is the spam filter that matters here.
* our own publishes come back on our subscription: filtered by ``from_id``.
* ``heartbeat_interval`` defaults to 120 s: set to 1 s.
"""

from __future__ import annotations

import logging
import os
import struct
from collections.abc import Awaitable, Callable

import multiaddr
import trio
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.pubsub.gossipsub import PROTOCOL_ID, PROTOCOL_ID_V11, PROTOCOL_ID_V12, GossipSub
from libp2p.pubsub.pubsub import Pubsub
from libp2p.tools.anyio_service import background_trio_service

from p2p.framing import StreamReader, close_stream, write_frame
from p2p.libp2p_host import build_host, parse_multiaddr

log = logging.getLogger("mindnode.node")

#: Largest gossip message we accept (a full block is bounded by the ledger at 8 MiB; blocks on the
#: devnet are far smaller). py-libp2p drops messages above ~1 MiB unless told otherwise.
MAX_GOSSIP = 4 * 1024 * 1024
MAX_REQUEST = 64 * 1024
MAX_RESPONSE = 16 * 1024 * 1024
REQUEST_TIMEOUT = 10.0

GossipValidator = Callable[[bytes, str], bool]          # (data, from peer id) -> accept?
GossipHandler = Callable[[bytes, str], Awaitable[None]]
RequestHandler = Callable[[bytes, str], Awaitable[bytes]]


class NetworkError(Exception):
    """A peer failed a request (gone, timed out, oversized or malformed answer)."""


class Network:
    def __init__(self, seed: bytes, chain_id: str, listen: list[str], bootnodes: list[str]):
        self.chain_id = chain_id
        self.listen = [parse_multiaddr(a) for a in listen]
        self.bootnodes = list(bootnodes)
        self.host = build_host(seed, max_peers=50)
        self.peer_id = self.host.get_id()
        self.gossipsub = GossipSub(
            protocols=[PROTOCOL_ID_V12, PROTOCOL_ID_V11, PROTOCOL_ID],
            degree=6, degree_low=3, degree_high=12,
            heartbeat_initial_delay=0.1, heartbeat_interval=1,
            spam_protection_enabled=False,
            eclipse_protection_enabled=False,
        )
        self.pubsub = Pubsub(self.host, self.gossipsub, max_inbound_rpc_size=MAX_GOSSIP + 64 * 1024)
        self._subs: list[tuple[str, GossipHandler]] = []
        self.denied: set[str] = set()
        self._ready = trio.Event()

    # -- topics -------------------------------------------------------------------------------
    def topic(self, kind: str) -> str:
        return f"/mindnode/{self.chain_id}/{kind}/1"

    def subscribe(self, kind: str, validator: GossipValidator, handler: GossipHandler) -> None:
        """Register before `run`: messages failing `validator` are rejected (not forwarded)."""
        topic = self.topic(kind)
        me = self.peer_id

        def _validate(forwarder: ID, msg) -> bool:
            if len(msg.data) > MAX_GOSSIP:
                return False
            origin = ID(msg.from_id)
            if origin == me:
                return True
            if str(forwarder) in self.denied or str(origin) in self.denied:
                return False
            try:
                return bool(validator(msg.data, str(origin)))
            except Exception as exc:  # a validator bug must not kill the pubsub loop
                log.warning("gossip validator on %s raised %s: %s", kind, type(exc).__name__, exc)
                return False

        self.pubsub.set_topic_validator(topic, _validate, False)
        self._subs.append((topic, handler))

    async def publish(self, kind: str, data: bytes) -> None:
        try:
            await self.pubsub.publish(self.topic(kind), data)
        except Exception as exc:  # no peers yet, or shutting down: gossip is best effort
            log.debug("publish on %s failed: %s", kind, exc)

    # -- request/response ---------------------------------------------------------------------
    def serve(self, protocol: str, handler: RequestHandler) -> None:
        async def _handle(stream) -> None:
            peer = str(stream.muxed_conn.peer_id)
            try:
                with trio.fail_after(REQUEST_TIMEOUT):
                    req = await StreamReader(stream).read_frame(MAX_REQUEST, what="request")
                    resp = await handler(req, peer)
                    await write_frame(stream, resp, MAX_RESPONSE)
                    await stream.close()
            except Exception as exc:
                log.debug("request from %s on %s failed: %s", peer, protocol, exc)
                await close_stream(stream, reset=True)

        self.host.set_stream_handler(TProtocol(protocol), _handle)

    async def request(self, peer: str, protocol: str, data: bytes, timeout: float = REQUEST_TIMEOUT) -> bytes:
        stream = None
        try:
            with trio.fail_after(timeout):
                stream = await self.host.new_stream(ID.from_base58(peer), [TProtocol(protocol)])
                await write_frame(stream, data, MAX_REQUEST)
                return await StreamReader(stream).read_frame(MAX_RESPONSE, what="response")
        except trio.TooSlowError:
            raise NetworkError(f"peer {peer} did not answer {protocol} within {timeout:g} s") from None
        except Exception as exc:
            raise NetworkError(f"request to {peer} on {protocol} failed: {type(exc).__name__}: {exc}") from None
        finally:
            if stream is not None:
                await close_stream(stream)

    # -- peers --------------------------------------------------------------------------------
    def connected_peers(self) -> list[str]:
        return [str(p) for p in self.host.get_network().connections.keys() if str(p) not in self.denied]

    def listen_addrs(self) -> list[str]:
        return [str(a) for a in self.host.get_addrs()]

    async def deny(self, peer: str) -> None:
        """TEST/ops: cut a peer (partition tests). Disconnects and refuses its gossip and dials."""
        self.denied.add(peer)
        pid = ID.from_base58(peer)
        self.pubsub.add_to_blacklist(pid)
        try:
            await self.host.disconnect(pid)
        except Exception:
            pass

    def allow(self, peer: str) -> None:
        self.denied.discard(peer)
        self.pubsub.remove_from_blacklist(ID.from_base58(peer))

    async def _dial_loop(self) -> None:
        """Keep the bootnodes connected: dial missing ones every 2 s (nodes start in any order)."""
        infos = []
        for addr in self.bootnodes:
            try:
                infos.append(info_from_p2p_addr(multiaddr.Multiaddr(addr)))
            except Exception as exc:
                log.warning("ignoring bootnode %s: %s", addr, exc)
        while True:
            connected = set(self.host.get_network().connections.keys())
            for info in infos:
                if info.peer_id == self.peer_id or info.peer_id in connected or str(info.peer_id) in self.denied:
                    continue
                with trio.move_on_after(5):
                    try:
                        await self.host.connect(info)
                        log.info("connected to bootnode %s", info.peer_id)
                    except Exception as exc:
                        log.debug("dial %s failed: %s", info.peer_id, exc)
            await trio.sleep(2.0 if connected else 0.5)

    async def _pump(self, topic: str, handler: GossipHandler, sub) -> None:
        me = self.peer_id
        while True:
            msg = await sub.get()
            origin = ID(msg.from_id)
            if origin == me:
                continue
            try:
                await handler(msg.data, str(origin))
            except Exception as exc:
                log.warning("gossip handler on %s failed: %s: %s", topic, type(exc).__name__, exc)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with self.host.run(listen_addrs=self.listen), trio.open_nursery() as nursery:
            async with background_trio_service(self.pubsub), background_trio_service(self.gossipsub):
                await self.pubsub.wait_until_ready()
                for topic, handler in self._subs:
                    sub = await self.pubsub.subscribe(topic)
                    nursery.start_soon(self._pump, topic, handler, sub)
                nursery.start_soon(self._dial_loop)
                task_status.started()
                await trio.sleep_forever()


def port_of(addr: str) -> int:
    parts = addr.split("/")
    return int(parts[parts.index("tcp") + 1])


def unique_u32() -> int:
    return struct.unpack(">I", os.urandom(4))[0]
