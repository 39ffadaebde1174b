"""The transport the trainer needs: ordered messages per (peer, channel), nothing more.

Why so small: the trainer must not know libp2p or the chain (ARCHITECTURE.md). It matches 1:1 the
p2p room's ``BulkService`` (``send``/``recv`` of one message on a named channel to/from one peer,
in order per (peer, channel), with back-pressure), so ``mindnode.tensor_transport`` is a thin
adapter that only maps errors.

Error contract every implementation keeps:
- ``PeerTimeout`` when the peer did not deliver (recv) or accept (send) within ``timeout``;
- ``PeerFailure`` when the peer disconnected or is unreachable;
- ``TransportClosed`` when our own side is closed (this worker cannot continue).

``InMemoryHub`` gives N peers in one trio process for unit tests, with fault injection: a peer
can die (its links break: sends to it fail, receivers drain what was delivered then fail) or go
silent (its messages vanish, receivers time out), either at once or when it is about to send a
message matching a predicate (e.g. "its first all-gather chunk").
"""
from __future__ import annotations

import collections
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import trio

from trainer.errors import PeerFailure, PeerTimeout, TransportClosed

Buffer = bytes | bytearray | memoryview


@runtime_checkable
class Transport(Protocol):
    """What a worker needs from the network: see the module docstring for the error contract."""

    self_id: str

    async def send(self, peer_id: str, channel: str, data: Buffer, timeout: float) -> None:
        """Send one message on ``channel`` to ``peer_id``; blocks under back-pressure."""
        ...

    async def recv(self, peer_id: str, channel: str, timeout: float) -> bytes | bytearray:
        """Return the next message on ``channel`` from ``peer_id``."""
        ...


class CountingTransport:
    """Wraps a transport and counts payload bytes sent and received (for progress and benches)."""

    def __init__(self, inner: Transport):
        self.inner = inner
        self.self_id = inner.self_id
        self.bytes_sent = 0
        self.bytes_recv = 0

    async def send(self, peer_id: str, channel: str, data: Buffer, timeout: float) -> None:
        await self.inner.send(peer_id, channel, data, timeout)
        self.bytes_sent += memoryview(data).nbytes

    async def recv(self, peer_id: str, channel: str, timeout: float) -> bytes | bytearray:
        data = await self.inner.recv(peer_id, channel, timeout)
        self.bytes_recv += len(data)
        return data


FaultPredicate = Callable[[str, str, bytes], bool]  # (to_peer, channel, data) -> trigger?


@dataclass
class _Fault:
    mode: str  # "die" | "silent"
    when: FaultPredicate


@dataclass
class _Link:
    """Messages from one peer to another on one channel."""

    queue: collections.deque = field(default_factory=collections.deque)
    lot: trio.lowlevel.ParkingLot = field(default_factory=trio.lowlevel.ParkingLot)


class InMemoryHub:
    """N peers in one trio process. ``hub.transport(peer_id)`` gives each peer its Transport.

    ``capacity`` bounds each (src, dst, channel) queue in messages, so senders feel back-pressure
    as on a real stream.
    """

    def __init__(self, capacity: int = 64):
        self.capacity = capacity
        self._links: dict[tuple[str, str, str], _Link] = {}
        self._dead: set[str] = set()
        self._silent: set[str] = set()
        self._faults: dict[str, _Fault] = {}
        self._peers: set[str] = set()

    def transport(self, peer_id: str) -> InMemoryTransport:
        self._peers.add(peer_id)
        return InMemoryTransport(self, peer_id)

    # -- fault injection -------------------------------------------------------------------
    def kill(self, peer_id: str) -> None:
        """The peer dies now: its links break and its own calls raise ``TransportClosed``."""
        self._dead.add(peer_id)
        self._wake_all(peer_id)

    def silence(self, peer_id: str) -> None:
        """The peer goes silent now: what it sends vanishes, peers waiting on it time out."""
        self._silent.add(peer_id)

    def fault(self, peer_id: str, mode: str, when: FaultPredicate) -> None:
        """Apply ``mode`` ("die" or "silent") when ``peer_id`` is about to send a matching message.

        The triggering message is not delivered.
        """
        if mode not in ("die", "silent"):
            raise ValueError(f"unknown fault mode {mode!r}")
        self._faults[peer_id] = _Fault(mode, when)

    def is_alive(self, peer_id: str) -> bool:
        return peer_id not in self._dead and peer_id not in self._silent

    # -- internals -------------------------------------------------------------------------
    def _link(self, src: str, dst: str, channel: str) -> _Link:
        key = (src, dst, channel)
        link = self._links.get(key)
        if link is None:
            link = self._links[key] = _Link()
        return link

    def _wake_all(self, peer_id: str) -> None:
        for (src, dst, _), link in self._links.items():
            if peer_id in (src, dst):
                link.lot.unpark_all()

    async def _send(self, src: str, dst: str, channel: str, data: Buffer, timeout: float) -> None:
        if src in self._dead:
            raise TransportClosed(f"transport of {src} is closed")
        fault = self._faults.get(src)
        payload = bytes(data)
        if fault is not None and fault.when(dst, channel, payload):
            del self._faults[src]
            if fault.mode == "die":
                self.kill(src)
                raise TransportClosed(f"transport of {src} is closed (injected death)")
            self.silence(src)
        if dst not in self._peers:
            raise PeerFailure(dst, "unknown peer (not connected)")
        link = self._link(src, dst, channel)
        deadline = trio.current_time() + _finite(timeout)
        while True:
            if dst in self._dead:
                raise PeerFailure(dst, "disconnected")
            if src in self._dead:
                raise TransportClosed(f"transport of {src} is closed")
            if len(link.queue) < self.capacity:
                break
            with trio.move_on_at(deadline):
                await link.lot.park()
                continue
            raise PeerTimeout(dst, f"did not accept data on {channel!r} within {timeout:.3g} s")
        if src in self._silent:
            await trio.lowlevel.checkpoint()
            return  # vanishes
        link.queue.append(payload)
        link.lot.unpark_all()
        await trio.lowlevel.checkpoint()

    async def _recv(self, dst: str, src: str, channel: str, timeout: float) -> bytes:
        if dst in self._dead:
            raise TransportClosed(f"transport of {dst} is closed")
        link = self._link(src, dst, channel)
        deadline = trio.current_time() + _finite(timeout)
        while not link.queue:
            if src in self._dead:
                raise PeerFailure(src, "disconnected")
            if dst in self._dead:
                raise TransportClosed(f"transport of {dst} is closed")
            with trio.move_on_at(deadline):
                await link.lot.park()
                continue
            raise PeerTimeout(src, f"sent nothing on {channel!r} within {timeout:.3g} s")
        data = link.queue.popleft()
        link.lot.unpark_all()
        await trio.lowlevel.checkpoint()
        return data


def _finite(timeout: float) -> float:
    if timeout is None or math.isnan(timeout) or timeout < 0:
        raise ValueError(f"timeout must be a non-negative number, got {timeout!r}")
    return timeout


class InMemoryTransport:
    """One peer's view of an ``InMemoryHub``."""

    def __init__(self, hub: InMemoryHub, self_id: str):
        self.hub = hub
        self.self_id = self_id

    async def send(self, peer_id: str, channel: str, data: Buffer, timeout: float) -> None:
        await self.hub._send(self.self_id, peer_id, channel, data, timeout)

    async def recv(self, peer_id: str, channel: str, timeout: float) -> bytes:
        return await self.hub._recv(self.self_id, peer_id, channel, timeout)
