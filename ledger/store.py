"""The chain database (LevelDB via plyvel): blocks, transactions, state, state trie, head.

Atomicity: importing a block writes the block, its height and transaction indexes, every changed
state key, the trie nodes added and removed, its undo log and the new head pointer in ONE LevelDB
write batch (fsynced by default). LevelDB applies a batch atomically through its log, so a process
killed at any instant re-opens at either the old head or the new one, with the state, the trie and
the head always in agreement (tests/ledger/test_crash.py kills a real importer with SIGKILL).

Verification on import (in this order, cheapest first): decode (bounded by Params.max_block_bytes),
parent known and equal to the head, header rules and the proposer's seal (`ledger.block`), the
consensus hook (turns, validator membership, votes: supplied by the node layer), body limits and
transaction root, every transaction's size/body/signature (signatures verified in parallel, see
`ledger.sigs`), execution of the transactions against the head state, and the state root.

Forks: blocks are keyed by hash and the head is a pointer. `import_block` extends the head;
side-chain blocks are stored unexecuted with `put_block` (header, seal and tx-root checked, total
difficulty recorded); `reorg_to(hash)` switches the head to a stored branch using the per-block
undo logs (`rewind_head`) and full re-verification of the branch. Fork *choice* is the node's.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import msgpack
import plyvel

from ledger import schema
from ledger.block import Block, Header, genesis_header, make_header, validate_body, validate_header
from ledger.codec import BigUInt, Bool, Bytes, Str, UInt, unpack_plain
from ledger.errors import DecodeError, InvalidBlock, InvalidTransaction, LedgerError, StoreError
from ledger.execution import BlockContext, apply_tx, begin_block, end_block, execute_block
from ledger.genesis import Genesis, Params
from ledger.keys import PrivateKey
from ledger.sigs import verify_many
from ledger.state import RECORD_OF_PREFIX, Account, State, decode_value, genesis_state
from ledger.trie import Proof, Trie
from ledger.tx import Transaction, check_stateless

log = logging.getLogger("mindnode.ledger")

#: LevelDB tuning: a block's batch holds ~15 entries per transaction (trie nodes dominate), so a
#: larger memtable means fewer flushes and compactions during import; a larger block cache keeps
#: the upper trie levels and hot accounts in memory.
DB_OPTIONS = dict(write_buffer_size=64 * 1024 * 1024, lru_cache_size=64 * 1024 * 1024, max_open_files=512)

#: Trie nodes kept in memory (~100 bytes each); the top levels are touched by every block.
NODE_CACHE_SIZE = 500_000

#: consensus_check(parent_header, header, state_before) -> None; raise InvalidBlock to reject.
ConsensusCheck = Callable[[Header, Header, State], None]
#: post_execution_check(header, state_after) -> None; raise InvalidBlock to reject (e.g. an epoch
#: block whose `extra` must list the validator set computed from the state after it).
PostExecutionCheck = Callable[[Header, State], None]


class UnknownParent(InvalidBlock):
    """The block's parent is not in the database (sync it first)."""


class NotOnHead(InvalidBlock):
    """The block's parent is known but is not the current head (a side chain)."""


#: Head-state values kept decoded between blocks (about 200 bytes each with their records).
VALUE_CACHE_SIZE = 100_000


class DBView:
    """The state stored in the database (or a snapshot of it) as a `ledger.state.StateView`.

    With `values` (the store's cache of head-state values, key -> (raw bytes or None, decoded
    value)), `load_decoded` answers from memory and remembers what it read: the accounts a block
    touches (senders, the proposer, busy recipients) are usually touched again by the next
    blocks, and a LevelDB read plus a record decode cost more than executing a transfer. Only a view of the
    *head* may be given the cache (the store keeps it equal to the head state, see
    `Store._remember_values`); snapshots get none."""

    def __init__(self, db, values: dict[bytes, tuple[bytes | None, object]] | None = None):
        self._db = db
        self._values = values

    def get(self, key: bytes) -> bytes | None:
        return self._db.get(schema.STATE + key)

    def load_decoded(self, key: bytes) -> tuple[bytes | None, object]:
        """(raw bytes or None, decoded value or None) at `key`; decoded records are immutable, so
        one instance can be shared by every `State` over the head."""
        values = self._values
        if values is not None:
            hit = values.get(key)
            if hit is not None:
                return hit
        raw = self._db.get(schema.STATE + key)
        out = (raw, None if raw is None else decode_value(key, raw))
        if values is not None:
            if len(values) >= VALUE_CACHE_SIZE:
                values.clear()
            values[key] = out
        return out

    def iter_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        n = len(schema.STATE)
        with self._db.iterator(prefix=schema.STATE + prefix) as it:
            for k, v in it:
                yield k[n:], v


