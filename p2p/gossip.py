"""GossipSub topics with per-topic validation, explicit limits and no silent loss.

py-libp2p 0.8.1's pubsub defaults lose messages quietly; this wrapper is where each of those traps
is closed (numbers refer to shared/LIBP2P-NOTES.md):

* (2) per-peer outbound queues hold 32 RPCs and drop the rest at DEBUG level: queues are raised to
  ``queue_size`` and ``publish`` waits (bounded by its timeout) while a peer's queue is nearly full;
  if it stays full, ``PublishError.undelivered`` names the peers that will miss the message.
* (3) spam protection counts 10 msgs/s per peer and topic, *including our own publishes*: the
  limit is ``spam_limit_per_s`` (default 5,000/s), sized for block/tx bursts.
* (4) messages over ~1 MiB vanish: ``publish`` refuses payloads over ``max_message_bytes``
  (1 MiB) with ``MessageTooLarge``; RPC limits get envelope headroom so a 1 MiB payload passes.
* (5) ``publish`` returns before anything is written: ``flush()`` waits for the queues to drain
  (the node calls it on shutdown).
* (6) own messages come back on our subscription: ``Subscription`` filters them out.
* (7) heartbeat defaults to 120 s: set to ``heartbeat_s`` (1 s).
* (11, found here) the subscription channel holds 32 messages and drops the rest with a WARNING
  when the application is slower than a burst: we swap in a channel of ``queue_size``.

CPU per message (one Python thread moves every RPC through Noise and yamux): IDONTWANT only for
messages >= 1 KiB, signed peer records verified once per peer and record, and host addresses
cached for a second (``p2p.libp2p_host``) -- together ~1.5x more messages per second.

Validators are supplied by the caller per topic: ``fn(data, from_peer) -> ACCEPT | REJECT | IGNORE``
(sync or async; ``True``/``False`` are read as ACCEPT/REJECT).  They run before a message is
delivered *or forwarded*; a REJECT calls ``on_reject(forwarder, topic)`` so the node lowers the
forwarding peer's score, IGNORE just drops.  Our own publishes are not re-validated.
"""

from __future__ import annotations

import enum
import inspect
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import trio
from libp2p.abc import IHost
from libp2p.peer.id import ID
from libp2p.pubsub.gossipsub import PROTOCOL_ID, PROTOCOL_ID_V11, PROTOCOL_ID_V12, GossipSub
from libp2p.pubsub.pubsub import Pubsub
from libp2p.tools.anyio_service import background_trio_service

from p2p.errors import MessageTooLarge, P2PError, PeerTimeout, PublishError

log = logging.getLogger("mindnode.p2p")

GOSSIP_MAX_BYTES = 1024 * 1024
_ENVELOPE_HEADROOM = 64 * 1024  # signature, key, seqno, topic ids around the payload
_QUEUE_HEADROOM = 64  # slots kept free for control RPCs (GRAFT/PRUNE/IHAVE)
_TOPIC_PART = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class Validation(enum.Enum):
    """Verdict of a topic validator."""

    ACCEPT = "accept"  # deliver and forward
    REJECT = "reject"  # drop, do not forward, lower the forwarder's score
    IGNORE = "ignore"  # drop, do not forward, no penalty (e.g. duplicate, stale)


ACCEPT, REJECT, IGNORE = Validation.ACCEPT, Validation.REJECT, Validation.IGNORE

Validator = Callable[[bytes, str], Validation | bool | Awaitable[Validation | bool]]


def topic_name(chain_id: str, kind: str) -> str:
    """``/mindnode/<chain_id>/<kind>/1``: plain strings other libp2p implementations can join."""
    for part, what in ((chain_id, "chain id"), (kind, "topic kind")):
        if not _TOPIC_PART.match(part):
            raise ValueError(f"{what} {part!r} must be 1-64 chars of [A-Za-z0-9._-]")
    return f"/mindnode/{chain_id}/{kind}/1"


@dataclass(frozen=True)
class GossipMessage:
    topic: str
    data: bytes
    from_peer: str  # the original publisher (signed)
    seqno: bytes


#: How many delivered message ids a subscription remembers to drop a duplicate copy.
DELIVERED_MEMORY = 8192


