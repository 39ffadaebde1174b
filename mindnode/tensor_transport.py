"""Adapter: a p2p host's ``BulkService`` as the trainer's ``Transport``.

Why here: ``trainer`` knows tensors and peers, ``p2p`` knows bytes and protocols; ``mindnode``
wires them (ARCHITECTURE.md). The two APIs already match 1:1 (``send``/``recv`` of one ordered
message per (peer, channel)), so this module only maps errors:

- ``p2p.errors.PeerTimeout``  -> ``trainer.errors.PeerTimeout`` (peer did not answer in time)
- ``PeerGone``, ``DialError``, ``PeerBanned``, ``ProtocolViolation`` and any other per-peer
  ``P2PError`` -> ``trainer.errors.PeerFailure`` (the averaging drops that peer)
- ``MessageTooLarge`` -> ``TrainerError`` (our own configuration: chunks larger than the link's
  message limit; retrying without the peer would not help)
- the bulk service not running -> ``TransportClosed`` (this worker cannot continue)
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from p2p import errors as p2p_errors
from trainer.errors import PeerFailure, PeerTimeout, TrainerError, TransportClosed

if TYPE_CHECKING:
    from p2p.bulk import BulkService


class BulkTransport:
    """``trainer.transport.Transport`` over ``p2p.bulk.BulkService`` (one per host)."""

    def __init__(self, bulk: BulkService, self_id: str):
        self.bulk = bulk
        self.self_id = self_id

    async def send(self, peer_id: str, channel: str, data: bytes | bytearray | memoryview, timeout: float) -> None:
        try:
            await self.bulk.send(peer_id, channel, data, timeout)
        except p2p_errors.P2PError as exc:
            raise _map(peer_id, exc) from exc

    async def recv(self, peer_id: str, channel: str, timeout: float) -> bytes | bytearray:
        try:
            return await self.bulk.recv(peer_id, channel, timeout)
        except p2p_errors.P2PError as exc:
            raise _map(peer_id, exc) from exc


def _map(peer_id: str, exc: p2p_errors.P2PError) -> TrainerError:
    if isinstance(exc, p2p_errors.PeerTimeout):
        return PeerTimeout(peer_id, str(exc))
    if isinstance(exc, p2p_errors.MessageTooLarge):
        return TrainerError(f"message too large for the bulk link: {exc}")
    if type(exc) is p2p_errors.P2PError and "not running" in str(exc):
        return TransportClosed(f"bulk service is not running: {exc}")
    return PeerFailure(peer_id, str(exc))


def transport_for(node) -> BulkTransport:
    """The trainer transport of a running ``p2p.node.Node`` (its ``bulk`` service and peer id)."""
    return BulkTransport(node.bulk, node.peer_id)
