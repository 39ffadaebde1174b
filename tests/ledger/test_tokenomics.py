"""genesis/mainnet.json against the white paper (shared/seeds/000, section 7), number by number.

Expected values are written out by hand from the white paper's table; unlocked amounts at each
date are computed here from first principles (days between dates, a 365/12-day month, floor),
not with ledger.vesting, so a bug there or in the file shows up as a mismatch.
"""

import pytest

from ledger.genesis_file import genesis_supply, load_genesis
from ledger.vesting import unlocked

NMT = 10**18
DAY = 86400
MONTH = 365 * DAY // 12          # 2,628,000 s: "a year is 365 days", a month a twelfth of it
START = 1713225600               # 2024-04-16T00:00:00Z

# name, amount (NMT), cliff months, vesting months, destination: the white paper's 20 rows.
TABLE = [
    ("Mining - Phase 1", 20_000_000, 0, 24, "mining"),
    ("Mining - Phase 2", 15_000_000, 24, 24, "mining"),
    ("Mining - Phase 3", 10_000_000, 48, 24, "mining"),
    ("Mining - Phase 4", 7_500_000, 72, 24, "mining"),
    ("Mining - Phase 5", 5_000_000, 96, 24, "mining"),
    ("Staking - Phase 1", 4_000_000, 0, 24, "staking"),
    ("Staking - Phase 2", 3_500_000, 24, 24, "staking"),
    ("Staking - Phase 3", 3_000_000, 48, 24, "staking"),
    ("Staking - Phase 4", 3_000_000, 72, 24, "staking"),
    ("Staking - Phase 5", 3_000_000, 96, 24, "staking"),
    ("Ecosystem Growth Fund - Phase 1", 4_500_000, 6, 18, None),
    ("Ecosystem Growth Fund - Phase 2", 4_000_000, 24, 24, None),
    ("Ecosystem Growth Fund - Phase 3", 3_500_000, 48, 24, None),
    ("Ecosystem Growth Fund - Phase 4", 2_500_000, 72, 24, None),
    ("Ecosystem Growth Fund - Phase 5", 2_000_000, 96, 24, None),
    ("Team - Phase 1", 6_000_000, 6, 54, None),
    ("Team - Phase 2", 4_000_000, 60, 60, None),
    ("Strategic Investors & Advisors - Phase 1", 3_000_000, 0, 6, None),
    ("Strategic Investors & Advisors - Phase 2", 4_500_000, 6, 54, None),
    ("Early GPU Contributors (Locked)", 5_000_000, 24, 48, None),
]


@pytest.fixture(scope="module")
def mainnet():
    return load_genesis("mainnet")


def test_total_supply_and_circulating_account(mainnet):
    assert mainnet.chain_id == "mindnode-mainnet-1"
    assert mainnet.total_supply == 147_571_163 * NMT
    assert genesis_supply(mainnet) == 147_571_163 * NMT
    assert mainnet.allocation_start == START and mainnet.timestamp == START
    assert mainnet.params.month_s == MONTH
    [circulating] = mainnet.accounts
    assert circulating.balance == 34_571_163 * NMT
    assert "circulating" in circulating.label
    assert mainnet.validators == ()


def test_the_twenty_rows_exactly(mainnet):
    assert len(mainnet.allocation) == 20
    got = [(r.name, r.amount, r.cliff_months, r.vesting_months, r.pool) for r in mainnet.allocation]
    assert got == [(n, a * NMT, c, v, p) for n, a, c, v, p in TABLE]
    assert sum(r.amount for r in mainnet.allocation) == 113_000_000 * NMT
    # Category totals from the prose of section 7.1.
    def total(prefix):
        return sum(r.amount for r in mainnet.allocation if r.name.startswith(prefix))
    assert total("Mining") + total("Early GPU") == 62_500_000 * NMT
    assert total("Staking") == 16_500_000 * NMT
    assert total("Ecosystem") == 16_500_000 * NMT
    assert total("Team") == 10_000_000 * NMT
    assert total("Strategic") == 7_500_000 * NMT
    # Everything ends within the 10 years (120 months) of the new tokenomics.
    assert max(r.cliff_months + r.vesting_months for r in mainnet.allocation) == 120
    # Non-pool rows vest to accounts; rows of one category share one account.
    for r in mainnet.allocation:
        assert (r.pool is None) == (r.account is not None)
    accounts = {r.name.split(" - ")[0]: r.account for r in mainnet.allocation if r.account}
    assert len(set(accounts.values())) == 4