class Store:
    """One chain database.

    Threads: one writer at a time (import / put / rewind / reorg; the node serialises them).
    Readers in other threads use `state()` (a LevelDB snapshot) and `prove()`, which are
    consistent while an import commits; `head` is swapped only after the batch is written."""

    def __init__(self, db: plyvel.DB, path: Path, *, sync: bool = True):
        self._db = db
        self.path = path
        self.sync = sync
        self.consensus_check: ConsensusCheck | None = None
        self.post_execution_check: PostExecutionCheck | None = None
        head = db.get(schema.HEAD_KEY)
        if head is None:
            raise StoreError(f"database at {path} has no head block (initialisation was interrupted?); "
                             "remove it and initialise again")
        self._nodes: dict[bytes, bytes] = {}
        self._values: dict[bytes, tuple[bytes | None, object]] = {}
        data = db.get(schema.header_key(head))
        if data is None:
            raise StoreError(f"head block {head.hex()} is missing from the database at {path}")
        self._head = Header.decode(data)
        self._genesis_hash = db.get(schema.GENESIS_KEY)
        state = State(DBView(db))
        self._params: Params = state.params
        self._chain_id = state.chain.chain_id
        self._trie = Trie(self._get_node, self._head.state_root)

    # -- opening --------------------------------------------------------------------------------
    @classmethod
    def create(cls, path: str | os.PathLike, genesis: Genesis, *, sync: bool = True) -> Store:
        """Create a new database at `path` holding the genesis state and block. Refuses an existing one."""
        path = Path(path)
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise StoreError(f"{path} already exists and is not empty; refusing to overwrite a chain database")
        state = genesis_state(genesis)
        changes = state.changes()
        update = Trie(lambda pos: None).update(changes)
        header = genesis_header(genesis.chain_id, genesis.timestamp * 1000, update.root)
        block = Block(header=header, txs=())
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            db = plyvel.DB(str(path), create_if_missing=True, error_if_exists=True, **DB_OPTIONS)
        except plyvel.Error as exc:
            raise StoreError(f"cannot create the database at {path}: {exc}") from None
        try:
            with db.write_batch(transaction=True, sync=sync) as wb:
                wb.put(schema.SCHEMA_KEY, schema.SCHEMA_VERSION)
                wb.put(schema.GENESIS_KEY, header.hash)
                _write_block(wb, block, block.encode(), changes, update, undo=[], td=0)
        except BaseException:
            db.close()
            raise
        log.info("created chain %s at %s, genesis %s", genesis.chain_id, path, header.hash.hex())
        return cls(db, path, sync=sync)

    @classmethod
    def open(cls, path: str | os.PathLike, *, sync: bool = True) -> Store:
        path = Path(path)
        if not (path / "CURRENT").exists():
            raise StoreError(f"no chain database at {path} (run `mindnode init` first)")
        try:
            db = plyvel.DB(str(path), create_if_missing=False, **DB_OPTIONS)
        except plyvel.IOError as exc:
            if "lock" in str(exc).lower():
                raise StoreError(f"the database at {path} is in use by another process") from None
            raise StoreError(f"cannot open the database at {path}: {exc}") from None
        except plyvel.Error as exc:
            raise StoreError(f"cannot open the database at {path}: {exc}") from None
        try:
            version = db.get(schema.SCHEMA_KEY)
            if version is None:
                raise StoreError(f"database at {path} has no head block (initialisation was interrupted?); "
                                 "remove it and initialise again")
            if version != schema.SCHEMA_VERSION:
                raise StoreError(f"database at {path} has schema {version!r}, this version reads {schema.SCHEMA_VERSION!r}")
            return cls(db, path, sync=sync)
        except BaseException:
            db.close()
            raise

    def close(self) -> None:
        if not self._db.closed:
            self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- reading --------------------------------------------------------------------------------
    @property
    def head(self) -> Header:
        return self._head

    @property
    def head_hash(self) -> bytes:
        return self._head.hash

    @property
    def height(self) -> int:
        return self._head.height

    @property
    def genesis_hash(self) -> bytes:
        return self._genesis_hash

    @property
    def chain_id(self) -> str:
        return self._chain_id

    @property
    def params(self) -> Params:
        return self._params

    @property
    def state_root(self) -> bytes:
        return self._head.state_root

    def _get_node(self, pos: bytes) -> bytes | None:
        node = self._nodes.get(pos)
        if node is None:
            node = self._db.get(schema.NODE + pos)
            if node is not None:
                if len(self._nodes) >= NODE_CACHE_SIZE:
                    self._nodes.clear()
                self._nodes[pos] = node
        return node

    def _cache_nodes(self, update) -> None:
        """Mirror a committed trie update in the node cache (positions are overwritten in place,
        so every put must replace the cached node)."""
        nodes = self._nodes
        for pos in update.deletes:
            nodes.pop(pos, None)
        nodes.update(update.puts)
        if len(nodes) > NODE_CACHE_SIZE:
            nodes.clear()

    def _load_header(self, block_hash: bytes) -> Header:
        header = self.get_header(block_hash)
        if header is None:
            raise StoreError(f"block {block_hash.hex()} is missing from the database")
        return header

    def get_block_bytes(self, ref: bytes | int) -> bytes | None:
        if isinstance(ref, int):
            ref = self._db.get(schema.height_key(ref))
            if ref is None:
                return None
        return self._db.get(schema.block_key(ref))

    def get_block(self, ref: bytes | int) -> Block | None:
        """The block with this hash, or at this height on the head chain; None if unknown."""
        data = self.get_block_bytes(ref)
        return None if data is None else Block.decode(data)

    def get_header(self, ref: bytes | int) -> Header | None:
        if isinstance(ref, int):
            ref = self._db.get(schema.height_key(ref))
            if ref is None:
                return None
        if ref == self._head.hash:
            return self._head
        data = self._db.get(schema.header_key(ref))
        return None if data is None else Header.decode(data)

    def has_block(self, block_hash: bytes) -> bool:
        return self._db.get(schema.block_key(block_hash)) is not None

    def get_tx(self, tx_hash: bytes) -> tuple[Transaction, bytes, int, int] | None:
        """(transaction, block hash, block height, index in block) of an included transaction."""
        where = self._db.get(schema.tx_key(tx_hash))
        if where is None:
            return None
        block_hash, index = unpack_plain(where)
        block = self.get_block(block_hash)
        return block.txs[index], block_hash, block.height, index

    def state(self, *, snapshot: bool = True) -> State:
        """A fresh `State` over the head state (a consistent LevelDB snapshot by default, so a
        reader in another thread never sees half of a later import)."""
        return State(DBView(self._db.snapshot() if snapshot else self._db))

    def account(self, addr: bytes) -> Account:
        return self.state(snapshot=False).account(addr)

    def validator_set(self, at_ms: int | None = None) -> list[tuple[bytes, int]]:
        """Top Params.max_validators candidates by total stake at the head (see `State.validator_set`)."""
        return self.state().validator_set(self._head.timestamp if at_ms is None else at_ms)

    def prove(self, key: bytes) -> tuple[bytes, bytes | None, Proof]:
        """(state root, value, proof) of a state key at the head, read from one LevelDB snapshot so
        an import running in another thread cannot mix two heads into the proof. Check it with
        `ledger.trie.verify_proof(root, key, value, proof)` (value None: the key is absent)."""
        snap = self._db.snapshot()
        try:
            head = Header.decode(snap.get(schema.header_key(snap.get(schema.HEAD_KEY))))
            trie = Trie(lambda pos: snap.get(schema.NODE + pos), head.state_root)
            return head.state_root, snap.get(schema.state_key(key)), trie.prove(key)
        finally:
            snap.close()

    def prove_account(self, addr: bytes) -> tuple[bytes, bytes | None, Proof]:
        return self.prove(b"a" + addr)

    # -- writing --------------------------------------------------------------------------------
    def total_difficulty(self, block_hash: bytes) -> int | None:
        """Sum of difficulties from genesis to this stored block (fork choice), or None if unknown."""
        raw = self._db.get(schema.td_key(block_hash))
        return None if raw is None else unpack_plain(raw)

    def is_canonical(self, block_hash: bytes) -> bool:
        """True when the block is on the head chain."""
        header = self.get_header(block_hash)
        return header is not None and self._db.get(schema.height_key(header.height)) == block_hash

    def put_block(self, block: Block) -> int:
        """Store a side-chain block by hash without executing it or moving the head, after the
        checks that need no state (header rules and seal against its stored parent, body limits,
        transaction root). Returns its total difficulty. Execution happens if and when the node
        switches to its chain (`reorg_to`)."""
        header = block.header
        parent_td = self.total_difficulty(header.parent_hash)
        parent = self.get_header(header.parent_hash)
        if parent is None or parent_td is None:
            raise UnknownParent(f"block {header.height} has unknown parent {header.parent_hash.hex()}")
        validate_header(parent, header, self._params)
        validate_body(block, self._params)
        td = parent_td + header.difficulty
        with self._db.write_batch(transaction=True, sync=self.sync) as wb:
            wb.put(schema.block_key(block.hash), block.encode())
            wb.put(schema.header_key(block.hash), header.encode())
            wb.put(schema.td_key(block.hash), msgpack.packb(td))
        return td

    def reorg_to(self, target_hash: bytes) -> Header:
        """Make the stored block `target_hash` the head: rewind to the common ancestor, then
        import the target's branch block by block (fully verified). If a branch block is invalid,
        the old chain is restored and InvalidBlock is raised. Each step is one atomic write, so a
        crash mid-reorg leaves a consistent (if shorter) chain that sync then extends. Fork choice
        (which chain to want) is the caller's: see `total_difficulty`."""
        branch: list[bytes] = []
        h = target_hash
        while not self.is_canonical(h):
            header = self.get_header(h)
            if header is None:
                raise UnknownParent(f"block {h.hex()} (on the target branch) is not stored")
            branch.append(h)
            h = header.parent_hash
        ancestor = self.get_header(h)
        old = [self._db.get(schema.height_key(n)) for n in range(ancestor.height + 1, self.height + 1)]
        while self.height > ancestor.height:
            self.rewind_head()
        try:
            for bh in reversed(branch):
                self.import_block(self.get_block_bytes(bh))
        except InvalidBlock:
            while self.height > ancestor.height:
                self.rewind_head()
            for bh in old:
                self.import_block(self.get_block_bytes(bh))
            raise
        return self._head

    def import_block(self, block: Block | bytes) -> Header:
        """Verify `block` completely and make it the new head in one atomic write. Raises
        InvalidBlock (UnknownParent / NotOnHead for fork cases) and changes nothing on failure.
        Importing the current head again is a no-op."""
        if isinstance(block, (bytes, bytearray, memoryview)):
            data = bytes(block)
            try:
                block = Block.decode(data, max_size=self._params.max_block_bytes)
            except DecodeError as exc:
                raise InvalidBlock(f"malformed block: {exc}") from None
        else:
            try:
                data = block.encode()
            except DecodeError as exc:
                raise InvalidBlock(f"block cannot be encoded: {exc}") from None
            if len(data) > self._params.max_block_bytes:
                raise InvalidBlock(f"block is {len(data)} bytes, over the limit of {self._params.max_block_bytes}")
        header = block.header
        if header.hash == self._head.hash or self.is_canonical(header.hash):
            return header
        parent = self._head if header.parent_hash == self._head.hash else self.get_header(header.parent_hash)
        if parent is None:
            raise UnknownParent(f"block {header.height} has unknown parent {header.parent_hash.hex()}")
        if header.parent_hash != self._head.hash:
            raise NotOnHead(f"block {header.height} builds on {header.parent_hash.hex()[:16]}.., "
                            f"not on the head {self._head.hash.hex()[:16]}.. (side chains are not executed yet)")
        validate_header(parent, header, self._params)
        state = State(DBView(self._db, self._values))
        if self.consensus_check is not None:
            self.consensus_check(parent, header, state)
        validate_body(block, self._params)
        txs = block.txs
        for i, tx in enumerate(txs):
            try:
                check_stateless(tx, self._params, signature=False)
            except LedgerError as exc:
                raise InvalidBlock(f"block {header.height}: transaction {i} is invalid: {exc}") from None
        # Signatures first, on every core (this thread included), then execution. A bad signature
        # is therefore always the reported reason when there is one (whatever else is wrong), so
        # the answer is deterministic. Why not overlap them (verify on the other core while this
        # thread executes, as before): the verifier needs the GIL between signatures, so it only
        # advanced when this thread released the GIL, in each LevelDB read, and every such
        # hand-off cost this thread a thread switch (profiled: a state read took ~30 us instead
        # of ~4 us); verifying on both cores, then executing alone was measured faster.
        _check_signatures(verify_many([(tx.sender, tx.signing_bytes(), tx.signature) for tx in txs]), header)
        ctx = BlockContext.for_state(state, header.height, header.timestamp, header.proposer, header.parent_hash)
        try:
            execute_block(state, ctx, txs)
        except InvalidTransaction as exc:
            i = getattr(exc, "index", "?")
            raise InvalidBlock(f"block {header.height}: transaction {i} is invalid: {exc}") from None
        if self.post_execution_check is not None:
            self.post_execution_check(header, state)
        changes = state.changes()
        update = self._trie.update(changes)
        if update.root != header.state_root:
            raise InvalidBlock(f"block {header.height}: state root {header.state_root.hex()[:16]}.. does not "
                               f"match the state after its transactions ({update.root.hex()[:16]}..)")
        self._commit(block, data, changes, update, [[k, state.original(k)] for k in changes], state)
        return header

    def _commit(self, block: Block, data: bytes, changes, update, undo, state: State) -> None:
        td = self.total_difficulty(block.header.parent_hash) + block.header.difficulty
        with self._db.write_batch(transaction=True, sync=self.sync) as wb:
            _write_block(wb, block, data, changes, update, undo, td)
        self._head = block.header
        self._trie.root = update.root
        self._cache_nodes(update)
        self._remember_values(changes, state)

    def _remember_values(self, changes: dict[bytes, bytes | None], state: State) -> None:
        """Keep the value cache equal to the new head state: every written key takes the value
        the block left (decoded, from the executed `state`), so the next block reads it from
        memory. Called only after the write batch is in the database."""
        values = self._values
        if len(values) + len(changes) > VALUE_CACHE_SIZE:
            values.clear()
        for k, raw in changes.items():
            if raw is None:
                values[k] = (None, None)
                continue
            cls = RECORD_OF_PREFIX.get(k[0])
            v = state.get(k)
            if cls is None and type(v) is bytes:
                values[k] = (raw, raw)
            elif cls is not None and type(v) is cls and _is_flat(cls):
                values[k] = (raw, v)
            else:
                values.pop(k, None)

    def rewind_head(self) -> Header:
        """Undo the head block (its state changes, trie, height and tx indexes) in one atomic write;
        the block itself stays stored by hash. Returns the new head. For reorganisations."""
        head = self._head
        if head.height == 0:
            raise StoreError("cannot rewind past genesis")
        undo_raw = self._db.get(schema.undo_key(head.hash))
        if undo_raw is None:
            raise StoreError(f"no undo log for block {head.hash.hex()}")
        undo = {k: v for k, v in unpack_plain(undo_raw)}
        update = self._trie.update(undo)
        parent = self._load_header(head.parent_hash)
        if update.root != parent.state_root:
            raise StoreError("undo log does not restore the parent's state root (database corrupt)")
        block = self.get_block(head.hash)
        with self._db.write_batch(transaction=True, sync=self.sync) as wb:
            _write_state(wb, undo, update)
            for tx in block.txs:
                wb.delete(schema.tx_key(tx.hash))
            wb.delete(schema.height_key(head.height))
            wb.delete(schema.undo_key(head.hash))
            wb.put(schema.HEAD_KEY, parent.hash)
        self._head = parent
        self._trie.root = update.root
        self._cache_nodes(update)
        self._values.clear()  # rare (reorgs): simpler to forget than to decode the undo log
        return parent

    def iter_blocks(self, start: int = 0) -> Iterable[Block]:
        for h in range(start, self._head.height + 1):
            yield self.get_block(h)


