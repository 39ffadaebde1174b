"""Property tests: the economics rules conserve every base unit.

Two levels: one day's settlement over random providers, prices and validators (inputs == payouts
+ remainders, exactly); and a hypothesis state machine over a small model of the ledger's reward
bookkeeping (pools, reward escrow, F1 outstanding buckets, stakes, balances) driven through days,
stakes, unstakes, claims, slashes, job fees and withdrawals, checking after every step that the
total is unchanged and no bucket goes negative. The model is the contract the state machine's
integration follows (see ledger.economics.settlement).
"""

from econ_fixtures import make_genesis
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from ledger.economics import accrual
from ledger.economics.fees import ASYNC, SYNC, split_utilisation_fee
from ledger.economics.mining import ProviderDay
from ledger.economics.prices import DailyPrice
from ledger.economics.settlement import check_conservation, settle_day
from ledger.economics.staking import (
    FLEXIBLE,
    LONG_TERM,
    StakePosition,
    ValidatorDay,
    advance_accumulator,
    realize,
    stake_weight,
    sweep_outstanding,
)
from ledger.genesis import NMT, AllocationRow, Params

CLASSES = [hc.name for hc in Params().hardware_classes]
ADDRS = [bytes([i]) * 32 for i in range(1, 9)]

providers_st = st.lists(
    st.builds(ProviderDay, address=st.sampled_from(ADDRS), hardware_class=st.sampled_from(CLASSES),
              bandwidth_kbps=st.integers(0, 300_000), hour_mask=st.integers(0, (1 << 24) - 1),
              jobs_done=st.integers(0, 5), jobs_left=st.integers(0, 5), failed_work=st.integers(0, 5),
              dropped_job_failed=st.booleans()),
    max_size=8, unique_by=lambda p: p.address)
validators_st = st.lists(
    st.builds(ValidatorDay, address=st.sampled_from(ADDRS), weighted_stake=st.integers(0, 10**24) | st.integers(0, 50),
              withheld=st.booleans()),
    max_size=8, unique_by=lambda v: v.address)
prices_st = st.lists(st.builds(DailyPrice, day=st.integers(0, 800), price=st.integers(1, 10**8)), max_size=10,
                     unique_by=lambda p: p.day)


def _genesis(mining: int, staking: int, b_bps: int):
    return make_genesis(Params(balancing_coefficient_bps=b_bps),
                        (AllocationRow("m", mining, 0, 24, pool="mining"), AllocationRow("s", staking, 0, 24, pool="staking")))


@settings(max_examples=150, deadline=None)
@given(mining=st.integers(0, 10**26), staking=st.integers(0, 10**25), b_bps=st.integers(1, 10**7),
       day=st.integers(-2, 740), prices=prices_st, providers=providers_st, validators=validators_st)
def test_one_day_conserves(mining, staking, b_bps, day, prices, providers, validators):
    g = _genesis(mining, staking, b_bps)
    s = settle_day(g, day, prices, providers, validators)
    check_conservation(s)
    assert s.mining.paid + s.mining.retained == s.mining.cap
    assert all(a > 0 for _, a in s.mining.payouts)


@settings(max_examples=150, deadline=None)
@given(fee=st.integers(0, 10**27), mode=st.sampled_from([SYNC, ASYNC]),
       work=st.lists(st.tuples(st.sampled_from(ADDRS), st.integers(0, 10**9)), max_size=8, unique_by=lambda w: w[0]))
def test_fee_split_conserves(fee, mode, work):
    f = split_utilisation_fee(Params(), fee, mode, work)
    assert f.paid + f.to_pool == fee and f.paid <= f.to_providers
    assert f.to_pool >= fee - f.to_providers


