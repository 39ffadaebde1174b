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

Storage: a node is stored as its 65-byte preimage under its *position* in the tree (depth + path
bits, see `position`), not under its hash. Every position holds exactly one node of the current
tree, so an update *overwrites* the nodes on the changed paths in place: a block touching k keys
writes about k * (log2(n/k) + 1) + min(n, 2k) nodes and deletes only the positions that empty out
(a key removed, a leaf moving up). Keying by hash would also have to delete every replaced node,
about doubling the write batch (measured: ~6,300 puts + ~6,300 deletes per 1,000-transfer block in
the bench, vs ~6,300 puts now). The database therefore holds exactly the head's tree (no unbounded
growth, no pruning pass); proofs are served for the head root only. The flat state
(`ledger.state`) holds the values; the tree holds only their hashes.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left
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
    puts: dict[bytes, bytes]   # position -> 65-byte node
    deletes: set[bytes]        # positions that no longer hold a node


#: get_node(position) -> the 65-byte node stored there, or None.
NodeSource = Callable[[bytes], "bytes | None"]


def position(depth: int, path: int) -> bytes:
    """Storage key of the node at `depth` whose path from the root is the `depth` bits of `path`
    (MSB first): 2 bytes of depth, then the path left-aligned in whole bytes (sorted by depth then
    path, so the hot upper levels sit together on disk)."""
    nbytes = (depth + 7) >> 3
    return _DEPTH[depth] + (path << (nbytes * 8 - depth)).to_bytes(nbytes, "big")


_DEPTH = [d.to_bytes(2, "big") for d in range(257)]


