"""The NMT price the mining reward converts with: daily oracle prices and their 7-day average.

Why an oracle account: the chain cannot see a market. Genesis names one `Params.price_oracle`
account; a price transaction from it posts the NMT price of the block's day in integer micro-USD
per NMT (1 USD = 10**6). A later post on the same day replaces the earlier one. The average is the
exact rational sum/count of the last `price_window_days` (7) daily prices of days up to the day
being settled; days without a post are skipped, not counted as zero. Until any price is posted the
genesis price (`genesis_price_micro_usd`) stands in; if that is 0 too, no mining reward is issued
(the whole cap stays in the mining pool), since VC in dollars cannot be turned into NMT.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated

from ledger.codec import Record, UInt, record
from ledger.economics.errors import InvalidPricePost
from ledger.genesis import Params

#: A price above this (10**12 USD per NMT) is a typo, not a market.
MAX_PRICE_MICRO_USD = 10**18


@record
class DailyPrice(Record):
    day: Annotated[int, UInt(32)]
    price: Annotated[int, UInt(64)]     # micro-USD per NMT


def post_price(history: Iterable[DailyPrice], params: Params, sender: bytes, day: int,
               price: int) -> tuple[DailyPrice, ...]:
    """The price history after `sender` posts `price` for `day` (the block's day).

    Only the genesis oracle may post; the price must be in 1..MAX_PRICE_MICRO_USD; posts for a day
    older than the newest recorded are refused (history only grows forward). Keeps the newest
    `price_window_days` entries, ascending by day, so the state stores a bounded list.
    """
    if params.price_oracle is None:
        raise InvalidPricePost("this chain has no price oracle (genesis price_oracle is not set)")
    if sender != params.price_oracle:
        raise InvalidPricePost("only the genesis price oracle account may post the NMT price")
    if type(price) is not int or not 0 < price <= MAX_PRICE_MICRO_USD:
        raise InvalidPricePost(f"price must be 1..{MAX_PRICE_MICRO_USD} micro-USD per NMT, got {price!r}")
    hist = sorted(history, key=lambda p: p.day)
    if hist and day < hist[-1].day:
        raise InvalidPricePost(f"a price for day {day} comes after the price of day {hist[-1].day}")
    hist = [p for p in hist if p.day != day] + [DailyPrice(day=day, price=price)]
    return tuple(hist[-params.price_window_days:])


def price_average(history: Iterable[DailyPrice], params: Params, day: int) -> tuple[int, int]:
    """(sum, count) of the last `price_window_days` daily prices of days <= `day`, so the average is
    sum/count exactly; falls back to (genesis_price, 1), then (0, 0) when no price is known."""
    prices = sorted((p for p in history if p.day <= day), key=lambda p: p.day)[-params.price_window_days:]
    if prices:
        return sum(p.price for p in prices), len(prices)
    if params.genesis_price_micro_usd > 0:
        return params.genesis_price_micro_usd, 1
    return 0, 0
