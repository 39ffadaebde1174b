"""The economics inside real blocks on a real LevelDB store: heartbeats in blocks, the first block
of a new day settling the old one, F1 staking through stake transactions, withdrawals, and supply
audits after every block.

Genesis (day_s = 100 s, so an "hour" is 100/24 s; month_s = 1000 s, so 24 months = 240 days):
    mining pool row 24,000 NMT over 24 months -> cap 24,000 / 240 = 100 NMT a day
    staking pool row 2,400 NMT over 24 months -> 10 NMT a day
    V0 validator with 200 NMT self-stake (flexible); oracle posts 2 USD; Carol stakes 100 NMT long-term on V0
Day 0: Alice (gpu-high, 150 Mbps) online all 24 hours, Bob (cpu) only 5 -> Bob does not qualify.
    VC = 400_000 * 24 = 9_600_000 micro-USD; / 2 USD = 4.8 NMT < 100 NMT cap (VC binds, B = 1)
    Alice is the only machine with p > 0: she gets all 4_800_000_000_000_000_000; 95.2 NMT stay in the pool.
    staking: M = 1 NMT to V0 (the only master node); S = 9 NMT over W = 200 (V0 flexible) + 400
    (Carol 100 x 4) = 600 NMT: r = (9 * 10**18 - 1) * 10**27 // (600 * 10**18) = 14_999_999_999_999_999_998_333_333
    Carol: floor(400 * 10**18 * r / 10**27) = 5_999_999_999_999_999_999; V0: 2_999_999_999_999_999_999
"""

import dataclasses

import pytest
from conftest import KEYS, T0, V0

from ledger.economics import ledger_state as ls
from ledger.economics.errors import InvalidHeartbeat
from ledger.economics.uptime import build_uptime_entries, sign_heartbeat
from ledger.genesis import NMT, AllocationRow, Genesis, GenesisAccount, GenesisValidator, Params
from ledger.store import Store, build_block
from ledger.tx import sign_tx
from ledger.txkinds.mining_profile import MiningProfileTx
from ledger.txkinds.post_price import PostPrice
from ledger.txkinds.stake import StakeTx
from ledger.txkinds.uptime import Uptime
from ledger.txkinds.withdraw_rewards import WithdrawRewards

ALICE, BOB, CAROL, ORACLE = KEYS[2], KEYS[3], KEYS[4], KEYS[6]
CHAIN = "econ-chain"
PARAMS = Params(min_validator_stake=100 * NMT, unbonding_period_s=60, min_long_term_days=1, max_long_term_days=30,
                day_s=100, month_s=1000, price_oracle=ORACLE.address)


def genesis() -> Genesis:
    return Genesis(chain_id=CHAIN, timestamp=T0, params=PARAMS,
                   accounts=tuple(GenesisAccount(k.address, 1000 * NMT) for k in (ALICE, BOB, CAROL, ORACLE, V0)),
                   validators=(GenesisValidator(V0.address, 200 * NMT, "v0"),), allocation_start=T0,
                   allocation=(AllocationRow("mining", 24_000 * NMT, 0, 24, pool="mining"),
                               AllocationRow("staking", 2_400 * NMT, 0, 24, pool="staking")))


