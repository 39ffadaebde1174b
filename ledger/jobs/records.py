"""The jobs' state records and their keys (first byte ``J``), and typed load/store helpers.

==========================================  =====================================================
key                                         value
==========================================  =====================================================
``Jp`` + provider                           `Provider`: hardware, score, price, capacity, reputation
``Jn``                                      `Counter`: the next job id
``Jj`` + job id (8 B BE)                    `Job`: the whole life of one job (see lifecycle.py)
``Jo`` + job id + provider                  `Offer`: a provider's offer on an open job
``Jt`` + height (8 B BE) + job id + kind    ``b""``: a timer due at that height (window close,
                                            verification challenge, verification timeout, audit draw)
``Jd`` + deadline ms (8 B BE) + job id      ``b""``: the job's deadline (expiry index)
``Jb``                                      `Beacon`: the chain's running random beacon
``Jk`` + provider                           `ControlTask`: an open known-answer task
``Jq``                                      `Counter`: the next control task id
``Jh`` + job_submit tx hash                 job id (8 B BE): the job a transaction created
``Js`` + state code (1 B) + job id          ``b""``: index of the unfinished jobs by state
                                            (``o`` open, ``r`` running, ``v`` verifying)
``Jf`` + settled height (8 B BE) + job id   ``b""``: finished jobs in settling order (pruning queue)
``Jx`` + job id                             `JobSummary`: what is left of a pruned job
==========================================  =====================================================

Why timers by height and deadlines by time: offer windows and verification turns are counted in
blocks (so a stalled chain does not close them early), while the submitter's deadline is a point
in time. Both queues are ordered, so a block only touches entries that are actually due. The state index
lets `provider_duties` and `list_jobs` read only the jobs that can still change, and the pruning
queue lets the end-block hook find the finished jobs past their retention without a scan.
"""

from __future__ import annotations

from typing import Annotated, Any

from ledger.codec import BigUInt, Bool, Bytes, ListOf, Optional, Record, Str, UInt, record
from ledger.hashing import tagged_hash
from ledger.jobs import rules
from ledger.state import register_state_prefix

register_state_prefix(b"J", None)          # values stay bytes in the State; decoded here

MODULE_TAG = b"mindnode/module"
#: The module account that holds every job's escrowed budget (no key holds it: a SHA-256 output).
JOB_ESCROW = tagged_hash(MODULE_TAG, b"jobs/escrow")
#: Where slashed stake passes on its way to the staking pool.
SLASH_ACCOUNT = tagged_hash(MODULE_TAG, b"jobs/slash")

AMOUNT = BigUInt(32)

# job states
OPEN = "open"               # offer window
RUNNING = "running"         # workers assigned, training
VERIFYING = "verifying"     # result on chain, waiting for the replay verdict
DONE = "done"               # verified and settled
FAILED = "failed"           # settled without an accepted result (what was earned is paid, rest refunded)
EXPIRED = "expired"         # deadline passed before a result
CANCELLED = "cancelled"
TERMINAL = (DONE, FAILED, EXPIRED, CANCELLED)

#: What a `job_abort` may blame: the job's own inputs, never a peer (peers are `job_report_missing`).
ABORT_CODES = ("dataset", "base_model", "spec")
ABORT_REASON_CHARS = 160

# timer kinds
T_WINDOW = b"W"
T_CHALLENGE = b"C"
T_VERIFY_TIMEOUT = b"V"
T_AUDIT = b"A"              # the block whose beacon decides whether a clean verdict is audited

# audit phases of a verifying job (`Job.audit`; ledger/JOBS.md "Audits")
A_DRAW = "draw"             # a clean verdict is recorded; the next block's beacon decides on an audit
A_AUDIT = "audit"           # an auditor (a second verifier, same steps) is designated
A_DISPUTE = "dispute"       # the audit disagreed with the clean verdict; a decider is designated


