"""Blocks: a header sealed by its proposer, and the transactions it orders.

The header commits to everything: the parent (hash chain), the transactions (`tx_root`, a Merkle
root of their hashes, see `ledger.merkle`) and the state after them (`state_root`, see
`ledger.trie`). The proposer signs the canonical header encoding with `seal` left empty; the
block hash is a tagged SHA-256 of the full sealed header, so the seal is part of a block's identity
(two seals of the same content by one validator are two blocks: evidence for the node issue).
Genesis (height 0) has the zero proposer and an empty seal.

`extra` is opaque bounded bytes reserved for consensus data (vote attestations: the node issue
defines their record and checks them through the store's consensus hook).

Validation functions raise `InvalidBlock` naming exactly what is wrong.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated

import msgpack

from ledger import sigs
from ledger.codec import MAX_ENCODED_SIZE, Bytes, ListOf, Record, Str, UInt, record
from ledger.errors import InvalidBlock
from ledger.genesis import Params
from ledger.hashing import ZERO_HASH, tagged_hash
from ledger.keys import PrivateKey, address_to_text
from ledger.merkle import merkle_root
from ledger.tx import Transaction, TxSpec

SEAL_TAG = b"mindnode/block-seal\x00"
HASH_TAG = b"mindnode/block"
MAX_EXTRA_BYTES = 16 * 1024
#: Codec-level cap on transactions in a block; Params.max_block_txs is the (lower) consensus limit.
MAX_TXS_CODEC = 100_000
DIFFICULTY_IN_TURN = 2
DIFFICULTY_OUT_OF_TURN = 1
ZERO_ADDRESS = bytes(32)


@record
class Header(Record):
    chain_id: Annotated[str, Str(64)]
    height: Annotated[int, UInt(64)]
    parent_hash: Annotated[bytes, Bytes(32)]
    timestamp: Annotated[int, UInt(64)]          # unix milliseconds
    proposer: Annotated[bytes, Bytes(32)]
    difficulty: Annotated[int, UInt(8)]
    tx_root: Annotated[bytes, Bytes(32)]
    state_root: Annotated[bytes, Bytes(32)]
    extra: Annotated[bytes, Bytes(max_len=MAX_EXTRA_BYTES)]
    seal: Annotated[bytes, Bytes(max_len=64)]    # empty only at genesis

    @property
    def hash(self) -> bytes:
        h = self.__dict__.get("_hash")
        if h is None:
            h = tagged_hash(HASH_TAG, self.encode())
            object.__setattr__(self, "_hash", h)
        return h

    def seal_bytes(self) -> bytes:
        return SEAL_TAG + dataclasses.replace(self, seal=b"").encode()

    def sealed(self, key: PrivateKey) -> Header:
        if key.address != self.proposer:
            raise InvalidBlock("the sealing key is not the header's proposer")
        return dataclasses.replace(self, seal=key.sign(self.seal_bytes()))

    def seal_valid(self) -> bool:
        return sigs.verify(self.proposer, self.seal_bytes(), self.seal)


@record
class Block(Record):
    header: Header
    txs: Annotated[tuple, ListOf(TxSpec(), MAX_TXS_CODEC)]

    @property
    def hash(self) -> bytes:
        return self.header.hash

    @property
    def height(self) -> int:
        return self.header.height

    @classmethod
    def decode(cls, data: bytes, *, max_size: int = MAX_ENCODED_SIZE) -> Block:
        block = super().decode(data, max_size=max_size)
        _adopt_tx_encodings(block.txs, data if type(data) is bytes else bytes(data))
        return block


def _adopt_tx_encodings(txs: tuple[Transaction, ...], data: bytes) -> None:
    """Give each decoded transaction its own bytes, sliced from the block's, as its encoding.

    Why: a transaction's hash (tx root, tx index) and signing bytes are taken from its canonical
    encoding; re-packing a thousand transactions per block cost more than finding them. The
    slices are exact: `decode` has just checked that re-encoding the whole block gives back
    `data`, and a msgpack map or array is its header followed by its items' encodings, so each
    item's bytes are what encoding that item alone gives. `Unpacker.skip` walks them in C."""
    up = msgpack.Unpacker(raw=False, max_buffer_size=len(data))
    up.feed(data)
    up.read_map_header()   # the block map: "header", then "txs" (canonical order)
    up.skip()
    up.skip()
    up.skip()
    up.read_array_header()
    start = up.tell()
    for tx in txs:
        up.skip()
        end = up.tell()
        tx.adopt_encoding(data[start:end])
        start = end


def tx_root(txs) -> bytes:
    return merkle_root([tx.hash for tx in txs])


def validate_header(parent: Header, header: Header, params: Params) -> None:
    """Rules linking a header to its parent, and the seal. Raises InvalidBlock."""
    where = f"block {header.height} ({header.hash.hex()[:16]}..)"
    if header.chain_id != parent.chain_id:
        raise InvalidBlock(f"{where}: chain id {header.chain_id!r}, expected {parent.chain_id!r}")
    if header.parent_hash != parent.hash:
        raise InvalidBlock(f"{where}: parent hash does not match the parent block")
    if header.height != parent.height + 1:
        raise InvalidBlock(f"{where}: height {header.height} does not follow parent height {parent.height}")
    if header.timestamp <= parent.timestamp:
        raise InvalidBlock(f"{where}: timestamp {header.timestamp} is not after the parent's {parent.timestamp}")
    if header.difficulty not in (DIFFICULTY_IN_TURN, DIFFICULTY_OUT_OF_TURN):
        raise InvalidBlock(f"{where}: difficulty {header.difficulty} is neither 1 (out of turn) nor 2 (in turn)")
    if header.proposer == ZERO_ADDRESS:
        raise InvalidBlock(f"{where}: proposer is the zero address")
    if len(header.seal) != 64 or not header.seal_valid():
        raise InvalidBlock(f"{where}: seal is not a valid signature by proposer {address_to_text(header.proposer)}")


def validate_body(block: Block, params: Params) -> None:
    """Size and tx-root rules of the body (no state, no signatures). Raises InvalidBlock."""
    header, txs = block.header, block.txs
    where = f"block {header.height} ({header.hash.hex()[:16]}..)"
    if len(txs) > params.max_block_txs:
        raise InvalidBlock(f"{where}: {len(txs)} transactions, over the limit of {params.max_block_txs}")
    if tx_root(txs) != header.tx_root:
        raise InvalidBlock(f"{where}: transaction root does not match the transactions")


def genesis_header(chain_id: str, timestamp_ms: int, state_root: bytes) -> Header:
    return Header(chain_id=chain_id, height=0, parent_hash=ZERO_HASH, timestamp=timestamp_ms,
                  proposer=ZERO_ADDRESS, difficulty=0, tx_root=merkle_root([]), state_root=state_root,
                  extra=b"", seal=b"")


def make_header(parent: Header, timestamp_ms: int, proposer: bytes, difficulty: int, txs: tuple[Transaction, ...],
                state_root: bytes, extra: bytes = b"") -> Header:
    return Header(chain_id=parent.chain_id, height=parent.height + 1, parent_hash=parent.hash,
                  timestamp=timestamp_ms, proposer=proposer, difficulty=difficulty, tx_root=tx_root(txs),
                  state_root=state_root, extra=extra, seal=b"")
