"""Bulk byte messages between two peers (``/mindnode/tensor/1.0.0``): the trainer's fast path.

Why not just a libp2p stream: py-libp2p moves one Noise + yamux stream at 100-170 MB/s, CPU-bound
in pure Python (Noise frames are 64 KiB, yamux windows and framing are Python code).  Averaging
tensors needs several times that.  So ``mode="direct"`` (the default) uses the libp2p stream only
as an authenticated control channel:

1. the sender opens ``/mindnode/tensor/1.0.0`` (Noise-encrypted, the peer id is proven by the
   handshake) and sends ``b"D" + key(32) + token(16)``: a fresh random AES-256-GCM key and a
   single-use connection token;
2. the receiver registers the token for that (authenticated) peer and answers ``b"K" + port``
   (its direct TCP listener) or ``b"N"`` (no direct path: the same stream carries the data);
3. the sender dials that port on the IP the libp2p connection uses, writes the token, waits for
   a one-byte ack, then sends messages as AES-256-GCM records (<= 4 MiB each, counter nonces,
   one key per direction and per pipe) -- C-speed crypto from ``cryptography``, ``recv_into`` and
   ``encrypt_into``/``decrypt_into`` straight into the destination buffer.

Confidentiality and integrity come from the key only the two Noise-authenticated peers know; a
third party that steals a token can at worst make the pipe fail (tags will not verify), which the
sender sees as an error.  ``mode="stream"`` sends the same messages in plain framing over the
libp2p stream itself (no msgpack, 4 MiB writes) and is the fallback.

Message framing (stream mode, and the plaintext inside direct-mode records):
``u16 channel length | channel (utf-8) | u64 payload length`` then the payload.  Direct mode
encrypts that header as one record, then the payload as records of ``chunk_bytes``; each record
on the TCP socket is ``u32 ciphertext length | ciphertext+tag``.

Ordering and back-pressure: one pipe per (sender, receiver) direction; a message is written whole
under a lock, so messages are ordered per peer (hence per (peer, channel)).  The receiver stops
reading from a peer while that peer's undelivered messages exceed ``max_buffered_bytes`` (one
message is always admitted, so any message up to ``max_message_bytes`` gets through): TCP / yamux
flow control then blocks the sender, whose ``send`` raises ``PeerTimeout`` when its timeout runs
out (the pipe is then closed, because a half-sent message cannot be resumed).
"""

from __future__ import annotations

import collections
import logging
import os
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

import trio
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from libp2p.abc import IHost, INetConn, INetStream, INetwork, INotifee
from libp2p.custom_types import TProtocol

from p2p.errors import (
    MessageTooLarge,
    P2PError,
    PeerGone,
    PeerTimeout,
    ProtocolViolation,
    TruncatedFrame,
)
from p2p.framing import StreamReader, close_stream, open_stream_with_retry, write_all
from p2p.identity import parse_peer_id

log = logging.getLogger("mindnode.p2p")

BULK_PROTOCOL = TProtocol("/mindnode/tensor/1.0.0")
DEFAULT_MAX_MESSAGE = 512 * 1024 * 1024
DEFAULT_MAX_BUFFERED = 1024 * 1024 * 1024
DEFAULT_CHUNK = 4 * 1024 * 1024
MAX_RECORD = 16 * 1024 * 1024 + 16  # largest ciphertext record a receiver accepts
MAX_CHANNEL = 256
TOKEN_BYTES = 16
KEY_BYTES = 32
TAG = 16
SETUP_TIMEOUT = 10.0
MAX_PENDING_DIRECT = 64  # direct connections allowed to wait for their token at once
NO_DIRECT_RETRY_S = 60.0  # after a failed direct set-up, use the libp2p stream this long
_HDR = struct.Struct(">H")
_LEN64 = struct.Struct(">Q")
_LEN32 = struct.Struct(">I")
_PORT = struct.Struct(">H")
_NONCE_LIMIT = 1 << 32  # rekey (new pipe) long before GCM's counter space is a concern

