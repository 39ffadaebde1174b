"""Domain exceptions of the p2p room.

Every failure that crosses the p2p boundary is one of these, so callers (the node daemon, the
trainer's transport adapter) can catch ``P2PError`` and print one actionable line.
"""

from __future__ import annotations


class P2PError(Exception):
    """Base class of every p2p-layer error."""


class ConfigError(P2PError):
    """A host option is invalid (bad seed, bad multiaddr, bad limit)."""


class InvalidPeerId(P2PError):
    """A peer id string could not be parsed or does not embed an Ed25519 key."""


class PeerTimeout(P2PError):
    """A peer did not answer (or did not finish a transfer) within the timeout."""


class PeerGone(P2PError):
    """The peer disconnected, reset the stream or closed it before the exchange finished."""


class PeerBanned(P2PError):
    """The peer is banned (its score fell below the threshold); it is refused for a while."""


class DialError(P2PError):
    """Could not open a connection or a stream to the peer."""


class ProtocolViolation(P2PError):
    """The peer sent bytes that break the protocol (garbage, truncated or oversized frame)."""


class TruncatedFrame(ProtocolViolation):
    """The stream or socket ended in the middle of a frame (peer killed, or a sender gave up)."""


class MessageTooLarge(P2PError):
    """A payload exceeds the limit for this protocol or topic; it was not sent."""


class RemoteError(P2PError):
    """The remote handler failed and answered with an error message."""


class PublishError(P2PError):
    """A gossip publish did not reach every connected peer; ``undelivered`` lists who missed it."""

    def __init__(self, message: str, undelivered: list[str] | None = None) -> None:
        super().__init__(message)
        self.undelivered = list(undelivered or [])


class BlobError(P2PError):
    """Base class of blob-exchange errors."""


class InvalidContentId(BlobError):
    """A string is not a CIDv1 raw sha2-256 content id."""


class BlobNotFound(BlobError):
    """No local copy and no reachable peer had the blob."""


class BlobCorrupt(BlobError):
    """Bytes did not match their content id (a chunk hash or the whole-blob hash)."""


class BlobTooLarge(BlobError):
    """A blob being stored is over the size limit it was given; nothing was kept."""