class Chain:
    def __init__(self, path):
        self.store = Store.create(path, genesis(), sync=False)
        self.nonces: dict[bytes, int] = {}

    def tx(self, key, body, fee=0):
        n = self.nonces.get(key.address, 0)
        self.nonces[key.address] = n + 1
        return sign_tx(key, CHAIN, n, fee, body)

    def block(self, at_s: float, txs=(), heartbeats=()):
        t_ms = int(T0 * 1000 + at_s * 1000)
        entries = ls.uptime_entries_for_block(self.store.state(), CHAIN, t_ms // 1000, heartbeats)
        txs = list(txs) + ([self.tx(V0, Uptime(entries=entries))] if entries else [])
        skipped = []
        block = build_block(self.store, V0, txs, t_ms, 2, on_skip=lambda tx, exc: skipped.append(exc))
        self.store.import_block(block)
        state = self.store.state()
        state.audit()                 # total supply conserved, to the unit
        ls.audit_economics(state)
        return block, skipped

    def view(self, key):
        return ls.rewards_view(self.store.state(), key.address)


@pytest.fixture
def chain(tmp_path):
    c = Chain(tmp_path / "chain")
    yield c
    c.store.close()


@pytest.mark.timeout(120)
def test_a_day_of_uptime_and_staking_settles_and_withdraws(chain):
    hbs = [sign_heartbeat(ALICE, CHAIN, 0, h) for h in range(24)] + [sign_heartbeat(BOB, CHAIN, 0, h) for h in range(5)]
    chain.block(1, [chain.tx(ALICE, MiningProfileTx(hardware_class="gpu-high", bandwidth_kbps=150_000)),
                    chain.tx(BOB, MiningProfileTx(hardware_class="cpu", bandwidth_kbps=150_000)),
                    chain.tx(ORACLE, PostPrice(price_micro_usd=2_000_000)),
                    chain.tx(CAROL, StakeTx(validator=V0.address, amount=100 * NMT, lock_days=10))], hbs)
    for k in range(1, 25):            # one block in every "hour" of day 0 (hour h starts at ceil(100 h / 24) s)
        _, skipped = chain.block(-(-100 * k // 24) - 0.5 if k < 24 else 99.5, (), hbs)
        assert not skipped
    state = chain.store.state()
    assert ls._load(state, ls.uptime_key(0, ALICE.address), ls.UptimeRecord).mask == (1 << 24) - 1
    assert ls._load(state, ls.uptime_key(0, BOB.address), ls.UptimeRecord).mask == 0b11111
    assert chain.view(ALICE)["withdrawable"] == "0"

    chain.block(101)                  # first block of day 1: settles day 0
    alice, carol, v0, bob = chain.view(ALICE), chain.view(CAROL), chain.view(V0), chain.view(BOB)
    assert alice["mining"] == "4800000000000000000" and alice["days"][0]["day"] == 0
    assert bob["withdrawable"] == "0"
    assert carol["staking"] == carol["staking_unrealised"] == "5999999999999999999"
    assert v0["staking"] == str(10**18 + 2_999_999_999_999_999_999)      # master share + own stake
    state = chain.store.state()
    assert ls._load(state, ls.uptime_key(0, ALICE.address), ls.UptimeRecord) is None   # pruned
    pool = state.pool("mining")
    assert pool.emitted == 4_800_000_000_000_000_000

    before = chain.store.account(ALICE.address).balance
    _, skipped = chain.block(102, [chain.tx(ALICE, WithdrawRewards())])
    assert not skipped
    assert chain.store.account(ALICE.address).balance == before + 4_800_000_000_000_000_000
    assert chain.view(ALICE)["withdrawable"] == "0" and chain.view(ALICE)["withdrawn"] == "4800000000000000000"

    before = chain.store.account(CAROL.address).balance
    chain.block(103, [chain.tx(CAROL, WithdrawRewards())])
    assert chain.store.account(CAROL.address).balance == before + 5_999_999_999_999_999_999
    # nothing left: a second withdrawal is refused and changes nothing
    _, skipped = chain.block(104, [chain.tx(CAROL, WithdrawRewards())])
    assert len(skipped) == 1 and "no accrued rewards" in str(skipped[0])
    chain.nonces[CAROL.address] -= 1


@pytest.mark.timeout(60)
def test_bad_economics_transactions_are_refused(chain):
    forged = sign_heartbeat(ALICE, CHAIN, 0, 0)
    bad_entry = build_uptime_entries([forged], chain_id=CHAIN, clock=ls.ChainClock(T0, 100), block_time=T0 + 1,
                                     recorded={}, params=PARAMS)[0]
    future = dataclasses.replace(bad_entry, mask=1 << 3)     # signature of hour 0 claimed for hour 3
    _, skipped = chain.block(1, [chain.tx(BOB, PostPrice(price_micro_usd=1)),                   # not the oracle
                                 chain.tx(ALICE, MiningProfileTx(hardware_class="tpu", bandwidth_kbps=1)),
                                 chain.tx(CAROL, Uptime(entries=(future,)))])
    msgs = [str(e) for e in skipped]
    assert len(msgs) == 3
    assert "price oracle" in msgs[0] and "unknown hardware class" in msgs[1] and "after the block's hour" in msgs[2]
    with pytest.raises(InvalidHeartbeat):
        ls.record_uptime(chain.store.state(), CHAIN, T0 + 1, (future,))


@pytest.mark.timeout(60)
def test_f1_through_stake_changes_and_the_dust_sweep(tmp_path):
    """Day 0: V1 registers with 100 NMT; Carol stakes 100 NMT flexible on V0.
    Settling day 0: E = 10 NMT, M = 1 NMT -> 0.5 NMT to each of V0, V1; S = 9 NMT, W = 300 (V0) + 100 (V1):
        r = (9 * 10**18 - 2) * 10**27 // (400 * 10**18) = 22_499_999_999_999_999_995_000_000
        V1 outstanding = ceil(r * 100 * 10**18 / 10**27) = 2_250_000_000_000_000_000
    Day 1: V1 unstakes everything: it realises floor(100 * 10**18 * r / 10**27) = 2_249_999_999_999_999_999
        and, its weight now 0, the 1 unit left in its outstanding bucket returns to the staking pool.
        Carol adds 50 NMT: she realises the same 2_249_999_999_999_999_999 first.
    Settling day 1: only V0 (V1 left the set): W = 200 + 150 = 350 NMT:
        r2 = (9 * 10**18 - 1) * 10**27 // (350 * 10**18) = 25_714_285_714_285_714_282_857_142
        Carol pending = floor(150 * 10**18 * r2 / 10**27) = 3_857_142_857_142_857_142
    """
    from ledger.txkinds.register_validator import RegisterValidator
    from ledger.txkinds.unstake import Unstake

    v1 = KEYS[1]
    g = genesis()
    g = dataclasses.replace(g, accounts=g.accounts + (GenesisAccount(v1.address, 1000 * NMT),))
    c = Chain.__new__(Chain)
    c.store, c.nonces = Store.create(tmp_path / "chain", g, sync=False), {}
    try:
        c.block(1, [c.tx(v1, RegisterValidator(name="v1", stake=100 * NMT)),
                    c.tx(CAROL, StakeTx(validator=V0.address, amount=100 * NMT, lock_days=0))])
        c.block(101)
        assert c.view(v1)["staking"] == str(NMT // 2 + 2_249_999_999_999_999_999)
        state = c.store.state()
        assert ls._load(state, ls.validator_rewards_key(v1.address), ls.ValidatorRewards).outstanding == \
            2_250_000_000_000_000_000
        returned_before = state.pool("staking").returned
        _, skipped = c.block(102, [c.tx(v1, Unstake(validator=v1.address, amount=100 * NMT, long_term=False)),
                                   c.tx(CAROL, StakeTx(validator=V0.address, amount=50 * NMT, lock_days=0))])
        assert not skipped
        state = c.store.state()
        assert ls._load(state, ls.validator_rewards_key(v1.address), ls.ValidatorRewards).outstanding == 0
        assert state.pool("staking").returned == returned_before + 1           # the swept dust
        assert c.view(v1)["staking_unrealised"] == "0"
        assert c.view(CAROL)["staking"] == "2249999999999999999" and c.view(CAROL)["staking_unrealised"] == "0"
        c.block(201)
        assert c.view(CAROL)["staking_unrealised"] == "3857142857142857142"
        assert c.view(CAROL)["staking"] == str(2_249_999_999_999_999_999 + 3_857_142_857_142_857_142)
    finally:
        c.store.close()


def test_utilisation_fee_settles_into_escrow_and_pool():
    """sync job, fee 1,000 NMT from a job escrow account, Alice 600 / Bob 400 samples:
    providers 500 NMT (Alice 300, Bob 200), 500 NMT back to the mining pool."""
    from ledger.state import genesis_state

    state = genesis_state(genesis())
    payer = KEYS[7].address
    state.credit(payer, 1_000 * NMT)        # as if the job's escrow held the fee (test only: minted)
    ls.settle_job_fee(state, payer, 1_000 * NMT, "sync", [(ALICE.address, 600), (BOB.address, 400)])
    assert ls.rewards_view(state, ALICE.address)["utilisation"] == str(300 * NMT)
    assert ls.rewards_view(state, BOB.address)["utilisation"] == str(200 * NMT)
    assert state.pool("mining").returned == 500 * NMT and state.account(payer).balance == 0
    assert state.account(ls.ESCROW).balance == 500 * NMT
    ls.audit_economics(state)


def test_a_closed_position_leaves_no_f1_entry():
    from ledger.state import FLEXIBLE, genesis_state

    state = genesis_state(genesis())
    ls.settle_due_days(state, T0 * 1000 + 1000)
    state.debit(CAROL.address, 10 * NMT)
    state.change_stake(CAROL.address, V0.address, FLEXIBLE, 10 * NMT)
    ls.settle_due_days(state, T0 * 1000 + 100_500)           # day 0 settles: V0's accumulator moves
    state.change_stake(CAROL.address, V0.address, FLEXIBLE, -10 * NMT)
    assert state.get(ls.f1_key(CAROL.address, V0.address, b"F")) is None
    assert int(ls.rewards_view(state, CAROL.address)["staking"]) > 0
    ls.audit_economics(state)


def test_a_long_stall_is_caught_up_in_bounded_steps():
    """After 100 empty days, one block settles at most 64 of them; the next block the rest. Each
    day pays V0 its master share and staking (it is the only staker): 10 NMT a day minus dust."""
    from ledger.state import genesis_state

    state = genesis_state(genesis())
    assert ls.settle_due_days(state, T0 * 1000 + 1000) == []            # starts the cursor at day 0
    done = ls.settle_due_days(state, (T0 + 100 * 100 + 50) * 1000)      # day 100
    assert [s.day for s in done] == list(range(ls.MAX_SETTLE_DAYS_PER_BLOCK))
    done = ls.settle_due_days(state, (T0 + 100 * 100 + 51) * 1000)
    assert [s.day for s in done] == list(range(64, 100))
    assert ls.settle_due_days(state, (T0 + 100 * 100 + 52) * 1000) == []
    view = ls.rewards_view(state, V0.address)
    # per day: master 1 NMT + S = 9 NMT over W = 200 NMT: r = (9 * 10**18 - 1) * 10**27 // (200 * 10**18),
    # V0 owed floor(200 * 10**18 * r / 10**27) = 9 * 10**18 - 1 per day; 100 days
    assert int(view["staking"]) == 100 * (10**18 + 9 * 10**18 - 1)
    ls.audit_economics(state)
    state.audit()