@record
class Provider(Record):
    hardware_class: Annotated[str, Str(32)]
    score: Annotated[int, UInt(64)]            # benchmark score (see mindnode/jobs/benchmark.py)
    price: Annotated[int, AMOUNT]              # base units per work unit (rules.WORK_UNIT_SAMPLES samples)
    capacity: Annotated[int, UInt(8)]          # jobs at once
    zone: Annotated[str, Str(32)]              # self-declared locality hint ("eu-west", "lab-1")
    bandwidth_kbps: Annotated[int, UInt(32)]
    reputation: Annotated[int, UInt(16)]
    active_jobs: Annotated[int, UInt(8)]
    jobs_done: Annotated[int, UInt(32)]
    jobs_failed: Annotated[int, UInt(32)]
    controls_passed: Annotated[int, UInt(32)]
    controls_failed: Annotated[int, UInt(32)]
    registered_height: Annotated[int, UInt(64)]


@record
class Counter(Record):
    next: Annotated[int, UInt(64)]


@record
class Offer(Record):
    price: Annotated[int, AMOUNT]
    zone: Annotated[str, Str(32)]
    height: Annotated[int, UInt(64)]


@record
class Worker(Record):
    """An assigned worker. `active` turns false when it is reported missing (it stays listed: its
    samples before it left are still paid when the job verifies)."""

    provider: Annotated[bytes, Bytes(32)]
    price: Annotated[int, AMOUNT]
    rank: Annotated[int, UInt(8)]
    active: Annotated[bool, Bool()]


@record
class Metric(Record):
    name: Annotated[str, Str(32)]
    value_ppm: Annotated[int, UInt(64)]


@record
class Work(Record):
    provider: Annotated[bytes, Bytes(32)]
    samples: Annotated[int, UInt(64)]


@record
class Report(Record):
    reporter: Annotated[bytes, Bytes(32)]
    accused: Annotated[bytes, Bytes(32)]


@record
class Result(Record):
    result_cid: Annotated[str, Str(128)]
    metrics: Annotated[tuple, ListOf(Metric, 16)]
    work: Annotated[tuple, ListOf(Work, 64)]
    checkpoints: Annotated[tuple, ListOf(Str(128), 64)]
    poster: Annotated[bytes, Bytes(32)]
    height: Annotated[int, UInt(64)]
    evidence: Annotated[str, Str(128)] = ""    # CID of the evidence bundle ("" = none)


@record
class Abort(Record):
    """An active worker's declaration that the job cannot be trained (`job_abort`): its spec, its
    dataset artifact or its base model artifact is unusable. `code` is one of `ABORT_CODES`."""

    worker: Annotated[bytes, Bytes(32)]
    code: Annotated[str, Str(16)]
    reason: Annotated[str, Str(ABORT_REASON_CHARS)]
    height: Annotated[int, UInt(64)]


@record
class Payment(Record):
    provider: Annotated[bytes, Bytes(32)]
    amount: Annotated[int, AMOUNT]


