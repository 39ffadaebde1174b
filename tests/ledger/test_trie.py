"""State trie: canonical roots (order- and history-independent), proofs, and no garbage nodes."""
from __future__ import annotations

import dataclasses
import hashlib
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.trie import EMPTY, Proof, Trie, build_root, position, verify_proof

keys_st = st.binary(min_size=1, max_size=6)
kv_st = st.dictionaries(keys_st, st.binary(max_size=8), max_size=40)


class NodeDB:
    """Trie nodes in a dict keyed by position, applying updates the way the store does."""

    def __init__(self):
        self.nodes = {}
        self.trie = Trie(self.nodes.get)

    def update(self, changes):
        u = self.trie.update(changes)
        for pos in u.deletes:
            self.nodes.pop(pos, None)
        self.nodes.update(u.puts)
        self.trie.root = u.root
        return u.root

    def reachable(self):
        """Positions reachable from the root, checking that each stored node hashes to what its
        parent says (the tree on disk is exactly the tree the root commits to)."""
        return reachable_positions(self.trie.root, self.nodes)


def reachable_positions(root, nodes):
    seen, todo = set(), [(root, 0, 0)] if root != EMPTY else []
    while todo:
        h, depth, path = todo.pop()
        pos = position(depth, path)
        node = nodes[pos]
        assert hashlib.sha256(node).digest() == h, f"node at depth {depth} does not match its parent"
        seen.add(pos)
        if node[0] == 1:
            for bit, child in ((0, node[1:33]), (1, node[33:65])):
                if child != EMPTY:
                    todo.append((child, depth + 1, (path << 1) | bit))
    return seen


@settings(max_examples=60, deadline=None)
@given(kv_st, st.randoms(use_true_random=False))
def test_root_independent_of_insertion_order(kv, rnd):
    items = list(kv.items())
    rnd.shuffle(items)
    db = NodeDB()
    for i in range(0, len(items), 3):            # several batches in random order
        db.update(dict(items[i:i + 3]))
    assert db.trie.root == build_root(kv.items())


@settings(max_examples=60, deadline=None)
@given(kv_st, st.lists(st.tuples(keys_st, st.none() | st.binary(max_size=8)), max_size=40))
def test_incremental_updates_equal_rebuild_and_leave_no_garbage(initial, ops):
    db = NodeDB()
    db.update(initial)
    model = dict(initial)
    for k, v in ops:
        db.update({k: v})
        if v is None:
            model.pop(k, None)
        else:
            model[k] = v
        assert db.trie.root == build_root(model.items())
    assert db.reachable() == set(db.nodes)        # every stored node is part of the current tree
    if not model:
        assert db.trie.root == EMPTY and not db.nodes


@settings(max_examples=40, deadline=None)
@given(kv_st.filter(bool), keys_st)
def test_proofs_of_presence_and_absence(kv, probe):
    db = NodeDB()
    db.update(kv)
    root = db.trie.root
    for k, v in kv.items():
        p = db.trie.prove(k)
        assert verify_proof(root, k, v, p)
        assert Proof.decode(p.encode()) == p
        assert not verify_proof(root, k, v + b"x", p)
        assert not verify_proof(root, k, None, p)
    if probe not in kv:
        p = db.trie.prove(probe)
        assert verify_proof(root, probe, None, p)
        assert not verify_proof(root, probe, b"", p)


def test_tampered_proofs_fail():
    db = NodeDB()
    kv = {f"key{i}".encode(): f"v{i}".encode() for i in range(300)}
    db.update(kv)
    root = db.trie.root
    p = db.trie.prove(b"key7")
    assert verify_proof(root, b"key7", b"v7", p) and len(p.siblings) >= 6
    sib = list(p.siblings)
    sib[3] = bytes(32)
    assert not verify_proof(root, b"key7", b"v7", dataclasses.replace(p, siblings=tuple(sib)))
    assert not verify_proof(root, b"key7", b"v7", dataclasses.replace(p, siblings=p.siblings[:-1]))
    assert not verify_proof(root, b"key8", b"v7", p)
    # an absence proof for a present key cannot be made from another key's proof
    assert not verify_proof(root, b"key7", None, db.trie.prove(b"key8"))
    absent = db.trie.prove(b"nope")
    assert verify_proof(root, b"nope", None, absent)
    assert not verify_proof(build_root({b"nope": b"1", **kv}.items()), b"nope", None, absent)


def test_update_touches_only_the_paths_of_changed_keys():
    db = NodeDB()
    rnd = random.Random(1)
    db_keys = {rnd.randbytes(8): b"v" for _ in range(5000)}
    db.update(db_keys)
    assert len(db.nodes) > 9000
    reads = []
    counting = Trie(lambda pos: reads.append(pos) or db.nodes.get(pos), db.trie.root)
    u = counting.update({b"one new key": b"x"})
    assert len(reads) <= 40 and len(u.puts) <= 40 and len(u.deletes) <= 40
    # a changed value rewrites its path in place: puts only, no deletes
    key = next(iter(db_keys))
    u = db.trie.update({key: b"changed"})
    assert not u.deletes and 1 <= len(u.puts) <= 40
