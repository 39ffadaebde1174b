"""Executing transactions and blocks against a `State`: the deterministic heart of the ledger.

`apply_tx` runs the rules common to every kind (chain id, exact nonce, fee) around the kind's own
`apply`, inside a journal snapshot: on any error the state is reverted to exactly what it was, so
a rejected transaction changes nothing. `execute_block` runs the begin-block hooks, the
transactions in order, and the end-block hooks (see `ledger.registry`). Time inside execution is
only ever the block's timestamp (`ctx.timestamp_ms`): never the wall clock.

Order inside one transaction: kind effect, then the fee (sender -> proposer), then nonce + 1. So
a sender must afford amount + fee, and a claim of vested tokens can pay its own fee.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ledger.errors import InvalidTransaction, LedgerError
from ledger.genesis import Params
from ledger.keys import address_to_text
from ledger.registry import hooks
from ledger.state import Account, InsufficientFunds, State
from ledger.tx import Transaction

ZERO_HASH = bytes(32)


@dataclass(frozen=True)
class BlockContext:
    """What a transaction may know about the block it is in.

    `parent_hash` is the hash of the block this one builds on (known to the builder and to every
    importer before execution; the block's own hash is not, since it commits to the state root).
    The jobs beacon mixes it in so a proposer cannot steer its draws by trying timestamps alone.
    """

    chain_id: str
    height: int
    timestamp_ms: int
    proposer: bytes
    params: Params
    allocation_start: int
    parent_hash: bytes = ZERO_HASH

    @property
    def now_s(self) -> int:
        return self.timestamp_ms // 1000

    @classmethod
    def for_state(cls, state: State, height: int, timestamp_ms: int, proposer: bytes,
                  parent_hash: bytes = ZERO_HASH) -> BlockContext:
        """`parent_hash` defaults to zeros only for contexts that never run the block hooks (a
        mempool's `check_tx`); block building and import always pass the real parent."""
        chain = state.chain
        return cls(chain.chain_id, height, timestamp_ms, proposer, state.params, chain.allocation_start,
                   parent_hash)


def apply_tx(state: State, ctx: BlockContext, tx: Transaction) -> None:
    """Apply one (already signature-checked) transaction, or raise InvalidTransaction and change nothing."""
    if tx.chain_id != ctx.chain_id:
        raise InvalidTransaction(f"wrong chain id {tx.chain_id!r} (this chain is {ctx.chain_id!r})")
    acc = state.account(tx.sender)
    if tx.nonce != acc.nonce:
        what = "already used" if tx.nonce < acc.nonce else "too high (a gap)"
        raise InvalidTransaction(f"nonce {tx.nonce} of {address_to_text(tx.sender)} is {what}; "
                                 f"the next nonce is {acc.nonce}")
    snap = state.snapshot()
    try:
        tx.body.apply(state, ctx, tx)
        acc = state.account(tx.sender)
        if acc.balance < tx.fee:
            raise InsufficientFunds(f"insufficient balance for the fee: {address_to_text(tx.sender)} has "
                                    f"{acc.balance} base units, needs {tx.fee}")
        state.set_account(tx.sender, Account(balance=acc.balance - tx.fee, nonce=acc.nonce + 1))
        state.credit(ctx.proposer, tx.fee)
    except LedgerError as exc:
        state.revert(snap)
        if isinstance(exc, InvalidTransaction):
            raise
        raise InvalidTransaction(str(exc)) from exc


def check_tx(state: State, ctx: BlockContext, tx: Transaction) -> None:
    """Would `tx` apply on top of `state` in a block like `ctx`? Raises InvalidTransaction if not;
    leaves `state` unchanged either way (a mempool's admission check; signatures are separate)."""
    snap = state.snapshot()
    try:
        apply_tx(state, ctx, tx)
    finally:
        state.revert(snap)


def begin_block(state: State, ctx: BlockContext) -> None:
    for fn in hooks("begin"):
        fn(state, ctx)


def end_block(state: State, ctx: BlockContext) -> None:
    for fn in hooks("end"):
        fn(state, ctx)


def execute_block(state: State, ctx: BlockContext, txs: Iterable[Transaction]) -> None:
    """Apply a whole block; raise InvalidTransaction (with `.index` set) at the first bad transaction."""
    begin_block(state, ctx)
    for i, tx in enumerate(txs):
        try:
            apply_tx(state, ctx, tx)
        except InvalidTransaction as exc:
            exc.index = i  # type: ignore[attr-defined]
            raise
    end_block(state, ctx)
