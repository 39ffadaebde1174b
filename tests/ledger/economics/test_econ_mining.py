"""Mining reward (white paper 7.2.1): scenarios with hand-computed figures.

Common scenario (day 3 of `SMALL_GENESIS`, whose mining cap is exactly 1 NMT = 10**18 a day):

    A: gpu-high      (400_000 micro-USD/h, weight 20), 150 Mbps -> factor 10_000, online 24 h
    B: gpu-consumer  (150_000 micro-USD/h, weight 8),   90 Mbps -> factor  9_500, online 12 h
       (every other hour: "non-consecutive" hours count)
    C: cpu           ( 20_000 micro-USD/h, weight 1),  200 Mbps, online 5 h -> NOT qualified (needs > 5)

    VC = 400_000 * 24 + 150_000 * 12 = 9_600_000 + 1_800_000 = 11_400_000 micro-USD (C excluded)
    prices: 7 daily prices summing to 14_000_000 (avg 2 USD); an 8th, older one is outside the window
    w*p: A = 20 * 10_000 * p(24 h = 10_000) = 2_000_000_000
         B =  8 *  9_500 * p(12 h = 5_000)  =   380_000_000       total 2_380_000_000 = 238 * 10**7
"""

import pytest
from econ_fixtures import ORACLE, SMALL_GENESIS

from ledger.economics.days import ChainClock
from ledger.economics.errors import EconomicsError
from ledger.economics.fees import SYNC, split_utilisation_fee
from ledger.economics.mining import (
    ProviderDay,
    bandwidth_factor_bps,
    daily_vc,
    issued_amount,
    penalty_bps,
    settle_mining,
)
from ledger.economics.prices import DailyPrice, price_average
from ledger.economics.schedule import MINING, pool_daily_cap
from ledger.economics.settlement import check_conservation, settle_day
from ledger.genesis import NMT, Params

A, B, C = b"\x0a" * 32, b"\x0b" * 32, b"\x0c" * 32
ALL_DAY = (1 << 24) - 1
EVERY_OTHER = sum(1 << h for h in range(0, 24, 2))     # 12 hours, none consecutive
FIVE = 0b11111 << 3                                     # hours 3..7
PRICES = tuple(DailyPrice(day=d, price=p) for d, p in zip(
    range(0, 8), (100_000_000, 1_000_000, 2_000_000, 3_000_000, 1_500_000, 2_500_000, 2_000_000, 2_000_000),
    strict=True))   # day 0 is outside the 7-day window of day 7: 1+2+3+1.5+2.5+2+2 = 14 USD


def providers(dropped_a: bool = False):
    return (
        ProviderDay(A, "gpu-high", 150_000, ALL_DAY, dropped_job_failed=dropped_a),
        ProviderDay(B, "gpu-consumer", 90_000, EVERY_OTHER),
        ProviderDay(C, "cpu", 200_000, FIVE),
    )


def test_window_average_excludes_the_eighth_price():
    assert price_average(PRICES, Params(), 7) == (14_000_000, 7)
    # day 3 sees days 0..3 only: 100 + 1 + 2 + 3 USD over 4 days
    assert price_average(PRICES, Params(), 3) == (106_000_000, 4)
    assert price_average((), Params(), 3) == (0, 0)
    assert price_average((), Params(genesis_price_micro_usd=2_000_000), 3) == (2_000_000, 1)


def test_three_providers_cap_binding():
    # B = 1: VC/B / avg = 11_400_000 / 2_000_000 = 5.7 NMT > cap 1 NMT, so the cap binds.
    s = settle_mining(SMALL_GENESIS.params, 7, 10**18, 14_000_000, 7, providers())
    assert s.vc == 11_400_000
    assert s.issued == 10**18 and not s.vc_binding
    # A: 10**18 * 2_000_000_000 // 2_380_000_000 = 2 * 10**20 // 238 = 840_336_134_453_781_512
    # B: 10**18 *   380_000_000 // 2_380_000_000 = 38 * 10**18 // 238 = 159_663_865_546_218_487
    assert s.payouts == ((A, 840_336_134_453_781_512), (B, 159_663_865_546_218_487))
    assert C not in dict(s.payouts)                     # 5 hours: under the bar, nothing
    assert s.paid == 999_999_999_999_999_999 and s.dust == 1 and s.retained == 1


def test_three_providers_vc_binding_rest_stays_in_pool():
    # B = 10 (100_000 bps): VC/B = 1_140_000 micro-USD; / 2 USD = 0.57 NMT < 1 NMT cap: VC binds.
    params = Params(balancing_coefficient_bps=100_000)
    s = settle_mining(params, 7, 10**18, 14_000_000, 7, providers())
    # 11_400_000 * 7 * 10**18 * 10_000 // (100_000 * 14_000_000) = 570_000_000_000_000_000
    assert s.issued == 570_000_000_000_000_000 and s.vc_binding
    # A: 570 * 10**15 * 200 // 238 = 478_991_596_638_655_462 ; B: 570 * 10**15 * 38 // 238 = 91_008_403_361_344_537
    assert s.payouts == ((A, 478_991_596_638_655_462), (B, 91_008_403_361_344_537))
    # unissued 0.43 NMT + 1 unit of rounding dust stay in the mining pool
    assert s.dust == 1 and s.retained == 430_000_000_000_000_001
    assert s.cap == s.paid + s.retained


