"""Staking reward (white paper 6.2, 7.2.3) with F1 accumulators: hand-computed figures.

Day emission of `SMALL_GENESIS`: 73 NMT over 730 days = 0.1 NMT = 10**17 a day.
    master nodes: M = 10**17 * 1_000 // 10_000 = 10**16; 3 validators get 10**16 // 3 = 3_333_333_333_333_333
                  each; 1 unit of dust stays in the pool
    stakers:      S = 10**17 - 10**16 = 9 * 10**16
Stakes: Alice 100 NMT long-term on V1 (weight 400 NMT), Carol 100 NMT flexible on V1 (weight 100 NMT),
        Bob 200 NMT flexible on V2 (weight 200 NMT); V3 has no stake. W = 700 NMT, 2 staked validators.
    r = (S - 2) * 10**27 // (700 * 10**18) = 89_999_999_999_999_998 * 10**7 // 7 = 128_571_428_571_428_568_571_428
    V1 outstanding += ceil(r * 500 * 10**18 / 10**27) = ceil(r * 5 / 10**7) = 64_285_714_285_714_285
    V2 outstanding += ceil(r * 200 * 10**18 / 10**27) = ceil(r * 2 / 10**7) = 25_714_285_714_285_714
    retained = 10**17 - 9_999_999_999_999_999 - 89_999_999_999_999_999 = 2
Claims: Alice floor(r * 4 / 10**7) = 51_428_571_428_571_427 (4/7 of S, less rounding)
        Carol floor(r / 10**7)     = 12_857_142_857_142_856 (a quarter of Alice: weights 4 vs 1)
        Bob   floor(r * 2 / 10**7) = 25_714_285_714_285_713
Dust left in outstanding: V1 64_285_714_285_714_285 - 51_428_571_428_571_427 - 12_857_142_857_142_856 = 2, V2 1.
"""

import pytest
from econ_fixtures import SMALL_GENESIS

from ledger.economics.errors import EconomicsError
from ledger.economics.schedule import STAKING, pool_daily_cap
from ledger.economics.staking import (
    FLEXIBLE,
    LIQUIDITY,
    LONG_TERM,
    SCALE,
    StakePosition,
    ValidatorDay,
    advance_accumulator,
    pending_reward,
    realize,
    settle_staking,
    stake_weight,
    sweep_outstanding,
)
from ledger.genesis import NMT, Params

V1, V2, V3 = b"\x01" * 32, b"\x02" * 32, b"\x03" * 32
R = 128_571_428_571_428_568_571_428


def test_weights():
    p = Params()
    assert stake_weight(p, LONG_TERM, 100 * NMT) == 400 * NMT
    assert stake_weight(p, FLEXIBLE, 100 * NMT) == 100 * NMT
    assert stake_weight(p, LIQUIDITY, 100 * NMT) == 200 * NMT
    with pytest.raises(EconomicsError):
        stake_weight(p, "forever", 1)


def validators(withheld3: bool = False):
    p = Params()
    return [ValidatorDay(V1, stake_weight(p, LONG_TERM, 100 * NMT) + stake_weight(p, FLEXIBLE, 100 * NMT)),
            ValidatorDay(V2, stake_weight(p, FLEXIBLE, 200 * NMT)),
            ValidatorDay(V3, 0, withheld=withheld3)]


def test_master_and_staker_shares():
    assert pool_daily_cap(SMALL_GENESIS, STAKING, 0) == 10**17
    s = settle_staking(SMALL_GENESIS.params, 0, 10**17, validators())
    assert s.master_total == 10**16 and s.stakers_total == 9 * 10**16
    assert s.master_payouts == ((V1, 3_333_333_333_333_333), (V2, 3_333_333_333_333_333), (V3, 3_333_333_333_333_333))
    assert s.reward_per_weight == R
    assert s.allocations == ((V1, 64_285_714_285_714_285), (V2, 25_714_285_714_285_714))
    assert s.retained == 2
    assert s.emission == s.master_paid + s.allocated + s.retained

    acc1 = advance_accumulator(0, s, V1)
    acc2 = advance_accumulator(0, s, V2)
    assert acc1 == acc2 == R and advance_accumulator(0, s, V3) == 0
    alice = StakePosition(400 * NMT, 0)
    carol = StakePosition(100 * NMT, 0)
    bob = StakePosition(200 * NMT, 0)
    assert pending_reward(alice, acc1) == 51_428_571_428_571_427
    assert pending_reward(carol, acc1) == 12_857_142_857_142_856
    assert pending_reward(bob, acc2) == 25_714_285_714_285_713
    out1 = 64_285_714_285_714_285 - 51_428_571_428_571_427 - 12_857_142_857_142_856
    out2 = 25_714_285_714_285_714 - 25_714_285_714_285_713
    assert (out1, out2) == (2, 1)
    # everyone leaves: the dust is swept back; every base unit of the day is accounted for
    assert sweep_outstanding(out1, 0) == (0, 2) and sweep_outstanding(out2, 0) == (0, 1)
    assert sweep_outstanding(out1, 5) == (2, 0)
    paid = s.master_paid + 51_428_571_428_571_427 + 12_857_142_857_142_856 + 25_714_285_714_285_713
    assert paid + s.retained + 2 + 1 == 10**17