def _by_hand(amount_nmt, cliff, vest, elapsed_s):
    amount = amount_nmt * NMT
    since_cliff = elapsed_s - cliff * MONTH
    if since_cliff <= 0:
        return 0
    if since_cliff >= vest * MONTH:
        return amount
    return amount * since_cliff // (vest * MONTH)


# (date, days since 2024-04-16 counted by hand, expected per-row NMT where it is a round number)
DATES = [
    ("2024-04-16", 0),
    ("2025-04-16", 365),                  # exactly 12 months
    ("2026-04-16", 730),                  # exactly 24 months
    ("2030-01-01", 1826 + 260),           # 5 years incl. 2028-02-29, then Apr 16 -> Jan 1
    ("2034-04-16", 3650 + 2),             # 10 years + leap days 2028, 2032: everything unlocked
]


@pytest.mark.parametrize("date,days", DATES)
def test_unlocked_at_dates(mainnet, date, days):
    from ledger.genesis_file import parse_time

    t = parse_time(date)
    assert t == START + days * DAY
    for row, (name, amount, cliff, vest, _) in zip(mainnet.allocation, TABLE, strict=True):
        assert unlocked(row, START, mainnet.params.month_s, t) == _by_hand(amount, cliff, vest, days * DAY), name


def test_round_numbers_at_key_dates(mainnet):
    """Spot values one can check on paper."""
    rows = {r.name: r for r in mainnet.allocation}

    def at(name, date):
        from ledger.genesis_file import parse_time
        return unlocked(rows[name], START, MONTH, parse_time(date))

    # Day one: nothing has unlocked, not even zero-cliff rows.
    assert sum(at(n, "2024-04-16") for n in rows) == 0
    # One year in: half of the first mining/staking phases; investors' phase 1 complete.
    assert at("Mining - Phase 1", "2025-04-16") == 10_000_000 * NMT
    assert at("Staking - Phase 1", "2025-04-16") == 2_000_000 * NMT
    assert at("Ecosystem Growth Fund - Phase 1", "2025-04-16") == 1_500_000 * NMT   # 6 of 18 months
    assert at("Strategic Investors & Advisors - Phase 1", "2025-04-16") == 3_000_000 * NMT
    assert at("Strategic Investors & Advisors - Phase 2", "2025-04-16") == 500_000 * NMT  # 6 of 54
    assert at("Team - Phase 1", "2025-04-16") == 6_000_000 * NMT * 6 // 54      # 666,666.66.. floor
    # Two years in: phase 1 done, phase 2 and the early GPU row exactly at their cliff (nothing yet).
    assert at("Mining - Phase 1", "2026-04-16") == 20_000_000 * NMT
    assert at("Mining - Phase 2", "2026-04-16") == 0
    assert at("Early GPU Contributors (Locked)", "2026-04-16") == 0
    assert at("Team - Phase 1", "2026-04-16") == 2_000_000 * NMT                 # 18 of 54 months
    # Ten years: every row fully unlocked, to the base unit.
    assert sum(at(n, "2034-04-16") for n in rows) == 113_000_000 * NMT
    # 2024-04-16 + 120 months is 3650 days; a second before that something is still locked.
    assert sum(unlocked(r, START, MONTH, START + 120 * MONTH - 1) for r in rows.values()) < 113_000_000 * NMT
    assert sum(unlocked(r, START, MONTH, START + 120 * MONTH) for r in rows.values()) == 113_000_000 * NMT


def test_inspect_json_matches(mainnet):
    """`mindnode genesis inspect mainnet --at 2026-04-16 --json` totals, computed by hand."""
    from ledger.genesis_file import parse_time
    from mindnode.cli_genesis import inspect_genesis

    doc = inspect_genesis(mainnet, parse_time("2026-04-16"))
    expected = (20_000_000 + 4_000_000 + 4_500_000 + 3_000_000) * NMT + 2_000_000 * NMT \
        + 4_500_000 * NMT * 18 // 54
    assert doc["unlocked_total"] == str(expected)
    assert doc["total_supply"] == str(147_571_163 * NMT)
    assert doc["circulating"] == str(expected + 34_571_163 * NMT)
    assert [r["name"] for r in doc["rows"]] == [t[0] for t in TABLE]