@record
class Job(Record):
    id: Annotated[int, UInt(64)]
    submitter: Annotated[bytes, Bytes(32)]
    spec_hash: Annotated[bytes, Bytes(32)]
    spec: Annotated[bytes, Bytes(max_len=rules.MAX_SPEC_BYTES)]
    mode: Annotated[str, Str(8)]
    workers: Annotated[int, UInt(8)]
    min_workers: Annotated[int, UInt(8)]
    min_class: Annotated[str, Str(32)]
    min_score: Annotated[int, UInt(64)]
    max_price: Annotated[int, AMOUNT]
    max_samples: Annotated[int, UInt(64)]      # per worker
    steps: Annotated[int, UInt(32)]
    replay_steps: Annotated[int, UInt(16)]
    metric: Annotated[str, Str(32)]
    metric_op: Annotated[str, Str(2)]
    threshold_ppm: Annotated[int, UInt(64)]
    budget: Annotated[int, AMOUNT]
    escrow: Annotated[int, AMOUNT]             # what JOB_ESCROW still holds for this job
    strategy: Annotated[str, Str(32)]
    offer_window: Annotated[int, UInt(16)]
    deadline_ms: Annotated[int, UInt(64)]
    state: Annotated[str, Str(16)]
    reason: Annotated[str, Str(160)]
    created_height: Annotated[int, UInt(64)]
    window_close_height: Annotated[int, UInt(64)]
    offer_rounds: Annotated[int, UInt(8)]
    assigned: Annotated[tuple, ListOf(Worker, rules.MAX_ASSIGNED)]
    replacements: Annotated[int, UInt(8)]
    reports: Annotated[tuple, ListOf(Report, rules.MAX_WORKERS * rules.MAX_WORKERS)]
    result: Annotated[Any, Optional(Result)]
    challenge_height: Annotated[int, UInt(64)]
    verifier: Annotated[bytes, Bytes(max_len=32)]
    tried_verifiers: Annotated[tuple, ListOf(Bytes(32), rules.MAX_VERIFY_ROUNDS_LIMIT)]
    replay_from: Annotated[int, UInt(32)]
    accused: Annotated[tuple, ListOf(Bytes(32), 64)]   # the first verdict's bad workers, awaiting confirmation
    accuser: Annotated[bytes, Bytes(max_len=32)]
    verify_due_height: Annotated[int, UInt(64)]
    payments: Annotated[tuple, ListOf(Payment, 64)]
    fee_paid: Annotated[int, AMOUNT]           # the utilisation fee taken from the escrow
    refunded: Annotated[int, AMOUNT]
    verified_metric_ppm: Annotated[int, UInt(64)]
    rated: Annotated[int, UInt(8)]             # 0 = not rated, else 1..5
    settled_height: Annotated[int, UInt(64)]
    submit_tx: Annotated[bytes, Bytes(max_len=32)] = b""   # the job_submit hash (its `Jh` index entry)
    verifier_fees: Annotated[int, AMOUNT] = 0  # paid from the escrow to the verifiers whose verdict stood
    verifier_payments: Annotated[tuple, ListOf(Payment, rules.MAX_VERIFY_ROUNDS_LIMIT)] = ()
    # `job_abort` declarations, one per worker (current or former: at most every assigned worker)
    aborts: Annotated[tuple, ListOf(Abort, rules.MAX_ASSIGNED)] = ()
    # Audits of clean verdicts (ledger/JOBS.md "Audits"): the phase ("" = none), the clean verdict
    # under audit (its verifier and metric), the auditor and its metric, the draw block.
    audit: Annotated[str, Str(8)] = ""
    clean_by: Annotated[bytes, Bytes(max_len=32)] = b""
    clean_metric_ppm: Annotated[int, UInt(64)] = 0
    auditor: Annotated[bytes, Bytes(max_len=32)] = b""
    audit_metric_ppm: Annotated[int, UInt(64)] = 0
    audit_height: Annotated[int, UInt(64)] = 0

    @property
    def active_workers(self) -> list[Worker]:
        return [w for w in self.assigned if w.active]

    def worker(self, provider: bytes) -> Worker | None:
        return next((w for w in self.assigned if w.provider == provider), None)


@record
class JobSummary(Record):
    """A pruned job: who asked, how it ended, what it cost and paid (``Jx`` + id).

    Conservation still holds on it: ``fee_paid + verifier_fees + refunded == budget``."""

    id: Annotated[int, UInt(64)]
    submitter: Annotated[bytes, Bytes(32)]
    spec_hash: Annotated[bytes, Bytes(32)]
    mode: Annotated[str, Str(8)]
    metric: Annotated[str, Str(32)]
    state: Annotated[str, Str(16)]
    reason: Annotated[str, Str(160)]
    result_cid: Annotated[str, Str(128)]       # "" when the job ended without a result
    metrics: Annotated[tuple, ListOf(Metric, 16)]
    verified_metric_ppm: Annotated[int, UInt(64)]
    budget: Annotated[int, AMOUNT]
    payments: Annotated[tuple, ListOf(Payment, 64)]
    fee_paid: Annotated[int, AMOUNT]
    verifier_payments: Annotated[tuple, ListOf(Payment, rules.MAX_VERIFY_ROUNDS_LIMIT)]
    verifier_fees: Annotated[int, AMOUNT]
    refunded: Annotated[int, AMOUNT]
    rated: Annotated[int, UInt(8)]
    created_height: Annotated[int, UInt(64)]
    settled_height: Annotated[int, UInt(64)]
    pruned_height: Annotated[int, UInt(64)]


