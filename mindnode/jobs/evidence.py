"""The evidence bundle a job's result points to (`job_result.evidence`, a content id).

Why a bundle: the chain stores only one id per result and never reads the bundle; the verifier
fetches it by content id and uses it to name *which* worker cheated instead of every worker:

* `worker_checkpoints`: each worker's own checkpoint ids (async mode trains local steps per worker,
  so a failing replay of one worker's interval blames that worker alone; sync workers hold the same
  parameters, so their lists are equal and one is enough).
* `sketch_logs`: the content id of the poster's sketch log (sync mode; one entry, `provider` = the
  poster, `rank` = its rank; `mindnode/jobs/sketchlog.py`): every rank's signed gradient sketch of
  every step as the poster received them (`trainer/sketch.py`), which lets a verifier tell whose
  gradient was wrong in a step whose averaged update fails the replay. Each entry inside is signed
  by its rank, so one log suffices: the poster can leave entries out (its fault), not forge them.

Canonical msgpack (`ledger.codec`), bounded, so a hostile bundle is refused before use.

Who vouches for a worker's list: the worker itself. Each worker signs its entry with its node key
(`sign_worker_checkpoints`, message bound to the job id) and sends it to the poster over the job's
trainer transport; the poster only relays it. So a poster cannot frame a worker with a list it
did not publish: an entry whose signature does not verify is the poster's fault, and so is a
worker the result pays (active, samples > 0) with no entry (see `missing_lists`). A worker that
never sent its list is left out of the result's `work` by the poster (not paid, not accused).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from typing import Annotated

from ledger.codec import Bytes, ListOf, Record, Str, UInt, record
from ledger.errors import LedgerError
from mindnode.jobs.errors import EvidenceError

#: The current bundle format.
VERSION = 1
#: Bundles hold ids only; refuse anything bigger before decoding. Sized for the largest async job:
#: 16 workers x 256 checkpoint ids (~62 bytes each) ~ 254 KB, plus sketch-log refs.
MAX_EVIDENCE_BYTES = 1024 * 1024


@record
class WorkerCheckpoints(Record):
    provider: Annotated[bytes, Bytes(32)]
    checkpoints: Annotated[tuple, ListOf(Str(128), 256)]
    signature: Annotated[bytes, Bytes(max_len=64)] = b""   # the provider's, over `checkpoints_message`


@record
class SketchLogRef(Record):
    provider: Annotated[bytes, Bytes(32)]
    rank: Annotated[int, UInt(8)]
    log: Annotated[str, Str(128)]          # content id of the rank's signed sketch log


@record
class Evidence(Record):
    version: Annotated[int, UInt(8)]
    job_id: Annotated[int, UInt(64)]
    worker_checkpoints: Annotated[tuple, ListOf(WorkerCheckpoints, 64)]
    sketch_logs: Annotated[tuple, ListOf(SketchLogRef, 64)]



#: A worker's signed checkpoint list travels alone to the poster: a list of 256 ids and a signature.
MAX_WORKER_ENTRY_BYTES = 48 * 1024
_DOMAIN = b"mindnode/worker-checkpoints\x00"


def checkpoints_message(job_id: int, provider: bytes, checkpoints: Iterable[str]) -> bytes:
    """What a worker signs: its list of checkpoint ids for this job (domain-separated, job-bound)."""
    body = WorkerCheckpoints(provider=provider, checkpoints=tuple(checkpoints)).encode()
    return _DOMAIN + job_id.to_bytes(8, "big") + hashlib.sha256(body).digest()


def sign_worker_checkpoints(job_id: int, provider: bytes, checkpoints: Iterable[str],
                            sign: Callable[[bytes], bytes]) -> WorkerCheckpoints:
    """The worker's entry for the bundle, signed with `sign` (its node key's `sign`)."""
    cks = tuple(checkpoints)
    return WorkerCheckpoints(provider=provider, checkpoints=cks,
                             signature=sign(checkpoints_message(job_id, provider, cks)))


def check_worker_signature(job_id: int, entry: WorkerCheckpoints) -> bool:
    """True when `entry` is signed by the provider it names, for this job."""
    from ledger.keys import verify

    return len(entry.signature) == 64 and verify(
        entry.provider, checkpoints_message(job_id, entry.provider, entry.checkpoints), entry.signature)


def encode_worker_entry(entry: WorkerCheckpoints) -> bytes:
    return entry.encode()


def _decode_bounded(cls, data: bytes, limit: int, what: str):
    """`cls` decoded from untrusted `data`: the size checked before decoding, any codec error an EvidenceError."""
    if len(data) > limit:
        raise EvidenceError(f"{what} of {len(data)} bytes is over the {limit}-byte limit")
    try:
        return cls.decode(bytes(data), max_size=limit)
    except LedgerError as exc:
        raise EvidenceError(f"malformed {what}: {exc}") from None


def decode_worker_entry(data: bytes, job_id: int, sender: bytes) -> WorkerCheckpoints:
    """A worker's entry as the poster receives it: bounded, from `sender` itself, validly signed."""
    entry = _decode_bounded(WorkerCheckpoints, data, MAX_WORKER_ENTRY_BYTES, "checkpoint list")
    if entry.provider != sender:
        raise EvidenceError("checkpoint list names another provider than its sender")
    if not check_worker_signature(job_id, entry):
        raise EvidenceError("checkpoint list signature does not verify")
    return entry


