"""The provider agent: what a provider node does on its own after each new head (ledger/JOBS.md,
"What a node does"), written against three small ports so the daemon can plug in the real chain,
the p2p blob exchange and the p2p transport, and tests can run several agents in one process.

* `ChainPort`: `state()` (the head state, a `ledger.state.State`) and `async submit(body)` (sign
  with the node key at the next pending nonce, admit to the mempool, gossip).
* `BlobPort`: `put(data) -> cid` (store and announce) and `async get(cid) -> bytes` (fetch from
  any holder; the bytes must match the id).
* `transport_for(job_id, self_id) -> trainer Transport` (the daemon adapts p2p streams).

Per head, `poll()` reads `provider_duties` and starts at most one task per duty:
offer on open jobs it meets whose spec validates (at its record price, if within the job's max),
train assigned jobs
(a job that cannot be trained through its own fault, a bad dataset, base model or spec, is
declared untrainable with `job_abort` instead of retried; rank 0 publishes the weights and checkpoints and posts `job_result`; every surviving worker
reports the peers the trainer dropped), verify designated jobs, answer control tasks. A training
task whose job left `running` on chain is cancelled.

Async jobs: every worker also publishes its own checkpoints and sends its signed list to the poster,
which puts every list in the evidence bundle (`_share_async_checkpoints`, `_async_result_evidence`);
the verifier replays each worker's rounds from its own list (`verify_async`). Fine-tuning jobs
(`model.base`): workers and verifier fetch the base artifact by id (`work.fetch_base_weights`).
The chain port may offer `sign(message)` (the node key); async jobs need it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

import trio

from ledger.jobs import control, views
from ledger.jobs import records as R
from ledger.keys import address_to_text
from ledger.txkinds.job_offer import JobOffer
from ledger.txkinds.job_report_missing import JobReportMissing
from ledger.txkinds.provider_control import ProviderControl
from mindnode.jobs import spec as job_spec
from mindnode.jobs import verify, work
from mindnode.jobs.errors import JobSpecError

log = logging.getLogger("mindnode.jobs")

#: `job_result.checkpoints` holds at most 64 ids; an async result keeps the poster's newest ones
#: (the verifier replays from each worker's own list in the evidence bundle, and checks the
#: result weights against the last one).
MAX_RESULT_CHECKPOINTS = 64


def _failed_peers(exc: BaseException) -> set[str]:
    """Peer ids a trainer error blames (PeerFailure.peer_id, RoundFailed.suspects), through groups."""
    if isinstance(exc, BaseExceptionGroup):
        return set().union(*(_failed_peers(e) for e in exc.exceptions))
    out = set(getattr(exc, "suspects", ()) or ())
    if getattr(exc, "peer_id", None):
        out.add(exc.peer_id)
    return out


def _describe(exc: BaseException) -> str:
    """One line naming every leaf exception (trio nurseries wrap them in groups)."""
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_describe(e) for e in exc.exceptions)
    return f"{type(exc).__name__}: {exc}"


def untrainable_cause(exc: BaseException, job: R.Job) -> tuple[str, str, str | None] | None:
    """(code, reason, missing blob id or None) when a training failure is the job's own fault, so
    no group of workers could ever train it; None when a peer (or anything else) may be to blame.

    The job's fault: the spec does not parse (`JobSpecError`), the trainer refuses its data or its
    config (`DatasetError`, `SpecError`), the base model artifact does not fit (`JobSpecError`
    naming it), or no peer has an artifact it names (`BlobNotFound`: the caller waits and asks
    again before it believes that). Every leaf of a trio exception group must be such an error: a
    peer failure next to it keeps the usual handling (report the peer, train again). `code` says
    which input: "base_model" when the error names `model.base`'s id, "dataset" for data errors or
    the dataset artifact's id, else "spec"."""
    from p2p.errors import BlobNotFound
    from trainer.errors import DatasetError, SpecError, leaf_exceptions

    leaves = leaf_exceptions(exc)
    if not leaves or not all(isinstance(e, (JobSpecError, DatasetError, SpecError, BlobNotFound)) for e in leaves):
        return None
    first = leaves[0]
    text = str(first)
    try:
        spec = job_spec.parse(job.spec, f"job {job.id} spec")
        base, data = spec.base_model or "", spec.data["dataset"].get("artifact") or ""
    except JobSpecError:
        base = data = ""
    if base and base in text:
        code, missing = "base_model", base
    elif isinstance(first, DatasetError) or (data and data in text):
        code, missing = "dataset", data
    else:
        code, missing = "spec", None
    reason = "".join(c if c.isprintable() else " " for c in _describe(first))[:R.ABORT_REASON_CHARS]
    return code, reason, (missing or None) if isinstance(first, BlobNotFound) else None


