"""Daily caps from the white paper's allocation table (section 7.1), in every phase.

A month is 365/12 days, so a 24-month phase is 730 days of 86,400 s and the daily unlock is the
floor of the linear curve at day boundaries: amount * k // 730 - amount * (k-1) // 730 on day k-1.
    Mining  ph1 20,000,000 NMT: 20 * 10**24 // 730 = 27_397_260_273_972_602_739_726 on day 0
    Mining  ph2 15,000,000: 20_547_945_205_479_452_054_794   ph3 10,000,000: 13_698_630_136_986_301_369_863
    Mining  ph4  7,500,000: 10_273_972_602_739_726_027_397   ph5  5,000,000:  6_849_315_068_493_150_684_931
    Staking ph1  4,000,000:  5_479_452_054_794_520_547_945   ph2  3,500,000:  4_794_520_547_945_205_479_452
    Staking ph3-5 3,000,000: 4_109_589_041_095_890_410_958
Phase k starts on day 730 * (k - 1): 2024-04-16, 2026-04-16, 2028-04-15, 2030-04-15, 2032-04-14 (a
"year" is 365 days, so leap days shift the calendar dates); after day 3649 (2034-04-13) nothing.
"""

import datetime as dt

import pytest
from econ_fixtures import WHITE_PAPER_GENESIS

from ledger.economics.days import ChainClock
from ledger.economics.schedule import MINING, STAKING, day_schedule, pool_daily_cap
from ledger.genesis import NMT

PHASES = [  # (date, day, mining cap, staking cap)
    ("2024-04-16", 0, 27_397_260_273_972_602_739_726, 5_479_452_054_794_520_547_945),
    ("2026-04-16", 730, 20_547_945_205_479_452_054_794, 4_794_520_547_945_205_479_452),
    ("2028-04-15", 1460, 13_698_630_136_986_301_369_863, 4_109_589_041_095_890_410_958),
    ("2030-04-15", 2190, 10_273_972_602_739_726_027_397, 4_109_589_041_095_890_410_958),
    ("2032-04-14", 2920, 6_849_315_068_493_150_684_931, 4_109_589_041_095_890_410_958),
    ("2034-04-14", 3650, 0, 0),
]


def _day(genesis, date: str) -> int:
    t = int(dt.datetime.fromisoformat(date).replace(tzinfo=dt.UTC).timestamp())
    return ChainClock.of(genesis).day_of(t)


@pytest.mark.parametrize("date,day,mining,staking", PHASES)
def test_daily_caps_in_each_phase(date, day, mining, staking):
    assert _day(WHITE_PAPER_GENESIS, date) == day
    assert pool_daily_cap(WHITE_PAPER_GENESIS, MINING, day) == mining
    assert pool_daily_cap(WHITE_PAPER_GENESIS, STAKING, day) == staking


def test_last_day_of_a_phase_gets_the_odd_unit_and_the_phase_sums_exactly():
    # day 729 (2026-04-15): 20 * 10**24 - 20 * 10**24 * 729 // 730 = 27_397_260_273_972_602_739_727
    assert _day(WHITE_PAPER_GENESIS, "2026-04-15") == 729
    assert pool_daily_cap(WHITE_PAPER_GENESIS, MINING, 729) == 27_397_260_273_972_602_739_727
    assert sum(pool_daily_cap(WHITE_PAPER_GENESIS, MINING, d) for d in range(730)) == 20_000_000 * NMT
    assert sum(pool_daily_cap(WHITE_PAPER_GENESIS, STAKING, d) for d in range(730)) == 4_000_000 * NMT
    assert pool_daily_cap(WHITE_PAPER_GENESIS, MINING, -1) == 0


def test_row_unlocks_of_a_day():
    s = day_schedule(WHITE_PAPER_GENESIS, 182)
    rows = {r.name: r for r in s.rows}
    # Ecosystem ph1: cliff 6 months = 182.5 days, 18 months = 547.5 days of vesting. Day 182 ends at
    # 183 days, half a day after the cliff: 4.5 * 10**24 * 43_200 // 47_304_000 = 4.5 * 10**24 // 1095
    assert rows["Ecosystem Growth Fund - Phase 1"].unlocks == 4_109_589_041_095_890_410_958
    # Strategic investors ph1 (no cliff, 6 months = 182.5 days): at the start of day 182 it has
    # unlocked 3 * 10**24 * 182 / 182.5 = 3 * 10**24 * 364 // 365; by the day's end (183 > 182.5) all
    assert rows["Strategic Investor & Advisors - Ph 1"].unlocks == 3 * 10**24 - 3 * 10**24 * 364 // 365
    assert rows["Strategic Investor & Advisors - Ph 1"].unlocked == 3 * 10**24
    assert rows["Team - Phase 2"].unlocks == 0
    # mining: 20 * 10**24 * 183 // 730 - 20 * 10**24 * 182 // 730
    #   = 5_013_698_630_136_986_301_369_863 - 4_986_301_369_863_013_698_630_136 = 27_397_260_273_972_602_739_727
    # staking: 4 * 10**24 * 183 // 730 - 4 * 10**24 * 182 // 730
    #   = 1_002_739_726_027_397_260_273_972 - 997_260_273_972_602_739_726_027 = 5_479_452_054_794_520_547_945
    assert s.caps == {MINING: 27_397_260_273_972_602_739_727, STAKING: 5_479_452_054_794_520_547_945}
    assert s.day_end - s.day_start == 86_400


def test_packaged_mainnet_genesis_gives_the_same_caps():
    genesis_file = pytest.importorskip("ledger.genesis_file")
    g = genesis_file.load_genesis("mainnet")
    for _, day, mining, staking in PHASES:
        assert pool_daily_cap(g, MINING, day) == mining
        assert pool_daily_cap(g, STAKING, day) == staking
