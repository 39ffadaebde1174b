"""register_validator: become a validator candidate by staking at least Params.min_validator_stake.

The initial stake is flexible self-stake (it can later be unstaked like any flexible stake; a
candidate whose self-stake drops below the minimum stays registered but leaves the validator-set
index until it stakes again).
"""

from __future__ import annotations

from typing import Annotated

from ledger.codec import BigUInt, Str
from ledger.errors import InvalidTransaction
from ledger.keys import address_to_text
from ledger.registry import TxBody, tx_kind
from ledger.state import FLEXIBLE, Candidate


@tx_kind("register_validator")
class RegisterValidator(TxBody):
    name: Annotated[str, Str(64)]
    stake: Annotated[int, BigUInt(32)]

    def check(self, params):
        if not self.name.strip() or not self.name.isprintable():
            raise InvalidTransaction("a validator name must be non-empty printable text")
        if self.stake < params.min_validator_stake:
            raise InvalidTransaction(f"self-stake {self.stake} is below the minimum of {params.min_validator_stake}")

    def apply(self, state, ctx, tx):
        if state.candidate(tx.sender) is not None:
            raise InvalidTransaction(f"{address_to_text(tx.sender)} is already a validator candidate")
        state.debit(tx.sender, self.stake, "the self-stake")
        state.set_candidate(tx.sender, Candidate(name=self.name, self_stake=0, delegated=0, long_term=0,
                                                 jailed_until_ms=0, registered_height=ctx.height))
        state.change_stake(tx.sender, tx.sender, FLEXIBLE, self.stake)
