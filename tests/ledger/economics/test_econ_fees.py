"""Utilisation fee splits (white paper 7.2.2): sync 50/50, async 20/80, shared by samples processed.

fee = 1 NMT + 1 unit = 1_000_000_000_000_000_001; A processed 1 sample, B 2.
  sync:  providers 1_000_000_000_000_000_001 * 5_000 // 10_000 = 500_000_000_000_000_000
         A 5 * 10**17 // 3 = 166_666_666_666_666_666, B 10**18 // 3 = 333_333_333_333_333_333
         pool = fee - 499_999_999_999_999_999 = 500_000_000_000_000_002 (the 50%, the odd unit, 1 unit dust)
  async: providers 1_000_000_000_000_000_001 * 2_000 // 10_000 = 200_000_000_000_000_000
         A 2 * 10**17 // 3 = 66_666_666_666_666_666, B 4 * 10**17 // 3 = 133_333_333_333_333_333
         pool = fee - 199_999_999_999_999_999 = 800_000_000_000_000_002
"""

import pytest

from ledger.economics.errors import EconomicsError
from ledger.economics.fees import ASYNC, SYNC, split_utilisation_fee
from ledger.genesis import Params

A, B = b"\x0a" * 32, b"\x0b" * 32
FEE = 10**18 + 1


def test_sync_split():
    f = split_utilisation_fee(Params(), FEE, SYNC, [(B, 2), (A, 1)])
    assert f.to_providers == 500_000_000_000_000_000
    assert f.payouts == ((A, 166_666_666_666_666_666), (B, 333_333_333_333_333_333))
    assert f.to_pool == 500_000_000_000_000_002 and f.paid + f.to_pool == FEE


def test_async_split():
    f = split_utilisation_fee(Params(), FEE, ASYNC, [(A, 1), (B, 2)])
    assert f.to_providers == 200_000_000_000_000_000
    assert f.payouts == ((A, 66_666_666_666_666_666), (B, 133_333_333_333_333_333))
    assert f.to_pool == 800_000_000_000_000_002


def test_rates_are_genesis_parameters():
    f = split_utilisation_fee(Params(sync_provider_fee_bps=10_000), 1_000, SYNC, [(A, 1)])
    assert f.payouts == ((A, 1_000),) and f.to_pool == 0
    f = split_utilisation_fee(Params(async_provider_fee_bps=0), 1_000, ASYNC, [(A, 1)])
    assert f.payouts == () and f.to_pool == 1_000


def test_no_work_all_to_pool_and_bad_inputs():
    assert split_utilisation_fee(Params(), 1_000, SYNC, [(A, 0)]).to_pool == 1_000
    assert split_utilisation_fee(Params(), 1_000, SYNC, []).to_pool == 1_000
    with pytest.raises(EconomicsError, match="mode"):
        split_utilisation_fee(Params(), 1, "ssh", [])
    with pytest.raises(EconomicsError, match="twice"):
        split_utilisation_fee(Params(), 1, SYNC, [(A, 1), (A, 2)])
    with pytest.raises(EconomicsError):
        split_utilisation_fee(Params(), -1, SYNC, [])
    with pytest.raises(EconomicsError):
        split_utilisation_fee(Params(), 1, SYNC, [(A, -1)])
