"""The LevelDB store: creation, re-opening, full verification on import, determinism, rewind."""
from __future__ import annotations

import dataclasses

import pytest
from conftest import ALICE, BOB, CAROL, CHAIN, KEYS, V0, V1, dump, make_genesis, next_block

from ledger.block import Block, make_header
from ledger.errors import InvalidBlock, StoreError
from ledger.genesis import NMT
from ledger.store import NotOnHead, Store, UnknownParent, build_block
from ledger.trie import build_root, verify_proof
from ledger.tx import sign_tx
from ledger.txkinds.stake import StakeTx
from ledger.txkinds.transfer import Transfer


def transfers(n, start_nonce=0, key=ALICE):
    return [sign_tx(key, CHAIN, start_nonce + i, i, Transfer(to=KEYS[i % 8].address, amount=1000 + i))
            for i in range(n)]


def test_create_refuses_existing_and_open_checks(tmp_path, genesis):
    path = tmp_path / "db"
    s = Store.create(path, genesis, sync=False)
    assert s.height == 0 and s.head.proposer == bytes(32) and s.head.seal == b""
    assert s.get_block(0).hash == s.genesis_hash == s.head_hash
    with pytest.raises(StoreError, match="in use by another process"):
        Store.open(path)
    s.close()
    with pytest.raises(StoreError, match="already exists"):
        Store.create(path, genesis)
    with pytest.raises(StoreError, match="no chain database"):
        Store.open(tmp_path / "missing")
    s = Store.open(path)
    assert s.chain_id == CHAIN and s.params == genesis.params
    s.close()


def test_genesis_is_deterministic_and_committed(tmp_path, genesis):
    a = Store.create(tmp_path / "a", genesis, sync=False)
    b = Store.create(tmp_path / "b", genesis, sync=False)
    assert a.genesis_hash == b.genesis_hash
    c = Store.create(tmp_path / "c", make_genesis(chain_id="other"), sync=False)
    assert c.genesis_hash != a.genesis_hash and c.state_root != a.state_root
    state_items = [(k[1:], v) for k, v in dump(a).items() if k[:1] == b"s"]
    assert build_root(state_items) == a.state_root
    for s in (a, b, c):
        s.close()


def test_two_stores_fed_the_same_blocks_agree(tmp_path, genesis):
    a = Store.create(tmp_path / "a", genesis, sync=False)
    b = Store.create(tmp_path / "b", genesis, sync=False)
    blocks = [next_block(a, transfers(20)), next_block(a, transfers(5, 20) + [
        sign_tx(BOB, CHAIN, 0, 3, StakeTx(validator=V0.address, amount=5 * NMT, lock_days=2))])]
    for blk in blocks:
        b.import_block(blk.encode())
    assert a.head_hash == b.head_hash and a.state_root == b.state_root
    assert {k: v for k, v in dump(a).items() if k[:1] in b"sn"} == {k: v for k, v in dump(b).items() if k[:1] in b"sn"}
    a.close()
    b.close()


def test_blocks_and_txs_are_found(store):
    txs = transfers(3)
    blk = next_block(store, txs)
    assert store.get_block(1) == blk and store.get_block(blk.hash) == blk
    assert store.get_header(1) == blk.header and store.get_block(2) is None
    tx, bh, height, idx = store.get_tx(txs[2].hash)
    assert (tx, bh, height, idx) == (txs[2], blk.hash, 1, 2)
    assert store.get_tx(b"\x00" * 32) is None


def test_account_proof_against_the_header_root(store):
    next_block(store, transfers(4))
    raw, proof = store.prove_account(BOB.address)
    assert raw is not None and verify_proof(store.head.state_root, b"a" + BOB.address, raw, proof)
    raw, proof = store.prove_account(b"\x42" * 32)
    assert raw is None and verify_proof(store.head.state_root, b"a" + b"\x42" * 32, None, proof)


def _reseal(block, key=V0, **changes):
    hdr = dataclasses.replace(block.header, seal=b"", **changes)
    if "proposer" not in changes:
        hdr = dataclasses.replace(hdr, proposer=key.address)
    return Block(header=hdr.sealed(key), txs=block.txs)


