"""``Node``: one libp2p host with everything mindnode needs, started and stopped as a unit.

The node owns the host (Noise-only, yamux), GossipSub (``Gossip``), request/response
(``RequestResponse``), the bulk tensor path (``BulkService``), the blob exchange (``BlobExchange``,
when ``blob_dir`` is set), a Kademlia DHT for discovery, bootnode re-dialing with backoff, a
max-peers limit and the peer score book with temporary bans.  It knows bytes, peers and
protocols; message formats belong to the callers.

Lifecycle::

    async with Node(NodeConfig(seed=seed, bootnodes=[...])).started() as node:
        ...

Leaving the block stops everything in well under a second: gossip queues get a short flush
(trap 5), then every connection is closed explicitly -- py-libp2p leaves the dialer's sockets
unclosed otherwise (trap 9) -- and only then are the background services cancelled.
"""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import trio
from libp2p.abc import INetConn, INetStream, INetwork, INotifee
from libp2p.kad_dht.kad_dht import DHTMode, KadDHT
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo, info_from_p2p_addr
from libp2p.tools.anyio_service import background_trio_service

from p2p.blob import BlobExchange
from p2p.bulk import DEFAULT_MAX_BUFFERED, DEFAULT_MAX_MESSAGE, BulkService
from p2p.errors import ConfigError, DialError, P2PError, PeerBanned
from p2p.gossip import GOSSIP_MAX_BYTES, Gossip, Subscription, Validator, topic_name
from p2p.identity import parse_peer_id, peer_id_from_seed
from p2p.libp2p_host import build_host, parse_multiaddr
from p2p.reqresp import DEFAULT_MAX_REQUEST, DEFAULT_MAX_RESPONSE, Handler, RequestResponse
from p2p.scoring import (
    PENALTY_INVALID_GOSSIP,
    PENALTY_PROTOCOL,
    PeerScores,
)

log = logging.getLogger("mindnode.p2p")


@dataclass
class NodeConfig:
    """Everything a node needs; defaults suit a devnet on 127.0.0.1."""

    seed: bytes
    listen: list[str] = field(default_factory=lambda: ["/ip4/127.0.0.1/tcp/0"])
    bootnodes: list[str] = field(default_factory=list)
    chain_id: str = "devnet"
    max_peers: int = 50
    enable_dht: bool = True
    enable_mdns: bool = False
    discovery_interval_s: float = 10.0
    redial_min_s: float = 1.0
    redial_max_s: float = 60.0
    gossip_max_bytes: int = GOSSIP_MAX_BYTES
    gossip_queue_size: int = 4096
    gossip_spam_limit_per_s: float = 5000.0
    gossip_heartbeat_s: float = 1.0
    ban_threshold: float = -100.0
    ban_seconds: float = 600.0
    bulk_mode: str = "direct"
    bulk_max_message_bytes: int = DEFAULT_MAX_MESSAGE
    bulk_max_buffered_bytes: int = DEFAULT_MAX_BUFFERED
    blob_dir: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.seed, bytes | bytearray) or len(self.seed) != 32:
            raise ConfigError("seed must be 32 raw bytes")
        if self.max_peers < 1:
            raise ConfigError("max_peers must be >= 1")
        for addr in [*self.listen, *self.bootnodes]:
            parse_multiaddr(addr)
        for addr in self.bootnodes:
            if "/p2p/" not in addr:
                raise ConfigError(f"bootnode {addr!r} must end in /p2p/<peer id>")


@dataclass(frozen=True)
class PeerEvent:
    kind: str  # "connected" | "disconnected" | "banned"
    peer_id: str
    reason: str = ""


class _Notifee(INotifee):
    def __init__(self, node: Node) -> None:
        self.node = node

    async def opened_stream(self, network: INetwork, stream: INetStream) -> None:
        pass

    async def closed_stream(self, network: INetwork, stream: INetStream) -> None:
        pass

    async def connected(self, network: INetwork, conn: INetConn) -> None:
        await self.node._on_connected(conn.muxed_conn.peer_id)

    async def disconnected(self, network: INetwork, conn: INetConn) -> None:
        peer = conn.muxed_conn.peer_id
        if not network.get_connections(peer):
            self.node._emit(PeerEvent("disconnected", peer.to_base58()))

    async def listen(self, network, multiaddr) -> None:
        pass

    async def listen_close(self, network, multiaddr) -> None:
        pass


