"""Job announcements on the ``job`` gossip topic: the signed `job_submit` transaction itself, sent
when a node's API accepts it, so providers hear of a job before it is on chain.

Why the transaction and not a job record: the job id exists only once a block includes the
submit (the chain indexes tx hash -> job id, `ledger.jobs.views.job_id_of_tx`), and the signed
transaction is self-authenticating: any node checks it with no state at all (strict decode within
the chain's `max_tx_bytes`, this chain's id, a valid signature, kind ``job_submit``), so a relay
cannot forge or alter one. What a provider gains is time: while the submit waits for inclusion and
the offer window runs, a provider whose hardware meets the job's requirements fetches the
dataset and base-model blobs by content id, so training starts on local data once it is assigned.
Its offer still goes out at the agent's first poll after the job is open (an offer names the job
id, which only the chain gives).

Wire: the topic is shared with training progress, so each message is a msgpack map with a type
tag ``t``: ``{"t": "announce", "tx": <signed tx bytes>}`` here; progress messages carry
``"t": "progress"`` (or no tag: nodes from before the tag). Anything else -> REJECT, which lowers
the forwarder's gossip score as on every topic.

Prefetch is bounded (at most `PREFETCH_PARALLEL` blobs at once, `MAX_TRACKED` announcements
remembered, `PREFETCH_TIMEOUT_S` per announcement) and cancellable: a prefetch stops when the job
it serves is on chain and no longer needs this node (assigned to others, finished, cancelled),
and `cancel(tx_hash)` stops it by hand. ``MINDNODE_JOB_ANNOUNCE=0`` turns announcing and
prefetching off (the measurement's baseline, or an operator who wants neither).
"""

from __future__ import annotations

import logging
import os
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import msgpack
import trio

from mindnode.node.network import ACCEPT, IGNORE, REJECT, Validation

if TYPE_CHECKING:
    from mindnode.node.job_service import JobService

log = logging.getLogger("mindnode.jobs")

ANNOUNCE = "announce"
PROGRESS = "progress"
#: Blobs fetched at once for announced jobs (the node's other transfers keep their share).
PREFETCH_PARALLEL = 2
#: Announcements remembered (oldest forgotten first; a forgotten one is only not prefetched).
MAX_TRACKED = 128
#: Longest a prefetch for one announcement may run (seconds).
PREFETCH_TIMEOUT_S = 600.0


def enabled_by_env() -> bool:
    return os.environ.get("MINDNODE_JOB_ANNOUNCE", "1").strip().lower() not in ("0", "off", "false", "no")


def encode_announcement(raw_tx: bytes) -> bytes:
    return msgpack.packb({"t": ANNOUNCE, "tx": raw_tx})


@dataclass
class Announcement:
    tx_hash: bytes
    min_class: str
    min_score: int
    max_price: int
    cids: list[str]                  # dataset artifact and base model, when the spec names them
    at: float = field(default_factory=time.monotonic)


