"""The LevelDB store: creation, re-opening, full verification on import, determinism, rewind."""
from __future__ import annotations

import dataclasses

import pytest
from conftest import ALICE, BOB, CAROL, CHAIN, KEYS, V0, V1, dump, make_genesis, next_block

from ledger.block import Block, make_header
from ledger.errors import GenesisError, InvalidBlock, InvalidTransaction, StoreError
from ledger.genesis import NMT, AllocationRow, GenesisAccount, GenesisValidator
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
    root, raw, proof = store.prove_account(BOB.address)
    assert root == store.head.state_root
    assert raw is not None and verify_proof(root, b"a" + BOB.address, raw, proof)
    root, raw, proof = store.prove_account(b"\x42" * 32)
    assert raw is None and verify_proof(root, b"a" + b"\x42" * 32, None, proof)


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

    def after(header, state):
        seen.append(("after", header.height, len(state.validator_set(header.timestamp))))
        if header.extra == b"veto":
            raise InvalidBlock("epoch block lists the wrong validators")

    store.consensus_check = check
    store.post_execution_check = after
    with pytest.raises(InvalidBlock, match="not in the validator set"):
        store.import_block(build_block(store, CAROL, [], store.head.timestamp + 1, 1))
    with pytest.raises(InvalidBlock, match="wrong validators"):
        store.import_block(build_block(store, V0, [], store.head.timestamp + 1, 2, extra=b"veto"))
    next_block(store)
    assert seen == [(0, 1, False), (0, 1, True), ("after", 1, 1), (0, 1, True), ("after", 1, 1)]


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


def test_builder_skips_bad_signatures_and_unencodable_txs(store):
    from ledger.tx import Transaction

    good = transfers(2)
    forged = Transaction(CHAIN, 2, ALICE.address, 0, Transfer(to=BOB.address, amount=1), b"\x01" * 64)
    broken = Transaction(CHAIN, 2, ALICE.address, -5, Transfer(to=BOB.address, amount=1))
    skipped = []
    blk = next_block(store, [good[0], forged, broken, good[1]], skipped=skipped)
    assert blk.txs == tuple(good)
    assert [str(e) for _, e in skipped] == ["bad signature", "bad signature"]


def test_check_tx_leaves_state_untouched(store):
    from ledger.execution import BlockContext, check_tx

    state = store.state()
    ctx = BlockContext.for_state(state, 1, store.head.timestamp + 1, V0.address)
    check_tx(state, ctx, transfers(1)[0])
    assert state.changes() == {}
    with pytest.raises(InvalidTransaction, match="nonce"):
        check_tx(state, ctx, transfers(1, 3)[0])


def test_reorg_to_a_stored_branch_and_back(store):
    next_block(store, transfers(2))
    b2 = next_block(store, transfers(2, 2))
    assert store.total_difficulty(b2.hash) == 4
    # build a side branch s2 <- s3 on b1, then return to b2
    store.rewind_head()
    s2 = next_block(store, [sign_tx(BOB, CHAIN, 0, 0, Transfer(to=CAROL.address, amount=NMT))], dt_ms=3000)
    s3 = next_block(store, transfers(1, 2), dt_ms=3000)
    side_root = store.state_root
    store.reorg_to(b2.hash)
    assert store.head == b2.header and store.get_block(2) == b2
    assert store.account(BOB.address).nonce == 0 and store.get_tx(s2.txs[0].hash) is None
    assert store.total_difficulty(s3.hash) == 6 > store.total_difficulty(b2.hash)
    store.reorg_to(s3.hash)
    assert store.head == s3.header and store.state_root == side_root
    assert store.get_tx(s2.txs[0].hash)[2] == 2 and store.get_tx(b2.txs[1].hash) is None
    store.state().audit()


def test_put_block_checks_headers_and_a_bad_branch_restores_the_old_chain(store):
    b1 = next_block(store, transfers(2))
    b2 = next_block(store, transfers(2, 2))
    store.rewind_head()
    good = build_block(store, V0, [], store.head.timestamp + 3000, 1)
    store.import_block(good)
    bad3 = _reseal(build_block(store, V0, [], store.head.timestamp + 3000, 1), state_root=b"\x05" * 32)
    store.rewind_head()
    store.reorg_to(b2.hash)
    with pytest.raises(InvalidBlock, match="seal"):
        store.put_block(Block(header=dataclasses.replace(bad3.header, height=3, seal=b"\x00" * 64), txs=()))
    with pytest.raises(UnknownParent):
        store.put_block(_reseal(bad3, parent_hash=b"\x01" * 32))
    assert store.put_block(bad3) == 2 + 1 + 1      # b1 in turn, two out-of-turn blocks
    before = dump(store)
    with pytest.raises(InvalidBlock, match="state root"):
        store.reorg_to(bad3.hash)
    assert store.head == b2.header and store.get_block(1) == b1
    after = dump(store)
    assert {k: v for k, v in after.items() if k[:1] in b"shnt"} == {k: v for k, v in before.items() if k[:1] in b"shnt"}


