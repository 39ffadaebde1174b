"""Hashes used by consensus: SHA-256 with a domain tag per use.

Why domain tags: a transaction's signing bytes can never be mistaken for a block header's, or a
trie leaf for an inner node, even if their encodings happened to coincide.
"""

import hashlib

HASH_LEN = 32
ZERO_HASH = bytes(HASH_LEN)


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def tagged_hash(tag: bytes, data: bytes) -> bytes:
    """SHA-256 of ``tag || 0x00 || data``; tags are short ASCII names like b"mindnode/tx"."""
    return hashlib.sha256(tag + b"\x00" + data).digest()
