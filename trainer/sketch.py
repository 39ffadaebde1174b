"""Signed gradient sketches: who sent what into a sync average, in a form a verifier can check.

Why: in sync mode every worker holds the same averaged parameters, so a replay that fails cannot
say whose gradient was wrong. Each rank therefore commits, every step, to a small *sketch* of each
part of the all-reduce it contributed to, signs it, and sends it to every peer; the peers check it
against what they actually received (online), and a verifier later compares each rank's sketch
with the sketch of the honest gradient it recomputes (``mindnode/jobs/verify.py``).

The sketch (``sketch``) of a part x of length L: reshape x into rows of ``ROW`` values (the last
row zero-padded), draw per-row coefficients C (rows x K) and column vectors R (ROW x K) from a
seed, and take the K bilinear forms s_t = c_t^T X r_t. Why this one:

* linear: sketch(a x + b y) = a sketch(x) + b sketch(y), so anyone holding every rank's signed
  sketches of part j and the averaged part j can check that the part's owner averaged what the
  ranks signed (``check_average``) -- the owner's own contribution is seen by nobody else;
* cheap: one float32 matrix product (rows x ROW) @ (ROW x K) and a float64 weighted row sum,
  ~2KL flops, memory-bound (measured: ~3-8 ms for 10M floats on this box, see
  ``scripts/bench/sketch.py``);
* no cancelling perturbation across rows: every row has its own random coefficients, unlike a
  fixed projection or a count-sketch whose buckets a sender can balance.

CRUCIAL: the seed (``sketch_seed``) is derived from the round's agreed result digest (the
sha-256 commit that ends every all-reduce round) and the step, so it is unknown while the data
is being sent. A sender cannot craft a perturbation in the sketch's null space; one that grinds
its own contribution to steer the digest would need every K coordinate of its perturbation's
sketch to vanish within tolerance, for a seed it only learns after sending.

Why the evidence cannot frame an honest rank: a run that finishes has passed, at every honest rank,
(a) the check of each peer's sketch of the receiver's own part against the received values and
(b) the linearity check of every other part's average against the weighted mean of the signed
sketches. So, in sketch space, every averaged part equals the weighted mean of the signed
sketches the poster logged. If the group's update differs from the honest one, some signed sketch
differs from its signer's honest gradient, and that signer is named (``verify.attribute_sync``);
an honest rank only ever signs what it really sent; and an honest poster is never left with "no
deviating sketch, yet the replay fails". Equivocation (different signed messages to different
peers) does not help a cheater: whatever version the poster logged had to pass its check (b).

What the online check cannot settle: who is right when a sender and a receiver disagree about
private point-to-point data (no third party saw it). A failed check stops the run and names the
suspect in ``RoundFailed``; the agent then reports it, and the chain evicts a worker only on a
majority of its co-workers' reports (ledger/JOBS.md), which a cheater plus one misled honest rank
can reach in a 3-worker job: eviction and -500 reputation, never slashing or lost pay for done work.

Messages (``SketchMessage``) have one fixed binary layout (no pickle, no JSON floats), carry the
round digest, the rank's weight, its K sketches per part and, at checkpoint and final steps,
the sha-256 of the parameters after the step (``params``), so a verifier can tell a made-up
checkpoint or result from the state every rank signed. The trainer never knows the chain: a
``Signer`` (bytes -> signature) and a ``PeerVerifier`` (peer id, message, signature -> bool)
are plugged in by the caller (mindnode uses the node's Ed25519 key; peers are named by address).
"""
from __future__ import annotations

import functools
import hashlib
import math
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from trainer import compression
from trainer.errors import TrainerError

