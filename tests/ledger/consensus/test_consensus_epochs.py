"""Validator selection and epoch changes of the set when stakes change."""

from __future__ import annotations

import pytest
from consensus_sim import ADDR, config, genesis, make_header, vset
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.consensus import (
    Candidate,
    ValidatorSet,
    epoch_of,
    is_epoch_start,
    select_validators,
    set_source_height,
    verify_header,
)
from ledger.errors import DecodeError, InvalidBlock

A = [bytes([i]) * 32 for i in range(1, 30)]  # A[i] < A[i+1]


@pytest.mark.parametrize("name,cands,maxv,at,expect", [
    ("top by stake", [Candidate(A[0], 5), Candidate(A[1], 9), Candidate(A[2], 7)], 2, 0, [A[1], A[2]]),
    ("ties go to the lower address", [Candidate(A[3], 5), Candidate(A[1], 5), Candidate(A[2], 5)], 2, 0, [A[1], A[2]]),
    ("zero stake is never selected", [Candidate(A[0], 0), Candidate(A[1], 1)], 5, 0, [A[1]]),
    ("jailed until later is skipped", [Candidate(A[0], 100, jailed_until_ms=1001), Candidate(A[1], 1)], 5, 1000,
     [A[1]]),
    ("jail over exactly now", [Candidate(A[0], 100, jailed_until_ms=1000), Candidate(A[1], 1)], 5, 1000,
     [A[0], A[1]]),
    ("turn order is by address, not stake", [Candidate(A[5], 1), Candidate(A[0], 3), Candidate(A[2], 2)], 3, 0,
     [A[0], A[2], A[5]]),
])
def test_select_validators_table(name, cands, maxv, at, expect):
    assert select_validators(cands, maxv, at).addresses == tuple(expect)


def test_select_top_21_of_many_with_ties():
    cands = [Candidate(A[i], 1000 - (i // 3)) for i in range(29)]  # groups of 3 equal stakes
    s = select_validators(cands, 21, 0)
    assert s.addresses == tuple(A[:21])


def test_empty_selection_keeps_the_previous_set_or_fails():
    prev = ValidatorSet.of([A[0]])
    assert select_validators([Candidate(A[1], 5, jailed_until_ms=10)], 21, 0, previous=prev) == prev
    with pytest.raises(ValueError, match="no eligible"):
        select_validators([], 21, 0)
    with pytest.raises(ValueError, match="twice"):
        select_validators([Candidate(A[0], 1), Candidate(A[0], 2)], 21, 0)


def test_validator_set_is_strict():
    with pytest.raises(DecodeError, match="empty"):
        ValidatorSet(addresses=())
    with pytest.raises(DecodeError, match="ascending"):
        ValidatorSet(addresses=(A[1], A[0]))
    with pytest.raises(DecodeError, match="ascending"):
        ValidatorSet(addresses=(A[0], A[0]))
    s = ValidatorSet.of([A[2], A[0], A[2]])
    assert s.addresses == (A[0], A[2])
    assert ValidatorSet.decode(s.encode()) == s


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 28), st.integers(0, 50)), max_size=29, unique_by=lambda t: t[0]),
       st.integers(1, 21))
def test_selection_is_order_independent(rows, maxv):
    cands = [Candidate(A[i], s) for i, s in rows]
    if not any(c.stake for c in cands):
        return
    s1 = select_validators(cands, maxv, 0)
    s2 = select_validators(list(reversed(cands)), maxv, 0)
    assert s1 == s2
    chosen = set(s1.addresses)
    # nobody outside the set has more stake than somebody inside
    inside = min(c.stake for c in cands if c.address in chosen)
    assert all(c.stake <= inside for c in cands if c.address not in chosen)


@pytest.mark.parametrize("h,L,epoch,start,src", [
    (0, 4, 0, True, 0), (1, 4, 0, False, 0), (3, 4, 0, False, 0), (4, 4, 1, True, 3), (7, 4, 1, False, 3),
    (8, 4, 2, True, 7), (5, 1, 5, True, 4), (30, 30, 1, True, 29),
])
def test_epoch_arithmetic(h, L, epoch, start, src):
    assert epoch_of(h, L) == epoch
    assert is_epoch_start(h, L) == start
    assert set_source_height(h, L) == src