@record
class Beacon(Record):
    seed: Annotated[bytes, Bytes(32)]
    height: Annotated[int, UInt(64)]


@record
class ControlTask(Record):
    task_id: Annotated[int, UInt(64)]
    seed: Annotated[bytes, Bytes(32)]
    issued_height: Annotated[int, UInt(64)]
    due_height: Annotated[int, UInt(64)]


# -- keys -------------------------------------------------------------------------------------------

def _u64(n: int) -> bytes:
    return n.to_bytes(8, "big")


def provider_key(addr: bytes) -> bytes:
    return b"Jp" + addr


JOB_COUNTER_KEY = b"Jn"
CONTROL_COUNTER_KEY = b"Jq"
BEACON_KEY = b"Jb"


def job_key(job_id: int) -> bytes:
    return b"Jj" + _u64(job_id)


def offer_key(job_id: int, provider: bytes) -> bytes:
    return b"Jo" + _u64(job_id) + provider


def offers_prefix(job_id: int) -> bytes:
    return b"Jo" + _u64(job_id)


def timer_key(height: int, job_id: int, kind: bytes) -> bytes:
    return b"Jt" + _u64(height) + _u64(job_id) + kind


def deadline_key(deadline_ms: int, job_id: int) -> bytes:
    return b"Jd" + _u64(deadline_ms) + _u64(job_id)


def control_key(provider: bytes) -> bytes:
    return b"Jk" + provider


def submit_index_key(tx_hash: bytes) -> bytes:
    return b"Jh" + tx_hash


#: One byte per unfinished state in the `Js` index.
STATE_CODE = {OPEN: b"o", RUNNING: b"r", VERIFYING: b"v"}


def state_index_prefix(job_state: str) -> bytes:
    return b"Js" + STATE_CODE[job_state]


def state_index_key(job_state: str, job_id: int) -> bytes:
    return b"Js" + STATE_CODE[job_state] + _u64(job_id)


def finished_key(settled_height: int, job_id: int) -> bytes:
    return b"Jf" + _u64(settled_height) + _u64(job_id)


def summary_key(job_id: int) -> bytes:
    return b"Jx" + _u64(job_id)


# -- typed access (prefix J values are bytes in the State) ------------------------------------------

def load(state, key: bytes, cls: type[Record]) -> Any:
    v = state.get(key)
    if v is None:
        return None
    return v if isinstance(v, cls) else cls.decode(v)


def store(state, key: bytes, rec: Record | None) -> None:
    if rec is None:
        state.delete(key)
    else:
        state.put(key, rec.encode())


def get_provider(state, addr: bytes) -> Provider | None:
    return load(state, provider_key(addr), Provider)


def put_provider(state, addr: bytes, p: Provider) -> None:
    store(state, provider_key(addr), p)


def get_job(state, job_id: int) -> Job | None:
    return load(state, job_key(job_id), Job)


def put_job(state, job: Job) -> None:
    store(state, job_key(job.id), job)


def get_summary(state, job_id: int) -> JobSummary | None:
    return load(state, summary_key(job_id), JobSummary)


def job_ids_in(state, job_state: str) -> list[int]:
    """Ids of the jobs in unfinished state `job_state` (open/running/verifying), from the index."""
    return [int.from_bytes(k[3:11], "big") for k, _ in state.iter_prefix(state_index_prefix(job_state))]


def move_state_index(state, job_id: int, old: str | None, new: str) -> None:
    """Keep `Js` equal to the jobs' states: called on every state change (`old` None: a new job)."""
    if old == new:
        return
    if old in STATE_CODE:
        state.delete(state_index_key(old, job_id))
    if new in STATE_CODE:
        state.put(state_index_key(new, job_id), b"")


def offers_of(state, job_id: int) -> list[tuple[bytes, Offer]]:
    """(provider, offer) of every offer on the job, in provider-address order."""
    pre = offers_prefix(job_id)
    return [(k[len(pre):], Offer.decode(v) if isinstance(v, bytes) else v) for k, v in state.iter_prefix(pre)]


def next_counter(state, key: bytes) -> int:
    c = load(state, key, Counter)
    n = c.next if c else 1
    store(state, key, Counter(next=n + 1))
    return n
