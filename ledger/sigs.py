"""Consensus signature verification: one Ed25519 verifier (libsodium), batched over threads.

Why libsodium (PyNaCl) and not `cryptography` here: a block carries up to thousands of signatures,
and verification dominates import time. `cryptography`'s Ed25519 verify holds the GIL, so threads
do not help; PyNaCl calls libsodium through cffi, which releases the GIL, so a block's signatures
verify on every core (measured on the 2-core dev box: ~13k/s on one thread, ~21k/s on two).

Why one verifier for every consensus check: Ed25519 libraries disagree on edge cases (small-order
public keys, non-canonical points). libsodium's strict rules (it rejects small-order keys and
R values and non-canonical S) must therefore be *the* rule, so every node accepts exactly the same
signatures; `ledger.keys.verify` delegates here for the same reason.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from nacl.bindings import crypto_sign_open
from nacl.exceptions import BadSignatureError

ADDRESS_LEN = 32
SIGNATURE_LEN = 64
#: Below this many signatures a batch is verified on the calling thread (thread hand-off costs more).
PARALLEL_THRESHOLD = 128

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def verify(address: bytes, message: bytes, signature: bytes) -> bool:
    """True when `signature` is the Ed25519 signature of `message` by public key `address`."""
    if len(address) != ADDRESS_LEN or len(signature) != SIGNATURE_LEN:
        return False
    try:
        crypto_sign_open(signature + message, address)
    except (BadSignatureError, ValueError, TypeError):
        return False
    return True


def _verify_chunk(items: Sequence[tuple[bytes, bytes, bytes]]) -> list[bool]:
    return [verify(a, m, s) for a, m, s in items]


def workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def _get_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=workers(), thread_name_prefix="sigverify")
        return _pool


def _shared(items: Sequence[tuple[bytes, bytes, bytes]], helpers: int) -> Callable[[], list[bool]]:
    """Verify `items` on `helpers` pool threads, plus the caller once it calls the returned `wait`.

    Work sharing: the items are handed out one index at a time from a shared iterator (its `next`
    is atomic under the GIL), so no thread idles while another still has a fixed chunk left, and
    `wait()` makes the caller verify what is left instead of sleeping. The answer (in input order)
    never depends on who verified what."""
    n = len(items)
    results = [False] * n
    indices = iter(range(n))

    def work() -> None:
        for i in indices:
            a, m, s = items[i]
            results[i] = verify(a, m, s)

    pool = _get_pool()
    futures = [pool.submit(work) for _ in range(helpers)]

    def wait() -> list[bool]:
        work()
        for f in futures:
            f.result()
        return results

    return wait


def verify_many_async(items: Sequence[tuple[bytes, bytes, bytes]]) -> Callable[[], list[bool]]:
    """Start verifying a batch on ONE pool thread and return a function that waits for the answer
    (the caller then helps with what is left, see `_shared`).

    For a caller with other work to do meanwhile. Measured on 2 cores, two verifier threads plus
    the busy caller made the caller's work 2.5x slower (each verify still needs the GIL briefly,
    and three threads fight for it). Small batches, or a single core, are verified at once on the
    calling thread.
    """
    if workers() < 2 or len(items) < PARALLEL_THRESHOLD:
        result = _verify_chunk(items)
        return lambda: result
    return _shared(items, 1)


def verify_many(items: Sequence[tuple[bytes, bytes, bytes]], *, parallel: bool = True) -> list[bool]:
    """Verify (address, message, signature) triples on every core; the result list is in input order.

    The caller verifies too, alongside one pool thread per other core (libsodium runs without the
    GIL), sharing the items as in `_shared`.
    """
    w = workers() if parallel else 1
    if w == 1 or len(items) < PARALLEL_THRESHOLD:
        return _verify_chunk(items)
    return _shared(items, w - 1)()