class RewardLedgerModel(RuleBasedStateMachine):
    """A dict-based model of the reward bookkeeping the state machine will keep."""

    @initialize(mining=st.integers(0, 10**24), staking=st.integers(0, 10**23), b_bps=st.integers(1, 10**6))
    def setup(self, mining, staking, b_bps):
        self.g = _genesis(mining, staking, b_bps)
        self.p = self.g.params
        self.day = 0
        self.locked = mining + staking                 # not yet unlocked by the schedule
        self.pools = {"mining": 0, "staking": 0}
        self.balances = {a: 1_000 * NMT for a in ADDRS}
        self.accounts = {a: accrual.EMPTY for a in ADDRS}
        self.escrow = 0                                # = sum of withdrawable accruals
        self.validators = ADDRS[:3]
        self.acc = {v: 0 for v in self.validators}
        self.outstanding = {v: 0 for v in self.validators}
        self.positions: dict[tuple[bytes, bytes, str], tuple[int, StakePosition]] = {}
        self.prices = (DailyPrice(day=0, price=2_000_000),)
        self.total = self._total()

    def _total(self) -> int:
        return (self.locked + sum(self.pools.values()) + sum(self.balances.values()) + self.escrow
                + sum(self.outstanding.values()) + sum(a for a, _ in self.positions.values()))

    def _weight(self, v: bytes) -> int:
        return sum(pos.weight for (_, vv, _), (_, pos) in self.positions.items() if vv == v)

    def _credit(self, addr: bytes, kind: str, amount: int) -> None:
        self.accounts[addr] = accrual.credit(self.accounts[addr], self.day, kind, amount, self.p.accrual_history_days)
        self.escrow += amount

    def _realize(self, key, new_amount: int | None = None) -> None:
        staker, v, kind = key
        amount, pos = self.positions[key]
        new_amount = amount if new_amount is None else new_amount
        owed, pos = realize(pos, self.acc[v], stake_weight(self.p, kind, new_amount))
        assert owed <= self.outstanding[v]
        self.outstanding[v] -= owed
        self._credit(staker, accrual.STAKING, owed)
        self.positions[key] = (new_amount, pos)

    def _sweep_if_empty(self, v: bytes) -> None:
        left, swept = sweep_outstanding(self.outstanding[v], self._weight(v))
        self.outstanding[v] = left
        self.pools["staking"] += swept

    @rule(providers=providers_st, days=st.integers(1, 40))
    def settle(self, providers, days):
        for _ in range(days):
            vals = [ValidatorDay(v, self._weight(v)) for v in self.validators]
            s = settle_day(self.g, self.day, self.prices, providers, vals)
            check_conservation(s)
            self.locked -= s.mining.cap + s.staking.emission
            self.pools["mining"] += s.mining.cap - s.mining.paid
            self.pools["staking"] += s.staking.emission - s.staking.master_paid - s.staking.allocated
            for v, amount in s.staking.allocations:
                self.outstanding[v] += amount
            for v in self.validators:
                self.acc[v] = advance_accumulator(self.acc[v], s.staking, v)
            for addr, kind, amount in s.credits:
                self._credit(addr, kind, amount)
            self.day += 1

    @rule(staker=st.sampled_from(ADDRS), v=st.sampled_from(ADDRS[:3]), kind=st.sampled_from([FLEXIBLE, LONG_TERM]),
          amount=st.integers(1, 100 * NMT))
    def stake(self, staker, v, kind, amount):
        amount = min(amount, self.balances[staker])
        key = (staker, v, kind)
        if key not in self.positions:
            self.positions[key] = (0, StakePosition(0, self.acc[v]))
        self._realize(key, self.positions[key][0] + amount)
        self.balances[staker] -= amount

    @precondition(lambda self: self.positions)
    @rule(data=st.data())
    def unstake(self, data):
        key = data.draw(st.sampled_from(sorted(self.positions)))
        amount = self.positions[key][0]
        self._realize(key, 0)
        del self.positions[key]
        self.balances[key[0]] += amount
        self._sweep_if_empty(key[1])

    @precondition(lambda self: self.positions)
    @rule(data=st.data())
    def claim(self, data):
        self._realize(data.draw(st.sampled_from(sorted(self.positions))))

    @rule(v=st.sampled_from(ADDRS[:3]), bps=st.integers(0, 10_000))
    def slash(self, v, bps):
        """Slashing realises the validator's positions first, then cuts them; the cut goes to the
        staking pool in this model (where it goes is the consensus issue's rule)."""
        for key in sorted(k for k in self.positions if k[1] == v):
            amount = self.positions[key][0]
            cut = amount * bps // 10_000
            self._realize(key, amount - cut)
            self.pools["staking"] += cut
        self._sweep_if_empty(v)

    @rule(user=st.sampled_from(ADDRS), fee=st.integers(0, 10 * NMT), mode=st.sampled_from([SYNC, ASYNC]),
          work=st.lists(st.tuples(st.sampled_from(ADDRS), st.integers(0, 1000)), max_size=4, unique_by=lambda w: w[0]))
    def job_fee(self, user, fee, mode, work):
        fee = min(fee, self.balances[user])
        self.balances[user] -= fee
        f = split_utilisation_fee(self.p, fee, mode, work)
        for addr, amount in f.payouts:
            self._credit(addr, accrual.UTILISATION, amount)
        self.pools["mining"] += f.to_pool

    @rule(addr=st.sampled_from(ADDRS))
    def withdraw(self, addr):
        if accrual.withdrawable(self.accounts[addr]) == 0:
            return
        self.accounts[addr], amount = accrual.withdraw(self.accounts[addr])
        self.escrow -= amount
        self.balances[addr] += amount

    @invariant()
    def conserved(self):
        if not hasattr(self, "g"):
            return
        assert self._total() == self.total
        assert self.escrow == sum(accrual.withdrawable(a) for a in self.accounts.values())
        assert min(self.outstanding.values()) >= 0 and min(self.pools.values()) >= 0 and self.locked >= 0


RewardLedgerModel.TestCase.settings = settings(max_examples=40, stateful_step_count=30, deadline=None)
TestRewardLedgerModel = RewardLedgerModel.TestCase
