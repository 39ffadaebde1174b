"""Adding a transaction kind is one class in one module: this test module adds one and uses it
through signing, encoding, block building and import, editing nothing else."""
from __future__ import annotations

from typing import Annotated

import pytest
from conftest import ALICE, CHAIN, V0, next_block

from ledger import sigs
from ledger.codec import Record, Str, UInt, record
from ledger.errors import InvalidTransaction
from ledger.registry import KINDS, TxBody, tx_kind
from ledger.state import register_state_prefix
from ledger.trie import verify_proof
from ledger.tx import Transaction, sign_tx


@record
class NoteCount(Record):
    count: Annotated[int, UInt(32)]
    last: Annotated[str, Str(32)]


register_state_prefix(b"N", NoteCount)      # the module's own state records


@tx_kind("test_note")
class Note(TxBody):
    """A toy kind: records how many notes an account wrote, in its own state key."""

    text: Annotated[str, Str(32)]

    def check(self, params):
        if not self.text:
            raise InvalidTransaction("empty note")

    def apply(self, state, ctx, tx):
        cur = state.get(b"N" + tx.sender)
        state.put(b"N" + tx.sender, NoteCount(count=(cur.count if cur else 0) + 1, last=self.text))


def test_a_new_kind_works_end_to_end(store):
    assert KINDS["test_note"] is Note
    tx = sign_tx(ALICE, CHAIN, 0, 3, Note(text="hello"))
    assert Transaction.decode(tx.encode()) == tx
    skipped = []
    blk = next_block(store, [tx, sign_tx(ALICE, CHAIN, 1, 0, Note(text=""))], skipped=skipped)
    assert blk.txs == (tx,) and "empty note" in str(skipped[0][1])
    assert store.state().get(b"N" + ALICE.address) == NoteCount(count=1, last="hello")
    root, raw, proof = store.prove(b"N" + ALICE.address)
    assert verify_proof(root, b"N" + ALICE.address, raw, proof)
    with pytest.raises(ValueError, match="already used"):
        register_state_prefix(b"a", NoteCount)
    assert store.account(V0.address).balance > 0


@pytest.mark.parametrize("n", [1, 300])
def test_parallel_verification_matches_serial(n):
    good = [(ALICE.address, b"m%d" % i, ALICE.sign(b"m%d" % i)) for i in range(n)]
    items = [(a, m, s if i % 7 else s[:-1] + bytes([s[-1] ^ 1])) for i, (a, m, s) in enumerate(good)]
    serial = [sigs.verify(*it) for it in items]
    assert sigs.verify_many(items) == serial == sigs.verify_many_async(items)()
    assert serial.count(False) == len(range(0, n, 7))
