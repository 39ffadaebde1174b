"""The mempool: signed transactions waiting for a block, checked before they are kept or forwarded.

Rules (issue 4):
* a transaction is checked against the ledger (decode, signature, chain id, nonce not already used,
  balance covers amount + fee) by the `check` callable before it is kept -- and only kept ones are
  re-gossiped, so an invalid transaction stops at the first honest node;
* bounded: at most `max_txs` in total and `max_per_sender` per sender; when full, a newcomer evicts
  the lowest-fee transaction only if it pays more, otherwise it is refused;
* one transaction per (sender, nonce): a replacement must pay a strictly higher fee;
* block candidates come out ordered by fee (highest first) then nonce, and per sender only in a
  gap-free nonce run starting at the account's next nonce, so a block never holds an unusable tx;
* transactions included in a block (or made stale by one: nonce below the account's) are evicted.

Generic over the transaction type: anything with ``sender``, ``nonce`` and ``fee`` attributes. The
node service supplies ``check`` and ``account_nonce`` from the current head state.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from mindnode.node.errors import TxRejected


@dataclass
class Entry:
    tx: Any
    raw: bytes
    tx_hash: bytes
    arrival: int  # monotone counter: ties on fee go to the earlier arrival

    @property
    def sender(self) -> bytes:
        return self.tx.sender

    @property
    def nonce(self) -> int:
        return self.tx.nonce

    @property
    def fee(self) -> int:
        return self.tx.fee


class Mempool:
    def __init__(self, *, max_txs: int = 5000, max_per_sender: int = 64, max_nonce_gap: int = 64):
        self.max_txs = max_txs
        self.max_per_sender = max_per_sender
        self.max_nonce_gap = max_nonce_gap
        self._by_hash: dict[bytes, Entry] = {}
        self._by_sender: dict[bytes, dict[int, Entry]] = {}
        self._arrivals = 0

    def __len__(self) -> int:
        return len(self._by_hash)

    @property
    def arrivals(self) -> int:
        """Arrival counter of the newest entry (entries carry their own `arrival`)."""
        return self._arrivals

    def __contains__(self, tx_hash: bytes) -> bool:
        return tx_hash in self._by_hash

    def get(self, tx_hash: bytes) -> Entry | None:
        return self._by_hash.get(tx_hash)

    def add(self, tx: Any, raw: bytes, tx_hash: bytes, *, account_nonce: int,
            check: Callable[[Any], None] | None = None) -> Entry:
        """Keep `tx` or raise TxRejected saying why. `check` raises a ledger error for a tx the
        ledger would refuse (signature, chain id, balance, kind rules)."""
        if tx_hash in self._by_hash:
            raise TxRejected(f"transaction {tx_hash.hex()} is already in the mempool")
        if tx.nonce < account_nonce:
            raise TxRejected(f"nonce {tx.nonce} already used (the account's next nonce is {account_nonce})")
        if tx.nonce >= account_nonce + self.max_nonce_gap:
            raise TxRejected(f"nonce {tx.nonce} is too far ahead of the account's next nonce {account_nonce}")
        if check is not None:
            try:
                check(tx)
            except TxRejected:
                raise
            except Exception as exc:  # ledger errors: message is user-facing already
                raise TxRejected(str(exc)) from None
        queue = self._by_sender.get(tx.sender, {})
        old = queue.get(tx.nonce)
        if old is not None:
            if tx.fee <= old.fee:
                raise TxRejected(
                    f"a transaction with nonce {tx.nonce} is already pending with fee {old.fee}; "
                    "a replacement needs a higher fee")
            self._remove(old)
        elif len(queue) >= self.max_per_sender:
            raise TxRejected(f"sender already has {len(queue)} pending transactions (limit {self.max_per_sender})")
        elif len(self._by_hash) >= self.max_txs:
            victim = min(self._by_hash.values(), key=lambda e: (e.fee, -e.arrival))
            if victim.fee >= tx.fee:
                raise TxRejected(f"mempool is full ({self.max_txs} transactions) and this fee is not above "
                                 f"the lowest pending fee {victim.fee}")
            self._remove(victim)
        self._arrivals += 1
        entry = Entry(tx, raw, tx_hash, self._arrivals)
        self._by_hash[tx_hash] = entry
        self._by_sender.setdefault(tx.sender, {})[tx.nonce] = entry
        return entry

    def _remove(self, entry: Entry) -> None:
        self._by_hash.pop(entry.tx_hash, None)
        queue = self._by_sender.get(entry.sender)
        if queue is not None:
            if queue.get(entry.nonce) is entry:
                del queue[entry.nonce]
            if not queue:
                del self._by_sender[entry.sender]

    def remove_hashes(self, hashes: Iterable[bytes]) -> None:
        for h in hashes:
            entry = self._by_hash.get(h)
            if entry is not None:
                self._remove(entry)

    def prune(self, account_nonce: Callable[[bytes], int]) -> int:
        """Drop everything a new head made stale (nonce below the account's next nonce)."""
        dropped = 0
        for sender in list(self._by_sender):
            nxt = account_nonce(sender)
            for nonce, entry in list(self._by_sender.get(sender, {}).items()):
                if nonce < nxt:
                    self._remove(entry)
                    dropped += 1
        return dropped

    def select(self, account_nonce: Callable[[bytes], int], *, max_txs: int, max_bytes: int) -> list[Entry]:
        """Block candidates: highest fee first, each sender's transactions in gap-free nonce order."""
        heads: list[tuple[int, int, int, bytes]] = []
        next_nonce: dict[bytes, int] = {}
        for sender, queue in self._by_sender.items():
            n = account_nonce(sender)
            entry = queue.get(n)
            if entry is not None:
                next_nonce[sender] = n
                heapq.heappush(heads, (-entry.fee, entry.nonce, entry.arrival, sender))
        out: list[Entry] = []
        size = 0
        while heads and len(out) < max_txs:
            _, nonce, _, sender = heapq.heappop(heads)
            entry = self._by_sender[sender][nonce]
            if size + len(entry.raw) > max_bytes:
                continue  # this sender's run stops here; others may still fit
            out.append(entry)
            size += len(entry.raw)
            nxt = self._by_sender[sender].get(nonce + 1)
            if nxt is not None:
                heapq.heappush(heads, (-nxt.fee, nxt.nonce, nxt.arrival, sender))
        return out

    def entries(self) -> list[Entry]:
        return list(self._by_hash.values())