def test_qualification_boundary_is_more_than_five_hours():
    params = Params()
    five = ProviderDay(C, "cpu", 200_000, FIVE)
    six = ProviderDay(C, "cpu", 200_000, FIVE | 1 << 20)
    assert penalty_bps(params, five) == 0 and daily_vc(params, [five]) == 0
    # 6 hours: uptime 10_000 * 6 // 24 = 2_500 bps; VC = 20_000 * 6 = 120_000
    assert penalty_bps(params, six) == 2_500 and daily_vc(params, [six]) == 120_000


def test_dropped_provider_loses_mining_but_keeps_its_fee_share():
    # A disconnected mid-job and the job failed: p_A = 0 for the day. VC still counts A (it was
    # online), so with the cap binding the whole 1 NMT goes to B, the only machine with p > 0.
    s = settle_mining(SMALL_GENESIS.params, 7, 10**18, 14_000_000, 7, providers(dropped_a=True))
    assert s.payouts == ((B, 10**18),) and s.retained == 0
    # ...but A keeps its share of that job's utilisation fee: sync fee 1,000 NMT, A did 600 of
    # 1,000 samples: providers get 500 NMT, A 500 * 600 / 1000 = 300 NMT, B 200 NMT, pool 500 NMT.
    f = split_utilisation_fee(SMALL_GENESIS.params, 1_000 * NMT, SYNC, [(A, 600), (B, 400)])
    assert dict(f.payouts) == {A: 300 * NMT, B: 200 * NMT} and f.to_pool == 500 * NMT


def test_penalty_formula():
    params = Params()
    pd = ProviderDay(A, "gpu-high", 150_000, (1 << 18) - 1, jobs_done=3, jobs_left=1, failed_work=1)
    # uptime 10_000 * 18 // 24 = 7_500; reliability 10_000 * 4 // 5 = 8_000; work 10_000 - 2_500 = 7_500
    # p = 7_500 * 8_000 * 7_500 // 10**8 = 4_500
    assert penalty_bps(params, pd) == 4_500
    assert penalty_bps(params, ProviderDay(A, "gpu-high", 1, ALL_DAY, failed_work=4)) == 0
    with pytest.raises(EconomicsError):
        penalty_bps(params, ProviderDay(A, "gpu-high", 1, ALL_DAY, failed_work=-1))


@pytest.mark.parametrize("kbps,bps", [(1_000_000, 10_000), (100_001, 10_000), (100_000, 9_500), (80_000, 9_500),
                                      (79_999, 8_500), (60_000, 8_500), (59_999, 7_000), (0, 7_000)])
def test_bandwidth_factor(kbps, bps):
    assert bandwidth_factor_bps(Params(), kbps) == bps


def test_no_price_issues_nothing_and_bad_inputs_are_refused():
    s = settle_mining(SMALL_GENESIS.params, 7, 10**18, 0, 0, providers())
    assert s.issued == 0 and s.payouts == () and s.retained == 10**18
    with pytest.raises(EconomicsError, match="unknown hardware class"):
        settle_mining(SMALL_GENESIS.params, 7, 10**18, 1, 1, [ProviderDay(A, "tpu", 1, ALL_DAY)])
    with pytest.raises(EconomicsError, match="twice"):
        settle_mining(SMALL_GENESIS.params, 7, 10**18, 1, 1, [providers()[0], providers()[0]])
    with pytest.raises(EconomicsError):
        issued_amount(1, 1, 1, 1, 0)


def test_everyone_penalised_to_zero_returns_the_issue():
    s = settle_mining(SMALL_GENESIS.params, 7, 10**18, 14_000_000, 7, [providers(dropped_a=True)[0]])
    assert s.issued == 10**18 and s.paid == 0 and s.dust == 10**18 and s.retained == 10**18


def test_settle_day_composes_mining_and_staking():
    day = 7
    assert ChainClock.of(SMALL_GENESIS).day_start(day) == SMALL_GENESIS.allocation_start + 7 * 86_400
    assert pool_daily_cap(SMALL_GENESIS, MINING, day) == 10**18
    s = settle_day(SMALL_GENESIS, day, PRICES, providers(), ())
    check_conservation(s)
    assert s.mining.payouts == ((A, 840_336_134_453_781_512), (B, 159_663_865_546_218_487))
    assert s.staking.emission == 10**17 and s.staking.retained == 10**17   # nobody staked: all stays
    assert s.credits == ((A, "mining", 840_336_134_453_781_512), (B, "mining", 159_663_865_546_218_487))
    assert SMALL_GENESIS.params.price_oracle == ORACLE