@pytest.mark.parametrize("change, message", [
    (dict(validators=(GenesisValidator(V0.address, 99 * NMT, "v0"),)), "below min_validator_stake"),
    (dict(total_supply=1), "total_supply 1 !="),
    (dict(accounts=(GenesisAccount(ALICE.address, 1), GenesisAccount(ALICE.address, 2))), "listed twice"),
    (dict(allocation=(AllocationRow("x", 5, 0, 1),)), "exactly one of pool or account"),
])
def test_bad_genesis_creates_nothing(tmp_path, change, message):
    with pytest.raises(GenesisError, match=message):
        Store.create(tmp_path / "db", make_genesis(**change))
    assert not (tmp_path / "db").exists()


def test_interrupted_init_is_reported_not_half_used(tmp_path):
    import plyvel

    plyvel.DB(str(tmp_path / "db"), create_if_missing=True).close()   # what a kill during create leaves
    with pytest.raises(StoreError, match="no head block"):
        Store.open(tmp_path / "db")
    with pytest.raises(StoreError, match="not empty"):
        Store.create(tmp_path / "db", make_genesis())


@pytest.mark.timeout(60)
def test_readers_in_another_thread_see_whole_heads(store):
    import threading

    blocks = []
    for n in range(6):
        blocks.append(next_block(store, transfers(40, 40 * n)))
    for _ in blocks:
        store.rewind_head()
    roots = {b.header.state_root for b in blocks} | {store.state_root}
    stop, problems, checked = threading.Event(), [], [0]

    def reader():
        while not stop.is_set():
            root, raw, proof = store.prove_account(BOB.address)
            if root not in roots or not verify_proof(root, b"a" + BOB.address, raw, proof):
                problems.append("proof mixes two heads")
            store.state().audit()
            checked[0] += 1

    t = threading.Thread(target=reader)
    t.start()
    try:
        for b in blocks:
            store.import_block(b.encode())
    finally:
        stop.set()
        t.join()
    assert not problems and checked[0] > 0 and store.head == blocks[-1].header


def _state_and_trie(store):
    return {k: v for k, v in dump(store).items() if k[:1] in b"sn"}


def test_rewind_restores_every_byte_of_state_and_trie(store):
    """Mixed blocks (transfers, staking, unbonding releases, vesting claims, registrations), then
    rewind one by one: each step gives back exactly the earlier state and trie, byte for byte."""
    import random

    from ledger.txkinds.claim_vested import ClaimVested
    from ledger.txkinds.register_validator import RegisterValidator
    from ledger.txkinds.unstake import Unstake

    rnd = random.Random(5)
    nonce = {}

    def tx(key, body, fee=0):
        n = nonce.get(key.address, 0)
        nonce[key.address] = n + 1
        return sign_tx(key, CHAIN, n, fee, body)

    snapshots = [_state_and_trie(store)]
    plan = [
        [tx(V1, RegisterValidator(name="v1", stake=150 * NMT)),
         tx(ALICE, StakeTx(validator=V0.address, amount=30 * NMT, lock_days=0), fee=7)],
        [tx(ALICE, Unstake(validator=V0.address, amount=10 * NMT, long_term=False)),
         tx(BOB, StakeTx(validator=V1.address, amount=5 * NMT, lock_days=1))],
        [tx(KEYS[5], ClaimVested())],
        [tx(CAROL, Transfer(to=KEYS[7].address, amount=rnd.randrange(1, NMT)), fee=3) for _ in range(5)],
        [tx(BOB, Unstake(validator=V1.address, amount=5 * NMT, long_term=True))],
    ]
    dts = [2000, 2000, 2_000_000, 70_000, 200_000]     # the 3rd block passes the vesting cliff and
    for txs, dt in zip(plan, dts, strict=True):         # releases the unbonding (begin-block hook)
        skipped = []
        next_block(store, txs, dt_ms=dt, skipped=skipped)
        assert not skipped, skipped
        store.state().audit()
        snapshots.append(_state_and_trie(store))
    assert store.account(KEYS[7].address).balance > 0 and store.state().unbondings_of(ALICE.address) == []
    for want in reversed(snapshots[:-1]):
        store.rewind_head()
        assert _state_and_trie(store) == want
