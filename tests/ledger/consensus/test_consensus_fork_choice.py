"""Fork choice: never across finality, then the highest justified block, then total difficulty, then
the lower hash. Table-driven over named block trees, plus random trees with hypothesis."""

from __future__ import annotations

import pytest
from consensus_sim import Chain, config
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.consensus import BlockTree, Checkpoint, choose_head, descends_from, head_key, should_switch

CFG = config()

# Validators #0..#2; height h is #(h % 3)'s turn. Blocks: (name, parent, signer, attesting voters).
TREES = {
    "heavier": [("a1", "G", 1, None), ("a2", "a1", 2, None),            # TD 1+2+2 = 5
                ("b1", "G", 0, None), ("b2", "b1", 2, None)],           # TD 1+1+2 = 4
    "longer but lighter": [("a1", "G", 1, None), ("a2", "a1", 2, None),  # TD 5
                           ("b1", "G", 2, None), ("b2", "b1", 0, None), ("b3", "b2", 2, None)],  # 1+1+1+1 = 4
    "equal weight": [("x1", "G", 0, None), ("y1", "G", 2, None)],        # both TD 2
    "justified beats heavier": [
        ("a1", "G", 1, None), ("a2", "a1", 0, [0, 1]),                  # a2 justifies a1; TD 4
        ("b1", "G", 1, None, b"b"), ("b2", "b1", 2, None), ("b3", "b2", 0, None), ("b4", "b3", 1, None)],  # TD 9
}

CASES = [
    # tree, finalized block, expected head
    ("heavier", "G", "a2"),
    ("heavier", "b1", "b2"),                       # never across finality, however heavy
    ("longer but lighter", "G", "a2"),
    ("equal weight", "G", "lower-hash"),
    ("equal weight", "y1", "y1"),
    ("justified beats heavier", "G", "a2"),
    ("justified beats heavier", "b2", "b4"),
]


def build(tree: str) -> Chain:
    c = Chain(CFG, 3)
    for row in TREES[tree]:
        name, parent, signer, att = row[:4]
        c.add(name, parent, signer, att, salt=row[4] if len(row) > 4 else b"")
    return c


@pytest.mark.parametrize("tree,finalized,expect", CASES, ids=[f"{t}/fin={f}" for t, f, _ in CASES])
def test_fork_choice_table(tree, finalized, expect):
    c = build(tree)
    fin = c.snaps[finalized].checkpoint
    head = c.tree.head(fin)
    if expect == "lower-hash":
        tips = c.tree.tips()
        assert head.hash == min(t.hash for t in tips)
        assert len({t.total_difficulty for t in tips}) == 1
    else:
        assert c.name_of(head) == expect
    # the incremental form agrees with the batch form
    for tip in c.tree.tips():
        if tip.hash != head.hash:
            assert not should_switch(head, tip, fin, c.tree.ancestor_at)


def test_justified_ranks_above_difficulty():
    c = build("justified beats heavier")
    a2, b4 = c.snaps["a2"], c.snaps["b4"]
    assert a2.justified.height == 1 and b4.justified.height == 0
    assert b4.total_difficulty > a2.total_difficulty
    assert head_key(a2) < head_key(b4)


def test_no_candidate_descends_from_finalized():
    c = build("heavier")
    fin = Checkpoint(height=1, hash=bytes(32))  # unknown block
    assert choose_head(c.tree.tips(), fin, c.tree.ancestor_at) is None


def test_tree_prune_and_chain():
    c = build("heavier")
    assert [c.name_of(c.tree.get(h)) for h in c.tree.chain(c.snaps["a2"].hash)] == ["G", "a1", "a2"]
    c.tree.prune(c.snaps["a1"].checkpoint)
    assert c.snaps["b1"].hash not in c.tree and c.snaps["b2"].hash not in c.tree
    assert len(c.tree) == 2 and c.tree.root.hash == c.snaps["a1"].hash
    assert c.tree.ancestor_at(c.snaps["a2"].hash, 0) is None  # below the new root
    with pytest.raises(KeyError):
        c.tree.add(c.snaps["b2"], c.snaps["b1"].hash)


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_random_trees_never_cross_finalized(data):
    """Grow a random tree (random parents, random eligible sealers, random attestations), pick a random
    block as finalized: the head descends from it and is at least as good as every other such tip."""
    c = Chain(CFG, 3)
    names = ["G"]
    for i in range(data.draw(st.integers(1, 25), label="blocks")):
        parent = data.draw(st.sampled_from(names), label="parent")
        ps = c.snaps[parent]
        eligible = [k for k in range(3) if ps.can_seal(c.snaps["G"].next.addresses[k])]
        signer = data.draw(st.sampled_from(eligible), label="signer")
        att = [0, 1, 2] if ps.height > 0 and data.draw(st.booleans(), label="attest") else None
        name = f"n{i}"
        c.add(name, parent, signer, att, salt=name.encode())
        names.append(name)
    fin_name = data.draw(st.sampled_from(names), label="finalized")
    fin = c.snaps[fin_name].checkpoint
    head = c.tree.head(fin)
    assert head is not None
    assert descends_from(head, fin, c.tree.ancestor_at)
    for tip in c.tree.tips():
        if descends_from(tip, fin, c.tree.ancestor_at):
            assert head_key(head) <= head_key(tip)
    # every block's own finalized checkpoint is on its chain (finality never points off-chain)
    for s in (c.snaps[n] for n in names):
        assert descends_from(s, s.finalized, c.tree.ancestor_at)
        assert descends_from(s, s.justified, c.tree.ancestor_at)
        assert s.finalized.height <= s.justified.height


def test_block_tree_rejects_bad_links():
    c = build("heavier")
    t = BlockTree(c.snaps["G"])
    with pytest.raises(KeyError):
        t.add(c.snaps["a2"], c.snaps["a1"].hash)
    with pytest.raises(ValueError):
        t.add(c.snaps["a2"], c.snaps["G"].hash)
