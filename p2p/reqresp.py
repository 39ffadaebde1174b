"""Framed request/response over libp2p streams (block range sync, peer lists, blob chunks).

One request per stream, like libp2p's request-response protocols: the client opens a stream,
writes one length-prefixed request frame and closes its write side; the server answers with one
status byte and one length-prefixed frame.  Status 0 carries the response, status 1 an error
message (utf-8) the client raises as ``RemoteError``.

Every read is bounded twice: by size (``max_request_bytes`` / ``max_response_bytes`` per protocol,
checked on the length prefix before any payload is buffered) and by time (``request_timeout`` on
the server covers the whole request, so a slow-loris peer that opens a stream and never writes is
cut off; ``timeout`` on the client covers the whole exchange).  Protocol abuse (garbage, oversized,
truncated or slow requests) is reported through ``on_violation`` so the node can lower the score.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import trio
from libp2p.abc import IHost, INetStream
from libp2p.custom_types import TProtocol

from p2p.errors import (
    DialError,
    MessageTooLarge,
    P2PError,
    PeerBanned,
    PeerGone,
    PeerTimeout,
    ProtocolViolation,
    RemoteError,
    TruncatedFrame,
)
from p2p.framing import StreamReader, close_stream, open_stream_with_retry, write_all, write_frame
from p2p.identity import parse_peer_id
from p2p.scoring import PENALTY_OVERSIZE, PENALTY_PROTOCOL, PENALTY_TIMEOUT

log = logging.getLogger("mindnode.p2p")

STATUS_OK = 0
STATUS_ERROR = 1
MAX_ERROR_BYTES = 1024
DEFAULT_MAX_REQUEST = 64 * 1024
DEFAULT_MAX_RESPONSE = 16 * 1024 * 1024

#: ``handler(payload, from_peer) -> response``; may be sync or async.  Raise ``RemoteError`` (or
#: any exception) to answer with an error the client sees as ``RemoteError``.
Handler = Callable[[bytes, str], bytes | bytearray | Awaitable[bytes | bytearray]]
PenaltyHook = Callable[[str, float, str], None]


@dataclass
class _Served:
    handler: Handler
    max_request_bytes: int
    max_response_bytes: int
    request_timeout: float


class RequestResponse:
    """Serve and call framed request/response protocols on one host."""

    def __init__(self, host: IHost, *, on_violation: PenaltyHook | None = None,
                 is_banned: Callable[[str], bool] | None = None) -> None:
        self.host = host
        self.on_violation = on_violation
        self.is_banned = is_banned or (lambda _p: False)
        self._served: dict[str, _Served] = {}
        self._limits: dict[str, int] = {}

    def _penalise(self, peer_id: str, penalty: float, reason: str) -> None:
        log.info("request/response: %s from %s", reason, peer_id)
        if self.on_violation is not None:
            self.on_violation(peer_id, penalty, reason)

    # ------------------------------------------------------------------ server
    def serve(self, protocol: str, handler: Handler, *, max_request_bytes: int = DEFAULT_MAX_REQUEST,
              max_response_bytes: int = DEFAULT_MAX_RESPONSE, request_timeout: float = 10.0) -> None:
        """Answer ``protocol`` with ``handler``; the limits also apply to our own requests on it."""
        if max_request_bytes <= 0 or max_response_bytes <= 0 or request_timeout <= 0:
            raise ValueError("limits and timeout must be positive")
        self._served[protocol] = _Served(handler, max_request_bytes, max_response_bytes, request_timeout)
        self._limits[protocol] = max_response_bytes

        async def stream_handler(stream: INetStream) -> None:
            await self._handle(protocol, stream)

        self.host.set_stream_handler(TProtocol(protocol), stream_handler)

    async def _handle(self, protocol: str, stream: INetStream) -> None:
        served = self._served[protocol]
        peer_id = str(stream.muxed_conn.peer_id)
        if self.is_banned(peer_id):
            await close_stream(stream, reset=True)
            return
        reader = StreamReader(stream)
        try:
            with trio.fail_after(served.request_timeout):
                request = await reader.read_frame(served.max_request_bytes, what=f"{protocol} request")
            try:
                result = served.handler(request, peer_id)
                if inspect.isawaitable(result):
                    result = await result
                if not isinstance(result, bytes | bytearray | memoryview):
                    raise TypeError(f"handler returned {type(result).__name__}, not bytes")
                if len(result) > served.max_response_bytes:
                    raise MessageTooLarge(
                        f"response of {len(result)} bytes exceeds {served.max_response_bytes} bytes"
                    )
            except P2PError as exc:
                await self._answer_error(stream, str(exc))
                return
            except Exception as exc:  # the handler's bug must not kill the node: answer an error
                log.exception("handler for %s failed", protocol)
                await self._answer_error(stream, f"internal error: {type(exc).__name__}")
                return
            await write_all(stream, bytes([STATUS_OK]))
            await write_frame(stream, result)
        except trio.TooSlowError:
            self._penalise(peer_id, PENALTY_TIMEOUT, f"{protocol} request not received within "
                           f"{served.request_timeout:g} s (slow or silent peer)")
            await close_stream(stream, reset=True)
            return
        except MessageTooLarge as exc:
            self._penalise(peer_id, PENALTY_OVERSIZE, str(exc))
            await self._answer_error(stream, str(exc))
            await close_stream(stream, reset=True)
            return
        except TruncatedFrame as exc:
            self._penalise(peer_id, PENALTY_PROTOCOL / 3, str(exc))
        except ProtocolViolation as exc:
            self._penalise(peer_id, PENALTY_PROTOCOL, str(exc))
        except PeerGone:
            pass
        await close_stream(stream)

    async def _answer_error(self, stream: INetStream, message: str) -> None:
        try:
            with trio.move_on_after(2):
                await write_all(stream, bytes([STATUS_ERROR]))
                await write_frame(stream, message.encode()[:MAX_ERROR_BYTES])
        except P2PError:
            pass

    # ------------------------------------------------------------------ client
    async def request(self, peer_id: str, protocol: str, payload: bytes | bytearray | memoryview,
                      timeout: float, *, max_response_bytes: int | None = None) -> bytes:
        """Send one request and return the response bytes.

        Raises ``PeerTimeout`` (no full answer in ``timeout`` s; the stream is reset),
        ``MessageTooLarge`` (request or response over the limit), ``RemoteError`` (the handler
        refused), ``PeerGone``/``DialError`` (no connection), ``ProtocolViolation`` (garbage answer),
        ``PeerBanned``.  Cancelling the caller resets the stream too.
        """
        if self.is_banned(peer_id):
            raise PeerBanned(f"peer {peer_id} is banned")
        limit = max_response_bytes or self._limits.get(protocol, DEFAULT_MAX_RESPONSE)
        served = self._served.get(protocol)
        if served is not None and len(payload) > served.max_request_bytes:
            raise MessageTooLarge(f"request of {len(payload)} bytes exceeds {served.max_request_bytes} bytes")
        parse_peer_id(peer_id)  # InvalidPeerId before any network work
        stream: INetStream | None = None
        try:
            with trio.fail_after(timeout):
                try:
                    stream = await open_stream_with_retry(self.host, peer_id, protocol, what=protocol)
                except PeerGone as exc:
                    raise DialError(str(exc)) from exc
                await write_frame(stream, payload)
                try:
                    await stream.close_write()
                except Exception:
                    pass
                reader = StreamReader(stream)
                status = (await reader.read_exactly(1, what=f"{protocol} status"))[0]
                if status == STATUS_OK:
                    body = await reader.read_frame(limit, what=f"{protocol} response")
                elif status == STATUS_ERROR:
                    message = await reader.read_frame(MAX_ERROR_BYTES, what=f"{protocol} error")
                    raise RemoteError(f"{peer_id} refused {protocol}: {message.decode(errors='replace')}")
                else:
                    raise ProtocolViolation(f"{peer_id} answered {protocol} with status byte {status}")
        except trio.TooSlowError as exc:
            if stream is not None:
                self._penalise(peer_id, PENALTY_TIMEOUT, f"no {protocol} answer within {timeout:g} s")
                with trio.CancelScope(shield=True):
                    await close_stream(stream, reset=True)
            raise PeerTimeout(f"{protocol} request to {peer_id} got no answer within {timeout:g} s") from exc
        except BaseException as exc:
            if stream is not None:
                if isinstance(exc, MessageTooLarge | ProtocolViolation):
                    self._penalise(peer_id, PENALTY_PROTOCOL, f"bad {protocol} answer: {exc}")
                with trio.CancelScope(shield=True):
                    await close_stream(stream, reset=True)
            raise
        await close_stream(stream)
        return body
