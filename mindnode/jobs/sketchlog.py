"""The sketch log: every rank's signed gradient sketch of every sync step, as the result poster saw
them (trainer/sketch.py), published as one blob and named in the evidence bundle (`sketch_logs`).

Why the poster's log is trustworthy enough: every entry is signed by the rank that sent it with its
node key (addresses are Ed25519 public keys), so the poster cannot forge another rank's sketch; it
can only leave entries out or publish garbage, and a missing, malformed or badly signed entry is
the poster's fault (`load` raises `SketchLogError`, the verifier names the poster). Signatures are
domain-separated (`SIG_DOMAIN`) so a sketch signature can never pass for a transaction signature.

Format: canonical msgpack records (`ledger.codec`), bounded (`MAX_LOG_BYTES`, `MAX_STEPS`, 64 ranks
per step, `MAX_BODY` per message), so a hostile log is refused before it is used.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Annotated

from ledger.codec import Bytes, ListOf, Record, Str, UInt, record
from ledger.errors import LedgerError
from mindnode.jobs.errors import JobSpecError

VERSION = 1
MAX_STEPS = 100_000
MAX_RANKS = 64
MAX_BODY = 16 * 1024
MAX_LOG_BYTES = 64 * 1024 * 1024
SIG_DOMAIN = b"mindnode/gradient-sketch\x00"


class SketchLogError(JobSpecError):
    """A sketch log is malformed, oversized, for another job, or carries an entry that is not signed
    by the rank it names: the poster who published it answers for it."""


@record
class SketchEntry(Record):
    peer: Annotated[str, Str(128)]                       # the signer's address text (mn...)
    body: Annotated[bytes, Bytes(max_len=MAX_BODY)]       # trainer.sketch.SketchMessage bytes
    signature: Annotated[bytes, Bytes(64)]


@record
class SketchStep(Record):
    entries: Annotated[tuple, ListOf(SketchEntry, MAX_RANKS)]


@record
class SketchLog(Record):
    version: Annotated[int, UInt(8)]
    job_id: Annotated[int, UInt(64)]
    steps: Annotated[tuple, ListOf(SketchStep, MAX_STEPS)]


def signer(sign: Callable[[bytes], bytes]) -> Callable[[bytes], bytes]:
    """The trainer's `Signer` from a node key's `sign` (domain-separated)."""
    return lambda message: sign(SIG_DOMAIN + bytes(message))


def verify_peer(peer: str, message: bytes, signature: bytes) -> bool:
    """The trainer's `PeerVerifier`: `peer` is an address text, i.e. an Ed25519 public key."""
    from ledger.keys import address_from_text, verify

    try:
        address = address_from_text(peer)
    except (LedgerError, ValueError):
        return False
    return len(signature) == 64 and verify(address, SIG_DOMAIN + bytes(message), bytes(signature))


def build(job_id: int, rows: Iterable[Sequence]) -> bytes:
    """The log's bytes from a trainer `Worker.sketch_log` (per step: every rank's SignedSketch)."""
    steps = tuple(SketchStep(entries=tuple(SketchEntry(peer=s.peer, body=bytes(s.body), signature=bytes(s.signature))
                                           for s in row)) for row in rows)
    try:
        data = SketchLog(version=VERSION, job_id=job_id, steps=steps).encode()
    except LedgerError as exc:
        raise SketchLogError(f"sketch log does not fit its format: {exc}") from None
    if len(data) > MAX_LOG_BYTES:
        raise SketchLogError(f"sketch log of {len(data)} bytes is over the {MAX_LOG_BYTES}-byte limit")
    return data


@dataclass(frozen=True)
class Step:
    """One step's checked messages: peer address text -> trainer SketchMessage."""

    step: int
    messages: dict


def load(data: bytes, job_id: int, workers: Iterable[str]) -> dict[int, Step]:
    """Decode and check a log for `job_id`: every entry signed by its peer, a worker of the job,
    one message per peer per step, steps consistent (same step, round, digest, namespace, group
    size). Returns step -> Step. Raises `SketchLogError` on anything else (the poster's fault)."""
    from trainer.sketch import SketchError, SketchMessage, group_hash

    if len(data) > MAX_LOG_BYTES:
        raise SketchLogError(f"sketch log of {len(data)} bytes is over the {MAX_LOG_BYTES}-byte limit")
    try:
        log = SketchLog.decode(bytes(data), max_size=MAX_LOG_BYTES)
    except LedgerError as exc:
        raise SketchLogError(f"malformed sketch log: {exc}") from None
    if log.version != VERSION or log.job_id != job_id:
        raise SketchLogError(f"sketch log version {log.version} for job {log.job_id}, expected {VERSION}/{job_id}")
    allowed = set(workers)
    out: dict[int, Step] = {}
    namespace = None
    for row in log.steps:
        msgs: dict[str, SketchMessage] = {}
        for e in row.entries:
            if e.peer not in allowed:
                raise SketchLogError(f"sketch log entry signed by {e.peer[:12]}, not a worker of the job")
            if e.peer in msgs:
                raise SketchLogError(f"two sketch messages from {e.peer[:12]} in one step")
            if not verify_peer(e.peer, e.body, e.signature):
                raise SketchLogError(f"sketch log entry of {e.peer[:12]} is not signed by it")
            try:
                msgs[e.peer] = SketchMessage.decode(e.body)
            except SketchError as exc:
                raise SketchLogError(f"sketch log entry of {e.peer[:12]}: {exc}") from None
        if not msgs:
            raise SketchLogError("empty step in the sketch log")
        group = sorted(msgs)
        first = next(iter(msgs.values()))
        namespace = first.namespace if namespace is None else namespace
        if not namespace.startswith(f"job-{job_id}-"):       # signed for this job's trainer channels
            raise SketchLogError(f"sketch messages signed for {namespace[:40]!r}, not job {job_id}")
        for p, m in msgs.items():
            if (m.step, m.round, m.digest, m.namespace, m.world, m.group) != (
                    first.step, first.round, first.digest, namespace, len(group), group_hash(group)) \
                    or m.rank != group.index(p):
                raise SketchLogError(f"inconsistent sketch messages at step {first.step}")
        if first.step in out:
            raise SketchLogError(f"step {first.step} twice in the sketch log")
        out[first.step] = Step(first.step, msgs)
    return out
