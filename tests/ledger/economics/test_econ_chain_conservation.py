"""Hypothesis state machine over a real store: rewards, stakes, unstakes, price posts, heartbeats,
utilisation fees and withdrawals in random order and timing; after every block the full supply
audit (`State.audit`) and the reward accounts' audit (`audit_economics`) must hold to the unit."""

import shutil
import tempfile

from conftest import KEYS, T0, V0
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from test_econ_chain import CHAIN, ORACLE, genesis

from ledger.economics import ledger_state as ls
from ledger.economics.uptime import sign_heartbeat
from ledger.genesis import NMT
from ledger.store import Store, build_block
from ledger.tx import sign_tx
from ledger.txkinds.mining_profile import MiningProfileTx
from ledger.txkinds.post_price import PostPrice
from ledger.txkinds.stake import StakeTx
from ledger.txkinds.unstake import Unstake
from ledger.txkinds.uptime import Uptime
from ledger.txkinds.withdraw_rewards import WithdrawRewards

USERS = [KEYS[2], KEYS[3], KEYS[4]]
CLASSES = ["cpu", "gpu-consumer", "gpu-high", "gpu-datacenter"]


class ChainModel(RuleBasedStateMachine):
    @initialize()
    def setup(self):
        self.dir = tempfile.mkdtemp(prefix="econ-sm-")
        self.store = Store.create(self.dir + "/chain", genesis(), sync=False)
        self.t_ms = T0 * 1000
        self.nonces: dict[bytes, int] = {}
        # start with every user a provider and a price on chain, so days do pay rewards
        self.pending: list = [(k, MiningProfileTx(hardware_class="gpu-high", bandwidth_kbps=150_000)) for k in USERS]
        self.pending.append((ORACLE, PostPrice(price_micro_usd=2_000_000)))
        self.online: set[bytes] = {k.address for k in USERS}

    def teardown(self):
        if hasattr(self, "store"):
            self.store.close()
            shutil.rmtree(self.dir, ignore_errors=True)

    def _block(self, dt_ms: int):
        self.t_ms += dt_ms
        state = self.store.state()
        clock = ls.clock_of(state)
        day, hour = clock.hour_of(self.t_ms // 1000)
        hbs = [sign_heartbeat(k, CHAIN, day, hour) for k in USERS if k.address in self.online]
        entries = ls.uptime_entries_for_block(state, CHAIN, self.t_ms // 1000, hbs)
        wanted = list(self.pending) + ([(V0, Uptime(entries=entries))] if entries else [])
        self.pending = []
        txs = []
        for key, body in wanted:
            n = self.nonces.get(key.address, 0)
            txs.append(sign_tx(key, CHAIN, n, 0, body))
            self.nonces[key.address] = n + 1
        skipped = []
        block = build_block(self.store, V0, txs, self.t_ms, 2, on_skip=lambda tx, exc: skipped.append(tx))
        for tx in skipped:   # a refused tx did not use its nonce
            self.nonces[tx.sender] -= 1
        self.store.import_block(block)

    @rule(dt=st.integers(1_000, 60_000))
    def block(self, dt):
        self._block(dt)

    @rule(user=st.sampled_from(USERS), cls=st.sampled_from(CLASSES), kbps=st.integers(0, 200_000))
    def profile(self, user, cls, kbps):
        self.pending.append((user, MiningProfileTx(hardware_class=cls, bandwidth_kbps=kbps)))
        self.online.add(user.address)

    @rule(user=st.sampled_from(USERS))
    def offline(self, user):
        self.online.discard(user.address)

    @rule(price=st.integers(1, 10**7))
    def price(self, price):
        self.pending.append((ORACLE, PostPrice(price_micro_usd=price)))

    @rule(user=st.sampled_from(USERS), amount=st.integers(1, 50 * NMT), lock=st.sampled_from([0, 1]))
    def stake(self, user, amount, lock):
        self.pending.append((user, StakeTx(validator=V0.address, amount=amount, lock_days=lock)))

    @rule(user=st.sampled_from(USERS), amount=st.integers(1, 50 * NMT), long_term=st.booleans())
    def unstake(self, user, amount, long_term):
        self.pending.append((user, Unstake(validator=V0.address, amount=amount, long_term=long_term)))

    @rule(user=st.sampled_from(USERS + [V0]))
    def withdraw(self, user):
        self.pending.append((user, WithdrawRewards()))

    @invariant()
    def audits_hold(self):
        if hasattr(self, "store"):
            state = self.store.state()
            state.audit()
            ls.audit_economics(state)


ChainModel.TestCase.settings = settings(max_examples=25, stateful_step_count=50, deadline=None)
TestChainModel = ChainModel.TestCase