class Node:
    """A running mindnode peer.  See the package docstring for the public API."""

    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self.host = build_host(bytes(config.seed), max_peers=config.max_peers, enable_mdns=config.enable_mdns)
        self.peer_id: str = peer_id_from_seed(bytes(config.seed))
        self.scores = PeerScores(ban_threshold=config.ban_threshold, ban_seconds=config.ban_seconds,
                                 on_ban=self._on_ban)
        self.gossip = Gossip(
            self.host, max_message_bytes=config.gossip_max_bytes, queue_size=config.gossip_queue_size,
            spam_limit_per_s=config.gossip_spam_limit_per_s, heartbeat_s=config.gossip_heartbeat_s,
            on_reject=lambda peer, topic: self.report(peer, PENALTY_INVALID_GOSSIP, f"invalid message on {topic}"),
        )
        self.reqresp = RequestResponse(self.host, on_violation=self.report, is_banned=self.is_banned)
        self.bulk = BulkService(
            self.host, mode=config.bulk_mode, max_message_bytes=config.bulk_max_message_bytes,
            max_buffered_bytes=config.bulk_max_buffered_bytes, direct_bind=self._bind_ip(),
            on_violation=lambda peer, reason: self.report(peer, PENALTY_PROTOCOL, f"bulk: {reason}"),
        )
        self.blobs: BlobExchange | None = (
            BlobExchange(self, config.blob_dir) if config.blob_dir is not None else None
        )
        self.dht: KadDHT | None = None
        self._nursery: trio.Nursery | None = None
        self._subscribers: list[trio.MemorySendChannel[PeerEvent]] = []
        self._running = False

    def _bind_ip(self) -> str:
        for addr in self.config.listen:
            ma = parse_multiaddr(addr)
            for proto in ("ip4", "ip6"):
                try:
                    return ma.value_for_protocol(proto)
                except Exception:
                    continue
        return "127.0.0.1"

    # ------------------------------------------------------------------ lifecycle
    @asynccontextmanager
    async def started(self) -> AsyncIterator[Node]:
        """Run the node for the duration of the ``async with`` block."""
        listen = [parse_multiaddr(a) for a in self.config.listen]
        network = self.host.get_network()
        notifee = _Notifee(self)
        network.register_notifee(notifee)
        async with self.host.run(listen_addrs=listen), trio.open_nursery() as nursery:
            self._nursery = nursery
            try:
                await nursery.start(self.gossip.run)
                await nursery.start(self.bulk.run)
                if self.config.enable_dht:
                    self.dht = KadDHT(self.host, DHTMode.SERVER)
                    nursery.start_soon(self._run_dht)
                for addr in self.config.bootnodes:
                    nursery.start_soon(self._keep_bootnode, addr)
                if self.config.enable_dht:
                    nursery.start_soon(self._discovery_loop)
                self._running = True
                yield self
            finally:
                self._running = False
                with trio.CancelScope(shield=True):
                    await self.gossip.flush(0.25)
                    with trio.move_on_after(0.6):
                        async with trio.open_nursery() as closer:
                            for peer in list(network.connections):
                                closer.start_soon(network.close_peer, peer)
                network.remove_notifee(notifee)
                for ch in self._subscribers:
                    ch.close()
                nursery.cancel_scope.cancel()
                self._nursery = None

    async def _run_dht(self) -> None:
        assert self.dht is not None
        async with background_trio_service(self.dht):
            await trio.sleep_forever()

    # ------------------------------------------------------------------ addresses, peers, events
    @property
    def addrs(self) -> list[str]:
        """Our listen multiaddrs, each ending in ``/p2p/<peer id>`` (give these to other nodes)."""
        return [str(a) for a in self.host.get_addrs()]

    def peers(self) -> list[str]:
        return [p.to_base58() for p in self.host.get_network().connections if self.host.get_network().connections[p]]

    def events(self, buffer: int = 256) -> trio.MemoryReceiveChannel[PeerEvent]:
        """A channel of ``PeerEvent``s (connected / disconnected / banned) from now on."""
        send, receive = trio.open_memory_channel[PeerEvent](buffer)
        self._subscribers.append(send)
        return receive

    def _emit(self, event: PeerEvent) -> None:
        log.debug("peer event %s", event)
        for ch in list(self._subscribers):
            try:
                ch.send_nowait(event)
            except trio.WouldBlock:
                log.warning("peer event listener is not reading; dropped %s", event)
            except (trio.ClosedResourceError, trio.BrokenResourceError):
                self._subscribers.remove(ch)

    async def _on_connected(self, peer: ID) -> None:
        pid = peer.to_base58()
        if self.scores.is_banned(pid):
            log.info("refusing banned peer %s", pid)
            await self._disconnect_soon(peer)
            return
        if len(self.peers()) > self.config.max_peers:
            log.info("max peers (%d) reached: dropping %s", self.config.max_peers, pid)
            await self._disconnect_soon(peer)
            return
        self._emit(PeerEvent("connected", pid))
        if self.dht is not None and self._nursery is not None:
            self._nursery.start_soon(self._dht_add, peer)

    async def _dht_add(self, peer: ID) -> None:
        assert self.dht is not None
        try:
            with trio.move_on_after(10):
                await self.dht.add_peer(peer)
        except Exception as exc:  # routing table full / peer lacks kad: harmless
            log.debug("dht add_peer(%s) failed: %s", peer, exc)

    async def _disconnect_soon(self, peer: ID) -> None:
        if self._nursery is not None:
            self._nursery.start_soon(self._disconnect, peer)

    async def _disconnect(self, peer: ID) -> None:
        try:
            await self.host.disconnect(peer)
        except Exception as exc:
            log.debug("disconnect %s: %s", peer, exc)

    async def connect(self, addr: str, timeout: float = 10.0) -> str:
        """Dial a ``.../p2p/<peer id>`` multiaddr; returns the peer id.  ``DialError`` on failure."""
        try:
            info = info_from_p2p_addr(parse_multiaddr(addr))
        except P2PError:
            raise
        except Exception as exc:
            raise ConfigError(f"{addr!r} is not a dialable multiaddr ending in /p2p/<peer id>") from exc
        return await self._dial(info, timeout)

    async def connect_peer(self, peer_id: str, timeout: float = 10.0) -> str:
        """Dial a peer whose addresses we already know (from the DHT or identify)."""
        pid = parse_peer_id(peer_id)
        return await self._dial(PeerInfo(pid, self.host.get_peerstore().addrs(pid)), timeout)

    async def _dial(self, info: PeerInfo, timeout: float) -> str:
        pid = info.peer_id.to_base58()
        if pid == self.peer_id:
            raise DialError("refusing to dial ourselves")
        if self.scores.is_banned(pid):
            raise PeerBanned(f"peer {pid} is banned")
        if pid not in self.peers() and len(self.peers()) >= self.config.max_peers:
            raise DialError(f"max peers ({self.config.max_peers}) reached")
        try:
            with trio.fail_after(timeout):
                await self.host.connect(info)
        except trio.TooSlowError as exc:
            raise DialError(f"connecting to {pid} timed out after {timeout:g} s") from exc
        except Exception as exc:
            raise DialError(f"cannot connect to {pid}: {exc}") from exc
        return pid

    async def disconnect(self, peer_id: str) -> None:
        await self._disconnect(parse_peer_id(peer_id))

    async def _keep_bootnode(self, addr: str) -> None:
        """Keep a connection to one bootnode; re-dial with exponential backoff + jitter when lost."""
        info = info_from_p2p_addr(parse_multiaddr(addr))
        pid = info.peer_id.to_base58()
        if pid == self.peer_id:
            return
        delay = self.config.redial_min_s
        while True:
            if pid not in self.peers() and not self.scores.is_banned(pid):
                try:
                    await self._dial(info, timeout=10.0)
                    log.info("connected to bootnode %s", pid)
                    delay = self.config.redial_min_s
                except P2PError as exc:
                    log.info("bootnode %s unreachable (%s); retrying in %.1f s", pid, exc, delay)
                    await trio.sleep(delay * random.uniform(0.8, 1.2))
                    delay = min(delay * 2, self.config.redial_max_s)
                    continue
            await trio.sleep(self.config.redial_min_s)

    async def _discovery_loop(self) -> None:
        """Find peers beyond the bootnodes: ask the DHT for peers near our id, dial some."""
        assert self.dht is not None
        await trio.sleep(0.2)
        while True:
            if len(self.peers()) < self.config.max_peers and self.peers():
                try:
                    with trio.move_on_after(10):
                        found = await self.dht.peer_routing.find_closest_peers_network(
                            self.host.get_id().to_bytes(), count=20
                        )
                        for peer in found:
                            pid = peer.to_base58()
                            if pid == self.peer_id or pid in self.peers() or self.scores.is_banned(pid):
                                continue
                            if len(self.peers()) >= self.config.max_peers:
                                break
                            try:
                                await self.connect_peer(pid, timeout=5.0)
                                log.info("discovered %s through the DHT", pid)
                            except P2PError as exc:
                                log.debug("DHT peer %s not reachable: %s", pid, exc)
                except Exception as exc:
                    log.debug("DHT discovery round failed: %s", exc)
            await trio.sleep(self.config.discovery_interval_s)

    # ------------------------------------------------------------------ scores and bans
    def report(self, peer_id: str, penalty: float, reason: str) -> None:
        """Lower ``peer_id``'s score; at or below the threshold it is disconnected and banned."""
        self.scores.penalise(peer_id, penalty, reason)

    def score(self, peer_id: str) -> float:
        return self.scores.score(peer_id)

    def is_banned(self, peer_id: str) -> bool:
        banned = self.scores.is_banned(peer_id)
        if not banned:
            try:
                pid = parse_peer_id(peer_id)
            except P2PError:
                return False
            if pid in self.gossip.pubsub.blacklisted_peers:
                self.gossip.pubsub.remove_from_blacklist(pid)
        return banned

    def _on_ban(self, peer_id: str, reason: str) -> None:
        pid = parse_peer_id(peer_id)
        self._emit(PeerEvent("banned", peer_id, reason))
        if self._running:
            self.gossip.pubsub.add_to_blacklist(pid)
        if self._nursery is not None:
            self._nursery.start_soon(self._disconnect, pid)

    # ------------------------------------------------------------------ gossip
    def topic(self, kind: str) -> str:
        """``/mindnode/<chain_id>/<kind>/1`` for this node's chain."""
        return topic_name(self.config.chain_id, kind)

    async def subscribe(self, topic: str, validator: Validator | None = None) -> Subscription:
        return await self.gossip.subscribe(topic, validator)

    def set_validator(self, topic: str, validator: Validator | None) -> None:
        self.gossip.set_validator(topic, validator)

    async def publish(self, topic: str, data: bytes, timeout: float = 5.0) -> None:
        await self.gossip.publish(topic, data, timeout)

    # ------------------------------------------------------------------ request/response
    def serve(self, protocol: str, handler: Handler, max_request_bytes: int = DEFAULT_MAX_REQUEST,
              max_response_bytes: int = DEFAULT_MAX_RESPONSE, request_timeout: float = 10.0) -> None:
        self.reqresp.serve(protocol, handler, max_request_bytes=max_request_bytes,
                           max_response_bytes=max_response_bytes, request_timeout=request_timeout)

    async def request(self, peer_id: str, protocol: str, payload: bytes, timeout: float = 10.0,
                      max_response_bytes: int | None = None) -> bytes:
        return await self.reqresp.request(peer_id, protocol, payload, timeout,
                                          max_response_bytes=max_response_bytes)
