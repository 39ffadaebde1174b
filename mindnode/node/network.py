"""The node service's view of the network: a thin adapter over `p2p.node.Node`.

`p2p` owns the libp2p host (Noise only, yamux), GossipSub with per-topic validators, framed
request/response, bootnode re-dialing, DHT discovery and peer scores/bans. This adapter adds what
only the daemon needs:

* topic *kinds* (``block``, ``tx``, ``vote``) with one validator and one handler each; a validator
  answers ACCEPT (deliver + forward), IGNORE (drop quietly: duplicates, stale) or REJECT (drop and
  lower the forwarder's score: malformed or badly signed);
* errors of a failed request as one `NetworkError`, so sync code catches one thing;
* a test-only *deny list* (partition tests): a denied peer is disconnected, its gossip dropped and
  it is never asked for blocks; ``allow`` lifts it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import trio

from p2p.errors import P2PError
from p2p.gossip import ACCEPT, IGNORE, REJECT, Validation
from p2p.node import Node, NodeConfig

log = logging.getLogger("mindnode.node")

#: Largest gossip message (a block; the ledger bounds blocks at 8 MiB, devnet blocks are tiny).
MAX_GOSSIP = 4 * 1024 * 1024
MAX_REQUEST = 64 * 1024
MAX_RESPONSE = 16 * 1024 * 1024
REQUEST_TIMEOUT = 10.0

__all__ = ["ACCEPT", "IGNORE", "REJECT", "Network", "NetworkError", "Validation"]

GossipValidator = Callable[[bytes, str], Validation | bool]      # (data, origin peer id)
GossipHandler = Callable[[bytes, str], Awaitable[None]]
RequestHandler = Callable[[bytes, str], Awaitable[bytes]]


class NetworkError(Exception):
    """A peer failed a request (gone, timed out, refused, oversized or malformed answer)."""


class Network:
    def __init__(self, seed: bytes, chain_id: str, listen: list[str], bootnodes: list[str],
                 blob_dir: str | None = None):
        self.chain_id = chain_id
        self.node = Node(NodeConfig(seed=seed, listen=list(listen), bootnodes=list(bootnodes),
                                    chain_id=chain_id, gossip_max_bytes=MAX_GOSSIP, blob_dir=blob_dir))
        self.peer_id = self.node.peer_id
        self._subs: list[tuple[str, GossipValidator, GossipHandler]] = []
        self.denied: set[str] = set()

    # -- gossip -------------------------------------------------------------------------------
    def topic(self, kind: str) -> str:
        return self.node.topic(kind)

    def subscribe(self, kind: str, validator: GossipValidator, handler: GossipHandler) -> None:
        """Register before `run`."""
        self._subs.append((self.topic(kind), validator, handler))

    def _guard(self, topic: str, validator: GossipValidator) -> Callable[[bytes, str], Validation | bool]:
        def check(data: bytes, origin: str) -> Validation | bool:
            if origin in self.denied:
                return IGNORE
            return validator(data, origin)

        return check

    async def publish(self, kind: str, data: bytes) -> None:
        try:
            await self.node.publish(self.topic(kind), data)
        except P2PError as exc:  # no peers yet, or a slow peer: gossip is best effort
            log.debug("publish on %s: %s", kind, exc)

    async def _pump(self, topic: str, handler: GossipHandler, sub) -> None:
        async for msg in sub:
            if msg.from_peer in self.denied:
                continue
            try:
                await handler(msg.data, msg.from_peer)
            except Exception as exc:  # one bad message must not stop the topic
                log.warning("gossip handler on %s failed: %s: %s", topic, type(exc).__name__, exc)

    # -- request/response ---------------------------------------------------------------------
    def serve(self, protocol: str, handler: RequestHandler) -> None:
        async def _handle(data: bytes, peer: str) -> bytes:
            if peer in self.denied:
                raise P2PError("denied")
            return await handler(data, peer)

        self.node.serve(protocol, _handle, max_request_bytes=MAX_REQUEST, max_response_bytes=MAX_RESPONSE)

    async def request(self, peer: str, protocol: str, data: bytes, timeout: float = REQUEST_TIMEOUT) -> bytes:
        try:
            return await self.node.request(peer, protocol, data, timeout, max_response_bytes=MAX_RESPONSE)
        except P2PError as exc:
            raise NetworkError(f"request to {peer} on {protocol} failed: {exc}") from None

    def penalise(self, peer: str, penalty: float, reason: str) -> None:
        self.node.report(peer, penalty, reason)

    # -- peers --------------------------------------------------------------------------------
    def connected_peers(self) -> list[str]:
        return [p for p in self.node.peers() if p not in self.denied]

    def listen_addrs(self) -> list[str]:
        """Dialable addresses: a wildcard listen address (0.0.0.0) is expanded to this host's
        IPv4 addresses, since nobody can dial 0.0.0.0."""
        out: list[str] = []
        for a in self.node.addrs:
            if "/ip4/0.0.0.0/" in a:
                out += [a.replace("/ip4/0.0.0.0/", f"/ip4/{ip}/") for ip in _local_ipv4()]
            else:
                out.append(a)
        return list(dict.fromkeys(out))

    async def deny(self, peer: str) -> None:
        """TEST-ONLY (partition tests): cut the link to `peer` until `allow`. Its gossip is ignored
        (as origin or forwarder), it is never asked for blocks and its requests are refused. Not
        through pubsub's blacklist: py-libp2p 0.8.1's blacklist teardown races stream removal
        (KeyError in `_teardown_if_connected`); both sides of a cut deny each other anyway."""
        self.denied.add(peer)
        await self.node.disconnect(peer)

    def allow(self, peer: str) -> None:
        self.denied.discard(peer)

    # -- lifecycle ----------------------------------------------------------------------------
    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with self.node.started(), trio.open_nursery() as nursery:
            for topic, validator, handler in self._subs:
                sub = await self.node.subscribe(topic, self._guard(topic, validator))
                nursery.start_soon(self._pump, topic, handler, sub)
            task_status.started()
            await trio.sleep_forever()


def _local_ipv4() -> list[str]:
    import socket

    ips = {"127.0.0.1"}
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET):
            ips.add(info[4][0])
    except OSError:
        pass
    return sorted(ips)
