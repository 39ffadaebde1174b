"""Jobs in the daemon: the provider agent (`mindnode.jobs.agent.ProviderAgent`) on the node's real
chain, blob exchange and p2p tensor path, the provider registration at start, and live training
progress on the ``job`` gossip topic (ledger/JOBS.md, "What a node does").

Why the training runs in a thread with its own trio loop: a `trainer.worker.Worker` does its torch
steps inline in the loop that runs it, and long CPU work in the daemon's loop stalls libp2p (Noise,
yamux, gossip heartbeats) and block sealing. So `run_worker` runs `Worker.run` in `trio.run` on a
worker thread, and `BridgedTransport` carries each send/recv back to the daemon's loop (where the
libp2p host lives) with `trio.from_thread.run`, from a helper thread so concurrent sends of one
round do not serialise.

Ids: the agent and the trainer name peers by their account address text (``mn...``); the libp2p
peer id of an account follows from its address (`ledger.keys.peer_id_from_address`), so the
transport translates, and connects to a job peer it is not connected to yet before the first use.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgpack
import trio
from fastapi import Request  # module level: FastAPI resolves route annotations in these globals

from ledger.keys import address_from_peer_id, address_from_text, address_to_text, peer_id_from_address
from mindnode.node import errors
from mindnode.node.job_announce import ANNOUNCE, PROGRESS, JobAnnouncer
from mindnode.node.network import ACCEPT, IGNORE, REJECT, Validation
from mindnode.node.provider import DEFAULT_BANDWIDTH_KBPS

if TYPE_CHECKING:
    from mindnode.node.service import NodeService

log = logging.getLogger("mindnode.jobs")

#: A progress message is a handful of numbers; anything bigger is not one.
MAX_PROGRESS_BYTES = 512
#: How often a training node gossips its latest progress (seconds).
PROGRESS_EVERY_S = 1.0
#: An upload is written and hashed in pieces of about this size (in a worker thread).
UPLOAD_WRITE_BYTES = 1024 * 1024
#: Provider terms a node registers with at start (`mindnode provider update` changes them).
DEFAULT_PRICE_NMT = "0.01"
BENCH_SECONDS = 0.3


def libp2p_id(worker_id: str) -> str:
    """The libp2p peer id of a job peer named by its address text (``mn...``)."""
    return peer_id_from_address(address_from_text(worker_id))


class BridgedTransport:
    """The trainer's `Transport` for a worker running in another thread's trio loop: every call runs
    on the daemon's loop (token) through the node's bulk service, with ``mn...`` ids translated."""

    def __init__(self, jobs: JobService, self_id: str, token: trio.lowlevel.TrioToken):
        self.jobs = jobs
        self.self_id = self_id
        self.token = token

    async def _on_main(self, fn, *args):
        call = functools.partial(trio.from_thread.run, fn, *args, trio_token=self.token)
        return await trio.to_thread.run_sync(call)

    async def send(self, peer_id: str, channel: str, data, timeout: float) -> None:
        await self._on_main(self.jobs.bulk_send, peer_id, channel, bytes(data), timeout)

    async def recv(self, peer_id: str, channel: str, timeout: float):
        return await self._on_main(self.jobs.bulk_recv, peer_id, channel, timeout)


class JobService:
    """Ports of the provider agent over a running `NodeService`, plus progress and registration."""

    def __init__(self, svc: NodeService, workdir: Path):
        self.svc = svc
        self.workdir = Path(workdir)
        self.address = svc.key.address
        self.me = address_to_text(self.address)
        self.progress: dict[int, dict[str, dict[str, Any]]] = {}     # job -> worker (mn...) -> latest
        self._own_dirty: set[int] = set()
        self._token: trio.lowlevel.TrioToken | None = None
        self.agent = None
        self.announcer = JobAnnouncer(self)
        self._keeper = None

    # ------------------------------------------------------------------ ChainPort
    def state(self):
        return self.svc.chain.store.state()

    async def submit(self, body) -> None:
        """Sign with the node key at its next nonce after its pending transactions, admit, gossip."""
        from ledger.tx import sign_tx

        pending = sum(1 for e in self.svc.mempool.entries() if e.sender == self.address)
        nonce = self.svc.chain.account_nonce(self.address) + pending
        tx = sign_tx(self.svc.key, self.svc.chain.chain_id, nonce, 0, body)
        raw = tx.encode()
        self.svc._admit_tx(raw)            # errors.TxRejected: the agent records and logs it
        await self.svc.net.publish("tx", raw)

    # ------------------------------------------------------------------ BlobPort
    @property
    def blobs(self):
        b = self.svc.net.node.blobs
        if b is None:
            raise errors.NodeError("this node has no blob store")
        return b

    def put(self, data: bytes) -> str:
        """Store a blob this node produced for a job (weights, checkpoints, evidence, sketch log):
        marked as its own, kept while its jobs need it (mindnode/node/blob_keep.py)."""
        store = self.blobs.store
        cid = store.put(data)
        store.mark_own(cid)
        return cid

    async def get(self, cid: str) -> bytes:
        path = await self.fetch(cid)
        with self.blobs.store.hold(cid):
            return await trio.to_thread.run_sync(path.read_bytes)

    @property
    def keeper(self):
        """The blob store's budget keeper (`blob_keep.BlobKeeper`), created on first use."""
        if self._keeper is None:
            from mindnode.node.blob_keep import BlobKeeper

            o = self.svc.opts
            self._keeper = BlobKeeper(self.blobs, self.state, self.address, max_bytes=o.max_blob_store_bytes,
                                      recent_s=o.blob_recent_s)
        return self._keeper

    async def fetch(self, cid: str, timeout: float = 120.0) -> Path:
        """The blob's path in this node's store, fetched from peers first if needed (chunks go
        straight to disk: memory stays bounded whatever the blob's size)."""
        return await self.blobs.fetch(cid, timeout=timeout)

    @property
    def max_upload_bytes(self) -> int:
        return self.svc.opts.max_blob_upload_bytes

    async def upload(self, chunks) -> tuple[str, int]:
        """Store a blob arriving as an async iterator of byte strings; returns (cid, size).

        Pieces are gathered to ~1 MiB and written + hashed in a worker thread (sha256 of a large
        upload must not stall the node's loop); over `max_upload_bytes` -> `errors.PayloadTooLarge`
        and nothing is kept; a client that disconnects mid-way leaves nothing either."""
        from p2p.errors import BlobTooLarge

        cap = self.max_upload_bytes
        w = await trio.to_thread.run_sync(self.blobs.store.writer, cap)
        try:
            buf = bytearray()
            async for piece in chunks:
                buf += piece
                if len(buf) >= UPLOAD_WRITE_BYTES:
                    data, buf = buf, bytearray()
                    await trio.to_thread.run_sync(w.write, data)
            if buf:
                await trio.to_thread.run_sync(w.write, buf)
            cid = await trio.to_thread.run_sync(w.commit, "user")   # pinned: the user's own file
        except BlobTooLarge:
            raise errors.PayloadTooLarge(_too_large(cap)) from None
        finally:
            if w.cid is None:
                w.abort()
        log.info("stored uploaded blob %s (%d bytes)", cid, w.size)
        return cid, w.size

    # ------------------------------------------------------------------ transport
    def transport_for(self, job_id: int, self_id: str) -> BridgedTransport:
        assert self._token is not None, "the job service is not running"
        return BridgedTransport(self, self_id, self._token)

    async def ensure_connected(self, worker_id: str) -> str:
        pid = libp2p_id(worker_id)
        node = self.svc.net.node
        if pid != node.peer_id and pid not in node.peers():
            await node.connect_peer(pid, timeout=10.0)
        return pid

    async def bulk_send(self, worker_id: str, channel: str, data: bytes, timeout: float) -> None:
        from mindnode.tensor_transport import _map
        from p2p import errors as p2p_errors

        try:
            pid = await self.ensure_connected(worker_id)
            await self.svc.net.node.bulk.send(pid, channel, data, timeout)
        except p2p_errors.P2PError as exc:
            raise _map(worker_id, exc) from exc

    async def bulk_recv(self, worker_id: str, channel: str, timeout: float):
        from mindnode.tensor_transport import _map
        from p2p import errors as p2p_errors

        try:
            return await self.svc.net.node.bulk.recv(libp2p_id(worker_id), channel, timeout)
        except p2p_errors.P2PError as exc:
            raise _map(worker_id, exc) from exc

    async def run_worker(self, worker):
        """`Worker.run` on a thread with its own trio loop, after connecting to every job peer.
        Cancelling the caller stops the thread's loop at its next check (0.2 s)."""
        if "cheat-gradients" in self.svc.faults:          # TEST-ONLY (faults.py)
            from mindnode.node import faults

            log.warning("TEST FAULT cheat-gradients: this worker scales its gradients by %s",
                        faults.CHEAT_GRADIENT_FACTOR)
            faults.scale_gradients(worker)
        self._apply_async_fault(worker)
        for p in worker.group:
            if p != self.me:
                try:
                    await self.ensure_connected(p)
                except Exception as exc:  # the trainer's start handshake names the peer properly
                    log.info("could not connect to job peer %s: %s", p[:12], exc)
        stop = threading.Event()
        out: list[Any] = []

        async def main() -> None:
            async with trio.open_nursery() as n:
                async def watch() -> None:
                    while not stop.is_set():
                        await trio.sleep(0.2)
                    n.cancel_scope.cancel()

                n.start_soon(watch)
                out.append(await worker.run())
                n.cancel_scope.cancel()

        try:
            await trio.to_thread.run_sync(trio.run, main, abandon_on_cancel=True)
        finally:
            stop.set()
        if not out:
            raise RuntimeError("training stopped before it finished")
        return out[0]

    def _apply_async_fault(self, worker) -> None:
        """TEST-ONLY ``cheat-async`` (faults.py): an async worker scales its local updates."""
        if "cheat-async" in self.svc.faults and worker.cfg.mode == "async":
            from mindnode.node import faults

            log.warning("TEST FAULT cheat-async: this worker scales its local updates by %s",
                        faults.CHEAT_ASYNC_FACTOR)
            faults.scale_local_updates(worker)

    def sign(self, message: bytes) -> bytes:
        """Sign with the node key (the agent signs its async checkpoint lists, mindnode/jobs/evidence.py,
        and its sync gradient sketches, trainer/sketch.py)."""
        return self.svc.key.sign(message)

    # ------------------------------------------------------------------ progress
    def on_progress(self, job_id: int, p) -> None:
        """Called by the agent after each step, from the training thread (dict writes only)."""
        self.progress.setdefault(job_id, {})[self.me] = {
            "step": int(p.step), "total_steps": int(p.total_steps), "loss": float(p.loss),
            "samples_per_s": float(p.samples_per_s), "peers": int(p.peers), "t_ms": time.time_ns() // 1_000_000}
        self._own_dirty.add(job_id)

    async def progress_loop(self) -> None:
        """Gossip this node's latest progress per job it trains, at most once per PROGRESS_EVERY_S."""
        while True:
            await trio.sleep(PROGRESS_EVERY_S)
            dirty, self._own_dirty = self._own_dirty, set()
            for job_id in sorted(dirty):
                mine = self.progress.get(job_id, {}).get(self.me)
                if mine is not None:
                    await self.svc.net.publish("job", msgpack.packb({"t": PROGRESS, "job": job_id, **mine}))

    def validate_job_gossip(self, data: bytes, peer: str) -> Validation:
        """The ``job`` topic carries two message types, told apart by the tag ``t``: job
        announcements (`JobAnnouncer.validate`) and training progress (`validate_progress`; an
        untagged map is progress from a node that predates the tag). Anything else -> REJECT."""
        if len(data) > self.announcer.max_bytes:
            return REJECT
        try:
            m = msgpack.unpackb(data, raw=False, strict_map_key=True)
        except Exception:
            return REJECT
        if not isinstance(m, dict):
            return REJECT
        kind = m.get("t")
        if kind == ANNOUNCE:
            return self.announcer.validate(m, peer)
        if kind is None or kind == PROGRESS:
            return self.validate_progress(data, peer)
        return REJECT

    async def on_job_gossip(self, data: bytes, peer: str) -> None:
        m = msgpack.unpackb(data, raw=False, strict_map_key=True)
        if m.get("t") == ANNOUNCE:
            await self.announcer.on_accepted(m)

    def validate_progress(self, data: bytes, peer: str) -> Validation:
        """A progress message from a worker assigned to that job (on chain); malformed -> REJECT."""
        if len(data) > MAX_PROGRESS_BYTES:
            return REJECT
        try:
            m = msgpack.unpackb(data, raw=False, strict_map_key=True)
            job_id = m["job"]
            rec = {"step": m["step"], "total_steps": m["total_steps"], "loss": float(m["loss"]),
                   "samples_per_s": float(m["samples_per_s"]), "peers": m["peers"], "t_ms": m["t_ms"]}
            if not all(isinstance(v, int) and 0 <= v < 2**63 for v in
                       (job_id, rec["step"], rec["total_steps"], rec["peers"], rec["t_ms"])):
                raise ValueError("bad integer field")
            worker = address_from_peer_id(peer)
        except Exception:
            return REJECT
        from ledger.jobs import records as R

        job = R.get_job(self.state(), job_id)
        if job is None or job.worker(worker) is None:
            return IGNORE              # not (yet) a worker of that job on our head
        self.progress.setdefault(job_id, {})[address_to_text(worker)] = rec
        return ACCEPT

    async def on_progress_gossip(self, data: bytes, peer: str) -> None:
        return None  # kept by the validator (the topic's handler is now `on_job_gossip`)

    def progress_view(self, job_id: int) -> dict[str, Any]:
        """The latest progress per worker and a summary (the slowest worker's step, mean loss)."""
        per = dict(self.progress.get(job_id, {}))
        if not per:
            return {"job_id": job_id, "workers": {}, "step": 0, "total_steps": 0, "loss": None,
                    "samples_per_s": 0.0}
        return {"job_id": job_id, "workers": per, "step": min(r["step"] for r in per.values()),
                "total_steps": max(r["total_steps"] for r in per.values()),
                "loss": sum(r["loss"] for r in per.values()) / len(per),
                "samples_per_s": sum(r["samples_per_s"] for r in per.values())}

    # ------------------------------------------------------------------ registration and run
    async def register(self, bench_seconds: float = BENCH_SECONDS) -> None:
        """Benchmark (in a thread) and send `provider_register` unless the chain has our record."""
        from ledger.jobs import records as R
        from ledger.txkinds.provider_register import ProviderRegister
        from mindnode.jobs import benchmark
        from mindnode.jobs.spec import parse_nmt

        if R.get_provider(self.state(), self.address) is not None:
            return
        r = await trio.to_thread.run_sync(benchmark.run, bench_seconds)
        # the record also sets the mining profile: an operator's --hardware-class/--bandwidth-kbps
        # win over the quick measurement (the bandwidth is self-declared either way)
        opts = self.svc.opts
        hw_class = opts.hardware_class or r.hardware_class
        bandwidth = opts.bandwidth_kbps if opts.bandwidth_kbps is not None else DEFAULT_BANDWIDTH_KBPS
        body = ProviderRegister(hardware_class=hw_class, score=r.score, price=parse_nmt(DEFAULT_PRICE_NMT,
                                "price"), capacity=1, zone="", bandwidth_kbps=bandwidth)
        try:
            await self.submit(body)
            log.info("registered as a provider", extra={"event": "provider_register",
                                                        "hardware_class": hw_class, "score": r.score})
        except errors.NodeError as exc:
            log.warning("provider registration refused: %s", exc)

    def _apply_result_fault(self, agent) -> None:
        """TEST-ONLY (faults.py, cheat-result, lazy-verifier): made-up results, lazy first verdicts."""
        from mindnode.node import faults

        if "cheat-result" in self.svc.faults:
            log.warning("TEST FAULT cheat-result: this node posts made-up weights and metrics")
            agent.result_hook = faults.make_up_result
        if "lazy-verifier" in self.svc.faults:
            log.warning("TEST FAULT lazy-verifier: this node's first verdicts copy the claimed metric unreplayed")
            agent.lazy_verifier = True

    async def run(self, provide: bool, ready: trio.Event) -> None:
        from mindnode.jobs.agent import ProviderAgent

        self._token = trio.lowlevel.current_trio_token()
        if provide:          # importing torch takes a second or two: not in the node's loop
            await trio.to_thread.run_sync(_limit_torch_threads)
        async with trio.open_nursery() as n:
            n.start_soon(self.progress_loop)
            n.start_soon(self.keeper.run)
            n.start_soon(self.announcer.run, self._head_waiter())
            if not provide:
                return
            await ready.wait()             # after the initial sync: nonces and records are current
            await self.register()
            self.agent = ProviderAgent(self.address, self, self, self.transport_for, self.workdir,
                                       on_progress=self.on_progress, run_worker=self.run_worker)
            self._apply_result_fault(self.agent)

            await self.agent.run(self._head_waiter())

    def _head_waiter(self):
        """`new_head()` for one poll loop: returns once the head differs from the one its last
        call returned on (or from the head at creation). Waiting on the node's head event alone
        would miss a head that arrived while the loop was busy polling, and its next poll (an
        offer on a job that just opened) would wait a block longer."""
        seen = [self.svc.chain.store.head_hash]

        async def new_head() -> None:
            while self.svc.chain.store.head_hash == seen[0]:
                await self.svc._head_changed.wait()
            seen[0] = self.svc.chain.store.head_hash

        return new_head


def _limit_torch_threads() -> None:
    """Torch's intra-op pool defaults to every core, and its OpenMP workers spin while they wait:
    next to the node's own loop (and other nodes of a devnet) that oversubscribes the CPU and made
    digits-mlp steps ~10x slower than in a lone process. A node uses half the cores for training
    (at least one) unless MINDNODE_TORCH_THREADS says otherwise."""
    import os

    import torch

    want = os.environ.get("MINDNODE_TORCH_THREADS")
    n = int(want) if want and want.isdigit() and int(want) > 0 else max(1, (os.cpu_count() or 2) // 2)
    torch.set_num_threads(n)
    log.info("training uses %d torch threads", n)


def _too_large(cap: int) -> str:
    return (f"blob is over this node's upload limit of {cap} bytes "
            "(raise [blobs] max_upload_bytes in config.toml to accept bigger ones)")


def add_routes(app: Any, jobs: JobService) -> None:
    """`/jobs/{id}/progress`, `GET /blobs/{cid}` (a blob from this node, fetched from peers if
    needed, streamed from disk) and `POST /blobs` (store the request body as a blob, streamed)."""
    from fastapi.responses import Response, StreamingResponse
    from starlette.requests import ClientDisconnect

    from mindnode.node import blob_keep
    from p2p import errors as p2p_errors

    blob_keep.add_routes(app, lambda: jobs.keeper)      # GET /blobs, /blobs/gc, /blobs/{cid}/pin

    @app.get("/jobs/{job_id}/progress", summary="Latest training progress per worker of a job (from gossip)")
    async def progress(job_id: int) -> dict:
        return jobs.progress_view(job_id)

    @app.post("/blobs", summary="Store the request body (any bytes: a dataset, a base model) as a "
              "content-addressed blob; returns its CIDv1. Streamed to disk; over the node's limit -> 413")
    async def upload(request: Request) -> dict:
        declared = request.headers.get("content-length")
        if declared is not None:
            if not declared.isdigit():
                raise errors.BadRequest("content-length is not a number")
            if int(declared) > jobs.max_upload_bytes:
                raise errors.PayloadTooLarge(_too_large(jobs.max_upload_bytes))
        try:
            cid, size = await jobs.upload(request.stream())
        except ClientDisconnect:        # nothing was kept; nobody is left to answer
            log.info("a blob upload was cut short by the client; nothing kept")
            return Response(status_code=400)
        return {"cid": cid, "size": size}

    @app.get("/blobs/{cid}", summary="A content-addressed blob (weights, checkpoints, datasets), fetched from "
             "peers if needed", response_class=Response)
    async def blob(cid: str):  # no return annotation: a forward ref FastAPI cannot resolve
        try:
            await jobs.fetch(cid)
            size = jobs.blobs.store.size(cid)
        except p2p_errors.InvalidContentId as exc:
            raise errors.BadRequest(str(exc)) from None
        except p2p_errors.P2PError as exc:
            raise errors.NotFound(f"blob {cid}: {exc}") from None
        return StreamingResponse(_stream_blob(jobs.blobs.store, cid), media_type="application/octet-stream",
                                 headers={"content-length": str(size)})


async def _stream_blob(store, cid: str):
    """The stored blob in 1 MiB pieces read in a worker thread. The store checks the id before the
    last piece (a disk fault must not pass as the blob): on a mismatch the body ends short and the
    client, which knows the length and the id, sees the failure."""
    from p2p.errors import BlobCorrupt

    pieces = store.iter_chunks(cid)
    held = store.hold(cid)              # not evicted while it streams (blob_keep, p2p/blob_gc.py)
    held.__enter__()
    try:
        while (piece := await trio.to_thread.run_sync(next, pieces, None)) is not None:
            yield piece
    except BlobCorrupt as exc:
        # drop the damaged copy: the next request fetches it again from a peer that has it intact
        log.error("%s; removed it from the store, the download was cut short", exc)
        store.remove(cid)
    finally:
        pieces.close()
        held.__exit__(None, None, None)
