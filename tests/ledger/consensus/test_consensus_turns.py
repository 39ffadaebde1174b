"""Table-driven scenarios for turns, difficulty, the recent-signer limit, back-off and timestamps,
in the style of go-ethereum's clique snapshot_test.go: each case is a validator count and a list of
blocks (who seals, optionally with a forced difficulty / timestamp offset); every block must verify
except the one the case says fails, with the reason it names."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from consensus_sim import ADDR, KEYS, config, genesis, make_header, vset
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.consensus import (
    DIFF_IN_TURN,
    DIFF_NO_TURN,
    FutureHeader,
    HeaderView,
    SealGuard,
    Snapshot,
    ValidatorSet,
    quorum,
    verify_header,
)
from ledger.errors import InvalidBlock

CFG = config()
P = CFG.params


@dataclass
class Blk:
    signer: int                 # index into ADDR (ADDR is ascending, so index == turn position)
    diff: int | None = None     # force a difficulty (None: the right one)
    dt: int = 0                 # ms added to the earliest allowed timestamp (negative: too early)


@dataclass
class Case:
    name: str
    n: int
    blocks: list[Blk]
    fail_at: int | None = None  # index into blocks of the one that must be rejected
    error: str = ""
    extra_validators: list[int] = field(default_factory=list)


# With n validators, height h is validator (h % n)'s turn; heights start at 1.
CASES = [
    Case("single validator seals every block", 1, [Blk(0)] * 5),
    Case("three validators in turn", 3, [Blk(1), Blk(2), Blk(0), Blk(1), Blk(2), Blk(0)]),
    Case("out of turn after the back-off", 3, [Blk(1), Blk(0)]),
    Case("out of turn claiming in-turn difficulty", 3, [Blk(1), Blk(0, diff=DIFF_IN_TURN)], 1, "must have difficulty 1"),
    Case("in turn claiming out-of-turn difficulty", 3, [Blk(1, diff=DIFF_NO_TURN)], 0, "must have difficulty 2"),
    Case("difficulty 3 is never valid", 3, [Blk(1, diff=3)], 0, "must have difficulty 2"),
    Case("n=3: no two consecutive blocks", 3, [Blk(1), Blk(1)], 1, "sealed one of the last 1 blocks"),
    Case("n=3: every other block is fine", 3, [Blk(1), Blk(0), Blk(1), Blk(0), Blk(1)]),
    Case("n=5: limit 3 forbids a gap of one", 5, [Blk(1), Blk(2), Blk(1)], 2, "sealed one of the last 2 blocks"),
    Case("n=5: a gap of two is fine", 5, [Blk(1), Blk(2), Blk(3), Blk(1)]),
    Case("n=2: strict alternation", 2, [Blk(1), Blk(0), Blk(1), Blk(1)], 3, "sealed one of the last 1 blocks"),
    Case("n=4: limit 3", 4, [Blk(1), Blk(2), Blk(1)], 2, "sealed one of the last 2 blocks"),
    Case("a non-validator cannot seal", 3, [Blk(1), Blk(5)], 1, "not a validator"),
    Case("in turn but one ms early", 3, [Blk(1, dt=-1)], 0, "earlier than its slot allows"),
    Case("in turn, late, is fine", 3, [Blk(1, dt=7000), Blk(2)]),
    Case("out of turn one ms before its back-off", 3, [Blk(1), Blk(0, dt=-1)], 1, "earlier than its slot allows"),
]


def run_case(case: Case):
    g, snap = genesis(vset(*range(case.n)))
    parent = g
    for i, b in enumerate(case.blocks):
        signer = ADDR[b.signer]
        if signer in snap.next:
            ts = snap.earliest_seal_ms(signer, P) + b.dt if snap.can_seal(signer) else parent.timestamp_ms + 2000
        else:
            ts = parent.timestamp_ms + 10_000
        hv = make_header(CFG, snap, signer, ts=ts, difficulty=b.diff or (
            snap.expected_difficulty(signer) if signer in snap.next else 1))
        if case.fail_at == i:
            with pytest.raises(InvalidBlock, match=case.error):
                verify_header(CFG, snap, parent, hv)
            return
        verify_header(CFG, snap, parent, hv)
        snap, parent = snap.apply(hv, P), hv
    assert case.fail_at is None, "the failing block was never reached"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_scenarios(case):
    run_case(case)


@dataclass
class BackoffCase:
    name: str
    n: int
    history: list[int]              # signers of heights 1.. (all verified)
    expect: dict[int, int | None]   # validator -> extra delay in ms (None: may not seal)


BACKOFF = [
    # n=4, next height 1: in turn is #1; others ranked by distance after it: #2, #3, #0.
    BackoffCase("all eligible", 4, [], {1: 0, 2: 1000, 3: 1500, 0: 2000}),
    # #3 sealed height 2 out of turn, so height 3 (#3's turn) has a barred in-turn validator
    # (limit 3): nobody waits the base delay; #0 (distance 1, rank 0) seals right at the block time,
    # #2 (distance 3, rank 1) one step later; #1 sealed height 1 and is barred too.
    BackoffCase("in-turn validator barred", 4, [1, 3], {3: None, 0: 0, 2: 500, 1: None}),
    # n=3, #2 stopped at height 2: #1 sealed 1, so only #0 may seal 2, after the base delay.
    BackoffCase("three, one silent", 3, [1], {2: 0, 0: 1000, 1: None}),
    # height 3 is #0's turn but #0 sealed height 2: #1 seals at once, #2 would be rank 1.
    BackoffCase("three, after an out-of-turn block", 3, [1, 0], {0: None, 1: 0, 2: 500}),
    BackoffCase("one validator", 1, [0, 0], {0: 0}),
]


@pytest.mark.parametrize("case", BACKOFF, ids=[c.name for c in BACKOFF])
def test_backoff_table(case):
    g, snap = genesis(vset(*range(case.n)))
    parent = g
    for s in case.history:
        hv = make_header(CFG, snap, ADDR[s])
        verify_header(CFG, snap, parent, hv)
        snap, parent = snap.apply(hv, P), hv
    for v, delay in case.expect.items():
        a = ADDR[v]
        plan = snap.plan_seal(a, P)
        if delay is None:
            assert plan is None and not snap.can_seal(a)
            with pytest.raises(ValueError):
                snap.seal_delay_ms(a, P)
        else:
            assert plan is not None
            assert snap.seal_delay_ms(a, P) == delay
            assert plan.not_before_ms == snap.timestamp_ms + P.block_time_ms + delay
            assert plan.difficulty == (DIFF_IN_TURN if plan.in_turn else DIFF_NO_TURN)
    # the delays of eligible validators are all distinct: no two sealers race for one instant
    ds = [d for d in case.expect.values() if d is not None]
    assert len(ds) == len(set(ds))


def test_plan_seal_refuses_a_second_block_on_one_parent():
    g, snap = genesis(vset(0, 1, 2))
    guard = SealGuard().after(1, snap.hash)
    assert snap.plan_seal(ADDR[1], P, guard) is None                        # already sealed on this parent
    assert snap.plan_seal(ADDR[1], P, SealGuard().after(1, bytes(32))).height == 1  # another parent: fine
    assert SealGuard.decode(guard.encode()) == guard
    assert snap.plan_seal(ADDR[6], P) is None  # not a validator


def test_in_turn_answers_for_this_and_next_height_only():
    g, snap = genesis(vset(0, 1, 2))
    assert snap.in_turn(1, ADDR[1]) and snap.in_turn(0, ADDR[0]) and not snap.in_turn(1, ADDR[0])
    with pytest.raises(ValueError):
        snap.in_turn(5, ADDR[2])


@pytest.mark.parametrize("n,q,limit", [(1, 1, 1), (2, 2, 2), (3, 2, 2), (4, 3, 3), (5, 4, 3), (6, 4, 4),
                                       (7, 5, 4), (21, 14, 11)])
def test_quorum_and_recent_limit(n, q, limit):
    s = ValidatorSet.of(bytes([i + 1]) * 32 for i in range(n))
    assert s.quorum == q == quorum(n)
    assert s.recent_limit == limit
    # two quorums overlap in at least ceil(n/3) validators; n - floor(n/3) stopped... still a quorum
    assert 2 * q - n >= (n + 2) // 3
    assert n - n // 3 >= q


def test_future_header_is_retryable_not_final():
    g, snap = genesis(vset(0, 1, 2))
    hv = make_header(CFG, snap, ADDR[1])
    verify_header(CFG, snap, g, hv, now_ms=hv.timestamp_ms - P.max_future_ms)  # at the edge: fine
    with pytest.raises(FutureHeader, match="in the future") as ei:
        verify_header(CFG, snap, g, hv, now_ms=hv.timestamp_ms - P.max_future_ms - 1)
    assert ei.value.retry_at_ms == hv.timestamp_ms - P.max_future_ms
    verify_header(CFG, snap, g, hv, now_ms=None)  # re-verification of stored blocks has no clock


def test_linkage_errors():
    g, snap = genesis(vset(0, 1, 2))
    hv = make_header(CFG, snap, ADDR[1])
    with pytest.raises(InvalidBlock, match="does not link"):
        verify_header(CFG, snap, g, HeaderView(**{**hv.__dict__, "parent_hash": bytes(32)}))
    with pytest.raises(InvalidBlock, match="does not follow"):
        verify_header(CFG, snap, g, HeaderView(**{**hv.__dict__, "height": 2}))
    snap1 = snap.apply(hv, P)
    with pytest.raises(InvalidBlock, match="consensus snapshot is for block"):
        verify_header(CFG, snap1, g, hv)
    with pytest.raises(ValueError, match="does not extend"):
        snap1.apply(hv, P)


def test_snapshot_roundtrips_through_the_codec():
    g, snap = genesis(vset(0, 1, 2))
    for s in (1, 2, 0, 1):
        snap = snap.apply(make_header(CFG, snap, ADDR[s]), P)
    assert Snapshot.decode(snap.encode()) == snap


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 7), picks=st.lists(st.integers(0, 6), min_size=1, max_size=40))
def test_random_valid_chains_respect_the_recent_signer_limit(n, picks):
    """Seal with whichever eligible validator the strategy picks; every chain built this way verifies,
    and in it nobody seals twice within any floor(n/2)+1 consecutive blocks."""
    g, snap = genesis(vset(*range(n)))
    parent, signers = g, []
    for p in picks:
        eligible = [a for a in snap.next.addresses if snap.can_seal(a)]
        assert eligible, "the recent-signer limit can never block every validator"
        a = eligible[p % len(eligible)]
        hv = make_header(CFG, snap, a)
        verify_header(CFG, snap, parent, hv)
        snap, parent = snap.apply(hv, P), hv
        signers.append(a)
    limit = n // 2 + 1
    for i in range(len(signers)):
        window = signers[i:i + limit]
        assert len(window) == len(set(window))
    assert snap.total_difficulty == 1 + sum(DIFF_IN_TURN if ADDR.index(s) == (h + 1) % n else DIFF_NO_TURN
                                            for h, s in enumerate(signers))


def test_keys_fixture_is_ascending():
    assert [k.address for k in KEYS] == sorted(k.address for k in KEYS)