def test_set_changes_at_the_epoch_boundary_when_stakes_change():
    """Epoch length 4, validators #0..#2. During epoch 0, #3 stakes more than #0, so the set selected
    from the state after block 3 is {#1, #2, #3}: #3 may not seal before height 4, #0 not from then on."""
    cfg = config(epoch_length=4)
    p = cfg.params
    stakes = {ADDR[0]: 10, ADDR[1]: 20, ADDR[2]: 20}
    g, snap = genesis(vset(0, 1, 2))
    parent = g
    for h in (1, 2, 3):
        if h == 2:
            stakes[ADDR[3]] = 15  # a stake transaction in block 2
        signer = snap.in_turn_validator()
        if h == 3:  # #3 is not yet a validator in epoch 0
            intruder = make_header(cfg, snap, ADDR[3], ts=snap.timestamp_ms + 5000, difficulty=1)
            with pytest.raises(InvalidBlock, match="not a validator in epoch 0"):
                verify_header(cfg, snap, parent, intruder)
        hv = make_header(cfg, snap, signer)
        verify_header(cfg, snap, parent, hv)
        nxt = None
        if is_epoch_start(h + 1, p.epoch_length):
            nxt = select_validators([Candidate(a, s) for a, s in stakes.items()], 3, hv.timestamp_ms)
        snap, parent = snap.apply(hv, p, next_validators=nxt), hv
    assert snap.current == vset(0, 1, 2) and snap.next == vset(1, 2, 3)
    # height 4: 4 % 3 == 1 -> the set's #1 is ADDR[2]
    assert snap.in_turn_validator() == ADDR[2]
    removed = make_header(cfg, snap, ADDR[0], ts=snap.timestamp_ms + 5000, difficulty=1)
    with pytest.raises(InvalidBlock, match="not a validator in epoch 1"):
        verify_header(cfg, snap, parent, removed)
    newcomer = make_header(cfg, snap, ADDR[3])
    verify_header(cfg, snap, parent, newcomer)
    assert newcomer.difficulty == 1
    # recents carry over the boundary: ADDR[0] sealed height 3 (its turn: 3 % 3 == 0) but is gone;
    # ADDR[2] sealed nothing recently and is in turn
    snap4 = snap.apply(make_header(cfg, snap, ADDR[2]), p)
    assert snap4.current == snap4.next == vset(1, 2, 3)


def test_apply_demands_the_set_exactly_at_boundaries():
    cfg = config(epoch_length=2)
    g, snap = genesis(vset(0, 1, 2))
    h1 = make_header(cfg, snap, ADDR[1])
    with pytest.raises(ValueError, match="starts an epoch"):
        snap.apply(h1, cfg.params)
    s1 = snap.apply(h1, cfg.params, next_validators=vset(0, 1))
    h2 = make_header(cfg, s1, s1.in_turn_validator())
    with pytest.raises(ValueError, match="cannot change"):
        s1.apply(h2, cfg.params, next_validators=vset(0, 1))


def test_recent_signer_carries_across_a_boundary():
    """A validator that sealed the last block of an epoch may not seal the first of the next."""
    cfg = config(epoch_length=2)
    p = cfg.params
    g, snap = genesis(vset(0, 1, 2))
    h1 = make_header(cfg, snap, ADDR[1])
    s1 = snap.apply(h1, p, next_validators=vset(0, 1, 2, 3, 4))  # grows to 5: limit 3
    assert s1.recently_sealed(ADDR[1])
    h2 = make_header(cfg, s1, ADDR[1], ts=s1.timestamp_ms + 9000, difficulty=2)  # 2 % 5 == 2 -> #2's turn
    with pytest.raises(InvalidBlock, match="sealed one of the last 2"):
        verify_header(cfg, s1, h1, h2)


@pytest.mark.parametrize("change,error", [
    ({}, None),
    ({"epoch_length": 0}, "epoch_length"),
    ({"block_time_ms": 0}, "block_time_ms"),
    ({"max_validators": 0}, "max_validators"),
    ({"max_validators": 129}, "max_validators"),
    ({"slash_fraction_bps": 10_001}, "slash_fraction_bps"),
    ({"missed_blocks_withhold": 200}, "missed_blocks_withhold"),
    ({"out_of_turn_step_ms": -1}, "out_of_turn"),
    ({"vote_window": 1}, "vote_window"),
])
def test_consensus_params_are_checked(change, error):
    import dataclasses

    from ledger.consensus import check_consensus_params
    from ledger.errors import GenesisError
    from ledger.genesis import Params
    p = dataclasses.replace(Params(), **change)
    if error is None:
        check_consensus_params(p)
    else:
        with pytest.raises(GenesisError, match=error):
            check_consensus_params(p)
