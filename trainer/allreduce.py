"""Weighted averaging of a flat float32 vector among a group of peers, that never returns half a result.

How a round runs (``Averager.average``), for a group of n peers sorted by id, peer k owning part k
of the vector (n near-equal contiguous parts, each cut in chunks of ``chunk_elems`` values):

1. reduce-scatter: every peer sends chunk c of part k to owner k; the owner adds
   ``weight * x`` into its accumulator as chunks arrive;
2. all-gather: as soon as chunk c of its part has all n contributions, the owner divides by the
   total weight and sends it to every peer (so sending, receiving and adding overlap: a chunk is
   on the wire while the next one is being added);
3. commit: a peer that holds every chunk sends a digest (sha-256 over the per-chunk sha-256s of
   the averaged vector) to every peer, and returns the vector only once it has a matching digest
   from every peer, or the peer has been silent for three timeouts (it died after the
   all-gather, whose data we already hold in full) — and at least ``quorum`` peers (counting
   itself) confirmed, so a peer cut off from the rest never keeps a vector nobody shares.

Waits are staggered so that the peer nearest a fault detects it first and its ABORT reaches the
others before they time out on an innocent peer that is itself waiting: a reduce-scatter chunk
is awaited ``timeout``, an all-gather chunk (which needs every peer's reduce-scatter) twice
that, a commit digest three times that.

Each peer sends 2(n-1)/n of the vector and receives as much: bandwidth-optimal for small groups.
Messages of one attempt travel on one channel per peer pair, in order, so a reader processes a
peer's reduce-scatter chunks, then its all-gather chunks, then its digest.

Faults. A peer that disconnects, times out, or sends something malformed before the commit
phase makes the detecting peer send ABORT (with its suspects) to the others and all retry the
round without the suspects, on fresh channels (the channel name carries the attempt number and
a hash of the group), until ``quorum`` peers are left or ``max_attempts`` is used up; then
``RoundFailed``. An ABORT seen in the commit phase also forces a retry: the aborting peer never
sent its digest, so no peer can have returned this attempt's vector. Digests that differ end the
round with ``RoundFailed`` everywhere. Hence every round ends, on every surviving peer, with the
same vector (equal digests) or with an error; ``tests/trainer/test_allreduce_faults.py`` kills a
peer in each phase to check it. Assumption (stated, as every such protocol must): peers fail by
stopping, links among survivors deliver, and a live peer answers within the timeout.

Weights: peer i contributes ``weight_i`` (e.g. the samples behind its gradient); the result is
sum(w_i x_i) / sum(w_i) over the peers of the attempt that succeeded (``RoundResult.group``).
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import trio

from trainer import compression
from trainer.errors import PeerFailure, RoundFailed, TrainerError, TransportClosed, leaf_exceptions
from trainer.transport import Transport

log = logging.getLogger("mindnode.trainer")

VERSION = 1
RS, AG, CM, ABORT = 1, 2, 3, 4
_KIND_NAMES = {RS: "reduce-scatter", AG: "all-gather", CM: "commit", ABORT: "abort"}
HEADER = struct.Struct("<BBBBId")  # version, kind, codec, flags, chunk index, weight
FOLLOWS = 1  # flag: the payload is the next message (sent uncopied from the vector)
INLINE_MAX = 64 * 1024  # payloads up to this size ride in the header's message
MAX_PEER_ID = 256
MAX_JOINERS = 64


@dataclass(frozen=True)
class RoundResult:
    """A finished round: the averaged vector and who is in it."""

    vector: np.ndarray  # float32, the weighted average, identical on every peer of ``group``
    round_id: int
    group: tuple[str, ...]  # peers whose inputs are in the average (sorted)
    confirmed: tuple[str, ...]  # peers whose commit digest we received and matched ours
    digest: bytes  # sha-256 over the per-chunk sha-256 of ``vector``; compare among peers
    total_weight: float
    attempts: int
    joiners: tuple[str, ...]  # peers announced (by anyone in the group) to join from the next round
    # Only with ``Averager(keep_received=True)`` (signed sketches, trainer/sketch.py): per other peer
    # of ``group``, the decoded chunks it sent for this peer's part, and every member's weight.
    received: dict[str, list[np.ndarray]] | None = None
    weights: dict[str, float] | None = None


class _Aborted(Exception):
    def __init__(self, suspects: set[str], reason: str):
        super().__init__(reason)
        self.suspects = suspects
        self.reason = reason


class _Silent(Exception):
    pass


class _Fatal(Exception):
    def __init__(self, reason: str, suspects: set[str]):
        super().__init__(reason)
        self.reason = reason
        self.suspects = suspects


def vector_digest(vector: np.ndarray, chunk_bounds: Sequence[tuple[int, int]]) -> bytes:
    """The round digest of a vector cut at ``chunk_bounds`` (what ``RoundResult.digest`` holds)."""
    h = hashlib.sha256()
    for a, b in chunk_bounds:
        h.update(hashlib.sha256(vector[a:b]).digest())
    return h.digest()


def group_hash(group: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(group).encode()).hexdigest()[:12]


def part_bounds(n_values: int, n_peers: int) -> list[tuple[int, int]]:
    cuts = [(n_values * j) // n_peers for j in range(n_peers + 1)]
    return [(cuts[j], cuts[j + 1]) for j in range(n_peers)]


def chunk_bounds(start: int, end: int, chunk_elems: int) -> list[tuple[int, int]]:
    return [(a, min(a + chunk_elems, end)) for a in range(start, end, chunk_elems)]


class Averager:
    """Runs averaging rounds for one peer over a ``Transport``.

    ``timeout`` bounds the wait for one reduce-scatter message (all-gather 2x, commit 3x);
    ``quorum`` is the least number of peers a round may finish with (default: a majority of the
    group the round started with, so two disjoint halves can never both "succeed").
    """

    def __init__(
        self,
        transport: Transport,
        *,
        timeout: float = 10.0,
        chunk_elems: int = 1 << 20,
        compression_name: str = "none",
        quorum: int | None = None,
        max_attempts: int = 3,
        namespace: str = "avg",
        keep_received: bool = False,
    ):
        if chunk_elems < 1 or chunk_elems > (1 << 24):
            raise ValueError("chunk_elems must be in 1..16M")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.transport = transport
        self.timeout = timeout
        self.chunk_elems = chunk_elems
        self.codec = compression.codec_id(compression_name)
        self.quorum = quorum
        self.max_attempts = max_attempts
        self.namespace = namespace
        self.keep_received = keep_received  # keep what peers sent for our part (RoundResult.received)

    @property
    def self_id(self) -> str:
        return self.transport.self_id

    async def average(
        self,
        round_id: int,
        group: Sequence[str],
        vector: np.ndarray,
        weight: float,
        joiners: Sequence[str] = (),
        out: np.ndarray | None = None,
    ) -> RoundResult:
        """Average ``vector`` (float32, same length on every peer) over ``group``.

        ``out`` (optional, float32, contiguous, same size, not overlapping ``vector``) receives
        the result, so a caller averaging every step reuses one buffer instead of page-faulting
        a fresh one each round; its contents are undefined if the round fails.

        Every peer of the group must call this with the same ``round_id`` and group. ``vector``
        is not modified. ``joiners`` are peers this one admits from the next round; the union
        over the group comes back in ``RoundResult.joiners``. Raises ``RoundFailed`` when the
        round cannot finish (never a partial result), ``TransportClosed`` if we are cut off.
        """
        vec = np.ascontiguousarray(vector, dtype=np.float32).reshape(-1)
        if not math.isfinite(weight) or weight < 0:
            raise ValueError(f"weight must be a finite non-negative number, got {weight!r}")
        if out is not None and (out.dtype != np.float32 or out.shape != vec.shape or not out.flags.c_contiguous
                                or not out.flags.writeable or np.shares_memory(out, vec)):
            raise ValueError("out must be a writable contiguous float32 array shaped like the vector, "
                             "not overlapping it")
        members = sorted(set(group))
        if self.self_id not in members:
            raise ValueError(f"this peer ({self.self_id}) is not in the group")
        quorum = self.quorum if self.quorum is not None else len(members) // 2 + 1
        suspects_all: set[str] = set()
        reason = ""
        failed: list[tuple[str, tuple[str, ...]]] = []  # channels of attempts that did not succeed
        try:
            for attempt in range(self.max_attempts):
                if len(members) < quorum:
                    raise RoundFailed(
                        round_id,
                        f"{len(members)} peer(s) left of {len(group)}, below the quorum of {quorum} "
                        f"(dropped: {', '.join(sorted(suspects_all))}; last cause: {reason})",
                        frozenset(suspects_all),
                    )
                failed.append((self._channel(round_id, attempt, tuple(members)), tuple(members)))
                try:
                    result = await self._attempt(round_id, attempt, tuple(members), vec, float(weight), joiners,
                                                 quorum, out)
                    failed.pop()
                    return result
                except _Aborted as exc:
                    reason = exc.reason
                    if self.self_id in exc.suspects:
                        raise RoundFailed(
                            round_id, f"another peer considers this one failed ({exc.reason})",
                            frozenset(exc.suspects),
                        ) from None
                    suspects_all |= exc.suspects
                    members = [p for p in members if p not in exc.suspects]
                    log.warning("round %d attempt %d aborted (%s); retrying with %d peers",
                                round_id, attempt, exc.reason, len(members))
                except _Fatal as exc:
                    raise RoundFailed(round_id, exc.reason, frozenset(exc.suspects)) from None
            raise RoundFailed(round_id, f"no success after {self.max_attempts} attempts; last cause: {reason}",
                              frozenset(suspects_all))
        finally:
            with trio.CancelScope(shield=True):
                await self._drain(failed)

    def _channel(self, round_id: int, attempt: int, group: tuple[str, ...]) -> str:
        return f"{self.namespace}/{round_id}/{attempt}/{group_hash(group)}"

    async def _drain(self, channels: list[tuple[str, tuple[str, ...]]]) -> None:
        """Discard what already arrived on the channels of failed attempts.

        Nobody reads them again, and a transport buffers unread messages (the p2p bulk service
        counts them against the peer's receive budget), so chunks that were in flight when an
        attempt aborted would otherwise stay in memory. Best effort: later arrivals still do.
        """
        for channel, group in channels:
            for peer in group:
                if peer == self.self_id:
                    continue
                for _ in range(100_000):
                    try:
                        await self.transport.recv(peer, channel, 0)
                    except TrainerError:
                        break

    # -- one attempt -----------------------------------------------------------------------
    async def _attempt(
        self, round_id: int, attempt: int, group: tuple[str, ...], vec: np.ndarray, weight: float,
        joiners: Sequence[str], quorum: int, out: np.ndarray | None,
    ) -> RoundResult:
        n = len(group)
        me = group.index(self.self_id)
        all_chunks = [chunk_bounds(a, b, self.chunk_elems) for a, b in part_bounds(vec.size, n)]
        flat_chunks = [c for part in all_chunks for c in part]
        own_joiners = tuple(sorted(set(joiners)))
        if n == 1:
            result = vec.copy() if out is None else _copy_into(out, vec)
            kept = ({}, {self.self_id: weight}) if self.keep_received else (None, None)
            return RoundResult(result, round_id, group, group, vector_digest(result, flat_chunks),
                               weight, attempt + 1, own_joiners, *kept)
        _check_joiners(own_joiners)
        state = _AttemptState(self, round_id, attempt, group, me, vec, weight, all_chunks, out)
        for c, (a, b) in enumerate(all_chunks[me]):
            state._offer(c, me, vec[a:b], weight)
        try:
            async with trio.open_nursery() as nursery:
                for y, peer in enumerate(group):
                    if y != me:
                        nursery.start_soon(state.sender, peer, y, own_joiners)
                        nursery.start_soon(state.receiver, peer, y)
        except BaseException as exc:  # noqa: B036 - flatten trio's exception groups
            errors = leaf_exceptions(exc)
            if any(isinstance(e, (trio.Cancelled, KeyboardInterrupt)) for e in errors):
                raise
            closed = [e for e in errors if isinstance(e, TransportClosed)]
            if closed:
                raise closed[0] from None
            fatal = [e for e in errors if isinstance(e, _Fatal)]
            aborted = [e for e in errors if isinstance(e, _Aborted)]
            if not fatal and not aborted:
                raise
            suspects = set().union(*(e.suspects for e in fatal + aborted))
            reason = "; ".join(e.reason for e in fatal + aborted)
            await state.broadcast_abort(suspects)
            if fatal:
                raise _Fatal(reason, suspects) from None
            raise _Aborted(suspects, reason) from None
        # every receiver finished: compare digests
        digest = state.digest
        assert digest is not None
        confirmed = [self.self_id]
        for peer, (their_digest, _) in state.commits.items():
            if their_digest != digest:
                raise RoundFailed(round_id, f"peer {peer} holds a different averaged vector (digest mismatch)",
                                  frozenset({peer}))
            confirmed.append(peer)
        if len(confirmed) < quorum:
            # e.g. we are cut off and the others moved on to a retry without us: holding a
            # vector nobody else confirmed would be exactly the silent partial result to avoid
            raise RoundFailed(round_id, f"only {len(confirmed)} peer(s) confirmed the result, quorum is {quorum}",
                              frozenset(state.silent_in_commit))
        if state.silent_in_commit:
            log.warning("round %d: no commit digest from %s (dead after the all-gather); their data is whole",
                        round_id, ", ".join(sorted(state.silent_in_commit)))
        all_joiners = set(own_joiners)
        for _, theirs in state.commits.values():
            all_joiners.update(theirs)
        all_joiners -= set(group)
        kept = ((state.received, {self.self_id: weight, **state.weights}) if self.keep_received
                else (None, None))
        return RoundResult(state.result, round_id, group, tuple(sorted(confirmed)), digest,
                           state.total_weight, attempt + 1, tuple(sorted(all_joiners)), *kept)


class _AttemptState:
    """Buffers and events of one attempt; ``sender``/``receiver`` run one task per other peer."""

    def __init__(self, avg: Averager, round_id: int, attempt: int, group: tuple[str, ...], me: int,
                 vec: np.ndarray, weight: float, all_chunks: list[list[tuple[int, int]]],
                 out: np.ndarray | None = None):
        self.avg = avg
        self.t = avg.transport
        self.timeout = avg.timeout
        self.codec = avg.codec
        self.round_id = round_id
        self.attempt = attempt
        self.group = group
        self.me = me
        self.vec = vec
        self.weight = weight
        self.all_chunks = all_chunks
        self.my_chunks = all_chunks[me]
        self.channel = avg._channel(round_id, attempt, group)
        self.result = out if out is not None else np.empty(vec.size, dtype=np.float32)
        # contributions are added in group order, whatever order they arrive in, so that a
        # round's result is bitwise reproducible (float addition is not associative)
        self.pending: list[dict[int, tuple[np.ndarray, float]]] = [{} for _ in self.my_chunks]
        self.next_add = [0] * len(self.my_chunks)
        self.weights: dict[str, float] = {}
        self.ready = [trio.Event() for _ in self.my_chunks]
        self.payloads: list[bytes | memoryview | None] = [None] * len(self.my_chunks)
        self.hashes: list[list[bytes | None]] = [[None] * len(p) for p in all_chunks]
        self.missing = sum(len(p) for p in all_chunks)
        self.complete = trio.Event()
        self.digest: bytes | None = None
        self.total_weight = math.nan
        self.commits: dict[str, tuple[bytes, tuple[str, ...]]] = {}
        self.silent_in_commit: set[str] = set()
        self.received: dict[str, list[np.ndarray]] = {}
        if self.missing == 0:
            self._set_complete()

    # -- helpers ---------------------------------------------------------------------------
    def _header(self, kind: int, chunk: int = 0, weight: float = 0.0) -> bytes:
        return HEADER.pack(VERSION, kind, self.codec, 0, chunk, weight)

    async def _send(self, peer: str, header: bytes, payload: bytes | memoryview = b"", timeout=None,
                    data: bool = False) -> None:
        """One message, or for a large data payload a header message then the payload uncopied."""
        t = self.timeout if timeout is None else timeout
        try:
            if data and len(payload) > INLINE_MAX:
                flagged = bytearray(header)
                flagged[3] |= FOLLOWS
                await self.t.send(peer, self.channel, flagged, t)
                await self.t.send(peer, self.channel, payload, t)
                return
            msg = bytearray(len(header) + len(payload))
            msg[: len(header)] = header
            msg[len(header):] = payload
            await self.t.send(peer, self.channel, msg, t)
        except PeerFailure as exc:
            raise _Aborted({peer}, f"sending to {exc}") from None

    async def _recv_raw(self, peer: str, expect: int, timeout: float, tolerate_silence: bool):
        try:
            return await self.t.recv(peer, self.channel, timeout)
        except PeerFailure as exc:
            if tolerate_silence:
                raise _Silent() from None
            raise _Aborted({peer}, f"waiting for {_KIND_NAMES[expect]} data: {exc}") from None

    def _control(self, peer: str, msg: bytes | bytearray):
        """Parse a header (+ inline body); an ABORT raises ``_Aborted``."""
        if len(msg) < HEADER.size:
            raise _Aborted({peer}, f"peer {peer} sent a malformed message ({len(msg)} bytes)")
        version, kind, codec, flags, idx, weight = HEADER.unpack_from(msg)
        if version != VERSION:
            raise _Aborted({peer}, f"peer {peer} speaks averaging version {version}, not {VERSION}")
        if kind == ABORT:
            suspects = _parse_abort(bytes(msg[HEADER.size:]), self.group, peer)
            raise _Aborted(suspects, f"peer {peer} aborted the round (suspects: {', '.join(sorted(suspects))})")
        return kind, codec, flags, idx, weight

    async def _recv(self, peer: str, expect: int, chunk: int, timeout: float | None = None,
                    tolerate_silence: bool = False, payload_len: int = -1):
        t = self.timeout if timeout is None else timeout
        msg = await self._recv_raw(peer, expect, t, tolerate_silence)
        kind, codec, flags, idx, weight = self._control(peer, msg)
        if kind != expect or idx != chunk:
            raise _Aborted({peer}, f"peer {peer} sent {_KIND_NAMES.get(kind, kind)} chunk {idx}, "
                                   f"expected {_KIND_NAMES[expect]} chunk {chunk}")
        if kind in (RS, AG) and codec != self.codec:
            raise _Aborted({peer}, f"peer {peer} uses compression {codec}, we use {self.codec}")
        if flags & FOLLOWS:
            if len(msg) != HEADER.size or payload_len < 0:
                raise _Aborted({peer}, f"peer {peer} sent a malformed {_KIND_NAMES[expect]} header")
            body = await self._recv_raw(peer, expect, t, tolerate_silence)
            if len(body) != payload_len:
                self._control(peer, body)  # the sender may have aborted between header and payload
                raise _Aborted({peer}, f"peer {peer} sent {len(body)} payload bytes, expected {payload_len}")
            return memoryview(body), weight
        return memoryview(msg)[HEADER.size:], weight

    def _set_complete(self) -> None:
        h = hashlib.sha256()
        for part in self.hashes:
            for x in part:
                h.update(x)  # type: ignore[arg-type]
        self.digest = h.digest()
        self.complete.set()

    def _store(self, part: int, c: int, values: np.ndarray | None) -> None:
        a, b = self.all_chunks[part][c]
        if values is not None:
            self.result[a:b] = values
        self.hashes[part][c] = hashlib.sha256(self.result[a:b]).digest()
        self.missing -= 1
        if self.missing == 0:
            self._set_complete()

    def _offer(self, c: int, y: int, x: np.ndarray, w: float) -> None:
        """Take peer y's contribution to chunk c; add every contribution now next in group order.

        The sum is built in place in the result vector (no temporary for the common weight 1).
        """
        pending = self.pending[c]
        pending[y] = (x, w)
        a, b = self.my_chunks[c]
        dst = self.result[a:b]
        while self.next_add[c] in pending:
            x, w = pending.pop(self.next_add[c])
            if self.next_add[c] == 0:
                if w == 1.0:
                    np.copyto(dst, x)
                else:
                    np.multiply(x, np.float32(w), out=dst)
            elif w == 1.0:
                dst += x
            else:
                dst += x * np.float32(w)
            self.next_add[c] += 1
        if self.next_add[c] == len(self.group):
            self._finalize(c)

    def _finalize(self, c: int) -> None:
        total = self.weight + sum(self.weights.values())
        if not total > 0:
            raise _Fatal("the total weight of the group is zero: nothing to average", set())
        self.total_weight = total
        a, b = self.my_chunks[c]
        avg = self.result[a:b]
        avg /= np.float32(total)
        if self.codec == compression.NONE:
            values = None  # already in place
            self.payloads[c] = memoryview(avg).cast("B")
        else:
            payload = compression.encode(self.codec, avg)
            values = compression.decode(self.codec, payload, avg.size)
            self.payloads[c] = payload
        self._store(self.me, c, values)
        self.ready[c].set()

    # -- tasks -----------------------------------------------------------------------------
    async def sender(self, peer: str, y: int, joiners: tuple[str, ...]) -> None:
        for c, (a, b) in enumerate(self.all_chunks[y]):
            await self._send(peer, self._header(RS, c, self.weight), compression.encode(self.codec, self.vec[a:b]),
                             data=True)
        # From here on a failed send hurts only the peer we could not reach (nobody else needs
        # our all-gather data for that peer), while aborting could follow a digest we already
        # sent to others, who might commit on it. So a dead receiver is noted, not aborted on;
        # if it is alive but cut off from us, it will time out and abort everyone itself.
        try:
            for c in range(len(self.my_chunks)):
                await self.ready[c].wait()
                await self._send(peer, self._header(AG, c), self.payloads[c], data=True)  # type: ignore[arg-type]
            await self.complete.wait()
            body = self.digest + json.dumps(list(joiners)).encode()  # type: ignore[operator]
            await self._send(peer, self._header(CM), body)
        except _Aborted as exc:
            log.info("round %d: could not send to %s after the reduce-scatter: %s", self.round_id, peer, exc.reason)

    async def receiver(self, peer: str, y: int) -> None:
        t = self.timeout
        for c, (a, b) in enumerate(self.my_chunks):
            # a retry starts when each peer has learnt of the abort: allow for stragglers
            body, w = await self._recv(peer, RS, c, timeout=3 * t if c == 0 and self.attempt else t,
                                       payload_len=compression.encoded_size(self.codec, b - a))
            if not (math.isfinite(w) and w >= 0) or self.weights.setdefault(peer, w) != w:
                raise _Aborted({peer}, f"peer {peer} sent an invalid or changing weight {w!r}")
            try:
                x = compression.decode(self.codec, body, b - a)
            except ValueError as exc:
                raise _Aborted({peer}, f"peer {peer} sent a bad reduce-scatter chunk: {exc}") from None
            if self.avg.keep_received:
                self.received.setdefault(peer, []).append(x)
            self._offer(c, y, x, w)
            await trio.lowlevel.checkpoint()
        for c, (a, b) in enumerate(self.all_chunks[y]):
            body, _ = await self._recv(peer, AG, c, timeout=2 * t,
                                       payload_len=compression.encoded_size(self.codec, b - a))
            try:
                x = compression.decode(self.codec, body, b - a)
            except ValueError as exc:
                raise _Aborted({peer}, f"peer {peer} sent a bad all-gather chunk: {exc}") from None
            self._store(y, c, x)
            await trio.lowlevel.checkpoint()
        try:
            body, _ = await self._recv(peer, CM, 0, timeout=3 * t, tolerate_silence=True)
        except _Silent:
            self.silent_in_commit.add(peer)  # died after the all-gather, whose data we hold whole
            return
        raw = bytes(body)
        if len(raw) < 32:
            raise _Aborted({peer}, f"peer {peer} sent a malformed commit")
        try:
            theirs = json.loads(raw[32:].decode())
            if not isinstance(theirs, list):
                raise ValueError("not a list")
            theirs_t = tuple(theirs)
            _check_joiners(theirs_t)
        except (ValueError, UnicodeDecodeError, TrainerError) as exc:
            raise _Aborted({peer}, f"peer {peer} sent a malformed joiner list: {exc}") from None
        self.commits[peer] = (raw[:32], theirs_t)

    async def broadcast_abort(self, suspects: set[str]) -> None:
        """Best effort: tell the others this attempt is over, so they need not wait for a timeout."""
        body = json.dumps(sorted(suspects)).encode()
        header = self._header(ABORT)

        async def one(peer: str) -> None:
            try:
                await self._send(peer, header, body, timeout=min(self.timeout, 1.0))
            except (_Aborted, TransportClosed):
                pass

        with trio.move_on_after(min(self.timeout, 1.0) + 0.5):
            async with trio.open_nursery() as nursery:
                for peer in self.group:  # suspects too: one merely cut off from us must not commit
                    if peer != self.t.self_id:
                        nursery.start_soon(one, peer)


def _copy_into(out: np.ndarray, vec: np.ndarray) -> np.ndarray:
    np.copyto(out, vec)
    return out


def _check_joiners(joiners: Sequence[str]) -> None:
    if len(joiners) > MAX_JOINERS:
        raise TrainerError(f"at most {MAX_JOINERS} joiners per round")
    for j in joiners:
        if not isinstance(j, str) or not 0 < len(j) <= MAX_PEER_ID:
            raise TrainerError(f"invalid joiner peer id {j!r}")


def _parse_abort(body: bytes, group: Sequence[str], sender: str) -> set[str]:
    try:
        suspects = json.loads(body.decode()) if len(body) <= 64 * 1024 else None
    except (ValueError, UnicodeDecodeError):
        suspects = None
    if not isinstance(suspects, list) or not all(isinstance(s, str) and s in group for s in suspects):
        return {sender}  # a malformed abort: the sender is the one at fault
    return set(suspects)
