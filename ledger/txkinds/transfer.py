"""transfer: move base units from the sender's balance to another account."""

from __future__ import annotations

from typing import Annotated

from ledger.codec import BigUInt, Bytes
from ledger.errors import InvalidTransaction
from ledger.registry import TxBody, tx_kind


@tx_kind("transfer")
class Transfer(TxBody):
    to: Annotated[bytes, Bytes(32)]
    amount: Annotated[int, BigUInt(32)]

    def check(self, params):
        if self.amount == 0:
            raise InvalidTransaction("transfer amount must be positive")

    def apply(self, state, ctx, tx):
        state.debit(tx.sender, self.amount, "the transfer")
        state.credit(self.to, self.amount)
