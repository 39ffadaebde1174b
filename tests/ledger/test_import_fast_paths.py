"""The import path's shortcuts give exactly what the plain path gives.

Each shortcut (see scripts/bench/ledger.py for why they exist) is checked against the slow,
obviously-right computation: the store's cache of decoded head values against a cold read of the
database, transaction encodings sliced out of a block against re-encoding, signing bytes sliced
out of the encoding against packing the unsigned map, decode errors against their full location,
and work-shared signature verification against one-by-one verification.
"""
from __future__ import annotations

import msgpack
import pytest
from conftest import ALICE, BOB, CAROL, CHAIN, KEYS, V0, dump, next_block

from ledger import sigs
from ledger.block import Block
from ledger.errors import DecodeError
from ledger.genesis import NMT
from ledger.state import decode_value
from ledger.store import Store
from ledger.tx import SIGN_TAG, Transaction, sign_tx
from ledger.txkinds.stake import StakeTx
from ledger.txkinds.transfer import Transfer
from ledger.txkinds.unstake import Unstake


def _mixed_blocks(store: Store) -> list[Block]:
    """Transfers, a stake, an unstake and the release of its unbonding (a deleted key)."""
    nonce: dict[bytes, int] = {}

    def tx(key, body, fee=0):
        n = nonce.get(key.address, 0)
        nonce[key.address] = n + 1
        return sign_tx(key, CHAIN, n, fee, body)

    plan = [
        [tx(ALICE, Transfer(to=KEYS[6].address, amount=5 * NMT), fee=2) for _ in range(3)],
        [tx(BOB, StakeTx(validator=V0.address, amount=40 * NMT, lock_days=0)),
         tx(KEYS[6], Transfer(to=CAROL.address, amount=NMT), fee=1)],
        [tx(BOB, Unstake(validator=V0.address, amount=40 * NMT, long_term=False))],
        [tx(CAROL, Transfer(to=ALICE.address, amount=7), fee=1)],
    ]
    blocks = [next_block(store, txs) for txs in plan]
    blocks.append(next_block(store, [tx(ALICE, Transfer(to=BOB.address, amount=3))], dt_ms=120_000))
    return blocks


def test_value_cache_always_equals_the_database(tmp_path, genesis):
    warm = Store.create(tmp_path / "warm", genesis, sync=False)
    blocks = _mixed_blocks(warm)
    assert warm._values, "the cache was never filled"
    for key, (raw, value) in warm._values.items():
        stored = warm._db.get(b"s" + key)
        assert raw == stored, key
        assert value == (None if stored is None else decode_value(key, stored)), key
    # a store reopened before every block (always cold) computes the same states
    Store.create(tmp_path / "cold", genesis, sync=False).close()
    for blk in blocks:
        cold = Store.open(tmp_path / "cold", sync=False)
        cold.import_block(blk.encode())
        cold.close()
    cold = Store.open(tmp_path / "cold", sync=False)
    assert cold.state_root == warm.state_root
    assert {k: v for k, v in dump(cold).items() if k[:1] in b"sn"} == \
           {k: v for k, v in dump(warm).items() if k[:1] in b"sn"}
    # rewinding forgets the cache; importing again gives the same head
    head = warm.head
    warm.rewind_head()
    assert not warm._values
    warm.import_block(blocks[-1].encode())
    assert warm.head == head
    cold.close()
    warm.close()


def test_transaction_bytes_sliced_from_a_block_are_their_encodings(store):
    txs = [sign_tx(ALICE, CHAIN, i, i * 10**20, Transfer(to=KEYS[i % 8].address, amount=1 + i * 10**19))
           for i in range(4)]
    block = next_block(store, txs)
    decoded = Block.decode(memoryview(block.encode()))
    for tx in decoded.txs:
        plain = tx.to_plain()
        assert tx.encode() == msgpack.packb(plain, use_bin_type=True)
        unsigned = {k: v for k, v in plain.items() if k != "signature"}
        assert tx.signing_bytes() == SIGN_TAG + msgpack.packb(unsigned, use_bin_type=True)
        assert Transaction.decode(tx.encode()).hash == tx.hash
    assert [tx.hash for tx in decoded.txs] == [tx.hash for tx in block.txs]


def test_decode_errors_still_name_the_exact_field(store):
    block = next_block(store, [sign_tx(ALICE, CHAIN, i, 0, Transfer(to=BOB.address, amount=5)) for i in range(3)])
    plain = block.to_plain()
    plain["txs"][2]["body"]["amount"] = b"\x00\x05"   # non-canonical integer inside a nested record
    with pytest.raises(DecodeError, match=r"^Block\.txs\[2\]\.body\.amount: integer has a leading zero"):
        Block.from_plain(plain)
    plain = block.to_plain()
    plain["header"]["height"] = -1
    with pytest.raises(DecodeError, match=r"^Block\.header\.height: expected an unsigned integer"):
        Block.from_plain(plain)


@pytest.mark.parametrize("bad", [[], [0], [299], [5, 150, 151]])
def test_work_shared_verification_matches_one_by_one(bad):
    key = KEYS[3]
    items = []
    for i in range(300):
        msg = b"message %d" % i
        sig = key.sign(msg)
        if i in bad:
            sig = sig[:10] + bytes([sig[10] ^ 1]) + sig[11:]
        items.append((key.address, msg, sig))
    expected = [i not in bad for i in range(300)]
    assert [sigs.verify(*it) for it in items] == expected
    assert sigs.verify_many(items) == expected
    assert sigs.verify_many_async(items)() == expected


def test_trie_walk_for_changed_values_writes_what_the_recursion_writes(monkeypatch):
    """`Trie._set_existing` (one key's changed value, walked) against the plain recursion: same
    root, same node writes, same deletes, for batches mixing changed, unchanged, new and deleted
    keys, single-key batches included."""
    import random

    from ledger.trie import Trie

    rnd = random.Random(7)
    keys = [rnd.randbytes(6) for _ in range(600)]
    nodes: dict[bytes, bytes] = {}
    trie = Trie(nodes.get)
    first = trie.update({k: b"v0" for k in keys})
    nodes.update(first.puts)
    trie.root = first.root
    batches = [{keys[3]: b"new"}, {keys[4]: b"v0"}, {b"fresh": b"x"}, {keys[5]: None}]
    for _ in range(30):
        batch = {}
        for k in rnd.sample(keys, rnd.randrange(1, 40)):
            batch[k] = rnd.choice([b"v0", b"changed %d" % rnd.randrange(9), None])
        for _ in range(rnd.randrange(3)):
            batch[rnd.randbytes(6)] = b"new key"
        batches.append(batch)
    for batch in batches:
        fast = trie.update(batch)
        with monkeypatch.context() as m:
            m.setattr(Trie, "_set_existing", lambda *a: None)
            plain = trie.update(batch)
        assert (fast.root, fast.puts, fast.deletes) == (plain.root, plain.puts, plain.deletes)
        for pos in fast.deletes:
            nodes.pop(pos, None)
        nodes.update(fast.puts)
        trie.root = fast.root
        keys.extend(k for k, v in batch.items() if v is not None and k not in keys)
        keys[:] = [k for k in keys if batch.get(k, b"") is not None]
