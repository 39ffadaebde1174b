"""The `Follower` glue: what it persists, when it votes, which set judges a vote, pruning."""

from __future__ import annotations

import pytest
from consensus_sim import CHAIN, KEYS, Chain, config

from ledger.consensus import Checkpoint, Follower, SealGuard, Vote, VoteData, VoteGuard

CFG = config()
CFG4 = config(epoch_length=4)  # epochs of 4 blocks, for the voter-set lookups


def test_follower_votes_once_per_head_and_reports_what_to_persist():
    c = Chain(CFG, 3)
    s1 = c.add("b1", "G", 1)
    f = Follower(CFG, c.snaps["G"], key=KEYS[0])
    ch = f.add_block(c.snaps["G"].hash, s1)
    assert ch.head_changed and ch.vote is not None and ch.persist and not ch.finalized_changed
    assert ch.vote.data == VoteData(chain_id=CHAIN, source=c.snaps["G"].checkpoint, target=s1.checkpoint)
    assert f.vote_guard == VoteGuard(last_source_height=0, last_target_height=1)
    # a lighter sibling does not move the head: no vote, nothing to persist
    side = c.add("x1", "G", 2, salt=b"x")
    ch2 = f.add_block(c.snaps["G"].hash, side)
    assert not ch2.head_changed and ch2.vote is None and not ch2.persist
    # the head's own vote is already in the pool; the next two votes make the attestation
    assert f.attestation() is None
    f.add_vote(Vote.sign(KEYS[1], ch.vote.data))
    att = f.attestation()
    assert att is not None and att.data == ch.vote.data


def test_follower_does_not_vote_while_syncing_or_without_a_key():
    c = Chain(CFG, 3)
    s1 = c.add("b1", "G", 1)
    f = Follower(CFG, c.snaps["G"], key=KEYS[0])
    f.voting = False
    assert f.add_block(c.snaps["G"].hash, s1).vote is None
    observer = Follower(CFG, c.snaps["G"])
    assert observer.add_block(c.snaps["G"].hash, s1).vote is None
    assert observer.seal_plan() is None


def test_seal_plan_and_guard():
    c = Chain(CFG, 3)
    f = Follower(CFG, c.snaps["G"], key=KEYS[1])
    plan = f.seal_plan()
    assert plan is not None and plan.in_turn and plan.height == 1
    guard = f.sealing(plan)
    assert guard == SealGuard().after(1, c.snaps["G"].hash)
    assert f.seal_plan() is None  # never a second block on the same parent


def test_voters_for_unknown_targets():
    c = Chain(CFG4, 3)
    s1 = c.add("b1", "G", 1)
    f = Follower(CFG4, c.snaps["G"], key=KEYS[0])
    f.add_block(c.snaps["G"].hash, s1)
    assert f.voters_for(s1.checkpoint) == s1.current
    unknown_same_epoch = Checkpoint(height=2, hash=b"?" * 32)
    assert f.voters_for(unknown_same_epoch) == s1.current
    far = Checkpoint(height=40, hash=b"?" * 32)
    assert f.voters_for(far) is None
    vote = Vote.sign(KEYS[1], VoteData(chain_id=CHAIN, source=s1.checkpoint, target=far))
    assert not f.add_vote(vote).accepted


def test_finality_and_pruning():
    c = Chain(CFG, 3)
    f = Follower(CFG, c.snaps["G"], key=KEYS[0])
    c.add("b1", "G", 1)
    c.add("b2", "b1", 2, [0, 1])
    c.add("b3", "b2", 0, [1, 2])
    c.add("x1", "G", 2, salt=b"x")
    for name, parent in (("b1", "G"), ("x1", "G"), ("b2", "b1"), ("b3", "b2")):
        f.add_block(c.snaps[parent].hash, c.snaps[name])
    assert f.head.hash == c.snaps["b3"].hash and f.finalized == c.snaps["b1"].checkpoint
    f.prune()
    assert c.snaps["x1"].hash not in f.tree and f.tree.root.hash == c.snaps["b1"].hash
    with pytest.raises(KeyError):  # a late block on a pruned branch has no parent any more
        f.add_block(c.snaps["x1"].hash, c.add("x2", "x1", 0, salt=b"x2"))