class Trie:
    """A view of the tree at `root`, reading nodes by position through `get_node` (e.g. the database)."""

    def __init__(self, get_node: NodeSource, root: bytes = EMPTY):
        self._get_node = get_node
        self.root = root

    def _read(self, pos: bytes, writes: Mapping[bytes, bytes] | None = None) -> bytes:
        n = writes.get(pos) if writes else None
        if n is None:
            n = self._get_node(pos)
        if n is None:
            raise TrieError(f"state trie node at position {pos.hex()} is missing from the database")
        return n

    # -- reading --------------------------------------------------------------------------------
    def _walk(self, key: bytes):
        """Yield (depth, node) along `key`'s path until a leaf or an empty subtree (node None)."""
        kh = key_hash(key)
        h, depth, path = self.root, 0, 0
        while h != EMPTY:
            n = self._read(position(depth, path))
            yield depth, n
            if n[0] == _LEAF:
                return
            b = _bit(kh, depth)
            h = n[33:65] if b else n[1:33]
            depth, path = depth + 1, (path << 1) | b
        yield depth, None

    def get_value_hash(self, key: bytes) -> bytes | None:
        kh = key_hash(key)
        for _, n in self._walk(key):
            if n is not None and n[0] == _LEAF:
                return n[33:65] if n[1:33] == kh else None
        return None

    def prove(self, key: bytes) -> Proof:
        kh = key_hash(key)
        siblings = []
        for depth, n in self._walk(key):
            if n is None:
                break
            if n[0] == _LEAF:
                return Proof(siblings=tuple(siblings), leaf_key_hash=n[1:33], leaf_value_hash=n[33:65])
            siblings.append(n[1:33] if _bit(kh, depth) else n[33:65])
        return Proof(siblings=tuple(siblings), leaf_key_hash=None, leaf_value_hash=None)

    # -- writing --------------------------------------------------------------------------------
    def update(self, changes: Mapping[bytes, bytes | None] | Iterable[tuple[bytes, bytes | None]]) -> TrieUpdate:
        """Apply key -> value (None deletes) changes in one batch; returns the new root and the
        node writes/deletes to persist. Does not modify `self` (set `self.root = u.root` once the
        writes are persisted)."""
        items = changes.items() if isinstance(changes, Mapping) else changes
        ups = sorted((key_hash(k), None if v is None else value_hash(v)) for k, v in items)
        writes: dict[bytes, bytes] = {}
        stale: set[bytes] = set()
        root = self._update(self.root, 0, 0, ups, writes, stale)[0] if ups else self.root
        return TrieUpdate(root, writes, stale - writes.keys())

    def _update(self, h: bytes, depth: int, path: int, ups: list, writes: dict, stale: set,
                walk: bool = True) -> tuple[bytes, bool]:
        """New (hash, is_leaf) of the subtree at (depth, path), currently `h`, after `ups`.
        (`walk` False: `_set_existing` already failed for this one key higher up.)"""
        if h == EMPTY:
            return self._build(depth, path, [(k, v) for k, v in ups if v is not None], writes, stale)
        pos = position(depth, path)
        node = self._get_node(pos)
        if node is None:
            node = self._read(pos)  # raises TrieError naming the missing position
        if node[0] == _LEAF:
            stale.add(pos)
            if len(ups) == 1 and ups[0][0] == node[1:33]:
                return self._replace_leaf(pos, ups[0], writes)
            merged = dict(ups)
            merged.setdefault(node[1:33], node[33:65])
            return self._build(depth, path, sorted((k, v) for k, v in merged.items() if v is not None),
                               writes, stale)
        if depth >= 256:  # pragma: no cover - would need a SHA-256 collision
            raise TrieError("trie deeper than 256 levels")
        single = len(ups) == 1 and ups[0][1] is not None
        if single and walk:
            done = self._set_existing(h, pos, node, depth, path, ups[0], writes)
            if done is not None:
                return done
        walk = not single  # a failed walk would fail again below, on the same key's path
        left, right = node[1:33], node[33:65]
        split = _split(ups, depth, path)
        lp, rp = path << 1, (path << 1) | 1
        nl = self._update(left, depth + 1, lp, ups[:split], writes, stale, walk) if split else (left, None)
        nr = (self._update(right, depth + 1, rp, ups[split:], writes, stale, walk) if split < len(ups)
              else (right, None))
        lh, rh = nl[0], nr[0]
        if lh == left and rh == right:
            return h, False
        stale.add(pos)
        if lh != EMPTY and rh != EMPTY:  # the common case of `_join`, inlined (a call per changed node)
            node = b"\x01" + lh + rh
            writes[pos] = node
            return _sha(node).digest(), False
        return self._join(depth, path, pos, nl, nr, writes, stale)

    def _set_existing(self, h: bytes, pos: bytes, node: bytes, depth: int, path: int, up: tuple,
                      writes: dict) -> tuple[bytes, bool] | None:
        """One key's new value below the inner node `node` (hash `h`) at `pos`, when that key is
        already in the tree: a loop down to its leaf and back up, or None (nothing written) when
        the key is not there, for the general recursion to handle.

        Why: below the top levels most keys of a batch descend alone, and there a changed value
        changes no shape (the key set is the same), only the hashes on the path. Same nodes and
        root as the recursion, which also rewrites the leaf but no ancestor when the value is
        unchanged; the walk costs a fraction of a recursive call per level."""
        kh, vh = up
        get = self._get_node
        trail = []
        top_h = h
        while node[0] != _LEAF:
            b = (kh[depth >> 3] >> (7 - (depth & 7))) & 1
            if (node[33:65] if b else node[1:33]) == EMPTY:
                return None  # a new key: it takes this empty subtree (general path)
            trail.append((pos, node, b))
            depth, path = depth + 1, (path << 1) | b
            pos = position(depth, path)
            node = get(pos)
            if node is None:
                node = self._read(pos)  # raises TrieError naming the missing position
        if node[1:33] != kh:
            return None  # another key's leaf: the two must split (general path)
        leaf = b"\x00" + kh + vh
        writes[pos] = leaf
        if node[33:65] == vh:
            return top_h, False
        h = _sha(leaf).digest()
        for p, n, b in reversed(trail):
            n = b"\x01" + (n[1:33] + h if b else h + n[33:65])
            writes[p] = n
            h = _sha(n).digest()
        return h, False

    @staticmethod
    def _replace_leaf(pos: bytes, up: tuple, writes: dict) -> tuple[bytes, bool]:
        """The update of a subtree that is one leaf by a change of that same key (the usual case:
        an existing account's new balance): the new leaf in place, or an empty subtree. Same
        result as merging and rebuilding (`_build`), without the dict, sort and recursion."""
        kh, vh = up
        if vh is None:
            return EMPTY, False
        node = b"\x00" + kh + vh
        writes[pos] = node
        return _sha(node).digest(), True

    def _join(self, depth: int, path: int, pos: bytes, left: tuple, right: tuple, writes: dict,
              stale: set) -> tuple[bytes, bool]:
        """Place the node with children `left`/`right` ((hash, is_leaf or None if unknown)) at
        position `pos` = (depth, path); a lone leaf child moves up into it (the compact rule)."""
        lh, rh = left[0], right[0]
        if lh == EMPTY or rh == EMPTY:
            if lh == rh:
                return EMPTY, False
            bit, (ch, is_leaf) = (1, right) if lh == EMPTY else (0, left)
            cpos = position(depth + 1, (path << 1) | bit)
            if is_leaf is None:
                is_leaf = self._read(cpos, writes)[0] == _LEAF
            if is_leaf:
                node = writes.pop(cpos, None) or self._read(cpos)
                stale.add(cpos)
                writes[pos] = node
                return ch, True
        node = b"\x01" + lh + rh
        writes[pos] = node
        return _sha(node).digest(), False

    def _build(self, depth: int, path: int, leaves: list, writes: dict, stale: set) -> tuple[bytes, bool]:
        if not leaves:
            return EMPTY, False
        if len(leaves) == 1:
            kh, vh = leaves[0]
            node = b"\x00" + kh + vh
            writes[position(depth, path)] = node
            return _sha(node).digest(), True
        split = _split(leaves, depth, path)
        return self._join(depth, path, position(depth, path),
                          self._build(depth + 1, path << 1, leaves[:split], writes, stale),
                          self._build(depth + 1, (path << 1) | 1, leaves[split:], writes, stale), writes, stale)


def _split(items: list, depth: int, path: int) -> int:
    """Index of the first item whose key hash has bit `depth` set (items sorted by key hash, all
    starting with the `depth` bits of `path`).

    That item is the first one >= the smallest hash with prefix path + 1, so a C-level
    `bisect` on the (key hash, value hash) tuples finds it (`(boundary,)` sorts before any
    `(boundary, v)`, and value hashes, possibly None, are never compared)."""
    boundary = (((path << 1) | 1) << (255 - depth)).to_bytes(32, "big")
    return bisect_left(items, (boundary,))


def build_root(items: Iterable[tuple[bytes, bytes]]) -> bytes:
    """The root of a whole key set computed from scratch (checks and tests; nothing is stored)."""
    return Trie(lambda pos: None).update([(k, v) for k, v in items]).root


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