#: Independent bilinear pairs per part. A perturbation escapes only if all K of its sketch values
#: fall within tolerance of zero: ~tol^K for a random seed.
K = 8
#: Row width. Wide rows keep the float32 matrix product efficient; one coefficient per row.
ROW = 1024
#: Online check (sender's sketch vs the receiver's sketch of identical float32 values): only
#: BLAS summation order can differ between machines (~1e-6 relative); 1e-4 of the part's sketch
#: RMS is far below any meaningful change (a 3x gradient is 2.0, i.e. 200%).
ONLINE_RTOL = 1e-4
#: Average check per codec: the owner's average is rounded by the codec after averaging, so the
#: sketch of what was all-gathered differs from the weighted sum of signed sketches by the codec's
#: error (fp16 ~1e-3, int8 ~0.4% of a block's max per value; measured far below these bounds).
AVERAGE_RTOL = {compression.NONE: 1e-4, compression.FP16: 1e-2, compression.INT8: 5e-2}

MAGIC = b"mnsk\x01"
MAX_WORLD = 256
MAX_NAMESPACE = 256
MAX_PEER = 256
SIG_MAX = 128
_HEAD = struct.Struct("<32sQQHHd32s32sHH")  # group hash, step, round, rank, world, weight, digest, params, k, n
NO_PARAMS = b"\x00" * 32
#: Vectors at least this long are sketched in a worker thread during the exchange.
THREAD_MIN_VALUES = 1 << 20

Signer = Callable[[bytes], bytes]
PeerVerifier = Callable[[str, bytes, bytes], bool]


class SketchError(TrainerError):
    """A sketch message is malformed, badly signed, or does not match what its sender sent."""


def sketch_seed(namespace: str, step: int, round_digest: bytes) -> bytes:
    """The seed of a step's sketches: known only once the round's result digest is agreed."""
    return hashlib.sha256(b"mindnode/sketch/v1\x00" + namespace.encode() + b"\x00" + step.to_bytes(8, "little")
                          + bytes(round_digest)).digest()


