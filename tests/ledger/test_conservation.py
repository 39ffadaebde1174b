"""Conservation: random sequences of valid and invalid transactions and blocks never create or
destroy a base unit, and a rejected transaction changes nothing (hypothesis state machine)."""
from __future__ import annotations

import pytest
from conftest import CHAIN, KEYS, PARAMS, T0, VESTER, make_genesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from test_trie import reachable_positions

from ledger.errors import InvalidTransaction
from ledger.execution import BlockContext, apply_tx, begin_block, end_block
from ledger.genesis import NMT, GenesisAccount
from ledger.state import MemoryView, State, genesis_state
from ledger.trie import Trie, build_root
from ledger.tx import Transaction, check_stateless
from ledger.txkinds.claim_vested import ClaimVested
from ledger.txkinds.register_validator import RegisterValidator
from ledger.txkinds.stake import StakeTx
from ledger.txkinds.transfer import Transfer
from ledger.txkinds.unstake import Unstake

ADDRS = [k.address for k in KEYS]
who = st.sampled_from(ADDRS)
amounts = st.one_of(st.integers(1, 50 * NMT), st.integers(1, 50 * NMT), st.integers(0, 2000 * NMT),
                    st.sampled_from([0, 1, 10**30]))
fees = st.one_of(st.just(0), st.integers(0, 10**18), st.integers(0, 10**18), st.just(10**25))
validators = st.sampled_from([ADDRS[0], ADDRS[0], ADDRS[1], ADDRS[2], ADDRS[6]])


class Ledger(RuleBasedStateMachine):
    @initialize()
    def setup(self):
        self.base = MemoryView()
        funded = tuple(GenesisAccount(a, 1000 * NMT) for a in ADDRS)
        st0 = genesis_state(make_genesis(accounts=funded), self.base)
        self.base.apply(st0.changes())
        self.nodes: dict = {}
        self.trie = Trie(self.nodes.get)
        self._commit_trie(dict(self.base.data))
        self.time_ms = T0 * 1000
        self.height = 0
        self.applied = self.rejected = 0
        self._new_block(proposer=ADDRS[0])

    def _commit_trie(self, changes):
        u = self.trie.update(changes)
        for pos in u.deletes:
            self.nodes.pop(pos, None)
        self.nodes.update(u.puts)
        self.trie.root = u.root

    def _new_block(self, proposer):
        self.height += 1
        self.state = State(self.base)
        # the previous state root stands in for the parent block's hash (the jobs beacon mixes it in)
        self.ctx = BlockContext.for_state(self.state, self.height, self.time_ms, proposer, self.trie.root)
        begin_block(self.state, self.ctx)

    def _send(self, sender, body, fee, nonce_delta=0, chain=CHAIN):
        nonce = self.state.account(sender).nonce + nonce_delta
        if nonce < 0:
            return
        tx = Transaction(chain, nonce, sender, fee, body)
        before = self.state.changes()
        try:
            check_stateless(tx, PARAMS, signature=False)
            apply_tx(self.state, self.ctx, tx)
        except InvalidTransaction:
            self.rejected += 1
            assert self.state.changes() == before, "a rejected transaction changed the state"
            return
        assert nonce_delta == 0 and chain == CHAIN
        assert self.state.account(sender).nonce == nonce + 1
        self.applied += 1

    @rule(sender=who, to=who, amount=amounts, fee=fees)
    def transfer(self, sender, to, amount, fee):
        self._send(sender, Transfer(to=to, amount=amount), fee)

    @rule(sender=who, validator=validators, amount=amounts, lock=st.sampled_from([0, 0, 1, 7, 30, 31]), fee=fees)
    def stake(self, sender, validator, amount, lock, fee):
        self._send(sender, StakeTx(validator=validator, amount=amount, lock_days=lock), fee)

    @rule(sender=who, validator=validators, amount=amounts, long_term=st.booleans(), fee=fees)
    def unstake(self, sender, validator, amount, long_term, fee):
        self._send(sender, Unstake(validator=validator, amount=amount, long_term=long_term), fee)

    @rule(pick=st.integers(0, 10**6), pct=st.integers(1, 100), fee=fees)
    def unstake_part_of_a_stake(self, pick, pct, fee):
        stakes = list(self.state.iter_prefix(b"s"))
        if stakes:
            key, stake = stakes[pick % len(stakes)]
            amount = max(1, stake.amount * pct // 100)
            self._send(key[1:33], Unstake(validator=key[33:65], amount=amount, long_term=key[65:] == b"L"), fee)

    @rule(sender=who, amount=st.integers(90 * NMT, 400 * NMT), fee=fees)
    def register(self, sender, amount, fee):
        self._send(sender, RegisterValidator(name="node", stake=amount), fee)

    @rule(sender=st.sampled_from([VESTER.address, VESTER.address, ADDRS[0]]), fee=fees)
    def claim(self, sender, fee):
        self._send(sender, ClaimVested(), fee)

    @rule(sender=who, amount=amounts, delta=st.sampled_from([-1, 1, 5]), chain=st.sampled_from([CHAIN, "evil"]))
    def replay_or_gap_or_wrong_chain(self, sender, amount, delta, chain):
        self._send(sender, Transfer(to=ADDRS[1], amount=amount), 0, nonce_delta=delta, chain=chain)

    @rule(to=who, amount=amounts)
    def pool_emission(self, to, amount):
        try:
            self.state.emit_from_pool("mining", amount, to, self.ctx.now_s)
        except InvalidTransaction:
            pass

    @rule(dt=st.one_of(st.integers(1, 5000), st.integers(1, 200_000), st.integers(1, 20_000_000)),
          proposer=who)
    def seal_block(self, dt, proposer):
        end_block(self.state, self.ctx)
        changes = self.state.changes()
        self.base.apply(changes)
        self._commit_trie(changes)
        self.time_ms += dt
        self._new_block(proposer)

    @invariant()
    def supply_is_conserved(self):
        if hasattr(self, "state"):
            self.state.audit()

    def teardown(self):
        if hasattr(self, "state"):
            assert self.trie.root == build_root(self.base.data.items())
            assert reachable_positions(self.trie.root, self.nodes) == set(self.nodes)


TestConservation = pytest.mark.slow(Ledger.TestCase)
TestConservation.settings = settings(max_examples=80, stateful_step_count=50, deadline=None,
                                     suppress_health_check=[HealthCheck.too_slow])
