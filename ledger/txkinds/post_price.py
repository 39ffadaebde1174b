"""post_price: the genesis price oracle posts the NMT price of the block's day (micro-USD per NMT).

The mining reward converts the day's computing value into NMT with the average of the last 7 daily
prices (ledger/ECONOMICS.md); only `Params.price_oracle` may post, a later post the same day
replaces the earlier one.
"""

from __future__ import annotations

from typing import Annotated

from ledger.codec import UInt
from ledger.economics import ledger_state
from ledger.errors import InvalidTransaction
from ledger.registry import TxBody, tx_kind


@tx_kind("post_price")
class PostPrice(TxBody):
    price_micro_usd: Annotated[int, UInt(64)]

    def check(self, params):
        if self.price_micro_usd == 0:
            raise InvalidTransaction("the NMT price must be positive")

    def apply(self, state, ctx, tx):
        ledger_state.record_price(state, tx.sender, ctx.now_s, self.price_micro_usd)
