"""Accountability: double-vote / surround-vote evidence, double-seal evidence over an opener, the
offence key (punish once), slashing arithmetic, jailing, and the missed-slot counter."""

from __future__ import annotations

import dataclasses
from typing import Annotated

import pytest
from consensus_sim import ADDR, CHAIN, KEYS, Chain, config, make_header
from hypothesis import given
from hypothesis import strategies as st

from ledger.codec import Bytes, Record, Str, UInt, record
from ledger.consensus import (
    DOUBLE_SEAL,
    DOUBLE_VOTE_OFFENSE,
    JAIL,
    NONE,
    WITHHOLD,
    Checkpoint,
    DoubleSealEvidence,
    DoubleSealWatch,
    DoubleVoteEvidence,
    Evidence,
    InvalidEvidence,
    Offense,
    SealedHeader,
    Vote,
    VoteData,
    after_missed,
    after_sealed_in_turn,
    is_jailed,
    jail_until_ms,
    penalty_for,
    rewards_withheld,
    slash_amount,
    slot_outcome,
    split_slash,
    verify_double_seal,
    verify_double_vote,
    verify_evidence,
)
from ledger.errors import DecodeError, LedgerError
from ledger.hashing import tagged_hash

CFG = config()
P = CFG.params


def vd(s: int, t: int, tag: str = "", chain: str = CHAIN) -> VoteData:
    return VoteData(chain_id=chain, source=Checkpoint(height=s, hash=bytes(32)),
                    target=Checkpoint(height=t, hash=(tag or str(t)).encode().ljust(32, b".")))


# ----- double votes ---------------------------------------------------------------------------------------

DV_CASES = [
    ("double vote", KEYS[0], vd(3, 4), KEYS[0], vd(3, 4, "fork"), None),
    ("surround vote", KEYS[1], vd(1, 9), KEYS[1], vd(4, 5), None),
    ("same vote twice", KEYS[0], vd(3, 4), KEYS[0], vd(3, 4), "do not conflict"),
    ("consecutive votes", KEYS[0], vd(3, 4), KEYS[0], vd(4, 5), "do not conflict"),
    ("different voters", KEYS[0], vd(3, 4), KEYS[1], vd(3, 4, "fork"), "different voters"),
    ("other chain", KEYS[0], vd(3, 4, chain="x"), KEYS[0], vd(3, 4, "fork", chain="x"), "chain"),
]


@pytest.mark.parametrize("name,ka,da,kb,db,error", DV_CASES, ids=[c[0] for c in DV_CASES])
def test_double_vote_evidence(name, ka, da, kb, db, error):
    ev = DoubleVoteEvidence(vote_a=Vote.sign(ka, da), vote_b=Vote.sign(kb, db))
    if error is None:
        off = verify_double_vote(ev, CHAIN, current_height=10, params=P)
        assert off.kind == DOUBLE_VOTE_OFFENSE and off.offender == ka.address
        assert off.height == min(da.target.height, db.target.height)
    else:
        with pytest.raises(InvalidEvidence, match=error):
            verify_double_vote(ev, CHAIN, current_height=10, params=P)


def test_double_vote_needs_both_signatures():
    a, b = Vote.sign(KEYS[0], vd(3, 4)), Vote.sign(KEYS[0], vd(3, 4, "fork"))
    forged = dataclasses.replace(b, signature=Vote.sign(KEYS[1], b.data).signature)
    with pytest.raises(InvalidEvidence, match="bad signature"):
        verify_double_vote(DoubleVoteEvidence(vote_a=a, vote_b=forged), CHAIN, 10, P)


def test_old_evidence_is_refused():
    ev = DoubleVoteEvidence(vote_a=Vote.sign(KEYS[0], vd(3, 4)), vote_b=Vote.sign(KEYS[0], vd(3, 4, "f")))
    verify_double_vote(ev, CHAIN, 4 + P.evidence_max_age, P)
    with pytest.raises(InvalidEvidence, match="older than"):
        verify_double_vote(ev, CHAIN, 5 + P.evidence_max_age, P)


def test_offence_key_is_order_independent_and_punishes_once():
    a, b, c = (Vote.sign(KEYS[0], vd(3, 4, t)) for t in ("x", "y", "z"))
    k1 = verify_double_vote(DoubleVoteEvidence(vote_a=a, vote_b=b), CHAIN, 10, P).key()
    k2 = verify_double_vote(DoubleVoteEvidence(vote_a=b, vote_b=a), CHAIN, 10, P).key()
    k3 = verify_double_vote(DoubleVoteEvidence(vote_a=a, vote_b=c), CHAIN, 10, P).key()
    assert k1 == k2 == k3  # one offence (voter, height) however it is proven
    other = Offense(kind=DOUBLE_SEAL, offender=KEYS[0].address, height=4).key()
    assert other != k1