@pytest.mark.parametrize("mutate, message", [
    (lambda s, b: _reseal(b, height=5), "height 5 does not follow"),
    (lambda s, b: _reseal(b, timestamp=s.head.timestamp), "is not after the parent"),
    (lambda s, b: _reseal(b, difficulty=3), "difficulty 3"),
    (lambda s, b: _reseal(b, chain_id="x"), "chain id 'x'"),
    (lambda s, b: _reseal(b, state_root=b"\x01" * 32), "state root"),
    (lambda s, b: _reseal(b, tx_root=b"\x01" * 32), "transaction root"),
    (lambda s, b: Block(header=dataclasses.replace(b.header, seal=b"\x00" * 64), txs=b.txs), "seal is not a valid"),
    (lambda s, b: Block(header=dataclasses.replace(b.header, seal=b""), txs=b.txs), "seal is not a valid"),
    (lambda s, b: _reseal(b, key=V1), "state root"),     # fees would go to another proposer
    (lambda s, b: Block(header=b.header, txs=b.txs[:-1]), "transaction root"),
    (lambda s, b: Block(header=b.header, txs=b.txs[::-1]), "transaction root"),
    (lambda s, b: b.encode()[:-1], "malformed block"),
    (lambda s, b: b.encode() + b"\x00", "malformed block"),
    (lambda s, b: _reseal(b, parent_hash=b"\x07" * 32), "unknown parent"),
])
def test_import_rejects_with_a_precise_reason_and_changes_nothing(store, mutate, message):
    next_block(store, transfers(2))
    good = build_block(store, V0, transfers(3, 2), store.head.timestamp + 2000, 2)
    before, head = dump(store), store.head
    with pytest.raises(InvalidBlock, match=message):
        store.import_block(mutate(store, good))
    assert dump(store) == before and store.head == head
    store.import_block(good)                # the honest block still imports afterwards
    assert store.height == 2


def test_oversized_block_and_too_many_txs(tmp_path):
    g = make_genesis(params=dataclasses.replace(make_genesis().params, max_block_txs=3, max_block_bytes=4000))
    s = Store.create(tmp_path / "db", g, sync=False)
    blk = build_block(s, V0, transfers(5), s.head.timestamp + 1, 2)
    assert len(blk.txs) == 3                # the builder stops at the limit
    hdr = make_header(s.head, blk.header.timestamp, V0.address, 2, tuple(transfers(4)), blk.header.state_root)
    with pytest.raises(InvalidBlock, match="4 transactions, over the limit of 3"):
        s.import_block(Block(header=hdr.sealed(V0), txs=tuple(transfers(4))))
    big = Block(header=blk.header, txs=tuple(transfers(40)))
    with pytest.raises(InvalidBlock, match="over the limit of 4000"):
        s.import_block(big.encode())
    s.close()


def test_consensus_hook_can_veto(store):
    seen = []

    def check(parent, header, state):
        seen.append((parent.height, header.height, state.candidate(header.proposer) is not None))
        if header.proposer != V0.address:
            raise InvalidBlock(f"proposer of block {header.height} is not in the validator set")

    store.consensus_check = check
    with pytest.raises(InvalidBlock, match="not in the validator set"):
        store.import_block(build_block(store, CAROL, [], store.head.timestamp + 1, 1))
    next_block(store)
    assert seen == [(0, 1, False), (0, 1, True)]


def test_side_chain_blocks_are_stored_not_executed_and_rewind(store):
    b1 = next_block(store, transfers(2))
    b2 = next_block(store, transfers(2, 2))
    root1 = b1.header.state_root
    sibling = build_block(store, V0, [], store.head.timestamp + 5, 1)
    store.rewind_head()
    assert store.head == b1.header and store.state_root == root1
    assert store.account(ALICE.address).nonce == 2 and store.get_tx(b2.txs[0].hash) is None
    assert store.get_block(2) is None and store.get_block(b2.hash) == b2   # kept by hash
    with pytest.raises(NotOnHead):
        store.import_block(sibling)
    store.import_block(b2)
    assert store.head == b2.header and store.account(ALICE.address).nonce == 4
    store.put_block(sibling)
    assert store.get_block(sibling.hash) == sibling and store.head == b2.header
    with pytest.raises(UnknownParent):
        store.import_block(build_block(store, V0, [], store.head.timestamp + 5, 1).__class__(
            header=_reseal(b2, parent_hash=b"\x09" * 32).header, txs=()))
    for _ in range(2):
        store.rewind_head()
    assert store.height == 0 and dump(store)[b"H" + store.genesis_hash]
    with pytest.raises(StoreError, match="genesis"):
        store.rewind_head()
    store.state().audit()


def test_reopen_keeps_everything(tmp_path, genesis):
    s = Store.create(tmp_path / "db", genesis)
    blk = next_block(s, transfers(3))
    s.close()
    s = Store.open(tmp_path / "db")
    assert s.head == blk.header and s.account(ALICE.address).nonce == 3
    next_block(s, transfers(1, 3))
    assert s.height == 2
    s.close()
