"""p2p: the libp2p layer of mindnode -- peers, topics, protocols and bytes (never blocks or tensors).

Public API (everything else is internal)::

    from p2p import Node, NodeConfig, ACCEPT, REJECT, IGNORE

    cfg = NodeConfig(seed=seed32,                       # 32-byte Ed25519 seed = account key
                     listen=["/ip4/127.0.0.1/tcp/0"],
                     bootnodes=["/ip4/1.2.3.4/tcp/4001/p2p/12D3KooW..."],   # re-dialed with backoff
                     chain_id="devnet", max_peers=50, enable_dht=True,   # Kademlia discovery
                     enable_mdns=False, blob_dir="/data/blobs")          # blobs off when None
    async with Node(cfg).started() as node:             # stops cleanly (< 1 s) when the block exits
        node.peer_id, node.addrs, node.peers()          # str, [multiaddr str ending /p2p/<id>], [ids]
        await node.connect(addr) -> peer_id             # DialError / PeerBanned / ConfigError
        await node.disconnect(peer_id)
        events = node.events()                          # trio channel of PeerEvent(kind, peer_id, reason)
                                                        #   kind: "connected" | "disconnected" | "banned"
        # gossip on /mindnode/<chain_id>/<kind>/1 (GossipSub v1.2/1.1/1.0, plain topic strings)
        topic = node.topic("tx")
        sub = await node.subscribe(topic, validator)    # validator(data: bytes, from_peer: str)
                                                        #   -> ACCEPT | REJECT | IGNORE, sync or async;
                                                        #   runs before delivery AND forwarding;
                                                        #   REJECT lowers the forwarder's score
        msg = await sub.get(timeout)                    # GossipMessage(topic, data, from_peer, seqno);
                                                        #   never our own; or `async for msg in sub`
        await node.publish(topic, data, timeout=5)      # MessageTooLarge over 1 MiB; PublishError
                                                        #   (.undelivered = peer ids) if a peer's queue
                                                        #   stayed full for `timeout`
        # request/response: one length-prefixed frame each way, limits per protocol
        node.serve("/mindnode/sync/1.0.0", handler,     # handler(payload: bytes, from_peer: str) -> bytes,
                   max_request_bytes=..., max_response_bytes=..., request_timeout=10)   # sync or async
        resp = await node.request(peer_id, "/mindnode/sync/1.0.0", payload, timeout)
                                                        #   PeerTimeout / RemoteError / MessageTooLarge /
                                                        #   ProtocolViolation / DialError / PeerBanned
        # bulk tensors (/mindnode/tensor/1.0.0): ordered per (peer, channel), back-pressured,
        # direct AES-256-GCM TCP pipe keyed over Noise, libp2p-stream fallback (see p2p.bulk)
        await node.bulk.send(peer_id, channel, data, timeout)      # bytes | bytearray | memoryview
        buf = await node.bulk.recv(peer_id, channel, timeout)      # bytearray; PeerTimeout / PeerGone
        # blobs (/mindnode/blob/1.0.0), ids are CIDv1 raw sha2-256 ("bafkrei...", as IPFS)
        cid = node.blobs.store.put(data); path = await node.blobs.fetch(cid, peers=None, timeout=120)
        # scores: penalties from every protocol plus the application's own reports
        node.report(peer_id, penalty, reason)           # score <= -100 (default): disconnected, banned
        node.score(peer_id), node.is_banned(peer_id)    #   for 10 min, refused in and out

    peer_id_from_public_key(pub32) -> str;  public_key_from_peer_id(peer_id) -> bytes (32)
    peer_id_from_seed(seed32) -> str;       cid_of(data) -> str;  topic_name(chain_id, kind) -> str

Errors are ``p2p.errors.P2PError`` subclasses with messages a user can act on.  ``BulkService``
also runs on a bare host (``p2p.libp2p_host.build_host`` + ``await nursery.start(svc.run)``); the
trainer's transport maps onto its ``send``/``recv`` 1:1.  ``python -m p2p.peer --help`` runs a
stand-alone peer driven by JSON lines (the multi-process tests use it); it also shows how a daemon
should stop on SIGINT/SIGTERM without a traceback (trio signal receiver, trap 8).

Benchmarks: ``scripts/bench/p2p.py``.  The py-libp2p traps this package handles are listed in
``p2p.gossip`` (2-7, 11), ``p2p.libp2p_host`` (1, 250 ms connect, auto-dialer, yamux updates),
``p2p.node`` (9), ``p2p.identity`` (10) and ``p2p.peer`` (8).
"""

from __future__ import annotations

import importlib
from typing import Any

# Lazy exports (PEP 562): ``import p2p`` / ``p2p.identity`` must not pull in libp2p (~0.7 s) for
# CLI paths that only compute peer ids; the first use of a name loads its module.
_EXPORTS = {
    "p2p.blob": ["BLOB_PROTOCOL", "BlobExchange", "BlobStore", "cid_of", "digest_of_cid"],
    "p2p.bulk": ["BULK_PROTOCOL", "BulkService"],
    "p2p.errors": ["BlobCorrupt", "BlobError", "BlobNotFound", "ConfigError", "DialError",
                   "InvalidContentId", "InvalidPeerId", "MessageTooLarge", "P2PError", "PeerBanned",
                   "PeerGone", "PeerTimeout", "ProtocolViolation", "PublishError", "RemoteError",
                   "TruncatedFrame"],
    "p2p.gossip": ["ACCEPT", "IGNORE", "REJECT", "GossipMessage", "Subscription", "Validation",
                   "topic_name"],
    "p2p.identity": ["peer_id_from_public_key", "peer_id_from_seed", "public_key_from_peer_id",
                     "public_key_from_seed"],
    "p2p.node": ["Node", "NodeConfig", "PeerEvent"],
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'p2p' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
