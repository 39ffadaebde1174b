"""The node's blob store under a budget: which blobs its jobs still need, a periodic collection,
and the ``/blobs`` management routes (list, pin, unpin, gc).

What stays (the rule; README "Blob store" and ledger/JOBS.md "Blob store budget"):
* pinned blobs: everything the local user uploaded (`POST /blobs`, `mindnode blob put`) and
  whatever `mindnode blob pin` names, until `mindnode blob unpin`;
* blobs a job of this node still needs, read from chain state at each collection (so it survives
  restarts): for every job still in state (open, running, verifying, and finished ones until the
  chain prunes them, `params.jobs.job_retention_blocks` after settlement: that is the grace period
  in which the submitter and later verifiers can still download) in which this node takes part
  (submitter, assigned worker, verifier or past verifier, result poster, or an offer on an open
  job), its dataset artifact, base model, result weights, result checkpoints, evidence bundle and,
  when the bundle is local, the checkpoints and sketch logs it names;
* blobs this node produced itself (`JobService.put`: weights, checkpoints, evidence, sketch logs)
  while it has an unfinished job (their ids reach the chain only with the result);
* blobs used within the last ``recent_s`` seconds (default 600), and blobs being served.
Everything else (prefetched datasets of jobs assigned to others, downloads, blobs of pruned jobs)
goes least recently used first once the store is over ``[blobs] max_store_bytes``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import trio

from mindnode.config import DEFAULT_MAX_STORE_BYTES
from mindnode.node import errors
from p2p import blob_gc

if TYPE_CHECKING:
    from p2p.blob import BlobExchange

log = logging.getLogger("mindnode.node")

#: How often the node checks its store against the budget (seconds); cheap when under budget.
GC_EVERY_S = 60.0
#: An over-budget store that cannot shrink is reported at most this often (seconds).
WARN_EVERY_S = 3600.0


def _spec_refs(spec_bytes: bytes) -> list[str]:
    """Dataset artifact and base model ids of a job spec (a spec we cannot parse names none)."""
    from mindnode.jobs import spec as job_spec
    from mindnode.jobs.errors import JobSpecError

    try:
        spec = job_spec.parse(spec_bytes, "job spec")
    except JobSpecError:
        return []
    return [c for c in (spec.data["dataset"].get("artifact"), spec.base_model) if c]


def _takes_part(state, job, me: bytes) -> bool:
    from ledger.jobs.records import OPEN, offer_key

    return (job.submitter == me or job.worker(me) is not None or job.verifier == me
            or me in job.tried_verifiers or (job.result is not None and job.result.poster == me)
            or (job.state == OPEN and state.get(offer_key(job.id, me)) is not None))


def _evidence_refs(cid: str, job_id: int, read_local: Callable[[str], bytes | None]) -> list[str]:
    from mindnode.jobs import evidence

    data = read_local(cid)
    if data is None:
        return []
    try:
        ev = evidence.load(data, job_id)
    except Exception:                  # a bad bundle names nothing (its verifier blames the poster)
        return []
    out = [c for e in ev.worker_checkpoints for c in e.checkpoints]
    return out + [r.log for r in ev.sketch_logs]


def job_needs(state, me: bytes, read_local: Callable[[str], bytes | None] = lambda c: None
              ) -> tuple[dict[str, int], bool]:
    """(blob id -> the job id that needs it, whether ``me`` has an unfinished job) from chain
    state: the jobs still in state in which ``me`` takes part (module docstring). ``read_local``
    returns a blob's bytes if this node has it (evidence bundles are read for the ids they name)."""
    from ledger.jobs.records import OPEN, RUNNING, VERIFYING
    from ledger.jobs.views import finished_jobs, jobs_in

    need: dict[str, int] = {}
    busy = False
    jobs = [j for st in (OPEN, RUNNING, VERIFYING) for j in jobs_in(state, st)] + finished_jobs(state)
    for job in jobs:
        if not _takes_part(state, job, me):
            continue
        if job.state in (RUNNING, VERIFYING) and (job.worker(me) is not None or job.verifier == me):
            busy = True                 # it produces blobs for this job (a submitter produces none)
        refs = _spec_refs(job.spec)
        if job.result is not None:
            r = job.result
            refs += [r.result_cid, *r.checkpoints]
            if r.evidence:
                refs += [r.evidence, *_evidence_refs(r.evidence, job.id, read_local)]
        for c in refs:
            if c:
                need.setdefault(c, job.id)
    return need, busy


