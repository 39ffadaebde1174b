"""The node service: one trio nursery that runs the libp2p network, the HTTP API, range sync, the
validator's sealing loop and the finality vote tracker over one `Chain` (the ledger store).

Flow of a block: the slot timer fires -> `consensus` says whether it is our turn (or our out-of-turn
back-off has passed) -> `Chain.seal` builds, signs and imports it -> gossip ``block`` -> every node's
gossip validator decodes and checks the header seal (invalid -> REJECT, not forwarded) -> the
handler imports it (full verification in the ledger) or, if its parent is unknown, range-syncs.
Each validator then votes for the new head on the ``vote`` topic; the next proposer carries the
quorum of votes it has seen in its header's ``extra`` (attestation), which is what finalizes.

Everything the node touches in the ledger goes through `mindnode.node.chain.Chain`; everything on
the network through `mindnode.node.network.Network`. This module only schedules.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import trio

from ledger.consensus import FutureHeader
from ledger.errors import LedgerError
from ledger.keys import PrivateKey, address_from_text, address_to_text
from ledger.store import UnknownParent
from mindnode.config import DEFAULT_MAX_STORE_BYTES
from mindnode.node import errors, faults, provider, sync
from mindnode.node.chain import Chain
from mindnode.node.mempool import Mempool
from mindnode.node.metrics import NodeMetrics
from mindnode.node.network import ACCEPT, IGNORE, REJECT, Network, NetworkError, Validation
from p2p.scoring import PENALTY_PROTOCOL

log = logging.getLogger("mindnode.node")


#: Largest blob `POST /blobs` stores unless config.toml ``[blobs] max_upload_bytes`` says otherwise.
DEFAULT_MAX_BLOB_UPLOAD = 4 * 1024**3


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class NodeOptions:
    datadir: str
    validator: bool = False
    listen: list[str] = field(default_factory=lambda: ["/ip4/127.0.0.1/tcp/30333"])
    bootnodes: list[str] = field(default_factory=list)
    rpc_host: str = "127.0.0.1"
    rpc_port: int = 8645
    status_line: bool = False
    regossip_s: float = 10.0
    # `start`: on. Run the jobs provider agent (benchmark, register, offer, train, verify), gossip
    # uptime heartbeats and declare a mining profile.
    provide: bool = False
    hardware_class: str | None = None     # None: provider.detect_hardware_class()
    bandwidth_kbps: int | None = None     # self-declared; None: provider.DEFAULT_BANDWIDTH_KBPS
    # config.toml [blobs] max_upload_bytes: the largest blob `POST /blobs` stores (413 above it)
    max_blob_upload_bytes: int = DEFAULT_MAX_BLOB_UPLOAD
    # config.toml [blobs] max_store_bytes / recent_seconds: the blob store's budget and the window in
    # which a used blob is never evicted (mindnode/node/blob_keep.py)
    max_blob_store_bytes: int = DEFAULT_MAX_STORE_BYTES
    blob_recent_s: float = 600.0


class NodeService:
    """A running Mind Node. Implements `mindnode.node.api.NodeView` for the HTTP API."""

    def __init__(self, chain: Chain, key: PrivateKey, options: NodeOptions):
        self.chain = chain
        self.key = key
        self.opts = options
        self.metrics = NodeMetrics()
        self.mempool = Mempool()
        self.faults = faults.active()
        self.net = Network(key.seed, chain.chain_id, options.listen, options.bootnodes,
                           blob_dir=os.path.join(options.datadir, "blobs"))
        from mindnode.node.job_service import JobService

        self.jobs = JobService(self, os.path.join(options.datadir, "jobs"))
        self.syncing = False
        self._sync_wakeup = trio.Event()
        self._head_changed = trio.Event()
        self._peer_heads: dict[str, int] = {}
        self._may_seal = trio.Event()
        self._regossip_mark = 0
        self._head_seen_ms = now_ms()
        self.started_ms = now_ms()
        self.rpc_url = ""
        self.heartbeats = provider.HeartbeatPool()
        self.relay = provider.relay_key(key)
        self._profile_sent_ms = 0
        self._refresh_metrics()

    # ---------------------------------------------------------------------------------- views
    def status(self) -> dict[str, Any]:
        head = self.chain.head
        pid = str(self.net.peer_id)
        addrs = self.net.listen_addrs()
        return {
            "chain_id": self.chain.chain_id,
            "height": head.height,
            "head_hash": head.hash.hex(),
            "head_timestamp_ms": head.timestamp_ms,
            "finalized_height": self.chain.finalized_height,
            "finalized_hash": self.chain.finalized_hash.hex(),
            "peers": len(self.net.connected_peers()),
            "validator": self.opts.validator and self.chain.is_validator(self.key.address),
            "address": address_to_text(self.key.address),
            "syncing": self.syncing,
            "peer_id": pid,
            "listen_addrs": [a if "/p2p/" in a else f"{a}/p2p/{pid}" for a in addrs],
            "mempool": len(self.mempool),
            "rpc": self.rpc_url,
            "test_faults": sorted(self.faults),
        }

    def block(self, ref: str) -> dict[str, Any]:
        if ref == "head":
            b = self.chain.block_by_height(self.chain.head.height)
        elif ref == "finalized":
            b = self.chain.block_by_height(self.chain.finalized_height)
        elif ref.isdigit():
            b = self.chain.block_by_height(int(ref)) if len(ref) <= 18 else None
        else:
            h = ref[2:] if ref.startswith("0x") else ref
            try:
                raw = bytes.fromhex(h)
            except ValueError:
                raise errors.BadRequest(f"block reference {ref[:80]!r} is not a height, a hex hash, "
                                        "'head' or 'finalized'") from None
            b = self.chain.block_by_hash(raw)
        if b is None:
            raise errors.NotFound(f"no block {ref[:80]} (head is at height {self.chain.head.height})")
        return self.chain.block_json(b)

    def account(self, address: str) -> dict[str, Any]:
        try:
            addr = address_from_text(address)
        except Exception as exc:
            raise errors.BadRequest(str(exc)) from None
        pending = sum(1 for e in self.mempool.entries() if e.sender == addr)
        return self.chain.account_json(addr, pending)

    def validators(self) -> dict[str, Any]:
        return self.chain.validators_json()

    def rewards(self, address: str) -> dict[str, Any]:
        try:
            addr = address_from_text(address)
        except Exception as exc:
            raise errors.BadRequest(str(exc)) from None
        return self.chain.rewards_json(addr)

    def peers(self) -> list[dict[str, Any]]:
        return [{"peer_id": p, "head": self._peer_heads.get(p)} for p in self.net.connected_peers()]

    async def submit_tx(self, raw: bytes) -> dict[str, Any]:
        entry = self._admit_tx(raw)
        await self.net.publish("tx", raw)
        await self.jobs.announcer.announce(entry.tx, raw)     # a job_submit also goes out on `job`
        return {"hash": entry.tx_hash.hex(), "status": "pending"}

    def tx(self, tx_hash: str) -> dict[str, Any]:
        try:
            h = bytes.fromhex(tx_hash[2:] if tx_hash.startswith("0x") else tx_hash)
        except ValueError:
            raise errors.BadRequest("transaction hash must be hex") from None
        entry = self.mempool.get(h)
        if entry is not None:
            return {"hash": h.hex(), "status": "pending", "tx": self.chain.tx_json(entry.tx)}
        found = self.chain.find_tx(h)
        if found is None:
            raise errors.NotFound(f"transaction {h.hex()} is neither pending nor in a recent block")
        return {"hash": h.hex(), "status": "included", **found}

    def debug_action(self, action: str, arg: str) -> dict[str, Any]:
        if "debug-api" not in self.faults:
            raise errors.NotFound("debug routes are off")
        if action == "deny":
            self._nursery.start_soon(self.net.deny, arg)
        elif action == "allow":
            self.net.allow(arg)
        else:
            raise errors.BadRequest(f"unknown debug action {action!r}")
        return {"ok": True, "denied": sorted(self.net.denied)}

    def extend_app(self, app) -> None:
        """The jobs routes on the HTTP API (read through the chain at each call, never a stored view)."""
        from mindnode.jobs.api import add_job_routes
        from mindnode.node.job_service import add_routes

        add_routes(app, self.jobs)      # first: /jobs/{id}/progress before /jobs/{id}
        add_job_routes(app, lambda: self.chain.store.state())

    # ---------------------------------------------------------------------------- mempool
    def _admit_tx(self, raw: bytes):
        try:
            tx = self.chain.decode_tx(raw)
        except Exception as exc:
            self.metrics.txs_rejected.inc()
            raise errors.TxRejected(f"not a valid signed transaction: {exc}") from None
        try:
            entry = self.mempool.add(tx, raw, self.chain.tx_hash(tx),
                                     account_nonce=self.chain.account_nonce(tx.sender),
                                     check=self.chain.check_tx)
        except errors.TxRejected:
            self.metrics.txs_rejected.inc()
            raise
        self.metrics.mempool_size.set(len(self.mempool))
        return entry

    def _validate_tx_gossip(self, data: bytes, peer: str) -> Validation:
        """Forward only transactions we keep. Malformed or badly signed -> REJECT (the sender
        misbehaves); duplicates, stale nonces, a full pool -> IGNORE (honest peers send those)."""
        try:
            tx = self.chain.decode_tx(data)
            if not self.chain.signature_ok(tx):
                raise ValueError("bad signature")
        except Exception as exc:
            self.metrics.txs_rejected.inc()
            log.info("rejected gossiped tx from %s: %s", peer, exc)
            return REJECT
        try:
            self._admit_tx(data)
            return ACCEPT
        except errors.TxRejected as exc:
            log.debug("gossiped tx from %s not kept: %s", peer, exc)
            return IGNORE

    async def _on_tx(self, data: bytes, peer: str) -> None:
        return None  # kept by the validator; forwarding is gossipsub's job

    # ----------------------------------------------------------------------------- blocks
    def _validate_block_gossip(self, data: bytes, peer: str) -> Validation:
        try:
            block = self.chain.decode_block(data)
            self.chain.check_header(block)
        except Exception as exc:
            self.metrics.blocks_rejected.inc()
            log.info("rejected gossiped block from %s: %s", peer, exc)
            return REJECT
        return ACCEPT

    async def _on_block(self, data: bytes, peer: str) -> None:
        block = self.chain.decode_block(data)
        info = self.chain.info(block)
        if self.chain.note_equivocation(block) is not None:
            await self._submit_evidence()
        if self.chain.has_block(info.hash) and self.chain.hash_at(info.height) == info.hash:
            return
        if not self.chain.has_block(info.parent_hash):
            self._peer_heads[peer] = max(self._peer_heads.get(peer, 0), info.height)
            self._sync_wakeup.set()
            return
        for _ in range(3):
            try:
                self._import(block, source=peer, raise_future=True)
                return
            except FutureHeader as exc:
                await trio.sleep(max(0.01, (exc.retry_at_ms - now_ms()) / 1000))

    def _import(self, block, source: str, raise_future: bool = False) -> bool:
        info = self.chain.info(block)
        t0 = time.perf_counter()
        try:
            became_head = self.chain.import_block(block)
        except FutureHeader:
            if raise_future:
                raise
            return False
        except UnknownParent:
            self._sync_wakeup.set()
            return False
        except Exception as exc:
            self.metrics.blocks_rejected.inc()
            log.warning("block %d %s from %s failed verification: %s", info.height, info.hash.hex()[:12],
                        source, exc)
            return False
        dt = time.perf_counter() - t0
        self.metrics.import_seconds.observe(dt)
        if not became_head:  # a valid side block, kept for fork choice
            return True
        self.metrics.blocks_imported.inc()
        lag_ms = now_ms() - info.timestamp_ms
        self.metrics.propagation_seconds.observe(max(lag_ms, 0) / 1000)
        log.info("imported block", extra={"event": "imported", "height": info.height,
                                          "hash": info.hash.hex(), "t_ms": now_ms(),
                                          "import_ms": round(dt * 1000, 2), "source": source})
        self._on_new_head()
        return True

    def _on_new_head(self) -> None:
        block = self.chain.block_by_height(self.chain.head.height)
        self.mempool.remove_hashes(self.chain.tx_hashes(block))
        self.mempool.prune(self.chain.account_nonce)
        self._refresh_metrics()
        self._head_seen_ms = now_ms()
        self._head_changed.set()
        self._head_changed = trio.Event()
        if self.opts.validator and not self.syncing and self.chain.is_validator(self.key.address):
            vote = self.chain.make_vote(self.key)
            if vote is not None:
                self._nursery.start_soon(self.net.publish, "vote", vote)

    def _refresh_metrics(self) -> None:
        fin = self.chain.finalized_height
        if fin != getattr(self, "_logged_fin", None):
            if hasattr(self, "_logged_fin"):
                log.info("finalized block", extra={"event": "finalized", "height": fin,
                                                   "hash": self.chain.finalized_hash.hex(), "t_ms": now_ms()})
            self._logged_fin = fin
        self.metrics.height.set(self.chain.head.height)
        self.metrics.finalized_height.set(self.chain.finalized_height)
        self.metrics.mempool_size.set(len(self.mempool))

    # ------------------------------------------------------------------------------ votes
    def _validate_vote_gossip(self, data: bytes, peer: str) -> Validation:
        try:
            self.chain.check_vote(data)
        except Exception as exc:
            log.info("rejected vote from %s: %s", peer, exc)
            return REJECT
        return ACCEPT

    async def _on_vote(self, data: bytes, peer: str) -> None:
        if self.chain.add_vote(data):
            self._refresh_metrics()
        if self.chain.evidence:
            await self._submit_evidence()

    async def _submit_evidence(self) -> None:
        """Turn detected offences into evidence transactions from this node's account."""
        for tx in self.chain.take_evidence_txs(self.key, self._own_next_nonce()):
            if await self._submit_own(tx, "evidence"):
                log.warning("submitted evidence", extra={"event": "evidence", "tx": tx.hash.hex()})

    def _own_next_nonce(self) -> int:
        """The node key's next nonce after its transactions waiting in the mempool."""
        pending = sum(1 for e in self.mempool.entries() if e.sender == self.key.address)
        return self.chain.account_nonce(self.key.address) + pending

    async def _submit_own(self, tx, what: str) -> bool:
        """Put a transaction this node signed into its mempool and gossip it; False if refused."""
        raw = tx.encode()
        try:
            self._admit_tx(raw)
        except errors.TxRejected as exc:
            log.warning("own %s transaction refused: %s", what, exc)
            return False
        await self.net.publish("tx", raw)
        return True

    # ------------------------------------------------------------------------------ sealing
    async def _seal_loop(self) -> None:
        """Wake at each slot; seal when the consensus rules say we may (in turn, or out of turn
        after our back-off) and the head has not moved on meanwhile."""
        bt = self.chain.block_time_ms
        await self._may_seal.wait()
        while True:
            head = self.chain.head
            if self.syncing:
                await trio.sleep(0.2)
                continue
            plan = self.chain.seal_plan(self.key.address)
            changed = self._head_changed
            if plan is None:  # not allowed at this height (recent signer / not a validator)
                with trio.move_on_after(bt / 1000):
                    await changed.wait()
                continue
            at = plan.not_before_ms
            if not plan.in_turn:
                # Out of turn, keep the back-off relative to when we could first seal on this head
                # too: after a stall (or at start) every back-off measured from the old parent time
                # has expired, and all validators would seal competing blocks at once. Sealing
                # later than allowed is always valid; it gives the in-turn validator its chance.
                backoff = plan.not_before_ms - (head.timestamp_ms + bt)
                at = max(at, self._head_seen_ms + backoff)
            wait = max(0, at - now_ms())
            with trio.move_on_after(wait / 1000):
                await changed.wait()
            if self.chain.head.hash != head.hash:
                continue  # somebody else's block arrived first
            self._seal(max(plan.not_before_ms, now_ms()), plan.difficulty)

    def _seal(self, timestamp_ms: int, difficulty: int) -> None:
        p = self.chain.params
        entries = self.mempool.select(self.chain.account_nonce, max_txs=p.max_block_txs - 1,
                                      max_bytes=p.max_block_bytes // 2)
        txs = [e.tx for e in entries]
        uptime = self._uptime_tx(timestamp_ms)
        if uptime is not None:
            txs.append(uptime)
        t0 = time.perf_counter()
        skipped: list[bytes] = []
        try:
            block = self.chain.seal(self.key, txs, timestamp_ms, difficulty,
                                    on_skip=lambda tx, exc: skipped.append(tx.hash))
        except Exception as exc:
            log.error("sealing failed: %s: %s", type(exc).__name__, exc)
            # drop transactions the ledger refused so the next slot is not blocked by them
            self.mempool.remove_hashes(e.tx_hash for e in entries)
            return
        if skipped:  # refused at execution (e.g. evidence already punished): they never will fit
            log.info("dropped %d transactions the ledger refused while sealing", len(skipped))
            self.mempool.remove_hashes(skipped)
        info = self.chain.info(block)
        self.metrics.blocks_sealed.inc()
        self.metrics.import_seconds.observe(time.perf_counter() - t0)
        log.info("sealed block", extra={"event": "sealed", "height": info.height, "hash": info.hash.hex(),
                                        "t_ms": now_ms(), "txs": len(entries),
                                        "difficulty": info.difficulty})
        data = self.chain.encode_block(block)
        self._nursery.start_soon(self.net.publish, "block", data)
        if "double-seal" in self.faults:
            # TEST-ONLY equivocation: a second, different block at the same height.
            twin = self.chain.seal_twin(self.key, block)
            if twin is not None:
                log.warning("TEST FAULT double-seal: gossiping a second block at height %d", info.height)
                self._nursery.start_soon(self.net.publish, "block", self.chain.encode_block(twin))
        self._on_new_head()

    # --------------------------------------------------------------------------- heartbeats
    def _uptime_tx(self, timestamp_ms: int):
        """The heartbeats this proposer has seen, as its block's `uptime` transaction (or None)."""
        day = self.chain.clock.day_of(timestamp_ms // 1000)
        seen = self.heartbeats.heartbeats(day)
        if not seen:
            return None
        try:
            return self.chain.uptime_tx(self.relay, seen, timestamp_ms)
        except Exception as exc:  # never let uptime bookkeeping stop block production
            log.warning("could not build the uptime transaction: %s: %s", type(exc).__name__, exc)
            return None

    def _validate_heartbeat_gossip(self, data: bytes, peer: str) -> Validation:
        verdict, hb, reason = provider.classify(data, chain_id=self.chain.chain_id, clock=self.chain.clock,
                                                now_s=now_ms() // 1000)
        if verdict == provider.REJECT:
            log.info("rejected heartbeat from %s: %s", peer, reason)
            return REJECT
        if verdict == provider.IGNORE or self.chain.mining_profile(hb.provider) is None:
            return IGNORE  # late/early at a boundary, or a provider that earns nothing anyway
        return ACCEPT if self.heartbeats.add(hb) else IGNORE

    async def _on_heartbeat(self, data: bytes, peer: str) -> None:
        return None  # kept by the validator

    async def _provider_loop(self) -> None:
        """Once per chain hour: declare the mining profile if the chain does not have it yet, then
        sign a heartbeat, keep it (this node may propose) and gossip it."""
        from ledger.economics.uptime import sign_heartbeat

        clock = self.chain.clock
        await self._may_seal.wait()  # after the initial sync: nonces and the profile are current
        sent: tuple[int, int] | None = None
        while True:
            now = now_ms() / 1000
            day, hour = clock.hour_of(int(now))
            if day >= 0 and (day, hour) != sent:
                sent = (day, hour)
                await self._ensure_profile()
                if "few-heartbeats" in self.faults and hour >= self.chain.params.qualifying_hours:
                    pass  # TEST-ONLY: online in exactly the qualifying bar of hours, which is not more
                else:
                    hb = sign_heartbeat(self.key, self.chain.chain_id, day, hour)
                    self.heartbeats.add(hb)
                    await self.net.publish("heartbeat", hb.encode())
            nxt = clock.day_start(0) if day < 0 else (
                clock.hour_start(day, hour + 1) if hour < 23 else clock.day_start(day + 1))
            await trio.sleep(max(0.05, nxt - now + 0.01))

    def hardware_class(self) -> str:
        return self.opts.hardware_class or provider.detect_hardware_class()

    async def _ensure_profile(self) -> None:
        """Send a `mining_profile` transaction when the chain has none for this node, or when
        --hardware-class / --bandwidth-kbps ask for another one; at most every few slots. A
        registered jobs provider is left alone: its benchmark record (`mindnode provider register`)
        sets the profile, and a start-up guess must not overwrite a measurement."""
        from ledger.registry import body_class
        from ledger.tx import sign_tx

        have = self.chain.mining_profile(self.key.address)
        explicit = self.opts.hardware_class is not None or self.opts.bandwidth_kbps is not None
        if have is not None and not explicit:
            return
        if self.chain.is_jobs_provider(self.key.address):
            return
        want = (self.opts.hardware_class or (have.hardware_class if have else self.hardware_class()),
                self.opts.bandwidth_kbps if self.opts.bandwidth_kbps is not None
                else (have.bandwidth_kbps if have else provider.DEFAULT_BANDWIDTH_KBPS))
        if have is not None and (have.hardware_class, have.bandwidth_kbps) == want:
            return
        if now_ms() - self._profile_sent_ms < max(10_000, 5 * self.chain.block_time_ms):
            return  # the last one may still be on its way into a block
        self._profile_sent_ms = now_ms()
        tx = sign_tx(self.key, self.chain.chain_id, self._own_next_nonce(), 0,
                     body_class("mining_profile")(hardware_class=want[0], bandwidth_kbps=want[1]))
        if await self._submit_own(tx, "mining_profile"):
            log.info("declared mining profile", extra={"event": "mining_profile", "hardware_class": want[0],
                                                       "bandwidth_kbps": want[1], "tx": tx.hash.hex()})

    # ------------------------------------------------------------------------------- sync
    async def _serve_sync(self, data: bytes, peer: str) -> bytes:
        req = sync.decode(data, max_size=4096)
        op = req.get("op")
        if op == "head":
            head = self.chain.head
            snap = self.chain.snapshot()
            return sync.pack_plain({"height": head.height, "hash": head.hash, "td": snap.total_difficulty,
                                    "justified": snap.justified.height, "finalized": self.chain.finalized_height})
        if op == "blocks":
            start = sync.want_int(req, "from")
            count = min(sync.want_int(req, "count", 1, 10_000), sync.MAX_BLOCKS_PER_REQUEST)
            blobs = []
            for h in range(start, min(start + count, self.chain.head.height + 1)):
                raw = self.chain.store.get_block_bytes(h)  # stored canonical bytes: no re-encoding
                if raw is None:
                    break
                blobs.append(raw)
            return sync.encode_blocks(blobs)
        if op == "hash":
            b = self.chain.block_by_height(sync.want_int(req, "height"))
            return sync.pack_plain({"hash": None if b is None else self.chain.info(b).hash})
        raise sync.SyncProtocolError(f"unknown sync op {op!r}")

    async def _initial_sync(self) -> None:
        """Before a validator seals anything: meet the peers and catch up with them. Sealing on a
        stale head right after a restart (or before the others are up) only makes competing blocks
        that cost a round of votes. A lone node gives up waiting after a few block times."""
        grace = max(3.0, 3 * self.chain.block_time_ms / 1000)
        with trio.move_on_after(grace):
            while not self.net.connected_peers():
                await trio.sleep(0.05)
            await trio.sleep(0.1)  # the other bootnodes usually connect within a few ms
        if self.net.connected_peers():
            await self._sync_round()
        self._head_seen_ms = now_ms()
        self._may_seal.set()

    async def _wake_sync_on_new_peers(self) -> None:
        """A peer that just connected may be ahead (a restart, a healed partition): ask at once
        instead of at the next 1 s round."""
        async for ev in self.net.node.events():
            if ev.kind == "connected":
                self._sync_wakeup.set()

    async def _sync_loop(self) -> None:
        await self._initial_sync()
        while True:
            with trio.move_on_after(1.0):
                await self._sync_wakeup.wait()
            self._sync_wakeup = trio.Event()
            await self._sync_round()

    async def _sync_round(self) -> None:
        """Ask every peer for its head; sync from the best one if its chain beats ours under fork
        choice (more justified, then more total difficulty)."""
        best: tuple[tuple[int, int], int, str] | None = None
        for peer in self.net.connected_peers():
            try:
                ans = sync.decode(await self.net.request(peer, sync.PROTOCOL, sync.encode_request("head"),
                                                         timeout=3))
                h = sync.want_int(ans, "height")
                key = (sync.want_int(ans, "justified"), sync.want_int(ans, "td", 0, 2**255))
                self._peer_heads[peer] = h
                if best is None or key > best[0]:
                    best = (key, h, peer)
            except (NetworkError, sync.SyncProtocolError) as exc:
                log.debug("head request to %s failed: %s", peer, exc)
        snap = self.chain.snapshot()
        if best is None or best[0] <= (snap.justified.height, snap.total_difficulty):
            self.syncing = False
            return
        _, target, peer = best
        self.syncing = target > self.chain.head.height + 2
        try:
            await self._sync_from(peer, target)
        except NetworkError as exc:
            log.info("sync from %s stopped: %s", peer, exc)
        except (sync.SyncProtocolError, LedgerError) as exc:  # it served garbage or invalid blocks
            log.warning("sync from %s stopped: %s", peer, exc)
            self.net.penalise(peer, PENALTY_PROTOCOL, f"sync: {exc}")
        finally:
            self.syncing = False
            self._refresh_metrics()

    async def _request(self, peer: str, op: str, **fields: Any) -> bytes:
        return await self.net.request(peer, sync.PROTOCOL, sync.encode_request(op, **fields))

    async def _sync_from(self, peer: str, target: int) -> None:
        # Common ancestor: walk back from min(head, target) until the peer has the same hash. Never
        # below our finalized block: a branch forking there is refused by fork choice anyway.
        start = min(self.chain.head.height, target)
        floor = self.chain.finalized_height
        step = 1
        while start > floor:
            ans = sync.decode(await self._request(peer, "hash", height=start))
            if ans.get("hash") == self.chain.hash_at(start):
                break
            start = max(floor, start - step)
            step *= 2
        log.info("syncing from %s: heights %d..%d", peer, start + 1, target)
        if start < self.chain.head.height:
            # a fork: fetch the whole branch, then let fork choice decide in one reorganisation
            branch = []
            h = start + 1
            while h <= target and len(branch) < 4 * sync.MAX_BLOCKS_PER_REQUEST:
                blobs = sync.decode_blocks(await self._request(peer, "blocks", **{"from": h, "count": 64}))
                if not blobs:
                    break
                branch += [self.chain.decode_block(raw) for raw in blobs]
                h += len(blobs)
            self._import_branch(branch, peer)
            return
        h = start + 1
        while h <= target:
            blobs = sync.decode_blocks(await self._request(peer, "blocks", **{"from": h, "count": 64}))
            if not blobs:
                return
            blocks = [self.chain.decode_block(raw) for raw in blobs]
            if blocks[0].header.height != h:
                raise sync.SyncProtocolError(f"peer {peer} answered height {blocks[0].header.height} for {h}")
            if blocks[0].header.parent_hash != self.chain.head.hash:
                self._import_branch(blocks, peer)  # the head moved meanwhile (gossip)
                return
            for block in blocks:
                if not self._import(block, source=peer):
                    raise sync.SyncProtocolError(f"peer {peer} served an invalid block at height {h}")
                h += 1
                await trio.sleep(0)

    def _import_branch(self, blocks: list, peer: str) -> None:
        if not blocks:
            return
        t0 = time.perf_counter()
        try:
            moved = self.chain.import_branch(blocks)
        except Exception as exc:
            self.metrics.blocks_rejected.inc()
            raise sync.SyncProtocolError(f"branch from {peer} refused: {exc}") from None
        self.metrics.import_seconds.observe(time.perf_counter() - t0)
        if moved:
            self._on_new_head()

    # ---------------------------------------------------------------------------- run
    async def _status_line(self) -> None:
        from rich.console import Console
        from rich.live import Live
        from rich.logging import RichHandler

        console = Console(stderr=True)
        root = logging.getLogger()
        saved = root.handlers[:]
        # log lines go through the same console, so they scroll above the live line
        root.handlers[:] = [RichHandler(console=console, show_path=False)]
        try:
            await self._live_line(console, Live)
        finally:
            root.handlers[:] = saved

    async def _live_line(self, console, live_cls) -> None:
        with live_cls(console=console, refresh_per_second=2, transient=True) as live:
            while True:
                s = self.status()
                role = "validator" if s["validator"] else "follower"
                live.update(f"[bold]{s['chain_id']}[/] height [cyan]{s['height']}[/] finalized "
                            f"[green]{s['finalized_height']}[/] peers {s['peers']} mempool {s['mempool']} "
                            f"{role}{' syncing' if s['syncing'] else ''}")
                await trio.sleep(0.5)

    async def run(self, *, task_status: trio.TaskStatus[NodeService] = trio.TASK_STATUS_IGNORED) -> None:
        from mindnode.node.api import serve_api

        if self.faults:
            log.warning("TEST FAULTS ENABLED (%s): this node misbehaves on purpose", ",".join(sorted(self.faults)))
        self.net.subscribe("block", self._validate_block_gossip, self._on_block)
        self.net.subscribe("tx", self._validate_tx_gossip, self._on_tx)
        self.net.subscribe("vote", self._validate_vote_gossip, self._on_vote)
        self.net.subscribe("heartbeat", self._validate_heartbeat_gossip, self._on_heartbeat)
        self.net.subscribe("job", self.jobs.validate_job_gossip, self.jobs.on_job_gossip)
        self.net.serve(sync.PROTOCOL, self._serve_sync)
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            await nursery.start(self.net.run)
            urls = await nursery.start(lambda task_status: serve_api(
                self, self.opts.rpc_host, self.opts.rpc_port, debug_routes="debug-api" in self.faults,
                task_status=task_status))
            self.rpc_url = urls[0] if urls else f"http://{self.opts.rpc_host}:{self.opts.rpc_port}"
            nursery.start_soon(self._sync_loop)
            nursery.start_soon(self._wake_sync_on_new_peers)
            if self.opts.validator:
                if not self.chain.is_candidate(self.key.address):
                    log.warning("--validator given but %s is not in the validator set (yet); "
                                "following the chain", address_to_text(self.key.address))
                nursery.start_soon(self._seal_loop)
            if self.opts.status_line:
                nursery.start_soon(self._status_line)
            if self.opts.provide:
                nursery.start_soon(self._provider_loop)
            log.info("node started", extra={"event": "started", "peer_id": str(self.net.peer_id),
                                            "rpc": self.rpc_url, "listen": self.net.listen_addrs(),
                                            "height": self.chain.head.height, "t_ms": now_ms()})
            task_status.started(self)
            nursery.start_soon(self._metrics_loop)
            nursery.start_soon(self._regossip_loop, self.opts.regossip_s)
            nursery.start_soon(self.jobs.run, self.opts.provide, self._may_seal)

    async def _metrics_loop(self) -> None:
        while True:
            self.metrics.peers.set(len(self.net.connected_peers()))
            await trio.sleep(1)

    async def _regossip_loop(self, every_s: float = 10.0, batch: int = 200) -> None:
        """Re-gossip transactions still pending after `every_s`: a peer that joined late or missed
        the first gossip (a full queue, a partition) still gets them. Peers that already hold one
        IGNORE it without penalty."""
        while True:
            await trio.sleep(every_s)
            stale = sorted((e for e in self.mempool.entries() if e.arrival <= self._regossip_mark),
                           key=lambda e: (-e.fee, e.nonce))[:batch]
            self._regossip_mark = self.mempool.arrivals
            for e in stale:
                await self.net.publish("tx", e.raw)
            if stale:
                log.debug("re-gossiped %d pending transactions", len(stale))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (ms), level, logger, message and any `extra` fields."""

    _SKIP = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        out = {"ts_ms": int(record.created * 1000), "level": record.levelname.lower(),
               "logger": record.name, "msg": record.getMessage()}
        for k, v in record.__dict__.items():
            if k not in self._SKIP and not k.startswith("_"):
                out[k] = v
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def setup_logging(fmt: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("mindnode").setLevel(os.environ.get("MINDNODE_LOG_LEVEL", level).upper())
    if not os.environ.get("LIBP2P_DEBUG"):
        # py-libp2p logs expected churn (a dial racing our shutdown, DHT misses) as WARNING with
        # tracebacks; keep its errors only unless LIBP2P_DEBUG asks for more
        logging.getLogger("libp2p").setLevel(logging.ERROR)
