"""p2p: the libp2p layer of mindnode -- peers, topics, protocols and bytes (never blocks or tensors).

Public API (everything else is internal)::

    from p2p import Node, NodeConfig, ACCEPT, REJECT, IGNORE

    cfg = NodeConfig(seed=seed32,                       # 32-byte Ed25519 seed = account key
                     listen=["/ip4/127.0.0.1/tcp/0"],
                     bootnodes=["/ip4/1.2.3.4/tcp/4001/p2p/12D3KooW..."],   # re-dialed with backoff
                     chain_id="devnet", max_peers=50, enable_dht=True, blob_dir="/data/blobs")
    async with Node(cfg).started() as node:             # clean stop (< 1 s) when the block exits
        node.peer_id, node.addrs, node.peers()          # str, [multiaddr str], [peer id str]
        await node.connect(addr) -> peer_id             # DialError / PeerBanned
        await node.disconnect(peer_id)
        events = node.events()                          # trio channel of PeerEvent(kind, peer_id, reason)
                                                        #   kind: "connected" | "disconnected" | "banned"
        # gossip: topic names /mindnode/<chain_id>/<kind>/1
        topic = node.topic("tx")
        sub = await node.subscribe(topic, validator)    # validator(data: bytes, from_peer: str)
                                                        #   -> ACCEPT | REJECT | IGNORE (sync or async)
        msg = await sub.get(timeout)                    # GossipMessage(topic, data, from_peer, seqno);
                                                        #   never our own messages; or `async for msg in sub`
        await node.publish(topic, data, timeout=5)      # MessageTooLarge over 1 MiB; PublishError
                                                        #   (.undelivered peer ids) if queues stay full
        # request/response (one length-prefixed frame each way, per-protocol limits)
        node.serve("/mindnode/sync/1.0.0", handler,     # handler(payload: bytes, from_peer: str) -> bytes
                   max_request_bytes=..., max_response_bytes=..., request_timeout=10)
        resp = await node.request(peer_id, "/mindnode/sync/1.0.0", payload, timeout)
                                                        #   PeerTimeout / RemoteError / MessageTooLarge /
                                                        #   ProtocolViolation / PeerGone / DialError
        # bulk tensors (/mindnode/tensor/1.0.0): ordered per (peer, channel), back-pressured
        await node.bulk.send(peer_id, channel, data, timeout)      # bytes | bytearray | memoryview
        buf = await node.bulk.recv(peer_id, channel, timeout)      # bytearray; PeerTimeout / PeerGone
        # blobs (/mindnode/blob/1.0.0), CIDv1 raw sha2-256 ids ("bafkrei...")
        cid = node.blobs.store.put(data); path = await node.blobs.fetch(cid, peers=None, timeout=120)
        # scores
        node.report(peer_id, penalty, reason)           # at <= -100 (default) the peer is banned 10 min
        node.score(peer_id), node.is_banned(peer_id)

    peer_id_from_public_key(pub32) -> str;  public_key_from_peer_id(peer_id) -> bytes (32)
    peer_id_from_seed(seed32) -> str;       cid_of(data) -> str;  topic_name(chain_id, kind) -> str

Errors are ``p2p.errors.P2PError`` subclasses (see that module).  ``BulkService`` can also be used
on a bare libp2p host (``p2p.libp2p_host.build_host``) -- the trainer's transport maps onto it 1:1.
Run ``python -m p2p.peer --help`` for a stand-alone peer process (used by the multi-process tests).
"""

from p2p.blob import BLOB_PROTOCOL, BlobExchange, BlobStore, cid_of, digest_of_cid
from p2p.bulk import BULK_PROTOCOL, BulkService
from p2p.errors import (
    BlobCorrupt,
    BlobError,
    BlobNotFound,
    ConfigError,
    DialError,
    InvalidContentId,
    InvalidPeerId,
    MessageTooLarge,
    P2PError,
    PeerBanned,
    PeerGone,
    PeerTimeout,
    ProtocolViolation,
    PublishError,
    RemoteError,
    TruncatedFrame,
)
from p2p.gossip import ACCEPT, IGNORE, REJECT, GossipMessage, Subscription, Validation, topic_name
from p2p.identity import (
    peer_id_from_public_key,
    peer_id_from_seed,
    public_key_from_peer_id,
    public_key_from_seed,
)
from p2p.node import Node, NodeConfig, PeerEvent

__all__ = [
    "ACCEPT", "BLOB_PROTOCOL", "BULK_PROTOCOL", "IGNORE", "REJECT",
    "BlobCorrupt", "BlobError", "BlobExchange", "BlobNotFound", "BlobStore", "BulkService",
    "ConfigError", "DialError", "GossipMessage", "InvalidContentId", "InvalidPeerId",
    "MessageTooLarge", "Node", "NodeConfig", "P2PError", "PeerBanned", "PeerEvent", "PeerGone",
    "PeerTimeout", "ProtocolViolation", "PublishError", "RemoteError", "Subscription",
    "TruncatedFrame", "Validation", "cid_of", "digest_of_cid", "peer_id_from_public_key",
    "peer_id_from_seed", "public_key_from_peer_id", "public_key_from_seed", "topic_name",
]
