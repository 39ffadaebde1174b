"""The evidence bundle a job's result points to (`job_result.evidence`, a content id).

Why a bundle: the chain stores only one id per result and never reads the bundle; the verifier
fetches it by content id and uses it to name *which* worker cheated instead of every worker:

* `worker_checkpoints`: each worker's own checkpoint ids (async mode trains local steps per worker,
  so a failing replay of one worker's interval blames that worker alone; sync workers hold the same
  parameters, so their lists are equal and one is enough).
* `sketch_logs`: per rank, the content id of its signed gradient-sketch log (sync mode; see
  `trainer/sketch.py`), which lets a verifier tell whose gradient was wrong in a step whose
  averaged update fails the replay.

Canonical msgpack (`ledger.codec`), bounded, so a hostile bundle is refused before use.
"""

from __future__ import annotations

from typing import Annotated

from ledger.codec import Bytes, ListOf, Record, Str, UInt, record

#: The current bundle format.
VERSION = 1
#: Bundles are small (ids only); refuse anything bigger before decoding.
MAX_EVIDENCE_BYTES = 64 * 1024


@record
class WorkerCheckpoints(Record):
    provider: Annotated[bytes, Bytes(32)]
    checkpoints: Annotated[tuple, ListOf(Str(128), 256)]


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
