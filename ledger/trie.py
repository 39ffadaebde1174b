"""The state root: a compact binary sparse Merkle tree over SHA-256(key), nodes in LevelDB.

Why this structure
------------------
* **Cost proportional to what a block touches.** A block's changed keys are applied in one sorted
  batch (`Trie.update`): only nodes on their paths are read, rehashed and rewritten, so a block
  touching k keys in a state of n keys costs about k * log2(n) hashes and node reads, whatever n
  is; paths shared by many keys near the root are hashed once per block, not once per key.
* **Canonical.** Keys are hashed, so the tree is balanced without rebalancing (depth ~ log2 n)
  and an attacker cannot choose deep paths. A subtree holding exactly one key is represented by
  that key's leaf, placed as high as possible ("compact"). That shape depends only on the *set* of
  keys, so the root is independent of insertion order and history: every node agrees.
* **Single-key proofs.** `prove(key)` returns the sibling hashes on the key's path and the leaf it
  ends at; `verify_proof(root, key, value, proof)` is pure and also proves *absence* (value None).
* Simpler than a Patricia trie (no extension/branch node kinds, no nibble paths) at the price of a
  binary fan-out: proofs are ~log2(n) hashes of 32 bytes (about 700 bytes at a million keys).

Hashes (the first byte separates the two node kinds, so a leaf can never pass for an inner node)::

    leaf  = SHA256(0x00 || SHA256(key) || SHA256(value))
    inner = SHA256(0x01 || left || right)          empty subtree = 32 zero bytes

Storage: a node is stored as its 65-byte preimage under its hash (`NodeSource.get`). Because every
key is in exactly one leaf and the tree is canonical, no two positions ever hold the same node,
so a node replaced by an update is garbage at once: `update` returns it in `deleted` and the store
drops it in the same write batch. The database therefore holds exactly the head's tree (no
unbounded growth, no pruning pass); proofs are served for the head root only. The flat state
(`ledger.state`) holds the values; the tree holds only their hashes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated

from ledger.codec import Bytes, ListOf, Optional, Record, record
from ledger.errors import LedgerError
from ledger.hashing import ZERO_HASH

EMPTY = ZERO_HASH
_LEAF = 0
_INNER = 1
_sha = hashlib.sha256


def key_hash(key: bytes) -> bytes:
    return _sha(key).digest()


def value_hash(value: bytes) -> bytes:
    return _sha(value).digest()


def leaf_hash(kh: bytes, vh: bytes) -> bytes:
    return _sha(b"\x00" + kh + vh).digest()


def inner_hash(left: bytes, right: bytes) -> bytes:
    return _sha(b"\x01" + left + right).digest()


def _bit(h: bytes, depth: int) -> int:
    return (h[depth >> 3] >> (7 - (depth & 7))) & 1


class TrieError(LedgerError):
    """The node database is missing a node the root refers to (corruption)."""


@record
class Proof(Record):
    """A Merkle proof for one key: siblings from the root down, then what the path ends at:
    the key's own leaf, another key's leaf (absence), or an empty subtree (absence: both None)."""

    siblings: Annotated[tuple, ListOf(Bytes(32), 256)]
    leaf_key_hash: Annotated[object, Optional(Bytes(32))]
    leaf_value_hash: Annotated[object, Optional(Bytes(32))]


@dataclass
class TrieUpdate:
    root: bytes
    new_nodes: dict[bytes, bytes]   # hash -> 65-byte node
    deleted: set[bytes]             # hashes of nodes no longer reachable


NodeSource = Callable[[bytes], "bytes | None"]


class Trie:
    """A view of the tree at `root`, reading nodes through `get_node` (e.g. the database)."""

    def __init__(self, get_node: NodeSource, root: bytes = EMPTY):
        self._get_node = get_node
        self.root = root

    def _node(self, h: bytes, new: Mapping[bytes, bytes]) -> bytes:
        n = new.get(h) or self._get_node(h)
        if n is None:
            raise TrieError(f"state trie node {h.hex()} is missing from the database")
        return n

    # -- reading --------------------------------------------------------------------------------
    def get_value_hash(self, key: bytes) -> bytes | None:
        kh = key_hash(key)
        h, depth = self.root, 0
        while h != EMPTY:
            n = self._node(h, {})
            if n[0] == _LEAF:
                return n[33:65] if n[1:33] == kh else None
            h = n[33:65] if _bit(kh, depth) else n[1:33]
            depth += 1
        return None

    def prove(self, key: bytes) -> Proof:
        kh = key_hash(key)
        h, depth, siblings = self.root, 0, []
        while h != EMPTY:
            n = self._node(h, {})
            if n[0] == _LEAF:
                return Proof(siblings=tuple(siblings), leaf_key_hash=n[1:33], leaf_value_hash=n[33:65])
            if _bit(kh, depth):
                siblings.append(n[1:33])
                h = n[33:65]
            else:
                siblings.append(n[33:65])
                h = n[1:33]
            depth += 1
        return Proof(siblings=tuple(siblings), leaf_key_hash=None, leaf_value_hash=None)

    # -- writing --------------------------------------------------------------------------------
    def update(self, changes: Mapping[bytes, bytes | None] | Iterable[tuple[bytes, bytes | None]]) -> TrieUpdate:
        """Apply key -> value (None deletes) changes in one batch; returns the new root and the
        node writes/deletes to persist. Does not modify `self` (call `self.root = u.root` after
        persisting)."""
        items = changes.items() if isinstance(changes, Mapping) else changes
        ups = sorted((key_hash(k), None if v is None else value_hash(v)) for k, v in items)
        new: dict[bytes, bytes] = {}
        dead: set[bytes] = set()
        root = self._update(self.root, 0, ups, new, dead) if ups else self.root
        deleted = dead - new.keys()
        return TrieUpdate(root, new, deleted)

    def _put(self, node: bytes, new: dict[bytes, bytes]) -> bytes:
        h = _sha(node).digest()
        new[h] = node
        return h

    def _is_leaf(self, h: bytes, new: Mapping[bytes, bytes]) -> bool:
        return self._node(h, new)[0] == _LEAF

    def _join(self, left: bytes, right: bytes, new: dict[bytes, bytes]) -> bytes:
        if left == EMPTY:
            if right == EMPTY or self._is_leaf(right, new):
                return right
        elif right == EMPTY and self._is_leaf(left, new):
            return left
        return self._put(b"\x01" + left + right, new)

    def _build(self, depth: int, leaves: list[tuple[bytes, bytes]], new: dict[bytes, bytes]) -> bytes:
        if not leaves:
            return EMPTY
        if len(leaves) == 1:
            kh, vh = leaves[0]
            return self._put(b"\x00" + kh + vh, new)
        split = _split(leaves, depth)
        return self._join(self._build(depth + 1, leaves[:split], new),
                          self._build(depth + 1, leaves[split:], new), new)

    def _update(self, h: bytes, depth: int, ups: list, new: dict[bytes, bytes], dead: set[bytes]) -> bytes:
        if h == EMPTY:
            return self._build(depth, [(k, v) for k, v in ups if v is not None], new)
        node = self._node(h, new)
        if node[0] == _LEAF:
            dead.add(h)
            merged = dict(ups)
            merged.setdefault(node[1:33], node[33:65])
            return self._build(depth, sorted((k, v) for k, v in merged.items() if v is not None), new)
        if depth >= 256:  # pragma: no cover - would need a SHA-256 collision
            raise TrieError("trie deeper than 256 levels")
        left, right = node[1:33], node[33:65]
        split = _split(ups, depth)
        nl = self._update(left, depth + 1, ups[:split], new, dead) if split else left
        nr = self._update(right, depth + 1, ups[split:], new, dead) if split < len(ups) else right
        if nl == left and nr == right:
            return h
        dead.add(h)
        return self._join(nl, nr, new)


def _split(items: list, depth: int) -> int:
    """Index of the first item whose key hash has bit `depth` set (items sorted, sharing a prefix)."""
    byte, mask = depth >> 3, 0x80 >> (depth & 7)
    lo, hi = 0, len(items)
    while lo < hi:
        mid = (lo + hi) // 2
        if items[mid][0][byte] & mask:
            hi = mid
        else:
            lo = mid + 1
    return lo


def build_root(items: Iterable[tuple[bytes, bytes]]) -> bytes:
    """The root of a whole key set computed from scratch (checks and tests; nothing is stored)."""
    return Trie(lambda h: None).update([(k, v) for k, v in items]).root


def verify_proof(root: bytes, key: bytes, value: bytes | None, proof: Proof) -> bool:
    """True when `proof` shows that under `root`, `key` maps to `value` (None: `key` is absent)."""
    kh = key_hash(key)
    depth = len(proof.siblings)
    lk, lv = proof.leaf_key_hash, proof.leaf_value_hash
    if (lk is None) != (lv is None):
        return False
    if value is not None:
        if lk != kh or lv != value_hash(value):
            return False
        h = leaf_hash(kh, lv)
    elif lk is None:
        h = EMPTY
        if depth == 0 and root != EMPTY:
            return False
    else:
        if lk == kh:
            return False
        if any(_bit(lk, i) != _bit(kh, i) for i in range(depth)):
            return False  # that leaf does not sit on this key's path
        h = leaf_hash(lk, lv)
    for i in range(depth - 1, -1, -1):
        s = proof.siblings[i]
        h = inner_hash(s, h) if _bit(kh, i) else inner_hash(h, s)
    return h == root