class ChainPort(Protocol):
    def state(self) -> Any: ...

    async def submit(self, body: Any) -> None: ...


class BlobPort(Protocol):
    def put(self, data: bytes) -> str: ...

    async def get(self, cid: str) -> bytes: ...


TransportFor = Callable[[int, str], Any]


class ProviderAgent:
    def __init__(self, address: bytes, chain: ChainPort, blobs: BlobPort, transport_for: TransportFor,
                 workdir: Path, *, offer: bool = True, zone: str = "",
                 on_progress: Callable[[int, Any], None] | None = None,
                 run_worker: Callable[[Any], Awaitable[Any]] | None = None):
        self.address = address
        self.peer_id = address_to_text(address)
        self.chain = chain
        self.blobs = blobs
        self.transport_for = transport_for
        self.workdir = Path(workdir)
        self.offer = offer
        self.zone = zone
        self._offered: set[int] = set()
        self._training: dict[int, trio.CancelScope] = {}
        self._failed: dict[int, tuple[int, set[str]]] = {}    # job -> (attempts, peers of the last failure)
        self.max_attempts = 3
        self._verifying: set[tuple[int, int]] = set()
        self._answered: set[int] = set()
        self.errors: list[str] = []          # what failed (for status and tests)
        self.report_wait_s = 10.0            # rank 0 waits this long for dropped peers to be marked
        self._nursery: trio.Nursery | None = None
        # The daemon's hooks: `on_progress(job_id, trainer Progress)` after every step (may be called
        # from a training thread), and `run_worker(worker)` to run `Worker.run` off the node's loop.
        self.on_progress = on_progress
        self.run_worker = run_worker
        # TEST-ONLY (mindnode/node/faults.py, cheat-result): rewrites (weights, metrics) before posting.
        self.result_hook: Callable[[bytes, dict], tuple[bytes, dict]] | None = None
        # TEST-ONLY (faults.py, lazy-verifier): first verdicts copy the claim without replaying.
        self.lazy_verifier = False

    async def run(self, new_head: Callable[[], Awaitable[None]]) -> None:
        """Poll after every new head until cancelled (`new_head()` returns when one arrived)."""
        async with trio.open_nursery() as n:
            self._nursery = n
            while True:
                await self.poll()
                await new_head()

    async def poll(self) -> None:
        st = self.chain.state()
        duties = views.provider_duties(st, self.address)
        me = R.get_provider(st, self.address)
        if me is None:
            return
        if self.offer:
            for job_id in duties["offerable"]:
                if job_id in self._offered:
                    continue
                self._offered.add(job_id)
                job = R.get_job(st, job_id)
                try:       # the spec on chain is opaque bytes to the ledger: never train what does not validate
                    job_spec.parse(job.spec, f"job {job_id} spec")
                except JobSpecError as exc:
                    log.info("%s: not offering on job %d: %s", self.peer_id[:12], job_id, exc)
                    continue
                if me.price <= job.max_price:
                    await self._submit(JobOffer(job_id=job_id, price=me.price, zone=self.zone), f"offer {job_id}")
        running = {a["job_id"]: a for a in duties["assigned"]}
        for job_id, scope in list(self._training.items()):
            if job_id not in running:
                scope.cancel()
                del self._training[job_id]
        for job_id, a in running.items():
            failed = self._failed.get(job_id)
            if job_id in self._training or (failed and (failed[1] == set(a["peers"])
                                                        or failed[0] >= self.max_attempts)):
                continue        # running, or failed with this very group (wait for the chain to replace)
            scope = trio.CancelScope()
            self._training[job_id] = scope
            self._nursery.start_soon(self._train_guarded, scope, R.get_job(st, job_id), a)
        for v in duties["verify"]:
            key = (v["job_id"], v["replay_from"])
            if key not in self._verifying:
                self._verifying.add(key)
                self._nursery.start_soon(self._verify_guarded, R.get_job(st, v["job_id"]))
        task = duties["control_task"]
        if task is not None and task["task_id"] not in self._answered:
            self._answered.add(task["task_id"])
            answer = control.control_answer(bytes.fromhex(task["seed"]))
            await self._submit(ProviderControl(task_id=task["task_id"], answer=answer), "control answer")

    async def _submit(self, body, what: str) -> None:
        try:
            await self.chain.submit(body)
        except Exception as exc:  # a refused tx must not stop the agent; it is reported
            self.errors.append(f"{what}: {exc}")
            log.warning("%s: %s failed: %s", self.peer_id[:12], what, exc)

    # -- untrainable jobs: job_abort ----------------------------------------------------------------
    #: How long a worker waits before asking again for an artifact no peer had (the blob exchange
    #: already asked every connected peer; a holder may still be connecting) before it declares
    #: the job untrainable.
    missing_blob_wait_s = 30.0

    async def _abort_if_untrainable(self, job: R.Job, assignment: dict, exc: BaseException) -> bool:
        """When training failed through the job's own fault (`untrainable_cause`), send `job_abort`
        (once: the job is never trained again here) and return True; a majority of the workers'
        declarations fails the job with a full refund, instead of leaving it at step 0 until its
        deadline. An artifact no peer had is asked for again after `missing_blob_wait_s`: if it
        turns up, True without an abort and poll() trains again (one more attempt). False: not
        the job's fault (peers), the caller's usual handling applies."""
        from ledger.txkinds.job_abort import JobAbort

        cause = untrainable_cause(exc, job)
        if cause is None:
            return False
        code, reason, missing = cause
        if missing is not None:
            await trio.sleep(self.missing_blob_wait_s)
            try:
                await self.blobs.get(missing)
            except Exception as again:
                if untrainable_cause(again, job) is None:
                    return False
            else:
                attempts = self._failed.get(job.id, (0, set()))[0] + 1
                self._failed[job.id] = (attempts, set())          # not tied to this group: poll retries
                self._training.pop(job.id, None)
                return True
        self._failed[job.id] = (self.max_attempts, set(assignment["peers"]))    # never trained again here
        self._training.pop(job.id, None)
        log.warning("%s: job %d cannot be trained (%s): declaring it untrainable", self.peer_id[:12], job.id,
                    reason)
        await self._submit(JobAbort(job_id=job.id, code=code, reason=reason), f"abort {job.id}")
        return True

    async def _train_guarded(self, scope: trio.CancelScope, job: R.Job, assignment: dict) -> None:
        with scope:
            try:
                await self.train(job, assignment)
            except Exception as exc:
                self.errors.append(f"train {job.id}: {_describe(exc)}")
                log.warning("%s: job %d training failed: %s", self.peer_id[:12], job.id, _describe(exc),
                            exc_info=log.isEnabledFor(logging.DEBUG))
                if await self._abort_if_untrainable(job, assignment, exc):
                    return
                # A peer that failed the start (or a round beyond the quorum) is reported; once the
                # chain marks it missing and assigns a replacement, poll() starts again with the
                # new group (bounded by max_attempts).
                attempts = self._failed.get(job.id, (0, set()))[0] + 1
                self._failed[job.id] = (attempts, set(assignment["peers"]))
                self._training.pop(job.id, None)
                from ledger.keys import address_from_text

                for p in sorted(_failed_peers(exc) - {self.peer_id}):
                    if p in assignment["peers"]:
                        await self._submit(JobReportMissing(job_id=job.id, worker=address_from_text(p)),
                                           f"report {p[:12]}")

    async def _verify_guarded(self, job: R.Job) -> None:
        try:
            await self.verify(job)
        except Exception as exc:
            self.errors.append(f"verify {job.id}: {_describe(exc)}")
            log.warning("%s: job %d verification failed: %s", self.peer_id[:12], job.id, _describe(exc))

    async def train(self, job: R.Job, assignment: dict) -> None:
        from trainer import checkpoint as ck
        from trainer.worker import Worker

        spec = job_spec.parse(job.spec, f"job {job.id} spec")
        ds = await work.fetch_data(spec, self.blobs.get)
        peers = assignment["peers"]
        # Channels and checkpoints are namespaced by the group: after a replacement the new group
        # starts afresh, and nothing buffered from the old group's attempt is read by the new one.
        group_tag = hashlib.sha256("\n".join(sorted(peers)).encode()).hexdigest()[:12]
        ckpt_dir = self.workdir / f"job-{job.id}-{group_tag}"
        full_steps = [0]                  # steps taken while the whole starting group was there

        def progress(p) -> None:
            if p.peers >= len(peers):
                full_steps[0] = p.step
            if self.on_progress is not None:
                self.on_progress(job.id, p)

        base = await work.fetch_base_weights(spec, self.blobs.get)       # fine-tuning: the artifact by id
        transport = self.transport_for(job.id, self.peer_id)
        w = Worker(transport, peers, work.model_spec(spec), ds,
                   work.train_config(spec), job_id=f"job-{job.id}-{group_tag}", checkpoint_dir=ckpt_dir,
                   progress=progress, init_weights=base, **self._sketch_signing(spec))
        result = await (self.run_worker(w) if self.run_worker is not None else w.run())
        dropped = sorted(set(peers) - set(result.group))
        from ledger.keys import address_from_text

        for p in dropped:
            await self._submit(JobReportMissing(job_id=job.id, worker=address_from_text(p)), f"report {p[:12]}")
        entries = None
        if spec.data["mode"] == "async":
            entries = await self._share_async_checkpoints(job, transport, f"job-{job.id}-{group_tag}", ckpt_dir,
                                                          result.group)
        if sorted(result.group)[0] != self.peer_id:
            return                                          # the lowest surviving id posts the result
        if dropped:        # let the reports land first (the chain must mark them missing while the job runs)
            with trio.move_on_after(self.report_wait_s):
                while True:
                    j = R.get_job(self.chain.state(), job.id)
                    if j is None or j.state != R.RUNNING or all(
                            not (x := j.worker(address_from_text(p))) or not x.active for p in dropped):
                        break
                    await trio.sleep(0.05)
        weights = work.weights_blob(w.model)
        self.blobs.put(weights)
        blobs = [p.read_bytes() for p in ck.list_checkpoints(ckpt_dir)]
        for b in blobs:
            self.blobs.put(b)
        loss, acc = w.evaluate()
        samples = {address_from_text(p): work.full_run_samples(spec) for p in result.group}
        for p in dropped:       # paid for what it did before it left (white paper 7.2.2)
            samples[address_from_text(p)] = full_steps[0] * spec.batch_size
        metrics = {"accuracy": acc, "loss": loss}
        if self.result_hook is not None:                     # TEST-ONLY fault: a made-up result
            weights, metrics = self.result_hook(weights, metrics)
            self.blobs.put(weights)
        body = work.result_body(job.id, spec, weights, metrics, samples, blobs)
        if entries is not None:
            body = self._async_result_evidence(job.id, body, entries, result.group)
            body = dataclasses.replace(body, checkpoints=body.checkpoints[-MAX_RESULT_CHECKPOINTS:])
        else:
            body = self._with_sketch_evidence(job.id, body, w, result.group)
        await self._submit(body, f"result {job.id}")

    async def verify(self, job: R.Job) -> None:
        if self.lazy_verifier and (lazy := self._lazy_verdict(job)) is not None:
            return await self._submit(lazy, f"lazy verdict {job.id}")
        spec = job_spec.parse(job.spec, f"job {job.id} spec")
        if spec.data["mode"] == "async":
            return await self.verify_async(job, spec)
        res = job.result
        weights = await self.blobs.get(res.result_cid)
        ckpts = [await self.blobs.get(c) for c in res.checkpoints]
        ds = await work.fetch_data(spec, self.blobs.get)
        base = await work.fetch_base_weights(spec, self.blobs.get)
        first = sum(1 for w in job.assigned if w.rank < job.workers)      # the group at step 0
        verdict = await trio.to_thread.run_sync(
            lambda: verify.verify_result(spec, ds, ckpts, weights, job.replay_from, job.replay_steps,
                                         initial_world=first, base=base))
        log.info("%s: job %d verdict %s", self.peer_id[:12], job.id, verdict)
        if spec.data["mode"] == "sync":
            body = await self._sync_verify_body(job, spec, ds, ckpts, weights, verdict, base)
        else:
            body = verify.verify_body(job, verdict, job.metric)
        await self._submit(body, f"verdict {job.id}")

    @staticmethod
    def _lazy_verdict(job: R.Job):
        """TEST-ONLY ``lazy-verifier`` (mindnode/node/faults.py)."""
        from mindnode.node import faults

        return faults.lazy_verdict(job)

    # -- signed gradient sketches (sync attribution) ------------------------------------------------
    def _sketch_signing(self, spec) -> dict:
        """Worker keyword arguments that make a sync worker sign and check gradient sketches."""
        # The node key's `ChainPort.sign`: sync workers sign their gradient sketches with it, so a
        # verifier can name the one worker that cheated. Without it a sync result carries no sketch
        # log, and a verifier names its poster (mindnode/jobs/verify.py: attribute_sync).
        sign = getattr(self.chain, "sign", None)
        if sign is None or spec.data["mode"] != "sync":
            return {}
        from mindnode.jobs import sketchlog

        return {"signer": sketchlog.signer(sign), "verify_peer": sketchlog.verify_peer}

    def _with_sketch_evidence(self, job_id: int, body, worker, group) -> Any:
        """Publish the worker's sketch log and an evidence bundle naming it; the result body with its id."""
        if not getattr(worker, "sketch_log", None):
            return body
        from mindnode.jobs import evidence, sketchlog

        log_cid = self.blobs.put(sketchlog.build(job_id, worker.sketch_log))
        rank = sorted(group).index(self.peer_id)
        ref = evidence.SketchLogRef(provider=self.address, rank=rank, log=log_cid)
        return work.with_evidence(body, self.blobs.put(evidence.build(job_id, sketch_logs=[ref])))

    async def _sync_verify_body(self, job: R.Job, spec, ds, ckpts: list[bytes], weights: bytes, verdict,
                                base: dict | None = None) -> Any:
        """Name only the cheater(s) of a sync job from the poster's signed sketch log (or the poster)."""
        res = job.result
        log_data = await self._fetch_sketch_log(job.id, res)
        workers = [w.provider for w in job.assigned]
        att = await trio.to_thread.run_sync(
            lambda: verify.attribute_sync(spec, ds, ckpts, weights, verdict, log_data, job_id=job.id,
                                          workers=workers, poster=res.poster, base=base))
        if att.bad:
            log.info("%s: job %d blames %s: %s", self.peer_id[:12], job.id,
                     ", ".join(address_to_text(b)[:12] for b in att.bad), att.reason)
        return verify.attributed_verify_body(job, verdict, job.metric, att)

    async def _fetch_sketch_log(self, job_id: int, res) -> bytes | None:
        """The poster's sketch log named by the result's evidence bundle; None if absent or unusable."""
        from mindnode.jobs import evidence, sketchlog

        if not res.evidence:
            return None
        try:
            bundle = evidence.load(await self.blobs.get(res.evidence), job_id)   # bounded, this job
            refs = [r for r in bundle.sketch_logs if r.provider == res.poster]
            if not refs:
                return None
            data = await self.blobs.get(refs[0].log)
            return data if len(data) <= sketchlog.MAX_LOG_BYTES else None
        except Exception as exc:       # unfetchable or malformed: the poster's evidence is missing
            log.info("%s: job %d sketch evidence unusable: %s", self.peer_id[:12], job_id, exc)
            return None

    # ------------------------------------------------------------------ async: per-worker evidence
    #: How long the poster waits for each co-worker's signed checkpoint list after training.
    evidence_wait_s = 60.0

    def _sign(self, message: bytes) -> bytes:
        sign = getattr(self.chain, "sign", None)
        if sign is None:
            raise RuntimeError("the chain port cannot sign (needed for async checkpoint lists)")
        return sign(message)

    async def _share_async_checkpoints(self, job: R.Job, transport, tag: str, ckpt_dir: Path,
                                       group) -> dict[bytes, Any] | None:
        """Async jobs: every worker publishes its own checkpoints by content id and signs the list.

        Why over the trainer transport, to the poster: the group is already connected there (Noise:
        the channel authenticates the sender), the message goes to the one node that needs it, and
        the signature makes it evidence a verifier can check whoever relays it; gossip on the job
        topic would broadcast it to every node and need its own validation and size rules.
        Non-posters send and return None; the poster returns {provider: entry} of those that arrived
        (validly signed by their sender) within `evidence_wait_s`, including its own."""
        from ledger.keys import address_from_text
        from mindnode.jobs import evidence
        from trainer import checkpoint as ck

        cids = [self.blobs.put(p.read_bytes()) for p in ck.list_checkpoints(ckpt_dir)]
        mine = evidence.sign_worker_checkpoints(job.id, self.address, cids, self._sign)
        poster = sorted(group)[0]
        ch = f"{tag}/evidence"
        if poster != self.peer_id:
            try:
                await transport.send(poster, ch, evidence.encode_worker_entry(mine), self.evidence_wait_s)
            except Exception as exc:
                self.errors.append(f"evidence {job.id}: {_describe(exc)}")
                log.warning("%s: job %d: could not send checkpoint list to %s: %s", self.peer_id[:12], job.id,
                            poster[:12], _describe(exc))
            return None
        got: dict[bytes, Any] = {self.address: mine}

        async def collect(peer: str) -> None:
            try:
                raw = await transport.recv(peer, ch, self.evidence_wait_s)
                got[address_from_text(peer)] = evidence.decode_worker_entry(raw, job.id, address_from_text(peer))
            except Exception as exc:
                self.errors.append(f"evidence {job.id} from {peer[:12]}: {_describe(exc)}")
                log.warning("%s: job %d: no valid checkpoint list from %s: %s", self.peer_id[:12], job.id,
                            peer[:12], _describe(exc))

        async with trio.open_nursery() as n:
            for p in group:
                if p != self.peer_id:
                    n.start_soon(collect, p)
        return got

    def _async_result_evidence(self, job_id: int, body, entries: dict[bytes, Any], group):
        """The poster's result for an async job: the evidence bundle (every worker's signed list)
        published by content id in `evidence`, and only workers that sent a list paid in `work`
        (a worker the result pays must be checkable; one that never sent its list is not accused,
        just not paid: see mindnode/jobs/evidence.py)."""
        from mindnode.jobs import evidence

        bundle = evidence.build(job_id, entries.values())
        cid = self.blobs.put(bundle)
        from ledger.keys import address_from_text

        active = {address_from_text(p) for p in group}
        kept = tuple(wk for wk in body.work if wk.provider in entries or wk.provider not in active)
        return work.with_evidence(dataclasses.replace(body, work=kept), cid)

    async def verify_async(self, job: R.Job, spec) -> None:
        """The verifier's side of an async job: every worker's own rounds (mindnode/jobs/verify_async.py)."""
        from mindnode.jobs import evidence, verify_async
        from mindnode.jobs.errors import EvidenceError

        res = job.result
        weights = await self.blobs.get(res.result_cid)
        final = await self.blobs.get(res.checkpoints[-1]) if res.checkpoints else None
        ds = await work.fetch_data(spec, self.blobs.get)
        base = await work.fetch_base_weights(spec, self.blobs.get)
        paid_active = [wk.provider for wk in res.work
                       if wk.samples > 0 and (x := job.worker(wk.provider)) is not None and x.active]
        ev = None
        why = ""
        try:
            if not res.evidence:
                raise EvidenceError("the async result has no evidence bundle")
            ev = evidence.load(await self.blobs.get(res.evidence), job.id)
        except EvidenceError as exc:
            why = str(exc)
        missing = evidence.missing_lists(ev, job.id, paid_active)
        lists: dict[bytes, list[bytes]] = {}
        want = verify_async.needed_list_positions(spec, job.replay_from, job.replay_steps)
        if ev is not None:
            for e in ev.worker_checkpoints:         # only the checkpoints the drawn rounds need
                if e.provider in paid_active and evidence.check_worker_signature(job.id, e):
                    lists[e.provider] = [await self.blobs.get(e.checkpoints[i]) for i in want.values()
                                         if i < len(e.checkpoints)]
        verdict = await trio.to_thread.run_sync(
            lambda: verify_async.verify_async_workers(spec, ds, lists, weights, job.replay_from, job.replay_steps,
                                                      base=base, final_checkpoint=final,
                                                      initial_group=[address_to_text(w.provider) for w in job.assigned
                                                                     if w.rank < job.workers]))
        suspects = list(verdict.bad)
        if why or missing or not verdict.weights_match:
            # the poster assembled the bundle and posted the weights: evidence problems are its own
            suspects.append(res.poster)
            verdict.reasons.setdefault(res.poster, why or (f"left out {len(missing)} worker list(s)" if missing
                                                           else "posted weights that are not the final state"))
            if res.poster not in verdict.bad:
                verdict.bad.append(res.poster)
        in_result = {wk.provider for wk in res.work}
        suspects = sorted({p for p in suspects if p in in_result}) or None
        log.info("%s: job %d async verdict ok=%s rounds %d..%d checked %d: %s", self.peer_id[:12], job.id,
                 verdict.ok, verdict.start_step, verdict.end_step, verdict.checked, verdict.reason)
        await self._submit(verify.verify_body(job, verdict, job.metric, suspects), f"verdict {job.id}")