class Subscription:
    """Messages of one topic, own publishes filtered out.  ``async for msg in sub`` or ``get``."""

    def __init__(self, gossip: Gossip, topic: str, receive: trio.MemoryReceiveChannel) -> None:
        self.topic = topic
        self._gossip = gossip
        self._receive = receive
        self._own = gossip.host.get_id().to_bytes()
        # (origin, seqno) of messages already delivered, oldest first (bounded). Why: py-libp2p
        # checks "seen" before an awaited validation and marks it after, so two copies of one
        # message arriving together over two mesh links can both pass (seen in a 3-process test:
        # b delivered tx-1 twice, once from a and once via the bootnode).
        self._delivered: dict[tuple[bytes, bytes], None] = {}

    def _first_delivery(self, msg) -> bool:
        key = (bytes(msg.from_id), bytes(msg.seqno))
        if key in self._delivered:
            return False
        if len(self._delivered) >= DELIVERED_MEMORY:
            self._delivered.pop(next(iter(self._delivered)))
        self._delivered[key] = None
        return True

    async def get(self, timeout: float | None = None) -> GossipMessage:
        """Next message; ``PeerTimeout`` after ``timeout`` s, ``P2PError`` once unsubscribed."""
        with trio.move_on_after(timeout if timeout is not None else float("inf")):
            while True:
                try:
                    msg = await self._receive.receive()
                except (trio.EndOfChannel, trio.ClosedResourceError) as exc:
                    raise P2PError(f"subscription to {self.topic} is closed") from exc
                if msg.from_id == self._own or not self._first_delivery(msg):
                    continue
                return GossipMessage(self.topic, msg.data, ID(msg.from_id).to_base58(), msg.seqno)
        raise PeerTimeout(f"no message on {self.topic} within {timeout:g} s")

    def __aiter__(self) -> AsyncIterator[GossipMessage]:
        return self._iter()

    async def _iter(self) -> AsyncIterator[GossipMessage]:
        while True:
            try:
                yield await self.get()
            except PeerTimeout:  # pragma: no cover - get() without timeout never times out
                continue
            except P2PError:
                return

    async def unsubscribe(self) -> None:
        await self._gossip.unsubscribe(self.topic)


class _TunedQueues(dict):
    """``Pubsub.peer_queues`` replacement that enlarges each ``RpcQueue`` as it is inserted."""

    def __init__(self, max_rpcs: int, max_rpc_bytes: int) -> None:
        super().__init__()
        self.max_rpcs = max_rpcs
        self.max_rpc_bytes = max_rpc_bytes

    def __setitem__(self, peer, queue) -> None:
        queue._queue.max_size = max(queue._queue.max_size, self.max_rpcs)  # private: see trap 2
        queue.max_message_size = max(queue.max_message_size, self.max_rpc_bytes)
        super().__setitem__(peer, queue)


IDONTWANT_MIN_BYTES = 1024  # go-libp2p's IDontWantMessageThreshold


class _GossipSub(GossipSub):
    """GossipSub that sends IDONTWANT only for messages worth it (>= 1 KiB, as go-libp2p does).

    py-libp2p 0.8.1 announces IDONTWANT to every mesh peer for *every* message, doubling the RPCs
    (each one Noise-encrypted and carrying a signed peer record) for small messages such as
    transactions: ~10% of a burst's CPU here.
    """

    _publishing_size = 0

    async def publish(self, msg_forwarder, pubsub_msg) -> None:
        # read by _emit_idontwant_for_message, which publish() reaches before its first await
        self._publishing_size = len(pubsub_msg.data)
        await super().publish(msg_forwarder, pubsub_msg)

    async def _emit_idontwant_for_message(self, msg_id, topic_ids) -> None:
        if self._publishing_size < IDONTWANT_MIN_BYTES:
            return
        await super()._emit_idontwant_for_message(msg_id, topic_ids)


def _install_signed_record_cache() -> None:
    """Verify each peer's signed peer record once, not on every RPC.

    Every pubsub RPC carries the sender's signed peer record; py-libp2p re-parses and re-verifies
    it (an Ed25519 check plus multiaddr parsing) for each RPC -- ~12% of a gossip burst's CPU.
    The same bytes from the same peer verify the same way, so successes are memoised (bounded).
    The name is replaced in the modules that call it: process-wide, and only ever skips a
    repeat of a verification that already succeeded.
    """
    import libp2p.pubsub.gossipsub as gossipsub_mod
    import libp2p.pubsub.pubsub as pubsub_mod

    original = pubsub_mod.maybe_consume_signed_record
    if getattr(original, "_mindnode_cached", False):
        return
    seen: dict[tuple[bytes, bytes], None] = {}

    def cached(msg, host, peer_id) -> bool:
        if not msg.HasField("senderRecord"):
            return original(msg, host, peer_id)
        key = (peer_id.to_bytes(), msg.senderRecord)
        if key in seen:
            return True
        ok = original(msg, host, peer_id)
        if ok:
            if len(seen) >= 4096:
                seen.pop(next(iter(seen)))
            seen[key] = None
        return ok

    cached._mindnode_cached = True  # type: ignore[attr-defined]
    pubsub_mod.maybe_consume_signed_record = cached
    gossipsub_mod.maybe_consume_signed_record = cached


_install_signed_record_cache()