@functools.lru_cache(maxsize=64)
def _coefficients(seed: bytes, part: int, n: int, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(C rows x K, R width x K float64, R as float32) for a part of ``n`` values. Rows are ``ROW``
    wide, or the whole part when it is shorter. Uniform in [-1, 1): any zero-mean independent draw
    serves, and uniform draws cost a fraction of normal ones (this ran at ~50% of a small model's
    step before). Cached: within a step every rank sketches each part two or three times."""
    width = min(ROW, max(n, 1))
    rows = -(-n // width)
    key = hashlib.sha256(seed + part.to_bytes(4, "little")).digest()
    rng = np.random.Generator(np.random.PCG64(int.from_bytes(key, "little")))
    r = rng.random((width, k)) * 2.0 - 1.0
    c = rng.random((rows, k)) * 2.0 - 1.0
    r32 = r.astype(np.float32)
    for a in (c, r, r32):
        a.flags.writeable = False
    return c, r, r32


def sketch(x: np.ndarray | Sequence[np.ndarray], seed: bytes, part: int, k: int = K) -> np.ndarray:
    """The K bilinear sketch values (float64) of a float32 vector ``x`` (part ``part`` of a round).

    ``x`` may be a list of consecutive pieces (e.g. the chunks a receiver got); pieces whose
    length is a multiple of the row width (all but the last) are sketched in place, without a copy."""
    pieces = [x] if isinstance(x, np.ndarray) else list(x)
    pieces = [np.ascontiguousarray(p, dtype=np.float32).reshape(-1) for p in pieces]
    n = sum(p.size for p in pieces)
    c, r, r32 = _coefficients(bytes(seed), part, n, k)
    width = r.shape[0]
    if any(p.size % width for p in pieces[:-1]):
        pieces = [np.concatenate(pieces)]
    out = np.zeros(k, dtype=np.float64)
    row = 0
    for p in pieces:
        full, tail = divmod(p.size, width)
        if full:
            y = p[: full * width].reshape(full, width) @ r32  # float32 product within a row
            out += np.einsum("ij,ij->j", c[row: row + full], y.astype(np.float64))  # float64 over rows
            row += full
        if tail:
            out += c[row] * (p[full * width:].astype(np.float64) @ r[:tail])
            row += 1
    return out


def rms(s: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(s)))) if s.size else 0.0


def deviation(got: np.ndarray, want: np.ndarray, floor: float = 0.0) -> float:
    """max |got - want| relative to the RMS of ``want`` (or ``floor`` if larger): 0 for equal."""
    scale = max(rms(want), floor)
    diff = float(np.max(np.abs(np.asarray(got) - np.asarray(want)))) if want.size else 0.0
    if scale == 0.0:
        return 0.0 if diff == 0.0 else math.inf
    return diff / scale


def contribution(vec: np.ndarray, parts: Sequence[tuple[int, int]], rank: int, part: int, codec: int,
                 chunk_elems: int) -> np.ndarray:
    """What rank ``rank`` contributes to part ``part`` of a round: the owner adds its own values as
    they are; every other part crosses the wire chunk by chunk through the codec, so its receiver
    holds (and sketches) the decoded values."""
    a, b = parts[part]
    if part == rank or codec == compression.NONE:
        return vec[a:b]
    out = np.empty(b - a, dtype=np.float32)
    for s in range(a, b, chunk_elems):
        e = min(s + chunk_elems, b)
        out[s - a: e - a] = compression.roundtrip(codec, vec[s:e])
    return out


def group_hash(group: Sequence[str]) -> bytes:
    return hashlib.sha256("\n".join(group).encode()).digest()


@dataclass(frozen=True)
class SketchMessage:
    """What one rank signs after one sync step (``step`` = the step count after the update)."""

    namespace: str
    group: bytes  # group_hash of the sorted group of the round
    step: int
    round: int
    rank: int
    world: int
    weight: float
    digest: bytes  # the round's result digest (the seed's source)
    params: bytes  # sha-256 of the trainable parameters after the step, or NO_PARAMS
    sketches: np.ndarray  # (world, k) float64: row j = sketch of this rank's contribution to part j

    def encode(self) -> bytes:
        ns = self.namespace.encode()
        if len(ns) > MAX_NAMESPACE:
            raise SketchError("sketch namespace too long")
        s = np.ascontiguousarray(self.sketches, dtype="<f8")
        if s.shape[0] != self.world or s.ndim != 2:
            raise SketchError("sketches must be world x k")
        return (MAGIC + struct.pack("<H", len(ns)) + ns
                + _HEAD.pack(self.group, self.step, self.round, self.rank, self.world, self.weight, self.digest,
                             self.params, s.shape[1], s.shape[0]) + s.tobytes())

    @classmethod
    def decode(cls, data: bytes) -> SketchMessage:
        data = bytes(data)
        try:
            if not data.startswith(MAGIC):
                raise ValueError("not a sketch message")
            (nl,) = struct.unpack_from("<H", data, len(MAGIC))
            if nl > MAX_NAMESPACE:
                raise ValueError("namespace too long")
            off = len(MAGIC) + 2
            ns = data[off: off + nl].decode()
            off += nl
            group, step, rnd, rank, world, weight, digest, params, k, n = _HEAD.unpack_from(data, off)
            off += _HEAD.size
            if not (1 <= world <= MAX_WORLD and n == world and rank < world and 1 <= k <= 64):
                raise ValueError("bad rank/world/k")
            if len(data) != off + 8 * n * k:
                raise ValueError(f"{len(data)} bytes, expected {off + 8 * n * k}")
            if not (math.isfinite(weight) and weight >= 0):
                raise ValueError("bad weight")
            s = np.frombuffer(data, dtype="<f8", offset=off).reshape(n, k).astype(np.float64)
            if not np.all(np.isfinite(s)):
                raise ValueError("non-finite sketch")
        except (ValueError, struct.error, UnicodeDecodeError) as exc:
            raise SketchError(f"malformed sketch message: {exc}") from None
        return cls(ns, group, step, rnd, rank, world, weight, digest, params, s)


def max_message_bytes(world: int, k: int = K) -> int:
    return len(MAGIC) + 2 + MAX_NAMESPACE + _HEAD.size + 8 * world * k


@dataclass(frozen=True)
class SignedSketch:
    """A sketch message, its signer (peer id) and the signature over ``body``."""

    peer: str
    body: bytes
    signature: bytes

    def encode(self) -> bytes:
        p = self.peer.encode()
        if not (0 < len(p) <= MAX_PEER and len(self.signature) <= SIG_MAX):
            raise SketchError("bad peer id or signature length")
        return struct.pack("<HH", len(p), len(self.signature)) + p + self.signature + self.body

    @classmethod
    def decode(cls, data: bytes, max_body: int) -> SignedSketch:
        data = bytes(data)
        try:
            pl, sl = struct.unpack_from("<HH", data)
            if pl == 0 or pl > MAX_PEER or sl > SIG_MAX or len(data) - 4 - pl - sl > max_body:
                raise ValueError("bad lengths")
            peer = data[4: 4 + pl].decode()
            sig = data[4 + pl: 4 + pl + sl]
            body = data[4 + pl + sl:]
            if len(sig) != sl:
                raise ValueError("truncated")
        except (ValueError, struct.error, UnicodeDecodeError) as exc:
            raise SketchError(f"malformed signed sketch: {exc}") from None
        return cls(peer, body, sig)

    def message(self) -> SketchMessage:
        return SketchMessage.decode(self.body)


def params_digest_of(flat: np.ndarray) -> bytes:
    """sha-256 of the float32 trainable parameters (the value signed in ``SketchMessage.params``)."""
    return hashlib.sha256(np.ascontiguousarray(flat, dtype=np.float32).tobytes()).digest()


async def exchange(transport, result, vec: np.ndarray, weight: float, *, namespace: str, step: int,
                   codec: int, chunk_elems: int, params: bytes, signer: Signer, verify_peer: PeerVerifier,
                   timeout: float, own_sketches: np.ndarray | None = None) -> list[SignedSketch]:
    """After sync round ``result`` (a ``RoundResult`` kept with ``keep_received``): sign this rank's
    sketches, send them to every peer of the round, receive and check theirs.

    Checks on each peer's message: signed by that peer, for this namespace, group, step, round,
    rank, weight, round digest and parameter digest; its sketch of OUR part equals the sketch of
    what it actually sent us; and, by linearity, every other part's average (computed by that
    part's owner alone) equals the weighted mean of the signed sketches. A peer that fails a check
    or sends nothing is a suspect: ``RoundFailed`` names it, like a faulty peer in a round (the
    caller reports it). Returns every rank's signed sketch, in group order (the sketch log's row).
    ``own_sketches`` overrides this rank's sketch (tests: a rank that lies about what it sent).
    """
    import trio

    from trainer.allreduce import part_bounds
    from trainer.errors import PeerFailure, RoundFailed

    group = list(result.group)
    n = len(group)
    me = group.index(transport.self_id)
    parts = part_bounds(vec.size, n)
    seed = sketch_seed(namespace, step, result.digest)
    ghash = group_hash(group)
    if own_sketches is None:
        own_sketches = np.stack([sketch(contribution(vec, parts, me, j, codec, chunk_elems), seed, j)
                                 for j in range(n)])
    mine = SketchMessage(namespace, ghash, step, result.round_id, me, n, float(weight), result.digest, params,
                         own_sketches)
    body = mine.encode()
    signed_mine = SignedSketch(transport.self_id, body, signer(body))
    wire = signed_mine.encode()
    channel = f"{namespace}/sketch/{result.round_id}"
    others = [p for p in group if p != transport.self_id]
    raw: dict[str, bytes] = {}
    suspects: dict[str, str] = {}

    async def send(p: str) -> None:
        try:
            await transport.send(p, channel, wire, timeout)
        except PeerFailure as exc:
            suspects.setdefault(p, f"could not send our sketch: {exc}")

    async def recv(p: str) -> None:
        try:
            raw[p] = bytes(await transport.recv(p, channel, 3 * timeout))
        except PeerFailure as exc:
            suspects.setdefault(p, f"no sketch message: {exc}")

    weights = result.weights or {}
    received = result.received or {}
    k = own_sketches.shape[1]
    checks: dict[str, np.ndarray] = {}

    def local_sketches() -> None:
        """What we hold ourselves: each peer's contribution to our part, and every averaged part."""
        for p in others:
            checks[p] = sketch(received.get(p, []) or [np.zeros(0, np.float32)], seed, me, k)
        for y in range(n):
            if y != me:
                a, b = parts[y]
                checks[f"avg/{y}"] = sketch(result.vector[a:b], seed, y, k)

    async with trio.open_nursery() as nursery:
        for p in others:
            nursery.start_soon(send, p)
            nursery.start_soon(recv, p)
        # computed while the messages travel; in a thread for big vectors (numpy releases the GIL),
        # so the sends proceed meanwhile, inline for small ones (a thread hop costs ~0.1 ms)
        if vec.size >= THREAD_MIN_VALUES:
            await trio.to_thread.run_sync(local_sketches)
        else:
            await trio.lowlevel.checkpoint()
            local_sketches()
    got: dict[str, SignedSketch] = {transport.self_id: signed_mine}
    msgs: dict[str, SketchMessage] = {transport.self_id: mine}
    max_body = max_message_bytes(n)
    for p, data in raw.items():
        try:
            s = SignedSketch.decode(data, max_body)
            if s.peer != p:
                raise SketchError(f"message claims to come from {s.peer}")
            if not verify_peer(p, s.body, s.signature):
                raise SketchError("signature does not verify")
            m = s.message()
            expect = (namespace, ghash, step, result.round_id, group.index(p), n, weights.get(p), result.digest,
                      params)
            have = (m.namespace, m.group, m.step, m.round, m.rank, m.world, m.weight, m.digest, m.params)
            if have != expect:
                bad = [name for name, a, b in zip(("namespace", "group", "step", "round", "rank", "world", "weight",
                                                   "digest", "params"), have, expect, strict=True) if a != b]
                raise SketchError(f"message disagrees on {', '.join(bad)}")
            if m.sketches.shape[1] != k:
                raise SketchError("wrong number of sketch pairs")
            dev = deviation(m.sketches[me], checks[p], floor=1e-30)
            if not dev <= ONLINE_RTOL:
                raise SketchError(f"its signed sketch of what it sent us is off by {dev:.3g} (tolerance "
                                  f"{ONLINE_RTOL:g}): it lied about its contribution")
        except SketchError as exc:
            suspects.setdefault(p, str(exc))
            continue
        got[p], msgs[p] = s, m
    if not suspects:
        ordered = [msgs[p] for p in group]
        for y, owner in enumerate(group):
            if y == me:
                continue
            want = sum(m.weight * m.sketches[y] for m in ordered) / sum(m.weight for m in ordered)
            # rounding is relative to the summands, not to their (possibly cancelling) mean
            floor = max(rms(m.sketches[y]) for m in ordered)
            dev = deviation(checks[f"avg/{y}"], want, floor=floor)
            if not dev <= AVERAGE_RTOL.get(codec, 5e-2):
                suspects[owner] = (f"its average of part {y} is off the signed sketches by {dev:.3g}: it averaged "
                                   "something else than the ranks sent")
    if suspects:
        reason = "; ".join(f"{p}: {why}" for p, why in sorted(suspects.items()))
        raise RoundFailed(result.round_id, f"sketch check failed at step {step}: {reason}", frozenset(suspects))
    return [got[p] for p in group]