_FLAT: dict[type, bool] = {}
_SCALARS = (UInt, BigUInt, Bytes, Str, Bool)


def _is_flat(cls: type) -> bool:
    """True when every field of record `cls` is a scalar (int, bytes, str, bool). For such a
    record, encoding checks the exact type of each field, so the instance a block wrote is
    indistinguishable from the one decoding its bytes would give, and may stand in for it in the
    value cache. (A list field, say, could hold a list where decoding gives a tuple.)"""
    flat = _FLAT.get(cls)
    if flat is None:
        flat = _FLAT[cls] = all(isinstance(spec, _SCALARS) for _, spec in cls.__record_fields__)
    return flat


def _write_state(wb, changes, update) -> None:
    """State values (None deletes) and the matching trie node writes into one batch."""
    for k, v in changes.items():
        if v is None:
            wb.delete(schema.STATE + k)
        else:
            wb.put(schema.STATE + k, v)
    for pos in update.deletes:
        wb.delete(schema.NODE + pos)
    for pos, node in update.puts.items():
        wb.put(schema.NODE + pos, node)


def _write_block(wb, block: Block, data: bytes, changes, update, undo, td: int) -> None:
    h = block.hash
    wb.put(schema.block_key(h), data)
    wb.put(schema.td_key(h), msgpack.packb(td))
    wb.put(schema.header_key(h), block.header.encode())
    wb.put(schema.height_key(block.height), h)
    pack = msgpack.Packer(use_bin_type=True).pack  # one packer per block, not one per transaction
    for i, tx in enumerate(block.txs):
        wb.put(schema.TX + tx.hash, pack([h, i]))
    _write_state(wb, changes, update)
    if block.height > 0:
        wb.put(schema.undo_key(h), msgpack.packb(undo, use_bin_type=True))
    wb.put(schema.HEAD_KEY, h)


