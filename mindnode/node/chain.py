"""The node's chain: the ledger `Store` driven by the consensus rules (`ledger.consensus`).

What this module adds on top of the store and the pure rules:

* **snapshots** -- the consensus `Snapshot` after every block, computed on import and persisted
  (by block hash) in a small side database ``<datadir>/consensus`` together with the validator's
  safety memory (its `VoteGuard` and the highest height it ever sealed). The side write happens
  right after the block's own atomic write; if a crash falls between the two, `open` recomputes the
  head's snapshot from its parent's and the head state, so nothing is ever replayed from genesis;
* the store's **consensus hook** -- `verify_header` (turn, difficulty, recent signers, timing,
  attestation) against the parent's snapshot, before the block is executed;
* **fork choice and reorganisation** -- a valid block on a side branch is stored; when its branch
  beats the head under `ledger.consensus.fork_choice` (justified, then total difficulty, then hash)
  the store is rewound to the common ancestor and the branch imported; if any branch block fails,
  the old chain is restored. Never across the finalized block;
* **votes** -- the `VotePool`, the validator's own votes (`decide_vote`, guard persisted before the
  vote leaves), and the attestation the sealer puts in its header's `extra`;
* JSON views of blocks, transactions, accounts and validators for the HTTP API.

No network and no trio here: the service calls these methods from its tasks.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Any

import plyvel

from ledger.block import Block, Header
from ledger.consensus import (
    Checkpoint,
    ConsensusConfig,
    DoubleSealWatch,
    FutureHeader,
    Snapshot,
    ValidatorSet,
    Vote,
    VoteGuard,
    VotePool,
    advance_finalized,
    decide_vote,
    decode_extra,
    encode_extra,
    head_key,
    verify_header,
)
from ledger.consensus.header_bridge import (
    genesis_snapshot,
    header_view,
    snapshot_after,
    store_consensus_check,
)
from ledger.consensus.penalties import rewards_withheld
from ledger.consensus.seal_guard import SealGuard
from ledger.consensus.slots import liveness_view
from ledger.consensus.validators import epoch_of
from ledger.economics import ledger_state
from ledger.economics.days import ChainClock
from ledger.economics.ledger_state import MiningProfile, UptimeRecord
from ledger.errors import InvalidBlock, InvalidTransaction, StoreError
from ledger.genesis import Genesis
from ledger.keys import PrivateKey, address_to_text
from ledger.store import NotOnHead, Store, UnknownParent, build_block
from ledger.tx import Transaction, check_stateless, verify_signature

log = logging.getLogger("mindnode.node")

_SNAP = b"s"
_GUARD = b"mguard"
_SEALED = b"msealed"
_FINAL = b"mfinalized"
_GENESIS = b"mgenesis"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclasses.dataclass(frozen=True)
class BlockInfo:
    height: int
    hash: bytes
    parent_hash: bytes
    proposer: bytes
    timestamp_ms: int
    difficulty: int


class Chain:
    def __init__(self, store: Store, genesis: Genesis, side_db: plyvel.DB):
        self.store = store
        self.genesis = genesis
        self._db = side_db
        self.cfg = ConsensusConfig.from_genesis(genesis)
        self.params = store.params
        self.chain_id = store.chain_id
        self.block_time_ms = self.params.block_time_ms
        self.votes = VotePool(self.cfg)
        self.seal_watch = DoubleSealWatch()
        self.evidence: list[Any] = []
        self._snaps: dict[bytes, Snapshot] = {}
        self._verifying_now = True
        store.consensus_check = store_consensus_check(
            self.cfg, self._load_snap, lambda: now_ms() if self._verifying_now else None)
        self._ensure_head_snapshot()
        raw = side_db.get(_FINAL)
        self._finalized = Checkpoint.decode(raw) if raw is not None else self.snapshot().finalized
        if self.hash_at(self._finalized.height) != self._finalized.hash:
            # the chain database was removed and is being rebuilt: finality is re-learned from it
            # (the vote guard and last sealed height are kept: they protect against slashing)
            self._finalized = self.snapshot().finalized
            side_db.delete(_FINAL)
        self._advance_finality()

    # ------------------------------------------------------------------------------- opening
    @classmethod
    def open(cls, path: str, genesis: Genesis) -> Chain:
        p = Path(path)
        store = Store.open(p) if (p / "CURRENT").exists() else Store.create(p, genesis)
        try:
            side = plyvel.DB(str(p.parent / "consensus"), create_if_missing=True)
        except plyvel.Error as exc:
            store.close()
            raise StoreError(f"cannot open the consensus database next to {p}: {exc}") from None
        if side.get(_GENESIS) != store.genesis_hash:
            # left over from another chain (e.g. `mindnode init --force`): nothing in it applies here
            with side.write_batch(sync=True) as wb:
                for k, _ in side.iterator():
                    wb.delete(k)
                wb.put(_GENESIS, store.genesis_hash)
        return cls(store, genesis, side)

    def close(self) -> None:
        self.store.close()
        if not self._db.closed:
            self._db.close()

    def _ensure_head_snapshot(self) -> None:
        head = self.store.head
        if self._load_snap(head.hash) is not None:
            return
        if head.height == 0:
            self._save_snap(genesis_snapshot(head, self.store.state()))
            return
        parent_snap = self._load_snap(head.parent_hash)
        if parent_snap is None:
            raise StoreError("consensus snapshots are missing for the last two blocks; the consensus "
                             "database does not belong to this chain (remove both chain/ and consensus/ "
                             "and sync again)")
        self._save_snap(self._next_snapshot(parent_snap, head))

    def _next_snapshot(self, parent_snap: Snapshot, header: Header) -> Snapshot:
        """Snapshot after `header`, which must be the store's head (state after it is the head state)."""
        return snapshot_after(self.cfg, parent_snap, header, self.store.state())

    def _advance_finality(self) -> None:
        """The node's finalized block only moves forward (fork_choice.advance_finalized); persisted,
        because a later head may sit on a branch without the attestation that finalized it."""
        new = advance_finalized(self._finalized, self.snapshot())
        if new != self._finalized or self._db.get(_FINAL) is None:
            self._finalized = new
            self._db.put(_FINAL, new.encode(), sync=True)

    def _save_snap(self, snap: Snapshot) -> None:
        self._snaps[snap.hash] = snap
        self._db.put(_SNAP + snap.hash, snap.encode(), sync=True)

    def _load_snap(self, block_hash: bytes) -> Snapshot | None:
        snap = self._snaps.get(block_hash)
        if snap is None:
            raw = self._db.get(_SNAP + block_hash)
            if raw is None:
                return None
            snap = Snapshot.decode(raw)
            if len(self._snaps) > 4096:
                self._snaps.clear()
            self._snaps[block_hash] = snap
        return snap

    def snapshot(self, block_hash: bytes | None = None) -> Snapshot:
        snap = self._load_snap(self.store.head_hash if block_hash is None else block_hash)
        if snap is None:
            raise StoreError("missing consensus snapshot")
        return snap

    # ------------------------------------------------------------------------------- reading
    @property
    def head(self) -> BlockInfo:
        return self.info_header(self.store.head)

    @property
    def finalized(self) -> Checkpoint:
        return self._finalized

    @property
    def finalized_height(self) -> int:
        return self._finalized.height

    @property
    def finalized_hash(self) -> bytes:
        return self._finalized.hash

    @property
    def total_difficulty(self) -> int:
        return self.snapshot().total_difficulty

    def info_header(self, h: Header) -> BlockInfo:
        return BlockInfo(h.height, h.hash, h.parent_hash, h.proposer, h.timestamp, h.difficulty)

    def info(self, block: Block) -> BlockInfo:
        return self.info_header(block.header)

    def has_block(self, block_hash: bytes) -> bool:
        return self.store.has_block(block_hash)

    def block_by_height(self, height: int) -> Block | None:
        return self.store.get_block(height)

    def block_by_hash(self, block_hash: bytes) -> Block | None:
        return self.store.get_block(block_hash)

    def hash_at(self, height: int) -> bytes | None:
        b = self.store.get_header(height)
        return None if b is None else b.hash

    def encode_block(self, block: Block) -> bytes:
        return block.encode()

    def decode_block(self, data: bytes) -> Block:
        return Block.decode(data, max_size=self.params.max_block_bytes)

    def tx_hashes(self, block: Block) -> list[bytes]:
        return [tx.hash for tx in block.txs]

    def is_validator(self, address: bytes) -> bool:
        return address in self.snapshot().next

    def is_candidate(self, address: bytes) -> bool:
        return self.is_validator(address) or self.store.state().candidate(address) is not None

    # ------------------------------------------------------------------------------ transactions
    def decode_tx(self, raw: bytes) -> Transaction:
        return Transaction.decode(raw, max_size=self.params.max_tx_bytes)

    def signature_ok(self, tx: Transaction) -> bool:
        return verify_signature(tx)

    def tx_hash(self, tx: Transaction) -> bytes:
        return tx.hash

    def account_nonce(self, address: bytes) -> int:
        return self.store.account(address).nonce

    def check_tx(self, tx: Transaction) -> None:
        """Ledger rules a mempool can check now: chain id, size/body/signature, and that the
        sender can pay the fee (execution re-checks everything in the block)."""
        if tx.chain_id != self.chain_id:
            raise InvalidTransaction(f"transaction is for chain {tx.chain_id!r}, this is {self.chain_id!r}")
        check_stateless(tx, self.params)
        acc = self.store.account(tx.sender)
        need = tx.fee
        if tx.kind in ("transfer", "stake", "register_validator"):  # kinds that spend the balance
            need += getattr(tx.body, "amount", 0) + getattr(tx.body, "stake", 0)
        if acc.balance < need:
            raise InvalidTransaction(f"balance {acc.balance} of {address_to_text(tx.sender)} does not cover "
                                     f"{need} (amount + fee)")

    def find_tx(self, tx_hash: bytes) -> dict[str, Any] | None:
        found = self.store.get_tx(tx_hash)
        if found is None:
            return None
        tx, block_hash, height, index = found
        return {"block_hash": block_hash.hex(), "height": height, "index": index, "tx": self.tx_json(tx)}

    # ------------------------------------------------------------------------------ gossip checks
    def check_header(self, block: Block) -> None:
        """Cheap gossip-time checks: chain id, seal, and (when the parent's snapshot is known) the
        full consensus header rules. Raises InvalidBlock."""
        h = block.header
        if h.chain_id != self.chain_id:
            raise InvalidBlock(f"block is for chain {h.chain_id!r}, this is {self.chain_id!r}")
        if h.height == 0 or len(h.seal) != 64 or not h.seal_valid():
            raise InvalidBlock(f"block {h.height} has no valid seal by its proposer")
        parent = self.store.get_header(h.parent_hash)
        snap = self._load_snap(h.parent_hash)
        if parent is not None and snap is not None:
            try:
                verify_header(self.cfg, snap, header_view(parent), header_view(h), now_ms())
            except FutureHeader:
                pass  # retried by the service after a short wait; not a reason to reject
        elif h.height <= self.finalized_height:
            raise InvalidBlock(f"block {h.height} is at or below the finalized height {self.finalized_height} "
                               "on an unknown branch")

    def note_equivocation(self, block: Block) -> Any:
        h = block.header
        ev = self.seal_watch.observe(h.height, h.parent_hash, h.proposer, h.hash, h.encode())
        if ev is not None:
            log.warning("double seal by %s at height %d: evidence kept", address_to_text(h.proposer), h.height)
            self.evidence.append(ev)
        return ev

    # ------------------------------------------------------------------------------ importing
    def import_block(self, block: Block) -> bool:
        """Import a verified block. True if the head moved. Raises InvalidBlock (FutureHeader:
        retry later; UnknownParent: sync first)."""
        header = block.header
        if self.store.has_block(header.hash) and self._load_snap(header.hash) is not None:
            return False
        try:
            self.store.import_block(block)
        except NotOnHead:
            return self._consider_branch([block])
        self._save_snap(self._next_snapshot(self.snapshot(header.parent_hash), header))
        self._advance_finality()
        self.votes.prune(header.height - self.params.vote_window)
        return True

    def import_branch(self, blocks: list[Block]) -> bool:
        """Import consecutive blocks whose first parent is known (range sync). True if the head moved."""
        if not blocks:
            return False
        if blocks[0].header.parent_hash == self.store.head_hash:
            moved = False
            for b in blocks:
                moved = self.import_block(b) or moved
            return moved
        return self._consider_branch(blocks)

    def _consider_branch(self, blocks: list[Block]) -> bool:
        """A branch off the canonical chain. Switch to it if fork choice prefers it."""
        first = blocks[0].header
        fork_parent = self.store.get_header(first.parent_hash)
        if fork_parent is None:
            raise UnknownParent(f"block {first.height} has an unknown parent")
        if self.hash_at(fork_parent.height) != fork_parent.hash:
            # parent is itself a stored side block: walk back to the canonical chain
            prefix: list[Block] = []
            cur = fork_parent
            while cur.height > 0 and self.hash_at(cur.height) != cur.hash:
                prefix.append(self.store.get_block(cur.hash))
                cur = self.store.get_header(cur.parent_hash)
                if cur is None:
                    raise UnknownParent("side branch reaches an unknown block")
            blocks = list(reversed(prefix)) + blocks
            fork_parent = cur
        for b in blocks:
            self.store.put_block(b)
        fin = self.finalized
        if fork_parent.height < fin.height:
            raise InvalidBlock(f"branch forks at height {fork_parent.height}, below the finalized block "
                               f"{fin.height}: refused")
        base = self.snapshot(fork_parent.hash)
        # Estimate the branch's key from headers (justified via attestations, difficulty, hash).
        justified, td = base.justified.height, base.total_difficulty
        for b in blocks:
            td += b.header.difficulty
            att = decode_extra(b.header.extra)
            if att is not None:
                justified = max(justified, att.data.target.height)
        tip = blocks[-1].header
        cur = self.snapshot()
        if (-justified, -td, tip.hash) >= head_key(cur):
            log.info("kept side block %d %s (does not beat the head)", tip.height, tip.hash.hex()[:12])
            return False
        # Reorganise: rewind to the fork point, import the branch; restore on failure.
        old: list[Block] = []
        while self.store.head_hash != fork_parent.hash:
            old.append(self.store.get_block(self.store.head_hash))
            self.store.rewind_head()
        try:
            self._verifying_now = False
            for b in blocks:
                self.store.import_block(b)
                self._save_snap(self._next_snapshot(self.snapshot(b.header.parent_hash), b.header))
        except InvalidBlock:
            while self.store.head_hash != fork_parent.hash:
                self.store.rewind_head()
            for b in reversed(old):
                self.store.import_block(b)
            raise
        finally:
            self._verifying_now = True
        self._advance_finality()
        log.info("reorganised: %d blocks replaced from height %d, new head %d %s", len(old),
                 fork_parent.height + 1, tip.height, tip.hash.hex()[:12])
        return True

    # ------------------------------------------------------------------------------ sealing
    def seal_guard(self) -> SealGuard:
        """The (height, parent) slots this validator sealed: never two blocks on one parent."""
        raw = self._db.get(_SEALED)
        return SealGuard() if raw is None else SealGuard.decode(raw)

    def seal_plan(self, address: bytes):
        return self.snapshot().plan_seal(address, self.params, self.seal_guard())

    def seal(self, key: PrivateKey, txs: list[Transaction], timestamp_ms: int, difficulty: int,
             on_skip=None) -> Block:
        """Build, seal and import a block on the head; records the height before the block leaves.
        Transactions the ledger refuses at execution are left out and reported to `on_skip`."""
        snap = self.snapshot()
        att = self.votes.attestation(snap.justified, snap.checkpoint, snap.current)
        block = build_block(self.store, key, txs, timestamp_ms, difficulty, encode_extra(att), on_skip=on_skip)
        guard = self.seal_guard().after(block.height, block.header.parent_hash)
        self._db.put(_SEALED, guard.encode(), sync=True)  # before the block can leave this node
        self.import_block(block)
        return block

    def seal_twin(self, key: PrivateKey, block: Block) -> Block:
        """TEST-ONLY (double-seal fault): a second, different block at the height of `block`."""
        h = block.header
        twin = dataclasses.replace(h, timestamp=h.timestamp + 1, seal=b"").sealed(key)
        return Block(header=twin, txs=block.txs)

    def take_evidence_txs(self, key: PrivateKey, nonce: int) -> list[Transaction]:
        """Signed evidence transactions (from `key`, nonces from `nonce`) for every offence seen since
        the last call. Any node may submit; the chain punishes each offence once."""
        from ledger.consensus import Evidence
        from ledger.consensus.evidence import DoubleSealEvidence
        from ledger.registry import body_class
        from ledger.tx import sign_tx

        out = []
        for ev in self.evidence:
            env = Evidence(double_seal=ev) if isinstance(ev, DoubleSealEvidence) else Evidence(double_vote=ev)
            out.append(sign_tx(key, self.chain_id, nonce + len(out), 0, body_class("evidence")(evidence=env)))
        self.evidence.clear()
        return out

    # ------------------------------------------------------------------------------ votes
    def _voters_for(self, vote: Vote) -> ValidatorSet:
        snap = self._load_snap(vote.data.target.hash)
        return snap.current if snap is not None else self.snapshot().next

    def check_vote(self, data: bytes) -> Vote:
        vote = Vote.decode(data, max_size=4096)
        from ledger.consensus import check_vote

        check_vote(vote, self.chain_id, self._voters_for(vote))
        return vote

    def add_vote(self, data: bytes) -> bool:
        vote = Vote.decode(data, max_size=4096)
        res = self.votes.add(vote, self._voters_for(vote), self.store.height)
        if res.evidence is not None:
            log.warning("conflicting votes by %s: evidence kept", address_to_text(vote.voter))
            self.evidence.append(res.evidence)
        return res.accepted

    def make_vote(self, key: PrivateKey) -> bytes | None:
        """This validator's vote for the head (guard persisted first), or None."""
        raw = self._db.get(_GUARD)
        guard = VoteGuard.decode(raw) if raw is not None else VoteGuard()
        decided = decide_vote(self.cfg, guard, key, self.snapshot())
        if decided is None:
            return None
        vote, new_guard = decided
        self._db.put(_GUARD, new_guard.encode(), sync=True)
        self.votes.add(vote, self.snapshot().current, self.store.height)
        return vote.encode()

    # ------------------------------------------------------------------------------ JSON views
    def tx_json(self, tx: Transaction) -> dict[str, Any]:
        body = {k: _json_value(v) for k, v in tx.body.to_plain().items()}
        return {"hash": tx.hash.hex(), "kind": tx.kind, "sender": address_to_text(tx.sender), "nonce": tx.nonce,
                "fee": str(tx.fee), "chain_id": tx.chain_id, "body": body}

    def block_json(self, block: Block) -> dict[str, Any]:
        h = block.header
        att = decode_extra(h.extra)
        return {
            "height": h.height, "hash": h.hash.hex(), "parent_hash": h.parent_hash.hex(),
            "timestamp_ms": h.timestamp, "proposer": address_to_text(h.proposer) if h.height else None,
            "difficulty": h.difficulty, "tx_root": h.tx_root.hex(), "state_root": h.state_root.hex(),
            "attestation": None if att is None else {
                "source": att.data.source.height, "target": att.data.target.height,
                "votes": len(att.signatures)},
            "finalized": h.height <= self.finalized_height and self.hash_at(h.height) == h.hash,
            "txs": [self.tx_json(tx) for tx in block.txs],
        }

    def account_json(self, address: bytes, pending: int = 0) -> dict[str, Any]:
        state = self.store.state()
        acc = state.account(address)
        cand = state.candidate(address)
        return {
            "address": address_to_text(address), "balance": str(acc.balance), "nonce": acc.nonce,
            "pending_nonce": acc.nonce + pending,
            "candidate": None if cand is None else {
                "name": cand.name, "self_stake": str(cand.self_stake), "delegated": str(cand.delegated),
                "long_term": str(cand.long_term), "jailed_until_ms": cand.jailed_until_ms},
            "unbonding": [{"release_ms": r, "validator": address_to_text(v), "amount": str(a)}
                          for r, v, a in state.unbondings_of(address)],
            "height": self.store.height,
        }

    def validators_json(self) -> dict[str, Any]:
        snap = self.snapshot()
        state = self.store.state()
        missed = liveness_view(state)
        return {
            "height": snap.height,
            "epoch": epoch_of(snap.height + 1, self.params.epoch_length),
            "in_turn_next": address_to_text(snap.in_turn_validator()),
            "active": [address_to_text(a) for a in snap.next.addresses],
            "quorum": snap.current.quorum,
            "candidates": [{"address": address_to_text(a), "stake": str(s)}
                           for a, s in state.validator_set(self.store.head.timestamp)],
            # liveness (ledger.consensus.slots): non-zero missed in-turn slot counters, and who has its
            # rewards withheld; jailing shows in the account view's candidate.jailed_until_ms
            "missed_slots": {address_to_text(a): n for a, n in missed.items()},
            "withheld": [address_to_text(a) for a, n in missed.items() if rewards_withheld(n, self.params)],
            "missed_blocks_withhold": self.params.missed_blocks_withhold,
            "missed_blocks_jail": self.params.missed_blocks_jail,
        }


    # ------------------------------------------------------------------------------ economics
    @property
    def clock(self) -> ChainClock:
        """The chain's days and hours (ledger/ECONOMICS.md): from the genesis allocation start."""
        return ChainClock(self.genesis.allocation_start, self.params.day_s)

    def mining_profile(self, address: bytes) -> MiningProfile | None:
        """The provider's (hardware class, bandwidth) on chain at the head, or None."""
        raw = self.store.state().get(ledger_state.profile_key(address))
        if raw is None:
            return None
        return raw if isinstance(raw, MiningProfile) else MiningProfile.decode(raw)

    def is_jobs_provider(self, address: bytes) -> bool:
        """True when `address` registered with `provider_register` (the jobs rules keep its profile)."""
        from ledger.jobs.records import get_provider

        return get_provider(self.store.state(), address) is not None

    def uptime_tx(self, relay: PrivateKey, heartbeats: list, timestamp_ms: int) -> Transaction | None:
        """The proposer's `uptime` transaction for a block at `timestamp_ms` on the head: the seen
        heartbeats not yet on chain, signed by the relay account (zero fee, its next nonce), trimmed
        to the transaction size limit. None when there is nothing new to record."""
        from ledger.registry import body_class
        from ledger.tx import sign_tx

        state = self.store.state()
        entries = ledger_state.uptime_entries_for_block(state, self.chain_id, timestamp_ms // 1000, heartbeats)
        nonce = state.account(relay.address).nonce
        while entries:
            tx = sign_tx(relay, self.chain_id, nonce, 0, body_class("uptime")(entries=entries))
            size = len(tx.encode())
            if size <= self.params.max_tx_bytes:
                return tx
            # entries are about the same size: shrink in proportion (the rest waits for the next block)
            entries = entries[: min(len(entries) - 1, len(entries) * self.params.max_tx_bytes // size)]
        return None

    def rewards_json(self, address: bytes) -> dict[str, Any]:
        """`ledger_state.rewards_view` (amounts as decimal strings) plus what a provider wants to
        see next to it: its mining profile and the hours recorded for it so far today."""
        state = self.store.state()
        head = self.store.head
        day, hour = self.clock.hour_of(head.timestamp // 1000)
        raw = state.get(ledger_state.uptime_key(day, address)) if day >= 0 else None
        mask = 0 if raw is None else (raw if isinstance(raw, UptimeRecord) else UptimeRecord.decode(raw)).mask
        profile = self.mining_profile(address)
        return {
            "address": address_to_text(address), "height": head.height, "day": day, "hour": hour,
            "day_s": self.params.day_s,
            "profile": None if profile is None else {"hardware_class": profile.hardware_class,
                                                     "bandwidth_kbps": profile.bandwidth_kbps},
            "hours_today": mask.bit_count(), "qualifying_hours": self.params.qualifying_hours,
            **ledger_state.rewards_view(state, address),
        }


def _json_value(v: Any) -> Any:
    """A transaction body value as JSON: addresses as mn..., other bytes hex, big ints as strings,
    nested records and lists recursively (an `uptime` body holds entries with signatures)."""
    if isinstance(v, bytes):
        return address_to_text(v) if len(v) == 32 else v.hex()
    if isinstance(v, bool) or v is None or isinstance(v, str | float):
        return v
    if isinstance(v, int):
        return str(v) if v > 2**53 else v
    if isinstance(v, dict):
        return {str(k): _json_value(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_json_value(x) for x in v]
    return str(v)
