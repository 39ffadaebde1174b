"""Mempool rules: bounds, replacement by higher fee only, fee-then-nonce ordering, eviction."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from mindnode.node.errors import TxRejected
from mindnode.node.mempool import Mempool


@dataclass(frozen=True)
class T:
    sender: bytes
    nonce: int
    fee: int

    @property
    def hash(self) -> bytes:
        return self.sender + bytes([self.nonce, self.fee % 256])


A, B, C = b"A" * 32, b"B" * 32, b"C" * 32


def add(pool: Mempool, tx: T, nonce0: int = 0, check=None):
    return pool.add(tx, b"x" * 100, tx.hash, account_nonce=nonce0, check=check)


def test_order_is_fee_then_nonce_and_gap_free():
    pool = Mempool()
    add(pool, T(A, 0, 5))
    add(pool, T(A, 1, 50))
    add(pool, T(B, 0, 10))
    add(pool, T(C, 1, 100))  # gap: C's next nonce is 0, so C's tx is not executable
    picked = [(e.sender, e.nonce) for e in pool.select(lambda s: 0, max_txs=10, max_bytes=10_000)]
    assert picked == [(B, 0), (A, 0), (A, 1)]


def test_replacement_needs_higher_fee():
    pool = Mempool()
    add(pool, T(A, 0, 5))
    with pytest.raises(TxRejected, match="higher fee"):
        add(pool, T(A, 0, 4))
    add(pool, T(A, 0, 6))
    assert len(pool) == 1
    assert pool.select(lambda s: 0, max_txs=10, max_bytes=10_000)[0].fee == 6


def test_bounds_evict_lowest_fee_or_refuse():
    pool = Mempool(max_txs=2)
    add(pool, T(A, 0, 5))
    add(pool, T(B, 0, 7))
    with pytest.raises(TxRejected, match="full"):
        add(pool, T(C, 0, 5))
    add(pool, T(C, 0, 9))  # evicts A's fee-5 tx
    assert {e.sender for e in pool.entries()} == {B, C}


def test_stale_and_far_nonces_refused_and_pruned():
    pool = Mempool(max_nonce_gap=4)
    with pytest.raises(TxRejected, match="already used"):
        add(pool, T(A, 0, 5), nonce0=1)
    with pytest.raises(TxRejected, match="too far"):
        add(pool, T(A, 9, 5), nonce0=1)
    add(pool, T(A, 1, 5), nonce0=1)
    add(pool, T(A, 2, 5), nonce0=1)
    assert pool.prune(lambda s: 2) == 1
    assert [e.nonce for e in pool.entries()] == [2]


def test_check_failure_is_rejected_and_not_kept():
    pool = Mempool()

    def check(tx):
        raise ValueError("balance 0 does not cover amount + fee")

    with pytest.raises(TxRejected, match="balance"):
        add(pool, T(A, 0, 5), check=check)
    assert len(pool) == 0


def test_byte_bound_in_select():
    pool = Mempool()
    for n in range(5):
        add(pool, T(A, n, 5))
    assert len(pool.select(lambda s: 0, max_txs=10, max_bytes=250)) == 2