def _check_signatures(ok: list[bool], header: Header) -> None:
    if not all(ok):
        raise InvalidBlock(f"block {header.height}: transaction {ok.index(False)} has a bad signature")


def _sig_item(tx: Transaction) -> tuple[bytes, bytes, bytes]:
    try:
        return tx.sender, tx.signing_bytes(), tx.signature
    except LedgerError:       # a field that cannot even be encoded: fails verification
        return b"", b"", b""


def build_block(store: Store, proposer_key: PrivateKey, txs: Iterable[Transaction], timestamp_ms: int,
                difficulty: int, extra: bytes = b"",
                on_skip: Callable[[Transaction, LedgerError], None] | None = None) -> Block:
    """Build and seal a block on the head: applies `txs` in order, skipping (and reporting through
    `on_skip`) any that is invalid, up to Params.max_block_txs and max_block_bytes; computes the
    transaction and state roots. The result still goes through `store.import_block`."""
    params = store.params
    parent = store.head
    state = State(DBView(store._db))
    ctx = BlockContext.for_state(state, parent.height + 1, timestamp_ms, proposer_key.address, parent.hash)
    begin_block(state, ctx)
    included: list[Transaction] = []
    size, budget = 0, params.max_block_bytes - len(extra) - 1024  # room for the header and framing
    txs = list(txs)
    sig_ok = verify_many([_sig_item(tx) for tx in txs])
    for tx, good in zip(txs, sig_ok, strict=True):
        if len(included) >= params.max_block_txs:
            break
        try:
            if not good:
                raise InvalidTransaction("bad signature")
            check_stateless(tx, params, signature=False)
            if size + tx.size > budget:
                raise InvalidTransaction("does not fit in the block")
            apply_tx(state, ctx, tx)
        except LedgerError as exc:
            if on_skip is not None:
                on_skip(tx, exc)
            continue
        included.append(tx)
        size += tx.size
    end_block(state, ctx)
    update = store._trie.update(state.changes())
    txs_t = tuple(included)
    header = make_header(parent, timestamp_ms, proposer_key.address, difficulty, txs_t, update.root, extra)
    return Block(header=header.sealed(proposer_key), txs=txs_t)
