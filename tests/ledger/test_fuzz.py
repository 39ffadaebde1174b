"""Malformed bytes from the network: any corruption of a block or transaction is a clean
InvalidBlock / DecodeError, never another exception and never a change to the database."""
from __future__ import annotations

import pytest
from conftest import ALICE, BOB, CHAIN, V0, dump, make_genesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.errors import DecodeError, InvalidBlock
from ledger.genesis import NMT
from ledger.store import Store, build_block
from ledger.tx import Transaction, sign_tx
from ledger.txkinds.stake import StakeTx
from ledger.txkinds.transfer import Transfer


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    store = Store.create(tmp_path_factory.mktemp("fuzz") / "db", make_genesis(), sync=False)
    txs = [sign_tx(ALICE, CHAIN, 0, 1, Transfer(to=BOB.address, amount=NMT)),
           sign_tx(ALICE, CHAIN, 1, 0, StakeTx(validator=V0.address, amount=NMT, lock_days=2))]
    block = build_block(store, V0, txs, store.head.timestamp + 1000, 2)
    yield store, block.encode(), txs[0].encode()
    store.close()


mutations = st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=4)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutations, st.integers(0, 10**6), st.booleans())
def test_corrupted_block_bytes_are_rejected_cleanly(chain, flips, cut, truncate):
    store, data, _ = chain
    raw = bytearray(data)
    for pos, byte in flips:
        raw[pos % len(raw)] = byte
    if truncate:
        raw = raw[: cut % len(raw)]
    if bytes(raw) == data:
        return
    before = store.head
    with pytest.raises(InvalidBlock):
        store.import_block(bytes(raw))
    assert store.head == before


def test_rejections_leave_the_database_untouched(chain):
    store, data, _ = chain
    before = dump(store)
    for i in range(0, len(data), 97):
        with pytest.raises(InvalidBlock):
            store.import_block(data[:i] + bytes([data[i] ^ 0x55]) + data[i + 1:])
    assert dump(store) == before


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutations)
def test_corrupted_transactions_decode_or_fail_cleanly(chain, flips):
    _, _, tx_bytes = chain
    raw = bytearray(tx_bytes)
    for pos, byte in flips:
        raw[pos % len(raw)] = byte
    try:
        tx = Transaction.decode(bytes(raw))
    except DecodeError:
        return
    assert tx.encode() == bytes(raw)          # whatever decodes is canonical
