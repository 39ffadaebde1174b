"""Key layout of the LevelDB database: one byte prefix per table (py-evm's `eth/db/schema.py` idea).

Why one module: every key the store reads or writes is built here, so two tables can never
collide and the whole on-disk format can be read in one screen.

=======================  ============================================================
key                      value
=======================  ============================================================
``m`` + name             metadata: ``head`` (hash), ``genesis`` (hash), ``schema`` (version)
``b`` + block hash       canonical encoding of the whole `Block`
``H`` + block hash       canonical encoding of the block's `Header` (cheap parent lookups)
``h`` + height (8 B BE)  hash of the block at that height on the head chain
``d`` + block hash       total difficulty of the chain ending at that block (msgpack int)
``t`` + tx hash          msgpack ``[block hash, index]``: where the transaction is
``s`` + state key        canonical record (see `ledger.state` for the state keys)
``n`` + position         65-byte state-trie node at that tree position (see `ledger.trie.position`)
``u`` + block hash       undo log: msgpack list of ``[state key, old value or nil]`` for the
                         keys the block changed (lets the node issue rewind the head on a reorg)
=======================  ============================================================
"""

from __future__ import annotations

SCHEMA_VERSION = b"1"

META = b"m"
BLOCK = b"b"
HEADER = b"H"
TOTAL_DIFFICULTY = b"d"
HEIGHT = b"h"
TX = b"t"
STATE = b"s"
NODE = b"n"
UNDO = b"u"

HEAD_KEY = META + b"head"
GENESIS_KEY = META + b"genesis"
SCHEMA_KEY = META + b"schema"


def block_key(block_hash: bytes) -> bytes:
    return BLOCK + block_hash


def header_key(block_hash: bytes) -> bytes:
    return HEADER + block_hash


def td_key(block_hash: bytes) -> bytes:
    return TOTAL_DIFFICULTY + block_hash


def height_key(height: int) -> bytes:
    return HEIGHT + height.to_bytes(8, "big")


def tx_key(tx_hash: bytes) -> bytes:
    return TX + tx_hash


def state_key(key: bytes) -> bytes:
    return STATE + key


def node_key(pos: bytes) -> bytes:
    return NODE + pos


def undo_key(block_hash: bytes) -> bytes:
    return UNDO + block_hash
