"""Each transaction kind's rules: registration, flexible and long-term staking, unbonding, vesting."""
from __future__ import annotations

import pytest
from conftest import ALICE, BOB, CHAIN, PARAMS, T0, V0, V1, VESTER, next_block

from ledger.errors import InvalidTransaction
from ledger.genesis import NMT
from ledger.registry import KINDS
from ledger.state import LONG_TERM
from ledger.tx import sign_tx
from ledger.txkinds.claim_vested import ClaimVested
from ledger.txkinds.register_validator import RegisterValidator
from ledger.txkinds.stake import StakeTx
from ledger.txkinds.transfer import Transfer
from ledger.txkinds.unstake import Unstake


class Nonces:
    def __init__(self):
        self.n = {}

    def tx(self, key, body, fee=0):
        n = self.n.get(key.address, 0)
        self.n[key.address] = n + 1
        return sign_tx(key, CHAIN, n, fee, body)


def one(store, tx, **kw):
    """Include `tx` in a new block; return the skip reason or None if it applied."""
    skipped = []
    next_block(store, [tx], skipped=skipped, **kw)
    return str(skipped[0][1]) if skipped else None


def test_registry_lists_every_kind():
    assert {"transfer", "register_validator", "stake", "unstake", "claim_vested"} <= set(KINDS)


def test_register_validator(store):
    n = Nonces()
    assert "below the minimum" in one(store, n.tx(V1, RegisterValidator(name="v1", stake=99 * NMT)))
    n.n[V1.address] = 0
    assert "non-empty" in one(store, n.tx(V1, RegisterValidator(name=" ", stake=100 * NMT)))
    n.n[V1.address] = 0
    assert one(store, n.tx(V1, RegisterValidator(name="v1", stake=150 * NMT))) is None
    cand = store.state().candidate(V1.address)
    assert (cand.name, cand.self_stake, cand.delegated, cand.registered_height) == ("v1", 150 * NMT, 0, store.height)
    assert store.account(V1.address).balance == 850 * NMT
    assert "already a validator candidate" in one(store, n.tx(V1, RegisterValidator(name="again", stake=100 * NMT)))
    assert [a for a, _ in store.validator_set()] == [V0.address, V1.address]
    assert "insufficient balance" in one(store, sign_tx(BOB, CHAIN, 0, 0, RegisterValidator(name="b", stake=5000 * NMT)))
    store.state().audit()


def test_flexible_stake_unbonds_after_period_and_is_paid_automatically(store):
    n = Nonces()
    assert "not a validator candidate" in one(store, n.tx(ALICE, StakeTx(validator=BOB.address, amount=NMT, lock_days=0)))
    n.n[ALICE.address] = 0
    assert one(store, n.tx(ALICE, StakeTx(validator=V0.address, amount=300 * NMT, lock_days=0))) is None
    assert store.state().candidate(V0.address).delegated == 300 * NMT
    assert store.validator_set()[0] == (V0.address, 500 * NMT)
    assert "only 300" in one(store, n.tx(ALICE, Unstake(validator=V0.address, amount=301 * NMT, long_term=False)))
    n.n[ALICE.address] -= 1
    assert one(store, n.tx(ALICE, Unstake(validator=V0.address, amount=100 * NMT, long_term=False))) is None
    unstaked_at = store.head.timestamp
    state = store.state()
    assert state.candidate(V0.address).delegated == 200 * NMT
    assert state.unbondings_of(ALICE.address) == [(unstaked_at + PARAMS.unbonding_period_s * 1000, V0.address, 100 * NMT)]
    bal = store.account(ALICE.address).balance
    # a block just before release pays nothing; the first block at/after release pays it back
    next_block(store, dt_ms=PARAMS.unbonding_period_s * 1000 - 1)
    assert store.account(ALICE.address).balance == bal
    next_block(store, dt_ms=1)
    assert store.account(ALICE.address).balance == bal + 100 * NMT
    assert store.state().unbondings_of(ALICE.address) == []
    store.state().audit()


