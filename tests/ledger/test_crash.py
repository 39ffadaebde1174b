"""Crash safety: SIGKILL a real importing process at random moments; re-opening always finds a
whole block (the old head or the new one) with a state, trie and head that agree."""
from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import msgpack
import pytest
from conftest import CHAIN, KEYS, V0, dump, make_genesis
from test_trie import reachable_positions

from ledger.store import Store, build_block
from ledger.trie import build_root, verify_proof
from ledger.tx import sign_tx
from ledger.txkinds.transfer import Transfer

CHILD = Path(__file__).with_name("crash_importer.py")
N_BLOCKS = 40
TXS_PER_BLOCK = 150


def _build_chain(tmp_path, genesis):
    """Pre-build blocks on a scratch store; return their bytes and {hash: state_root}."""
    scratch = Store.create(tmp_path / "scratch", genesis, sync=False)
    nonces = [0] * 5
    blocks, roots = [], {scratch.head_hash: scratch.state_root}
    for b in range(N_BLOCKS):
        txs = []
        for i in range(TXS_PER_BLOCK):
            s = (b + i) % 5
            txs.append(sign_tx(KEYS[s], CHAIN, nonces[s], 1, Transfer(to=KEYS[(s + 1 + i) % 8].address, amount=1 + i)))
            nonces[s] += 1
        blk = build_block(scratch, V0, txs, scratch.head.timestamp + 1000, 2)
        assert len(blk.txs) == TXS_PER_BLOCK
        scratch.import_block(blk)
        blocks.append(blk.encode())
        roots[blk.hash] = blk.header.state_root
    scratch.close()
    return blocks, roots


def _check_consistent(path: Path, roots: dict) -> int:
    store = Store.open(path, sync=False)
    try:
        head = store.head
        assert roots.get(head.hash) == head.state_root, "head is not one of the chain's blocks"
        assert store.get_block(head.height).hash == head.hash
        everything = dump(store)
        state_items = [(k[1:], v) for k, v in everything.items() if k[:1] == b"s"]
        assert build_root(state_items) == head.state_root, "flat state does not match the head's root"
        nodes = {k[1:]: v for k, v in everything.items() if k[:1] == b"n"}
        assert reachable_positions(head.state_root, nodes) == set(nodes), "trie nodes of another head"
        assert {k for k in everything if k[:1] == b"u"} == {b"u" + store.get_block(h).hash
                                                             for h in range(1, head.height + 1)}
        for k, v in random.sample(state_items, 5):
            assert verify_proof(head.state_root, k, v, store.prove(k)[2])
        store.state().audit()
        return head.height
    finally:
        store.close()


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_sigkill_mid_import_leaves_old_or_new_head(tmp_path):
    genesis = make_genesis()
    blocks, roots = _build_chain(tmp_path, genesis)
    blocks_file = tmp_path / "blocks.msgpack"
    blocks_file.write_bytes(msgpack.packb(blocks))
    db = tmp_path / "db"
    Store.create(db, genesis).close()
    rnd = random.Random(7)
    kills, height, rounds = 0, 0, 0
    while height < N_BLOCKS:
        rounds += 1
        assert rounds < 100, "importer makes no progress"
        child = subprocess.Popen([sys.executable, str(CHILD), str(db), str(blocks_file)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # wait for two imports to learn how long one takes here, then kill at a random instant
        # within the next few imports (so kills land inside imports and inside write batches)
        first = child.stdout.readline().strip()
        t1 = time.perf_counter()
        second = child.stdout.readline().strip() if first not in ("", "done") else "done"
        if second not in ("", "done"):
            per_block = time.perf_counter() - t1
            time.sleep(rnd.uniform(0.0, 2.5 * per_block))
            child.send_signal(signal.SIGKILL)
            kills += child.wait() == -signal.SIGKILL
        else:
            child.wait()
        err = child.stderr.read()
        child.stdout.close()
        child.stderr.close()
        assert "Traceback" not in err, err
        new_height = _check_consistent(db, roots)
        assert new_height >= height
        height = new_height
    print(f"{kills} kills in {rounds} rounds")
    assert kills >= 6, f"only {kills} kills landed before the importer finished"
