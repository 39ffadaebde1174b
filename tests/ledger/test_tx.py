"""Transactions: encoding, signatures, and the replay / balance / fee rules."""
from __future__ import annotations

import msgpack
import pytest
from conftest import ALICE, BOB, CHAIN, PARAMS, V0, dump, next_block

from ledger.block import Block
from ledger.errors import DecodeError, InvalidBlock, InvalidTransaction
from ledger.execution import BlockContext, apply_tx
from ledger.genesis import NMT
from ledger.store import build_block
from ledger.tx import Transaction, check_stateless, sign_tx, verify_signature
from ledger.txkinds.stake import StakeTx
from ledger.txkinds.transfer import Transfer


def transfer(key=ALICE, nonce=0, amount=NMT, fee=10, to=BOB, chain=CHAIN):
    return sign_tx(key, chain, nonce, fee, Transfer(to=to.address, amount=amount))


def test_round_trip_and_hash():
    tx = transfer()
    data = tx.encode()
    again = Transaction.decode(data)
    assert again == tx and again.hash == tx.hash and again.encode() == data
    assert verify_signature(again)
    assert again.body == Transfer(to=BOB.address, amount=NMT)


def test_decode_rejects_unknown_kind_and_bad_body():
    plain = dict(transfer().to_plain())
    bad_kind = dict(plain, kind="mint")
    with pytest.raises(DecodeError, match="unknown transaction kind 'mint'"):
        Transaction.decode(msgpack.packb(bad_kind, use_bin_type=True))
    bad_body = dict(plain, body={"amount": b"\x01", "to": b"short"})
    with pytest.raises(DecodeError, match=r"tx\.body\.to: expected 32 bytes"):
        Transaction.decode(msgpack.packb(bad_body, use_bin_type=True))
    wrong_body = dict(plain, kind="stake")  # a transfer body under the stake kind
    with pytest.raises(DecodeError, match="missing field"):
        Transaction.decode(msgpack.packb(wrong_body, use_bin_type=True))
    extra = dict(plain, zzz=1)
    with pytest.raises(DecodeError, match="unknown field"):
        Transaction.decode(msgpack.packb(extra, use_bin_type=True))
    with pytest.raises(DecodeError, match="trailing"):
        Transaction.decode(transfer().encode() + b"\x00")


def test_signature_covers_every_field():
    tx = transfer()
    for change in [dict(nonce=1), dict(fee=11), dict(chain_id="other"), dict(sender=BOB.address)]:
        fields = dict(chain_id=tx.chain_id, nonce=tx.nonce, sender=tx.sender, fee=tx.fee, body=tx.body,
                      signature=tx.signature)
        fields.update(change)
        forged = Transaction(**fields)
        assert not verify_signature(forged)
        with pytest.raises(InvalidTransaction, match="bad signature"):
            check_stateless(forged, PARAMS)
    other_body = Transaction(tx.chain_id, tx.nonce, tx.sender, tx.fee, Transfer(to=BOB.address, amount=2 * NMT),
                             tx.signature)
    assert not verify_signature(other_body)


def test_stateless_limits():
    with pytest.raises(InvalidTransaction, match="must be positive"):
        check_stateless(transfer(amount=0), PARAMS)
    big = transfer()
    with pytest.raises(InvalidTransaction, match="over the limit"):
        check_stateless(big, PARAMS.__class__(max_tx_bytes=big.size - 1))
    with pytest.raises(InvalidTransaction, match="long-term lock"):
        check_stateless(sign_tx(ALICE, CHAIN, 0, 0, StakeTx(validator=V0.address, amount=1, lock_days=31)), PARAMS)


def _ctx(store):
    state = store.state()
    return state, BlockContext.for_state(state, store.height + 1, store.head.timestamp + 1000, V0.address)


@pytest.mark.parametrize("tx, message", [
    (transfer(chain="other-chain"), "wrong chain id"),
    (transfer(nonce=1), "nonce 1 .* too high"),
    (transfer(amount=1001 * NMT), "insufficient balance for the transfer"),
    (transfer(amount=1000 * NMT, fee=1), "insufficient balance for the fee"),
])
def test_stateful_rejections_change_nothing(store, tx, message):
    state, ctx = _ctx(store)
    with pytest.raises(InvalidTransaction, match=message):
        apply_tx(state, ctx, tx)
    assert state.changes() == {}


def test_fee_goes_to_proposer_and_nonce_advances(store):
    before_v = store.account(V0.address).balance
    next_block(store, [transfer(fee=777)], proposer=V0)
    assert store.account(ALICE.address).nonce == 1
    assert store.account(ALICE.address).balance == 1000 * NMT - NMT - 777
    assert store.account(BOB.address).balance == 1001 * NMT
    assert store.account(V0.address).balance == before_v + 777


def test_replay_rejected_at_import(store):
    tx = transfer()
    next_block(store, [tx])
    skipped = []
    next_block(store, [tx, transfer(nonce=5)], skipped=skipped)
    assert [str(e) for _, e in skipped][0].startswith("nonce 0 of")
    assert "already used" in str(skipped[0][1]) and "a gap" in str(skipped[1][1])
    # a proposer that includes the replay anyway produces an invalid block
    good = build_block(store, V0, [], store.head.timestamp + 2000, 2)
    forged = Block(header=good.header, txs=(tx,))
    before = dump(store)
    with pytest.raises(InvalidBlock, match="transaction root"):
        store.import_block(forged)
    assert dump(store) == before


def test_block_with_bad_signature_or_invalid_tx_is_rejected_whole(store):
    ok = transfer(nonce=0)
    bad_sig = Transaction(CHAIN, 1, ALICE.address, 10, Transfer(to=BOB.address, amount=1), bytes(64))
    before, head = dump(store), store.head
    block = build_block(store, V0, [ok], store.head.timestamp + 2000, 2)
    # re-seal a block whose body carries the bad-signature tx and matching roots
    from ledger.block import make_header
    txs = (ok, bad_sig)
    hdr = make_header(store.head, block.header.timestamp, V0.address, 2, txs, block.header.state_root).sealed(V0)
    with pytest.raises(InvalidBlock, match="transaction 1 has a bad signature"):
        store.import_block(Block(header=hdr, txs=txs))
    overspend = transfer(nonce=1, amount=10_000 * NMT)
    txs = (ok, overspend)
    hdr = make_header(store.head, block.header.timestamp, V0.address, 2, txs, block.header.state_root).sealed(V0)
    with pytest.raises(InvalidBlock, match="transaction 1 is invalid: insufficient balance"):
        store.import_block(Block(header=hdr, txs=txs))
    assert dump(store) == before and store.head == head
    store.import_block(block)
    assert store.height == 1


def test_standalone_decode_is_size_bounded():
    data = transfer().encode()
    with pytest.raises(DecodeError, match="over the limit"):
        Transaction.decode(data, max_size=len(data) - 1)
    with pytest.raises(DecodeError, match="over the limit of 65536"):
        Transaction.decode(data + b"\x00" * 70_000)