ViolationHook = Callable[[str, str], None]


class _DirectUnreachable(Exception):
    """The peer's direct bulk port cannot be reached from here (use the libp2p stream)."""


def _nonce(counter: int) -> bytes:
    return counter.to_bytes(12, "big")


def _encode_header(channel: str, length: int) -> bytes:
    raw = channel.encode()
    if not raw or len(raw) > MAX_CHANNEL:
        raise ValueError(f"channel name must be 1..{MAX_CHANNEL} utf-8 bytes")
    return _HDR.pack(len(raw)) + raw + _LEN64.pack(length)


def _decode_header(data: bytes) -> tuple[str, int]:
    if len(data) < _HDR.size:
        raise ProtocolViolation("bulk header too short")
    (clen,) = _HDR.unpack_from(data)
    if clen == 0 or clen > MAX_CHANNEL or len(data) != _HDR.size + clen + _LEN64.size:
        raise ProtocolViolation("malformed bulk header")
    try:
        channel = data[_HDR.size : _HDR.size + clen].decode()
    except UnicodeDecodeError as exc:
        raise ProtocolViolation("bulk channel name is not utf-8") from exc
    (length,) = _LEN64.unpack_from(data, _HDR.size + clen)
    return channel, length


class _Mailbox:
    """Undelivered messages of one (peer, channel), plus the waiters' wake-up event."""

    __slots__ = ("items", "changed")

    def __init__(self) -> None:
        self.items: collections.deque[bytearray] = collections.deque()
        self.changed = trio.Event()

    def wake(self) -> None:
        self.changed.set()
        self.changed = trio.Event()


@dataclass
class _PeerIn:
    """Receive-side state of one peer: mailboxes, buffered byte count, liveness."""

    mailboxes: dict[str, _Mailbox] = field(default_factory=dict)
    buffered: int = 0
    space: trio.Event = field(default_factory=trio.Event)
    gone: bool = False
    reader: trio.CancelScope | None = None

    def box(self, channel: str) -> _Mailbox:
        box = self.mailboxes.get(channel)
        if box is None:
            box = self.mailboxes[channel] = _Mailbox()
        return box

    def wake_all(self) -> None:
        for box in self.mailboxes.values():
            box.wake()


class _OutPipe:
    """Send side of one direction: a direct encrypted TCP socket or a libp2p stream."""

    def __init__(self, *, sock: trio.socket.SocketType | None = None, key: bytes | None = None,
                 stream: INetStream | None = None, chunk: int = DEFAULT_CHUNK) -> None:
        self.sock = sock
        self.stream = stream
        self.aead = AESGCM(key) if key is not None else None
        self.counter = 0
        self.chunk = chunk
        self.broken = False
        self.buf = bytearray(_LEN32.size + chunk + TAG) if sock is not None else None

    @property
    def kind(self) -> str:
        return "direct" if self.sock is not None else "stream"

    async def _send_all(self, view: memoryview) -> None:
        assert self.sock is not None
        while view:
            sent = await self.sock.send(view)
            view = view[sent:]

    async def _record(self, plain: memoryview) -> None:
        assert self.aead is not None and self.buf is not None
        n = len(plain)
        out = memoryview(self.buf)
        _LEN32.pack_into(self.buf, 0, n + TAG)
        self.aead.encrypt_into(_nonce(self.counter), plain, None, out[4 : 4 + n + TAG])
        self.counter += 1
        await self._send_all(out[: 4 + n + TAG])

    async def send_message(self, channel: str, data: memoryview) -> None:
        header = _encode_header(channel, len(data))
        if self.sock is not None:
            await self._record(memoryview(header))
            for i in range(0, len(data), self.chunk):
                await self._record(data[i : i + self.chunk])
        else:
            assert self.stream is not None
            if len(data) <= 65536:
                await write_all(self.stream, header + bytes(data))
            else:
                await write_all(self.stream, header)
                await write_all(self.stream, data)

    async def aclose(self) -> None:
        self.broken = True
        if self.sock is not None:
            self.sock.close()
        if self.stream is not None:
            await close_stream(self.stream)


