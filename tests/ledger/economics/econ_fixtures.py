"""Shared genesis fixtures of the economics tests.

`small_genesis` has round numbers so expected figures can be computed by hand: a mining row of
730 NMT over 24 months (= 730 days of 86,400 s) unlocks exactly 1 NMT per day, and a staking row
of 73 NMT over 24 months exactly 0.1 NMT per day.

`white_paper_genesis` is the allocation table of the white paper (section 7.1) built directly
from `ledger.genesis` dataclasses, independent of the packaged genesis file.
"""

import datetime as dt

from ledger.genesis import NMT, AllocationRow, Genesis, Params

START = int(dt.datetime(2024, 4, 16, tzinfo=dt.UTC).timestamp())   # 1713225600
ORACLE = bytes([0xAA]) * 32


def make_genesis(params: Params | None = None, rows=None, start: int = START) -> Genesis:
    rows = rows if rows is not None else (
        AllocationRow("mining", 730 * NMT, 0, 24, pool="mining"),
        AllocationRow("staking", 73 * NMT, 0, 24, pool="staking"),
    )
    return Genesis(chain_id="econ-test", timestamp=start, params=params or Params(price_oracle=ORACLE),
                   accounts=(), validators=(), allocation_start=start, allocation=tuple(rows))


def _m(n: float) -> int:
    return int(n * 1_000_000) * NMT


WHITE_PAPER_ROWS = (
    AllocationRow("Mining - Phase 1", _m(20), 0, 24, pool="mining"),
    AllocationRow("Mining - Phase 2", _m(15), 24, 24, pool="mining"),
    AllocationRow("Mining - Phase 3", _m(10), 48, 24, pool="mining"),
    AllocationRow("Mining - Phase 4", _m(7.5), 72, 24, pool="mining"),
    AllocationRow("Mining - Phase 5", _m(5), 96, 24, pool="mining"),
    AllocationRow("Staking - Phase 1", _m(4), 0, 24, pool="staking"),
    AllocationRow("Staking - Phase 2", _m(3.5), 24, 24, pool="staking"),
    AllocationRow("Staking - Phase 3", _m(3), 48, 24, pool="staking"),
    AllocationRow("Staking - Phase 4", _m(3), 72, 24, pool="staking"),
    AllocationRow("Staking - Phase 5", _m(3), 96, 24, pool="staking"),
    AllocationRow("Ecosystem Growth Fund - Phase 1", _m(4.5), 6, 18, account=b"\x01" * 32),
    AllocationRow("Ecosystem Growth Fund - Phase 2", _m(4), 24, 24, account=b"\x01" * 32),
    AllocationRow("Ecosystem Growth Fund - Phase 3", _m(3.5), 48, 24, account=b"\x01" * 32),
    AllocationRow("Ecosystem Growth Fund - Phase 4", _m(2.5), 72, 24, account=b"\x01" * 32),
    AllocationRow("Ecosystem Growth Fund - Phase 5", _m(2), 96, 24, account=b"\x01" * 32),
    AllocationRow("Team - Phase 1", _m(6), 6, 54, account=b"\x02" * 32),
    AllocationRow("Team - Phase 2", _m(4), 60, 60, account=b"\x02" * 32),
    AllocationRow("Strategic Investor & Advisors - Ph 1", _m(3), 0, 6, account=b"\x03" * 32),
    AllocationRow("Strategic Investor & Advisors - Ph 2", _m(4.5), 6, 54, account=b"\x03" * 32),
    AllocationRow("Early GPU Contributors (Locked)", _m(5), 24, 48, account=b"\x04" * 32),
)



#: Immutable genesis values shared by the tests (frozen dataclasses, so module constants are safe).
SMALL_GENESIS = make_genesis()
WHITE_PAPER_GENESIS = make_genesis(Params(), WHITE_PAPER_ROWS)