def test_withheld_validator_master_share_stays_in_pool():
    s = settle_staking(SMALL_GENESIS.params, 0, 10**17, validators(withheld3=True))
    assert [a for a, _ in s.master_payouts] == [V1, V2]
    assert s.retained == 2 + 3_333_333_333_333_333


def test_f1_multi_day_with_a_leaver_and_a_joiner():
    """Day 0 as above. Before day 1 settles Carol leaves V1 (realises her day-0 reward) and Dan
    stakes 50 NMT long-term (weight 200) on V2 entering at A_V2 = R.
    Day 1: W = 400 (V1: Alice) + 400 (V2: Bob 200 + Dan 200) = 800 NMT, both validators staked:
        r1 = (9 * 10**16 - 2) * 10**27 // (800 * 10**18) = 89_999_999_999_999_998 * 10**7 // 8
           = 112_499_999_999_999_997_500_000
        Alice (whole two days): floor(400 * 10**18 * (R + r1) / 10**27)
           = floor(4 * (R + r1) / 10**7) = floor(4 * 241_071_428_571_428_566_071_428 / 10**7)
           = 96_428_571_428_571_426
        Dan (day 1 only): floor(2 * r1 / 10**7) = 22_499_999_999_999_999
    """
    p = SMALL_GENESIS.params
    d0 = settle_staking(p, 0, 10**17, validators())
    acc1, acc2 = d0.reward_per_weight, d0.reward_per_weight
    owed, carol = realize(StakePosition(100 * NMT, 0), acc1, new_weight=0)
    assert owed == 12_857_142_857_142_856 and carol == StakePosition(0, acc1)
    dan = StakePosition(200 * NMT, acc2)
    d1 = settle_staking(p, 1, 10**17, [ValidatorDay(V1, 400 * NMT), ValidatorDay(V2, 400 * NMT), ValidatorDay(V3, 0)])
    assert d1.reward_per_weight == 112_499_999_999_999_997_500_000
    acc1, acc2 = advance_accumulator(acc1, d1, V1), advance_accumulator(acc2, d1, V2)
    assert pending_reward(StakePosition(400 * NMT, 0), acc1) == 96_428_571_428_571_426
    assert pending_reward(dan, acc2) == 22_499_999_999_999_999
    assert pending_reward(carol, acc1) == 0


def test_no_validators_or_no_stake_keeps_everything_but_what_is_paid():
    p = SMALL_GENESIS.params
    s = settle_staking(p, 0, 10**17, [])
    assert s.retained == 10**17 and s.master_paid == 0 and s.allocated == 0
    s = settle_staking(p, 0, 10**17, [ValidatorDay(V1, 0)])
    assert s.master_paid == 10**16 and s.allocated == 0 and s.retained == 9 * 10**16
    # tiny emission: E = 1, M = 0, S = 1 is not more than the 2 staked validators (the ceil slack): nothing allocated
    s = settle_staking(p, 0, 1, [ValidatorDay(V1, 1), ValidatorDay(V2, 1)])
    assert s.allocated == 0 and s.retained == 1


def test_bad_inputs():
    p = SMALL_GENESIS.params
    with pytest.raises(EconomicsError, match="twice"):
        settle_staking(p, 0, 1, [ValidatorDay(V1, 1), ValidatorDay(V1, 1)])
    with pytest.raises(EconomicsError, match="at most"):
        settle_staking(p, 0, 1, [ValidatorDay(bytes([i]) * 32, 1) for i in range(22)])
    with pytest.raises(EconomicsError, match="backwards"):
        pending_reward(StakePosition(1, 5), 4)
    assert SCALE == 10**27
