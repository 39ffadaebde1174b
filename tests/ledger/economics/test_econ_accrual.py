"""Per-address accrual and withdrawal; oracle price posts."""

import pytest
from econ_fixtures import ORACLE

from ledger.economics.accrual import (
    EMPTY,
    MINING,
    STAKING,
    UTILISATION,
    RewardAccount,
    credit,
    withdraw,
    withdrawable,
)
from ledger.economics.errors import EconomicsError, InvalidPricePost, NothingToWithdraw
from ledger.economics.prices import MAX_PRICE_MICRO_USD, DailyPrice, post_price, price_average
from ledger.errors import DecodeError, InvalidTransaction
from ledger.genesis import Params


def test_credit_history_and_withdraw():
    a = credit(EMPTY, 10, MINING, 5, keep_days=3)
    a = credit(a, 10, STAKING, 7, keep_days=3)
    a = credit(a, 11, UTILISATION, 1, keep_days=3)
    a = credit(a, 13, MINING, 2, keep_days=3)     # day 10 falls out of the 3-day history (11..13 kept)
    assert [h.day for h in a.history] == [11, 13]
    assert (a.mining, a.staking, a.utilisation) == (7, 7, 1) and withdrawable(a) == 15
    assert RewardAccount.decode(a.encode()) == a
    b, amount = withdraw(a)
    assert amount == 15 and withdrawable(b) == 0 and b.withdrawn == 15 and b.history == a.history
    with pytest.raises(NothingToWithdraw) as err:
        withdraw(b)
    assert isinstance(err.value, InvalidTransaction)
    assert credit(b, 14, MINING, 0, keep_days=3) is b
    for bad in [(MINING, -1, 3), ("gas", 1, 3), (MINING, 1, 0)]:
        with pytest.raises(EconomicsError):
            credit(b, 14, bad[0], bad[1], keep_days=bad[2])
    with pytest.raises(DecodeError):
        RewardAccount.decode(a.encode()[:-1])


def test_price_posts():
    p = Params(price_oracle=ORACLE, price_window_days=3)
    h = post_price((), p, ORACLE, 1, 1_000_000)
    h = post_price(h, p, ORACLE, 1, 2_000_000)      # same day: replaces
    for d in (2, 3, 4):
        h = post_price(h, p, ORACLE, d, d * 1_000_000)
    assert h == (DailyPrice(day=2, price=2_000_000), DailyPrice(day=3, price=3_000_000),
                 DailyPrice(day=4, price=4_000_000))
    assert price_average(h, p, 4) == (9_000_000, 3) and price_average(h, p, 3) == (5_000_000, 2)
    for sender, day, price, why in [(b"\x00" * 32, 5, 1, "oracle"), (ORACLE, 5, 0, "price must"),
                                    (ORACLE, 5, MAX_PRICE_MICRO_USD + 1, "price must"), (ORACLE, 3, 1, "comes after")]:
        with pytest.raises(InvalidPricePost, match=why):
            post_price(h, p, sender, day, price)
    with pytest.raises(InvalidPricePost, match="no price oracle"):
        post_price((), Params(), ORACLE, 1, 1)
