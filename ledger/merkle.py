"""Merkle root of an ordered list of hashes (a block's transaction root).

RFC 6962 shape (split at the largest power of two below n) with domain-separated leaves and inner
nodes, so no odd-length duplication trick (the Bitcoin CVE-2012-2459 trap) can make two different
lists share a root, and a leaf can never be passed off as an inner node.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from ledger.hashing import ZERO_HASH

_LEAF = b"\x00"
_NODE = b"\x01"


def merkle_root(hashes: Sequence[bytes]) -> bytes:
    """The root of `hashes` in order; the empty list has root ZERO_HASH."""
    if not hashes:
        return ZERO_HASH
    level = [hashlib.sha256(_LEAF + h).digest() for h in hashes]
    return _root(level)


def _root(level: list[bytes]) -> bytes:
    n = len(level)
    if n == 1:
        return level[0]
    k = 1 << ((n - 1).bit_length() - 1)  # largest power of two < n
    return hashlib.sha256(_NODE + _root(level[:k]) + _root(level[k:])).digest()