class JobAnnouncer:
    """Publish, validate and act on job announcements for one node (`JobService.announcer`)."""

    def __init__(self, jobs: JobService, enabled: bool | None = None):
        self.jobs = jobs
        self.enabled = enabled_by_env() if enabled is None else enabled
        self.seen: OrderedDict[bytes, Announcement] = OrderedDict()
        self.prefetching: dict[bytes, trio.CancelScope] = {}
        self.prefetched: dict[bytes, list[str]] = {}      # tx hash -> the blobs now local (tests, status)
        self._slots = trio.Semaphore(PREFETCH_PARALLEL)
        self._nursery: trio.Nursery | None = None

    @property
    def max_bytes(self) -> int:
        """An announcement is a transaction and a few bytes of framing."""
        return self.jobs.svc.chain.params.max_tx_bytes + 64

    # ------------------------------------------------------------------ sending
    async def announce(self, tx, raw: bytes) -> None:
        """Called when this node's API admitted `tx`: gossip it if it submits a job, and act on it
        here too (our own publishes do not come back to us)."""
        if not self.enabled or tx.kind != "job_submit":
            return
        await self.jobs.svc.net.publish("job", encode_announcement(raw))
        a = self._record(tx)
        if a is not None:
            self._maybe_prefetch(a)

    # ------------------------------------------------------------------ receiving
    def validate(self, m: dict, peer: str) -> Validation:
        """A decoded ``{"t": "announce", "tx": ...}``: REJECT anything that is not a well-formed
        job_submit for this chain with a valid signature; IGNORE a repeat or a spec we cannot use."""
        chain = self.jobs.svc.chain
        raw = m.get("tx")
        if set(m) != {"t", "tx"} or not isinstance(raw, bytes) or len(raw) > chain.params.max_tx_bytes:
            return REJECT
        try:
            tx = chain.decode_tx(raw)
        except Exception as exc:
            log.info("rejected job announcement from %s: %s", peer[-8:], exc)
            return REJECT
        if tx.chain_id != chain.chain_id or tx.kind != "job_submit" or not chain.signature_ok(tx):
            log.info("rejected job announcement from %s: wrong chain, kind %s or signature", peer[-8:], tx.kind)
            return REJECT
        if tx.hash in self.seen:
            return IGNORE
        return ACCEPT if self._record(tx) is not None else IGNORE

    async def on_accepted(self, m: dict) -> None:
        """After gossip delivered an accepted announcement: prefetch if this node would offer."""
        try:
            tx = self.jobs.svc.chain.decode_tx(m["tx"])
        except Exception:
            return
        a = self.seen.get(tx.hash)
        if a is not None and self.enabled:
            self._maybe_prefetch(a)

    def _record(self, tx) -> Announcement | None:
        from mindnode.jobs import spec as job_spec
        from mindnode.jobs.errors import JobSpecError

        body = tx.body
        try:
            spec = job_spec.parse(body.spec, "announced job spec")
        except JobSpecError as exc:           # the ledger keeps specs opaque; providers never train these
            log.info("announced job %s has a spec we cannot use: %s", tx.hash.hex()[:12], exc)
            return None
        cids = [c for c in (spec.data["dataset"].get("artifact"), spec.base_model) if c]
        a = Announcement(tx.hash, body.min_class, body.min_score, body.max_price, cids)
        self.seen[tx.hash] = a
        while len(self.seen) > MAX_TRACKED:
            self.seen.popitem(last=False)
        log.info("job announced: tx %s, blobs %s", tx.hash.hex()[:12], [c[:16] for c in cids],
                 extra={"event": "job_announced", "tx": tx.hash.hex()})
        return a

    # ------------------------------------------------------------------ prefetch
    def would_offer(self, a: Announcement) -> bool:
        """This node runs the provider agent, and its record on chain meets the job's hardware and
        asks no more than the job pays (what the agent checks before it offers)."""
        from ledger.jobs import records as R
        from ledger.jobs.providers import meets

        if self.jobs.agent is None:
            return False
        me = R.get_provider(self.jobs.state(), self.jobs.address)
        return (me is not None and me.price <= a.max_price
                and meets(self.jobs.svc.chain.params, me, a.min_class, a.min_score))

    def _maybe_prefetch(self, a: Announcement) -> None:
        if not a.cids or a.tx_hash in self.prefetching or a.tx_hash in self.prefetched:
            return
        if self._nursery is None or not self.would_offer(a):
            return
        scope = trio.CancelScope()
        self.prefetching[a.tx_hash] = scope
        self._nursery.start_soon(self._prefetch, a, scope)

    async def _prefetch(self, a: Announcement, scope: trio.CancelScope) -> None:
        got: list[str] = []
        try:
            with scope, trio.move_on_after(PREFETCH_TIMEOUT_S):
                for cid in a.cids:
                    async with self._slots:
                        try:
                            await self.jobs.fetch(cid, timeout=PREFETCH_TIMEOUT_S)
                            got.append(cid)
                        except Exception as exc:   # nobody has it yet, or it broke off: training fetches again
                            log.info("prefetch of %s for announced job %s failed: %s", cid[:16],
                                     a.tx_hash.hex()[:12], exc)
        finally:
            self.prefetching.pop(a.tx_hash, None)
            if got:
                self.prefetched[a.tx_hash] = got
                while len(self.prefetched) > MAX_TRACKED:
                    self.prefetched.pop(next(iter(self.prefetched)))
            if scope.cancelled_caught:
                log.info("prefetch for job tx %s cancelled", a.tx_hash.hex()[:12])

    def cancel(self, tx_hash: bytes) -> bool:
        scope = self.prefetching.get(tx_hash)
        if scope is not None:
            scope.cancel()
        return scope is not None

    def prune(self) -> None:
        """Per new head: stop prefetches whose job no longer needs this node."""
        from ledger.jobs import records as R
        from ledger.jobs.views import job_id_of_tx

        if not self.prefetching:
            return
        st = self.jobs.state()
        for h in list(self.prefetching):
            job_id = job_id_of_tx(st, h)
            job = R.get_job(st, job_id) if job_id is not None else None
            if job is None:
                continue                       # not included yet
            if job.state == R.OPEN or (job.state == R.RUNNING and job.worker(self.jobs.address) is not None):
                continue
            self.cancel(h)

    async def run(self, head_changed) -> None:
        """Host the prefetch tasks; prune after every new head (`head_changed()` returns on one)."""
        async with trio.open_nursery() as n:
            self._nursery = n
            while True:
                await head_changed()
                self.prune()