class _Notifee(INotifee):
    """Forwards libp2p connect/disconnect events to the service (peer-gone detection)."""

    def __init__(self, service: BulkService) -> None:
        self.service = service

    async def opened_stream(self, network: INetwork, stream: INetStream) -> None:
        pass

    async def closed_stream(self, network: INetwork, stream: INetStream) -> None:
        pass

    async def connected(self, network: INetwork, conn: INetConn) -> None:
        self.service._peer_connected(str(conn.muxed_conn.peer_id))

    async def disconnected(self, network: INetwork, conn: INetConn) -> None:
        peer = conn.muxed_conn.peer_id
        if not network.get_connections(peer):
            await self.service._peer_disconnected(str(peer))

    async def listen(self, network, multiaddr) -> None:
        pass

    async def listen_close(self, network, multiaddr) -> None:
        pass


class BulkService:
    """Ordered, back-pressured byte messages per (peer, channel); see the module docstring.

    One per host.  Start it inside a nursery while the host runs (``await nursery.start(svc.run)``);
    cancelling that task closes every pipe and socket.
    """

    def __init__(
        self,
        host: IHost,
        *,
        mode: str = "direct",
        max_message_bytes: int = DEFAULT_MAX_MESSAGE,
        max_buffered_bytes: int = DEFAULT_MAX_BUFFERED,
        chunk_bytes: int = DEFAULT_CHUNK,
        direct_bind: str = "127.0.0.1",
        on_violation: ViolationHook | None = None,
    ) -> None:
        if mode not in ("direct", "stream"):
            raise ValueError("mode must be 'direct' or 'stream'")
        if not 1024 <= chunk_bytes <= MAX_RECORD - TAG:
            raise ValueError("chunk_bytes must be between 1 KiB and 16 MiB")
        self.host = host
        self.mode = mode
        self.max_message_bytes = max_message_bytes
        self.max_buffered_bytes = max_buffered_bytes
        self.chunk_bytes = chunk_bytes
        self.direct_bind = direct_bind
        self.on_violation = on_violation
        self._in: dict[str, _PeerIn] = {}
        self._out: dict[str, _OutPipe] = {}
        self._out_locks: dict[str, trio.Lock] = collections.defaultdict(trio.Lock)
        self._sessions: dict[bytes, tuple[str, bytes, float]] = {}
        self._no_direct: dict[str, float] = {}  # peer -> until when its direct port is not tried
        self._unauthenticated = 0  # direct connections that have not presented a valid token yet
        self._listener: trio.socket.SocketType | None = None
        self._nursery: trio.Nursery | None = None
        self._notifee = _Notifee(self)
        self.direct_port: int | None = None

    # ------------------------------------------------------------------ lifecycle
    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Serve the protocol until cancelled; closes every pipe on the way out."""
        network = self.host.get_network()
        network.register_notifee(self._notifee)
        self.host.set_stream_handler(BULK_PROTOCOL, self._handle_stream)
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                if self.mode == "direct":
                    family = socket.AF_INET6 if ":" in self.direct_bind else socket.AF_INET
                    sock = trio.socket.socket(family, socket.SOCK_STREAM)
                    self._listener = sock
                    await sock.bind((self.direct_bind, 0))
                    sock.listen(64)
                    self.direct_port = sock.getsockname()[1]
                    nursery.start_soon(self._accept_loop, sock)
                task_status.started()
                await trio.sleep_forever()
        finally:
            self._nursery = None
            network.remove_notifee(self._notifee)
            if self._listener is not None:
                self._listener.close()
                self._listener = None
            with trio.CancelScope(shield=True):
                for pipe in list(self._out.values()):
                    await pipe.aclose()
            self._out.clear()
            for peer in self._in.values():
                peer.gone = True
                peer.wake_all()

    # ------------------------------------------------------------------ public API
    async def send(self, peer_id: str, channel: str, data: bytes | bytearray | memoryview,
                   timeout: float) -> None:
        """Deliver one message on ``channel`` to ``peer_id`` (ordered per peer, back-pressured).

        Raises ``MessageTooLarge`` (nothing sent), ``PeerTimeout`` (not fully written in time; the
        pipe is closed and the receiver discards the partial message) or ``PeerGone``.
        """
        view = memoryview(data).cast("B")
        if len(view) > self.max_message_bytes:
            raise MessageTooLarge(
                f"bulk message of {len(view)} bytes exceeds the limit of {self.max_message_bytes} bytes"
            )
        if self._nursery is None:
            raise P2PError("bulk service is not running")
        pipe: _OutPipe | None = None
        with trio.move_on_after(timeout) as scope:
            async with self._out_locks[peer_id]:
                pipe = await self._pipe_to(peer_id)
                try:
                    await pipe.send_message(channel, view)
                    if pipe.counter >= _NONCE_LIMIT:
                        await self._drop_pipe(peer_id, pipe)
                    return
                except (OSError, PeerGone, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                    await self._drop_pipe(peer_id, pipe)
                    raise PeerGone(f"peer {peer_id} went away during a bulk send: {exc}") from exc
                except BaseException:
                    # cancelled mid-message: the pipe holds a partial message, it cannot be reused
                    with trio.CancelScope(shield=True):
                        await self._drop_pipe(peer_id, pipe)
                    raise
        assert scope.cancelled_caught
        raise PeerTimeout(f"bulk send of {len(view)} bytes to {peer_id} did not finish within {timeout:g} s")

    async def recv(self, peer_id: str, channel: str, timeout: float) -> bytearray:
        """The next message on ``channel`` from ``peer_id``.

        Raises ``PeerTimeout`` if none arrives in ``timeout`` seconds, ``PeerGone`` if the peer is
        (or becomes) disconnected with nothing buffered.
        """
        peer = self._in.setdefault(peer_id, _PeerIn())
        box = peer.box(channel)
        with trio.move_on_after(timeout):
            while True:
                if box.items:
                    msg = box.items.popleft()
                    peer.buffered -= len(msg)
                    peer.space.set()
                    peer.space = trio.Event()
                    return msg
                if peer.gone or not self._connected(peer_id):
                    raise PeerGone(f"peer {peer_id} is not connected")
                await box.changed.wait()
        raise PeerTimeout(f"no bulk message on {channel!r} from {peer_id} within {timeout:g} s")

    # ------------------------------------------------------------------ connection events
    def _connected(self, peer_id: str) -> bool:
        try:
            return bool(self.host.get_network().get_connections(parse_peer_id(peer_id)))
        except P2PError:
            return False

    def _peer_connected(self, peer_id: str) -> None:
        peer = self._in.get(peer_id)
        if peer is not None:
            peer.gone = False

    async def _peer_disconnected(self, peer_id: str) -> None:
        peer = self._in.get(peer_id)
        if peer is not None:
            peer.gone = True
            peer.wake_all()
        pipe = self._out.pop(peer_id, None)
        if pipe is not None:
            await pipe.aclose()

    def _violation(self, peer_id: str, reason: str) -> None:
        log.warning("bulk: peer %s violated the protocol: %s", peer_id, reason)
        if self.on_violation is not None:
            self.on_violation(peer_id, reason)

    # ------------------------------------------------------------------ send side
    async def _drop_pipe(self, peer_id: str, pipe: _OutPipe) -> None:
        if self._out.get(peer_id) is pipe:
            del self._out[peer_id]
        await pipe.aclose()

    async def _pipe_to(self, peer_id: str) -> _OutPipe:
        pipe = self._out.get(peer_id)
        if pipe is not None and not pipe.broken:
            return pipe
        stream = await open_stream_with_retry(self.host, peer_id, BULK_PROTOCOL, what="a bulk stream")
        try:
            if self.mode == "stream" or self._no_direct.get(peer_id, -1.0) > trio.current_time():
                await write_all(stream, b"S")
                pipe = _OutPipe(stream=stream)
            else:
                try:
                    pipe = await self._setup_direct(peer_id, stream)
                except _DirectUnreachable as exc:
                    # firewall / NAT / another interface / shed: use the libp2p stream for a while
                    log.info("direct bulk path to %s unavailable (%s); using the libp2p stream", peer_id, exc)
                    self._no_direct[peer_id] = trio.current_time() + NO_DIRECT_RETRY_S
                    await close_stream(stream)
                    return await self._pipe_to(peer_id)
        except BaseException:
            with trio.CancelScope(shield=True):
                await close_stream(stream, reset=True)
            raise
        self._out[peer_id] = pipe
        return pipe

    async def _setup_direct(self, peer_id: str, stream: INetStream) -> _OutPipe:
        key, token = os.urandom(KEY_BYTES), os.urandom(TOKEN_BYTES)
        await write_all(stream, b"D" + key + token)
        reader = StreamReader(stream)
        answer = await reader.read_exactly(1, what="bulk setup answer")
        if answer == b"N":
            return _OutPipe(stream=stream)  # the receiver has no direct path: stay on this stream
        if answer != b"K":
            raise ProtocolViolation(f"bad bulk setup answer {answer!r} from {peer_id}")
        (port,) = _PORT.unpack(await reader.read_exactly(_PORT.size, what="bulk port"))
        remote = stream.get_remote_address()
        if remote is None:
            raise PeerGone(f"no remote address for {peer_id}")
        sock = trio.socket.socket(socket.AF_INET6 if ":" in remote[0] else socket.AF_INET, socket.SOCK_STREAM)
        try:
            _tune(sock)
            try:
                with trio.fail_after(SETUP_TIMEOUT / 2):
                    await sock.connect((remote[0], port))
            except (OSError, trio.TooSlowError) as exc:
                raise _DirectUnreachable(f"{remote[0]}:{port}: {exc}") from exc
            await _send_all(sock, memoryview(token))
            ack = bytearray(1)
            try:
                with trio.fail_after(SETUP_TIMEOUT / 2):
                    got = await sock.recv_into(ack, 1)
            except (OSError, trio.TooSlowError) as exc:
                raise _DirectUnreachable(f"no answer on the direct port: {exc}") from exc
            if got != 1 or ack != b"\x01":  # e.g. shed under a connection flood
                raise _DirectUnreachable("the peer closed the direct connection before accepting it")
        except OSError as exc:
            sock.close()
            raise PeerGone(f"direct bulk connection to {peer_id} failed: {exc}") from exc
        except BaseException:
            sock.close()
            raise
        await close_stream(stream)
        return _OutPipe(sock=sock, key=key, chunk=self.chunk_bytes)

    # ------------------------------------------------------------------ receive side
    async def _admit(self, peer_id: str, peer: _PeerIn, length: int) -> bytearray:
        """Wait for buffer space (memory back-pressure), then allocate the message buffer."""
        while peer.buffered and peer.buffered + length > self.max_buffered_bytes:
            await peer.space.wait()
        peer.buffered += length
        return bytearray(length)

    def _deliver(self, peer: _PeerIn, channel: str, msg: bytearray) -> None:
        box = peer.box(channel)
        box.items.append(msg)
        box.wake()

    def _check_length(self, peer_id: str, length: int) -> None:
        if length > self.max_message_bytes:
            raise MessageTooLarge(
                f"peer {peer_id} announced a {length}-byte bulk message (limit {self.max_message_bytes})"
            )

    def _start_reader(self, peer_id: str) -> tuple[_PeerIn, trio.CancelScope]:
        peer = self._in.setdefault(peer_id, _PeerIn())
        peer.gone = False
        if peer.reader is not None:
            peer.reader.cancel()  # a new pipe replaces a broken one: one reader per peer
        scope = trio.CancelScope()
        peer.reader = scope
        return peer, scope

    async def _handle_stream(self, stream: INetStream) -> None:
        peer_id = str(stream.muxed_conn.peer_id)
        reader = StreamReader(stream)
        reset = False
        try:
            with trio.fail_after(SETUP_TIMEOUT):
                mode = await reader.read_exactly(1, what="bulk mode")
                if mode == b"D":
                    secret = await reader.read_exactly(KEY_BYTES + TOKEN_BYTES, what="bulk session keys")
            if mode == b"D":
                if self._listener is None or self.direct_port is None:
                    await write_all(stream, b"N")
                else:
                    key, token = secret[:KEY_BYTES], secret[KEY_BYTES:]
                    self._expire_sessions()
                    self._sessions[token] = (peer_id, key, trio.current_time() + SETUP_TIMEOUT)
                    await write_all(stream, b"K" + _PORT.pack(self.direct_port))
                    return
            elif mode != b"S":
                raise ProtocolViolation(f"unknown bulk mode byte {mode!r}")
            peer, scope = self._start_reader(peer_id)
            with scope:
                await self._read_stream_messages(peer_id, peer, reader)
        except trio.TooSlowError:
            reset = True
            self._violation(peer_id, "bulk stream setup timed out")
        except TruncatedFrame as exc:  # the sender gave up or died mid-message: not malice
            log.debug("bulk stream from %s truncated: %s", peer_id, exc)
        except (ProtocolViolation, MessageTooLarge) as exc:
            reset = True  # the sender's further writes fail instead of filling buffers
            self._violation(peer_id, str(exc))
        except PeerGone:
            pass
        finally:
            await close_stream(stream, reset=reset)

    async def _read_stream_messages(self, peer_id: str, peer: _PeerIn, reader: StreamReader) -> None:
        while True:
            try:
                head = await reader.read_exactly(_HDR.size, what="bulk header")
            except PeerGone:
                return  # clean end between messages
            (clen,) = _HDR.unpack(head)
            if clen == 0 or clen > MAX_CHANNEL:
                raise ProtocolViolation(f"bulk channel length {clen} out of range")
            rest = await reader.read_exactly(clen + _LEN64.size, what="bulk header")
            channel, length = _decode_header(head + rest)
            self._check_length(peer_id, length)
            msg = await self._admit(peer_id, peer, length)
            try:
                await reader.read_into(memoryview(msg), what="bulk payload")
            except BaseException:
                peer.buffered -= length
                raise
            self._deliver(peer, channel, msg)

    def _expire_sessions(self) -> None:
        now = trio.current_time()
        for token in [t for t, (_, _, exp) in self._sessions.items() if exp < now]:
            del self._sessions[token]

    async def _accept_loop(self, listener: trio.socket.SocketType) -> None:
        assert self._nursery is not None
        while True:
            try:
                sock, _addr = await listener.accept()
            except trio.ClosedResourceError:
                log.info("direct bulk listener closed; peers will fall back to libp2p streams")
                self.direct_port = None
                return
            except OSError as exc:
                log.debug("bulk accept failed: %s", exc)
                await trio.sleep(0.01)
                continue
            if self._unauthenticated >= MAX_PENDING_DIRECT:
                sock.close()  # a flood of connections that never present a token: shed it
                continue
            self._nursery.start_soon(self._serve_direct, sock)

    async def _serve_direct(self, sock: trio.socket.SocketType) -> None:
        peer_id = "?"
        self._unauthenticated += 1
        authenticated = False
        try:
            _tune(sock)
            token = bytearray(TOKEN_BYTES)
            with trio.move_on_after(SETUP_TIMEOUT) as scope:
                await _recv_exactly_into(sock, memoryview(token))
            if scope.cancelled_caught:
                return
            self._expire_sessions()
            session = self._sessions.pop(bytes(token), None)
            if session is None:
                return  # unknown or reused token: not a peer we agreed on a key with
            peer_id, key, _exp = session
            authenticated = True
            self._unauthenticated -= 1
            await _send_all(sock, memoryview(b"\x01"))
            peer, scope2 = self._start_reader(peer_id)
            with scope2:
                await self._read_direct_messages(peer_id, peer, sock, AESGCM(key))
        except TruncatedFrame as exc:
            log.debug("direct bulk pipe from %s truncated: %s", peer_id, exc)
        except (ProtocolViolation, MessageTooLarge) as exc:
            self._violation(peer_id, str(exc))
        except (OSError, PeerGone) as exc:
            log.debug("direct bulk pipe from %s ended: %s", peer_id, exc)
        finally:
            if not authenticated:
                self._unauthenticated -= 1
            sock.close()

    async def _read_direct_messages(self, peer_id: str, peer: _PeerIn, sock, aead: AESGCM) -> None:
        counter = 0
        ct = bytearray(MAX_RECORD)
        ctv = memoryview(ct)
        lenbuf = bytearray(4)

        async def record_len(first: bool) -> int | None:
            got = await _recv_exactly_into(sock, memoryview(lenbuf), eof_ok=first)
            if got is None:
                return None
            (n,) = _LEN32.unpack(lenbuf)
            if not TAG < n <= MAX_RECORD:
                raise ProtocolViolation(f"bulk record length {n} out of range")
            return n

        while True:
            n = await record_len(True)
            if n is None:
                return
            await _recv_exactly_into(sock, ctv[:n])
            try:
                header = aead.decrypt(_nonce(counter), bytes(ctv[:n]), None)
            except InvalidTag as exc:
                raise ProtocolViolation("bulk record failed authentication") from exc
            counter += 1
            channel, length = _decode_header(header)
            self._check_length(peer_id, length)
            msg = await self._admit(peer_id, peer, length)
            try:
                mv = memoryview(msg)
                pos = 0
                while pos < length:
                    n = await record_len(False)
                    if n - TAG > length - pos:
                        raise ProtocolViolation("bulk record overruns its message")
                    await _recv_exactly_into(sock, ctv[:n])
                    try:
                        aead.decrypt_into(_nonce(counter), ctv[:n], None, mv[pos : pos + n - TAG])
                    except InvalidTag as exc:
                        raise ProtocolViolation("bulk record failed authentication") from exc
                    counter += 1
                    pos += n - TAG
            except BaseException:
                peer.buffered -= length
                raise
            self._deliver(peer, channel, msg)


def _tune(sock: trio.socket.SocketType) -> None:
    """Big kernel buffers and no Nagle: records are large and latency matters for small ones."""
    for opt in (socket.SO_SNDBUF, socket.SO_RCVBUF):
        try:
            sock.setsockopt(socket.SOL_SOCKET, opt, 4 * 1024 * 1024)
        except OSError:
            pass
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:
        pass


async def _send_all(sock: trio.socket.SocketType, view: memoryview) -> None:
    while view:
        sent = await sock.send(view)
        view = view[sent:]


async def _recv_exactly_into(sock: trio.socket.SocketType, view: memoryview, *, eof_ok: bool = False):
    """Fill ``view``; ``None`` on a clean EOF before the first byte if ``eof_ok``."""
    pos, n = 0, len(view)
    while pos < n:
        got = await sock.recv_into(view[pos:], n - pos)
        if got == 0:
            if pos == 0 and eof_ok:
                return None
            raise TruncatedFrame(f"direct bulk pipe truncated after {pos} of {n} bytes")
        pos += got
    return n