class Gossip:
    """GossipSub on a host, configured for mindnode traffic (see the module docstring)."""

    def __init__(self, host: IHost, *, max_message_bytes: int = GOSSIP_MAX_BYTES,
                 queue_size: int = 4096, spam_limit_per_s: float = 5000.0, heartbeat_s: float = 1.0,
                 degree: int = 6, degree_low: int = 4, degree_high: int = 12,
                 on_reject: Callable[[str, str], None] | None = None) -> None:
        if queue_size <= _QUEUE_HEADROOM * 2:
            raise ValueError(f"queue_size must exceed {_QUEUE_HEADROOM * 2}")
        self.host = host
        self.max_message_bytes = max_message_bytes
        self.queue_size = queue_size
        self.on_reject = on_reject
        self.router = _GossipSub(
            protocols=[PROTOCOL_ID_V12, PROTOCOL_ID_V11, PROTOCOL_ID],
            degree=degree, degree_low=degree_low, degree_high=degree_high,
            heartbeat_initial_delay=0.1, heartbeat_interval=heartbeat_s,  # type: ignore[arg-type]
            spam_protection_enabled=spam_limit_per_s > 0,
            max_messages_per_topic_per_second=spam_limit_per_s,
        )
        self.pubsub = Pubsub(host, self.router, max_inbound_rpc_size=max_message_bytes + _ENVELOPE_HEADROOM)
        # trap 2/4: pubsub creates each peer's RpcQueue with fixed defaults (32 RPCs, 1 MiB); this
        # dict resizes every queue the moment pubsub registers it, before any message can use it
        self.pubsub.peer_queues = _TunedQueues(queue_size, max_message_bytes + _ENVELOPE_HEADROOM)
        self._validators: dict[str, Validator] = {}

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        async with background_trio_service(self.pubsub), background_trio_service(self.router):
            await self.pubsub.wait_until_ready()
            task_status.started()
            await trio.sleep_forever()

    # ------------------------------------------------------------------ validation
    def set_validator(self, topic: str, validator: Validator | None) -> None:
        """Install (or with ``None`` remove) the validator of ``topic``."""
        if validator is None:
            self._validators.pop(topic, None)
            self.pubsub.remove_topic_validator(topic)
            return
        self._validators[topic] = validator

        async def check(forwarder: ID, msg) -> bool:
            if forwarder == self.host.get_id():
                return True  # our own publish: the caller built it
            origin = ID(msg.from_id).to_base58()
            try:
                verdict = validator(msg.data, origin)
                if inspect.isawaitable(verdict):
                    verdict = await verdict
            except Exception:
                log.exception("validator of %s raised; treating the message as REJECT", topic)
                verdict = REJECT
            if verdict is True:
                verdict = ACCEPT
            elif verdict is False or verdict is None:
                verdict = REJECT
            if verdict == REJECT and self.on_reject is not None:
                self.on_reject(forwarder.to_base58(), topic)
            return verdict == ACCEPT

        self.pubsub.set_topic_validator(topic, check, True)

    # ------------------------------------------------------------------ subscribe / publish
    async def subscribe(self, topic: str, validator: Validator | None = None) -> Subscription:
        if validator is not None:
            self.set_validator(topic, validator)
        sub = await self.pubsub.subscribe(topic)
        # trap 11: swap the 32-slot channel for one sized like our queues
        send, receive = trio.open_memory_channel(self.queue_size)
        old_send = self.pubsub.subscribed_topics_send[topic]
        self.pubsub.subscribed_topics_send[topic] = send
        sub.receive_channel = receive  # unsubscribe() closes our `send` through pubsub
        await old_send.aclose()
        return Subscription(self, topic, receive)

    async def unsubscribe(self, topic: str) -> None:
        await self.pubsub.unsubscribe(topic)

    def _full_peers(self) -> list[str]:
        limit = self.queue_size - _QUEUE_HEADROOM
        return [p.to_base58() for p, q in list(self.pubsub.peer_queues.items()) if len(q) >= limit]

    async def publish(self, topic: str, data: bytes, timeout: float = 5.0) -> None:
        """Publish ``data``; see the module docstring for the limits and ``PublishError``."""
        data = bytes(data)
        if len(data) > self.max_message_bytes:
            raise MessageTooLarge(
                f"gossip message of {len(data)} bytes exceeds the {self.max_message_bytes}-byte limit; "
                "send bulk data over request/response and gossip only an announcement"
            )
        full: list[str] = []
        with trio.move_on_after(timeout):
            while full := self._full_peers():
                await trio.sleep(0.005)
        await self.pubsub.publish(topic, data)
        if full:
            raise PublishError(
                f"gossip queues to {len(full)} peer(s) stayed full for {timeout:g} s; "
                "the message was published to the others only",
                undelivered=full,
            )

    async def flush(self, timeout: float = 1.0) -> bool:
        """Wait until every outbound queue is empty; False if ``timeout`` ran out first."""
        with trio.move_on_after(timeout):
            while any(len(q) for q in list(self.pubsub.peer_queues.values())):
                await trio.sleep(0.005)
            return True
        return False

    def mesh_peers(self, topic: str) -> list[str]:
        return [p.to_base58() for p in self.router.mesh.get(topic, ())]

    def topic_peers(self, topic: str) -> list[str]:
        return [p.to_base58() for p in self.pubsub.peer_topics.get(topic, ())]