def test_long_term_stake_locked_until_expiry(store):
    n = Nonces()
    assert one(store, n.tx(ALICE, StakeTx(validator=V0.address, amount=50 * NMT, lock_days=2))) is None
    staked_at = store.head.timestamp
    st = store.state().stake(ALICE.address, V0.address, LONG_TERM)
    assert st.amount == 50 * NMT and st.lock_until_ms == staked_at + 2 * PARAMS.day_s * 1000
    assert store.state().candidate(V0.address).long_term == 50 * NMT
    # flexible unstake cannot touch long-term stake
    assert "only 0 flexible" in one(store, n.tx(ALICE, Unstake(validator=V0.address, amount=NMT, long_term=False)))
    n.n[ALICE.address] -= 1
    assert "locked until" in one(store, n.tx(ALICE, Unstake(validator=V0.address, amount=NMT, long_term=True)))
    n.n[ALICE.address] -= 1
    # adding more moves the whole position's lock to the later expiry
    assert one(store, n.tx(ALICE, StakeTx(validator=V0.address, amount=10 * NMT, lock_days=1))) is None
    assert store.state().stake(ALICE.address, V0.address, LONG_TERM).lock_until_ms == st.lock_until_ms
    assert one(store, n.tx(ALICE, StakeTx(validator=V0.address, amount=10 * NMT, lock_days=3))) is None
    lock = store.state().stake(ALICE.address, V0.address, LONG_TERM).lock_until_ms
    assert lock == store.head.timestamp + 3 * PARAMS.day_s * 1000
    next_block(store, dt_ms=lock - store.head.timestamp - 2)
    assert "locked until" in one(store, n.tx(ALICE, Unstake(validator=V0.address, amount=NMT, long_term=True)), dt_ms=1)
    n.n[ALICE.address] -= 1
    assert store.head.timestamp == lock - 1
    bal = store.account(ALICE.address).balance
    assert one(store, n.tx(ALICE, Unstake(validator=V0.address, amount=70 * NMT, long_term=True)), dt_ms=1) is None
    assert store.account(ALICE.address).balance == bal + 70 * NMT      # paid at once, no unbonding
    assert store.state().stake(ALICE.address, V0.address, LONG_TERM) is None
    assert store.state().candidate(V0.address).long_term == 0
    store.state().audit()


def test_self_unstake_below_minimum_leaves_the_set(store):
    n = Nonces()
    assert one(store, n.tx(V1, RegisterValidator(name="v1", stake=100 * NMT))) is None
    assert len(store.validator_set()) == 2
    assert one(store, n.tx(V1, Unstake(validator=V1.address, amount=NMT, long_term=False))) is None
    assert [a for a, _ in store.validator_set()] == [V0.address]
    assert store.state().candidate(V1.address).self_stake == 99 * NMT
    assert one(store, n.tx(V1, StakeTx(validator=V1.address, amount=NMT, lock_days=1))) is None
    assert [a for a, _ in store.validator_set()] == [V0.address, V1.address]
    store.state().audit()


def test_claim_vested_follows_the_schedule(store):
    month_ms = PARAMS.month_s * 1000
    assert "no vesting allocation" in one(store, sign_tx(ALICE, CHAIN, 0, 0, ClaimVested()))
    # the vester has no balance: during the cliff nothing unlocks and it cannot even pay a fee
    assert "nothing new has unlocked" in one(store, sign_tx(VESTER, CHAIN, 0, 0, ClaimVested()))
    # 1 month cliff then 12 months linear: at cliff + 3 months, 3/12 of 1200 NMT has unlocked
    target = (T0 + 4 * PARAMS.month_s) * 1000
    next_block(store, dt_ms=target - store.head.timestamp - 1)
    assert one(store, sign_tx(VESTER, CHAIN, 0, 5, ClaimVested()), dt_ms=1) is None
    assert store.account(VESTER.address).balance == 300 * NMT - 5       # the claim paid its own fee
    # the same second again: nothing new (vesting counts whole seconds of block time)
    assert "nothing new" in one(store, sign_tx(VESTER, CHAIN, 1, 0, ClaimVested()), dt_ms=1)
    [(_, v)] = store.state().vesting_rows(VESTER.address)
    assert v.withdrawn == 300 * NMT
    next_block(store, dt_ms=20 * month_ms)
    nonce = store.account(VESTER.address).nonce
    assert one(store, sign_tx(VESTER, CHAIN, nonce, 0, ClaimVested())) is None
    assert store.state().vesting_rows(VESTER.address)[0][1].withdrawn == 1200 * NMT
    assert store.account(VESTER.address).balance == 1200 * NMT - 5
    store.state().audit()


def test_pool_emission_primitive(store):
    state = store.state()
    t = T0 + 5 * PARAMS.month_s         # half of a 10-month linear row
    assert state.pool_available("mining", t) == 2500 * NMT == state.pool_unlocked("mining", t)
    assert state.pool_unlocked("mining", T0) == 0 and state.pool_unlocked("mining", T0 + 10**9) == 5000 * NMT
    state.emit_from_pool("mining", 1000 * NMT, BOB.address, t)
    assert state.pool_available("mining", t) == 1500 * NMT
    with pytest.raises(InvalidTransaction, match="has only"):
        state.emit_from_pool("mining", 1501 * NMT, BOB.address, t)
    state.return_to_pool("mining", 10 * NMT, BOB.address)
    assert state.pool_available("mining", t) == 1510 * NMT
    pool = state.pool("mining")
    assert pool.holding == pool.allocated - state.pool_unlocked("mining", t) + state.pool_available("mining", t)
    state.audit()


def test_transfer_to_self_and_zero_fee(store):
    assert one(store, sign_tx(ALICE, CHAIN, 0, 0, Transfer(to=ALICE.address, amount=NMT))) is None
    assert store.account(ALICE.address).balance == 1000 * NMT