class BlobKeeper:
    """Runs the collection for one node: `run` (periodic), `gc` (now), `listing`; the chain state
    and this node's address come from ``state`` and ``me``."""

    def __init__(self, exchange: BlobExchange, state: Callable[[], Any], me: bytes, *,
                 max_bytes: int = DEFAULT_MAX_STORE_BYTES, recent_s: float = blob_gc.DEFAULT_RECENT_S,
                 every_s: float = GC_EVERY_S) -> None:
        self.exchange = exchange
        self.store = exchange.store
        self.state = state
        self.me = me
        self.max_bytes = max_bytes
        self.recent_s = recent_s
        self.every_s = every_s
        self.last: blob_gc.GcReport | None = None
        self._lock = trio.Lock()
        self._warned_at = float("-inf")

    def _read_small(self, cid: str) -> bytes | None:
        from mindnode.jobs.evidence import MAX_EVIDENCE_BYTES

        try:
            if self.store.size(cid) > MAX_EVIDENCE_BYTES:
                return None
            return self.store.path(cid).read_bytes()
        except Exception:
            return None

    def keep(self) -> set[str]:
        """What must stay beside the pins: blobs this node's jobs need, and its own blobs while it
        has an unfinished job."""
        need, busy = job_needs(self.state(), self.me, self._read_small)
        out = set(need)
        if busy:
            out |= self.store.own()
        return out

    async def gc(self) -> blob_gc.GcReport:
        """One collection now (in a worker thread: it stats and unlinks files)."""
        async with self._lock:
            fetching = self.exchange.fetching()
            report = await trio.to_thread.run_sync(lambda: blob_gc.collect(
                self.store, self.max_bytes, keep=self.keep, recent_s=self.recent_s, fetching=fetching))
            self.last = report
            if report.over_budget and trio.current_time() - self._warned_at > WARN_EVERY_S:
                self._warned_at = trio.current_time()
                log.warning("blob store holds %d bytes, over its %d-byte budget ([blobs] max_store_bytes): the rest "
                            "is pinned, needed by this node's jobs or in use; unpin what you no longer need "
                            "(`mindnode blob ls`, `mindnode blob unpin CID`) or raise the budget",
                            report.after, report.budget)
            return report

    async def run(self) -> None:
        """Collect every ``every_s`` seconds for as long as the node runs."""
        while True:
            await trio.sleep(self.every_s)
            try:
                await self.gc()
            except Exception:            # a collection failing must not stop the node
                log.exception("blob gc failed")

    def listing(self) -> dict[str, Any]:
        """Every stored blob: id, size, pinned (reason), needed by a job, produced here, last use."""
        pins = self.store.pins()
        need, busy = job_needs(self.state(), self.me, self._read_small)
        own = self.store.own()
        blobs = [{"cid": c, "size": size, "last_used": round(last, 3), "pinned": c in pins,
                  "pin": pins.get(c), "job": need.get(c), "own": c in own}
                 for c, size, last in sorted(self.store.entries(), key=lambda e: -e[2])]
        return {"budget": self.max_bytes, "used": sum(b["size"] for b in blobs), "busy": busy, "blobs": blobs}


def add_routes(app: Any, keeper_of: Callable[[], BlobKeeper]) -> None:
    """``GET /blobs`` (list), ``POST /blobs/gc``, ``POST`` / ``DELETE /blobs/{cid}/pin``."""
    from p2p.errors import InvalidContentId

    @app.get("/blobs", summary="The blobs this node stores: size, pinned, needed by a job, last use; and the budget")
    async def blob_list() -> dict:
        return await trio.to_thread.run_sync(keeper_of().listing)

    @app.post("/blobs/gc", summary="Collect now: evict unpinned, unneeded blobs (least recently used first) "
              "until the store is within [blobs] max_store_bytes; returns what was freed")
    async def blob_gc_now() -> dict:
        return (await keeper_of().gc()).to_json()

    @app.post("/blobs/{cid}/pin", summary="Pin a blob: it stays whatever the budget (need not be stored yet)")
    async def blob_pin(cid: str) -> dict:
        try:
            keeper_of().store.pin(cid, "user")
        except InvalidContentId as exc:
            raise errors.BadRequest(str(exc)) from None
        return {"cid": cid, "pinned": True}

    @app.delete("/blobs/{cid}/pin", summary="Unpin a blob: the next collection may evict it (404 if not pinned)")
    async def blob_unpin(cid: str) -> dict:
        try:
            was = keeper_of().store.unpin(cid)
        except InvalidContentId as exc:
            raise errors.BadRequest(str(exc)) from None
        if not was:
            raise errors.NotFound(f"blob {cid} is not pinned")
        return {"cid": cid, "pinned": False}