def test_evidence_envelope_is_strict():
    with pytest.raises(DecodeError, match="exactly one"):
        Evidence()
    ev = DoubleVoteEvidence(vote_a=Vote.sign(KEYS[0], vd(3, 4)), vote_b=Vote.sign(KEYS[0], vd(3, 4, "f")))
    with pytest.raises(DecodeError, match="exactly one"):
        Evidence(double_seal=DoubleSealEvidence(header_a=b"", header_b=b""), double_vote=ev)
    env = Evidence(double_vote=ev)
    assert Evidence.decode(env.encode()) == env
    assert verify_evidence(env, CHAIN, None, 10, P).kind == DOUBLE_VOTE_OFFENSE
    with pytest.raises(DecodeError):
        Evidence.decode(env.encode() + b"\x00")


# ----- double seals (with a test header format: the real one is tested in test_consensus_store) ---------

@record
class FakeHeader(Record):
    chain_id: Annotated[str, Str(64)]
    height: Annotated[int, UInt(64)]
    parent: Annotated[bytes, Bytes(32)]
    body: Annotated[str, Str(64)]
    proposer: Annotated[bytes, Bytes(32)]
    seal: Annotated[bytes, Bytes(max_len=64)]


def _seal(key, height, body, chain=CHAIN, parent=b"P" * 32) -> bytes:
    h = FakeHeader(chain_id=chain, height=height, parent=parent, body=body, proposer=key.address, seal=b"")
    return dataclasses.replace(h, seal=key.sign(b"test-seal" + h.encode())).encode()


def _open(data: bytes) -> SealedHeader:
    h = FakeHeader.decode(data)
    unsigned = dataclasses.replace(h, seal=b"")
    return SealedHeader(chain_id=h.chain_id, height=h.height, hash=tagged_hash(b"test", data),
                        parent_hash=h.parent, proposer=h.proposer,
                        signing_message=b"test-seal" + unsigned.encode(), signature=h.seal)


DS_CASES = [
    ("two blocks on one parent", _seal(KEYS[0], 5, "a"), _seal(KEYS[0], 5, "b"), None),
    ("one height, two parents (re-seal after a reorg)", _seal(KEYS[0], 5, "a"), _seal(KEYS[0], 5, "b", parent=b"Q" * 32),
     "different parents"),
    ("the same block twice", _seal(KEYS[0], 5, "a"), _seal(KEYS[0], 5, "a"), "same block"),
    ("different heights", _seal(KEYS[0], 5, "a"), _seal(KEYS[0], 6, "b"), "different heights"),
    ("different proposers", _seal(KEYS[0], 5, "a"), _seal(KEYS[1], 5, "b"), "different proposers"),
    ("other chain", _seal(KEYS[0], 5, "a", "x"), _seal(KEYS[0], 5, "b", "x"), "chain"),
    ("garbage", _seal(KEYS[0], 5, "a"), b"\x93\x01", "malformed header"),
]


@pytest.mark.parametrize("name,a,b,error", DS_CASES, ids=[c[0] for c in DS_CASES])
def test_double_seal_evidence(name, a, b, error):
    ev = DoubleSealEvidence(header_a=a, header_b=b)
    if error is None:
        off = verify_double_seal(ev, CHAIN, _open, current_height=9, params=P)
        assert (off.kind, off.offender, off.height) == (DOUBLE_SEAL, KEYS[0].address, 5)
    else:
        with pytest.raises(InvalidEvidence, match=error):
            verify_double_seal(ev, CHAIN, _open, current_height=9, params=P)


def test_double_seal_with_a_forged_seal():
    a = _seal(KEYS[0], 5, "a")
    h = FakeHeader.decode(_seal(KEYS[0], 5, "b"))
    forged = dataclasses.replace(h, seal=KEYS[1].sign(b"whatever")).encode()
    with pytest.raises(InvalidEvidence, match="does not verify"):
        verify_double_seal(DoubleSealEvidence(header_a=a, header_b=forged), CHAIN, _open, 9, P)


def test_opener_errors_must_be_ledger_errors():
    def opener(data):
        raise LedgerError("nope")
    with pytest.raises(InvalidEvidence, match="nope"):
        verify_double_seal(DoubleSealEvidence(header_a=b"x", header_b=b"y"), CHAIN, opener, 9, P)