def build(job_id: int, worker_checkpoints: Iterable[WorkerCheckpoints] = (),
          sketch_logs: Iterable[SketchLogRef] = ()) -> bytes:
    """The bundle's canonical bytes (publish them by content id; the id goes in `job_result.evidence`).
    Entries are sorted (by provider; by rank) so equal content gives one id; raises EvidenceError on
    duplicates or when the bundle would exceed MAX_EVIDENCE_BYTES."""
    wc = tuple(sorted(worker_checkpoints, key=lambda e: e.provider))
    sl = tuple(sorted(sketch_logs, key=lambda e: (e.rank, e.provider)))
    if len({e.provider for e in wc}) != len(wc):
        raise EvidenceError("two checkpoint lists for one worker")
    try:
        data = Evidence(version=VERSION, job_id=job_id, worker_checkpoints=wc, sketch_logs=sl).encode()
    except LedgerError as exc:
        raise EvidenceError(f"evidence bundle does not fit its format: {exc}") from None
    if len(data) > MAX_EVIDENCE_BYTES:
        raise EvidenceError(f"evidence bundle of {len(data)} bytes is over the {MAX_EVIDENCE_BYTES}-byte limit")
    return data


def load(data: bytes, job_id: int) -> Evidence:
    """Decode a fetched bundle for `job_id`: bounded, canonical, this version, this job, one entry per
    worker. Raises EvidenceError saying what is wrong (a verifier blames the poster for it)."""
    ev = _decode_bounded(Evidence, data, MAX_EVIDENCE_BYTES, "evidence bundle")
    if ev.version != VERSION:
        raise EvidenceError(f"evidence bundle version {ev.version}; this node reads version {VERSION}")
    if ev.job_id != job_id:
        raise EvidenceError(f"evidence bundle is for job {ev.job_id}, not job {job_id}")
    if len({e.provider for e in ev.worker_checkpoints}) != len(ev.worker_checkpoints):
        raise EvidenceError("evidence bundle has two checkpoint lists for one worker")
    return ev


def missing_lists(ev: Evidence | None, job_id: int, required: Iterable[bytes]) -> list[bytes]:
    """Workers in `required` (the result pays them and they are active) without a validly signed
    checkpoint list in `ev`: the poster left them out or forged them, so the poster answers for it."""
    good = set() if ev is None else {e.provider for e in ev.worker_checkpoints if check_worker_signature(job_id, e)}
    return sorted(p for p in required if p not in good)
