"""The validator-set query: top N by total stake, deterministic ties, jailed and under-staked excluded."""
from __future__ import annotations

import dataclasses

from conftest import ALICE, PARAMS, make_genesis

from ledger.genesis import NMT, GenesisValidator
from ledger.keys import devnet_key
from ledger.state import FLEXIBLE, MemoryView, State, genesis_state


class CountingView(MemoryView):
    def __init__(self, data):
        super().__init__(data)
        self.gets = 0

    def get(self, key):
        self.gets += 1
        return super().get(key)


def _state_with(validators, delegations=(), mint=True):
    g = make_genesis(validators=tuple(validators))
    st = genesis_state(g)
    for staker, validator, amount in delegations:
        if mint:
            st.credit(staker, amount)
        st.debit(staker, amount)
        st.change_stake(staker, validator, FLEXIBLE, amount)
    base = CountingView({})
    base.apply(st.changes())
    return State(base), base


def test_order_ties_and_limit():
    keys = [devnet_key(100 + i) for i in range(30)]
    # stakes 100..129 NMT, but keys 0-4 all tie at 500 NMT
    vals = [GenesisValidator(k.address, (500 if i < 5 else 100 + i) * NMT, f"v{i}") for i, k in enumerate(keys)]
    state, _ = _state_with(vals)
    top = state.validator_set(at_ms=0)
    assert len(top) == PARAMS.max_validators == 21
    tied = sorted(k.address for k in keys[:5])
    assert [a for a, _ in top[:5]] == tied                      # ties: address bytes ascending
    assert [s for _, s in top[5:]] == [(129 - i) * NMT for i in range(16)]
    assert state.validator_set(at_ms=0, limit=3) == [(a, 500 * NMT) for a in tied[:3]]


def test_delegation_moves_a_candidate_up_and_jail_excludes():
    a, b, c = (devnet_key(200 + i) for i in range(3))
    d = ALICE
    state, _ = _state_with([GenesisValidator(a.address, 300 * NMT), GenesisValidator(b.address, 200 * NMT),
                            GenesisValidator(c.address, 100 * NMT)],
                           delegations=[(d.address, c.address, 250 * NMT)], mint=False)
    assert state.validator_set(at_ms=0) == [(c.address, 350 * NMT), (a.address, 300 * NMT), (b.address, 200 * NMT)]
    cand = state.candidate(c.address)
    state.set_candidate(c.address, dataclasses.replace(cand, jailed_until_ms=5000))
    assert [x for x, _ in state.validator_set(at_ms=4999)] == [a.address, b.address]
    assert [x for x, _ in state.validator_set(at_ms=5000)] == [c.address, a.address, b.address]
    state.audit()


def test_query_reads_only_the_index_head():
    keys = [devnet_key(300 + i) for i in range(200)]
    vals = [GenesisValidator(k.address, (100 + i) * NMT) for i, k in enumerate(keys)]
    state, base = _state_with(vals, delegations=[(devnet_key(600 + i).address, keys[i].address, NMT)
                                                 for i in range(100)])
    base.gets = 0
    top = state.validator_set(at_ms=0)
    assert len(top) == 21 and top[0][1] == 299 * NMT
    assert base.gets <= 21 + 2          # one candidate read per member (+ chain record), no staker scan


def test_stakes_by_validator_index():
    a, b = devnet_key(400), devnet_key(401)
    state, _ = _state_with([GenesisValidator(a.address, 300 * NMT), GenesisValidator(b.address, 200 * NMT)],
                           delegations=[(ALICE.address, b.address, 5 * NMT)], mint=False)
    assert state.stakes_on(a.address) == [(a.address, FLEXIBLE, state.stake(a.address, a.address, FLEXIBLE))]
    assert sorted((s, st.amount) for s, _, st in state.stakes_on(b.address)) == sorted(
        [(b.address, 200 * NMT), (ALICE.address, 5 * NMT)])
    state.change_stake(ALICE.address, b.address, FLEXIBLE, -5 * NMT)
    state.credit(ALICE.address, 5 * NMT)
    assert [s for s, _, _ in state.stakes_on(b.address)] == [b.address]
    state.audit()