def test_double_seal_watch_is_bounded():
    w = DoubleSealWatch(window=4)
    p = b"P" * 32
    assert w.observe(1, p, ADDR[0], b"h1", b"one") is None
    for h in range(2, 10):
        w.observe(h, p, ADDR[1], bytes([h]), b"x")
    assert w.observe(1, p, ADDR[0], b"h1-other", b"two") is None  # too old to matter: forgotten
    assert len(w._first) <= 5
    assert w.observe(9, b"Q" * 32, ADDR[1], b"other", b"y") is None  # another parent: not an offence
    assert w.observe(9, p, ADDR[1], b"other", b"y") == DoubleSealEvidence(header_a=b"x", header_b=b"y")


# ----- penalties ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("amount,bps,expect", [
    (1000, 1000, 100), (999, 1000, 99), (1, 1000, 0), (10**24, 1000, 10**23), (7, 10_000, 7), (7, 0, 0),
])
def test_slash_amount_floors(amount, bps, expect):
    assert slash_amount(amount, bps) == expect


def test_slash_amount_rejects_nonsense():
    for amount, bps in ((-1, 10), (5, -1), (5, 10_001)):
        with pytest.raises(ValueError):
            slash_amount(amount, bps)


@given(st.dictionaries(st.binary(min_size=1, max_size=4), st.integers(0, 10**30), max_size=20),
       st.integers(0, 10_000))
def test_split_slash_conserves_every_unit(stakes, bps):
    cut = split_slash(stakes, bps)
    assert set(cut) == set(stakes)
    for k, v in stakes.items():
        assert 0 <= cut[k] <= v
        assert cut[k] * 10_000 <= v * bps < (cut[k] + 1) * 10_000
    # what leaves the stakes is exactly what the pool receives
    assert sum(stakes.values()) == sum(v - cut[k] for k, v in stakes.items()) + sum(cut.values())


def test_jail_period_and_penalty():
    off = Offense(kind=DOUBLE_SEAL, offender=ADDR[0], height=5)
    pen = penalty_for(off, block_timestamp_ms=1_000_000, params=P)
    assert pen.slash_bps == P.slash_fraction_bps == 1000
    assert pen.jailed_until_ms == 1_000_000 + P.jail_period_s * 1000
    assert is_jailed(pen.jailed_until_ms, pen.jailed_until_ms - 1) and not is_jailed(pen.jailed_until_ms,
                                                                                     pen.jailed_until_ms)
    # a second jail never shortens an earlier, longer one
    assert jail_until_ms(0, P, current_until_ms=10**15) == 10**15


def test_missed_slot_thresholds():
    count, actions = 0, []
    for _ in range(P.missed_blocks_jail):
        count, act = after_missed(count, P)
        actions.append(act)
    assert actions[P.missed_blocks_withhold - 1] == WITHHOLD
    assert actions.count(WITHHOLD) == 1 and actions[-1] == JAIL and actions.count(JAIL) == 1
    assert set(actions) == {NONE, WITHHOLD, JAIL}
    assert count == 0  # jail resets the counter
    assert rewards_withheld(P.missed_blocks_withhold, P) and not rewards_withheld(P.missed_blocks_withhold - 1, P)


def test_missed_slots_decay_with_sealed_slots():
    """A validator that seals at least as many of its slots as it misses never climbs."""
    count = 0
    for _ in range(1000):
        count, act = after_missed(count, P)
        assert act == NONE
        count = after_sealed_in_turn(count)
    assert count == 0
    assert after_sealed_in_turn(0) == 0


def test_slot_outcomes_along_a_chain():
    """Validators #0..#2, #2 silent: its slots are counted as missed, a barred in-turn validator's are not."""
    c = Chain(CFG, 3)
    rows = []
    for name, parent, signer in [("b1", "G", 1), ("b2", "b1", 0), ("b3", "b2", 1), ("b4", "b3", 0)]:
        hv = make_header(CFG, c.snaps[parent], ADDR[signer])
        rows.append(slot_outcome(c.snaps[parent], hv))
        c.add(name, parent, signer)
    assert rows[0].missed is None and rows[0].sealed_in_turn == ADDR[1]      # h1: #1 in turn
    assert rows[1].missed == ADDR[2] and rows[1].sealed_in_turn is None      # h2: #2's slot, #0 sealed
    assert rows[2].missed is None and rows[2].sealed_in_turn is None         # h3: #0's turn but #0 is barred
    assert rows[3].missed is None and rows[3].sealed_in_turn is None         # h4: #1's turn, #1 barred
