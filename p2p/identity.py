"""One 32-byte Ed25519 seed is both the account key and the libp2p identity.

py-libp2p and js-libp2p serialise Ed25519 private keys differently (32 vs 64 bytes), so only the
raw 32-byte seed is ever stored; the libp2p key pair is derived from it on start.  A peer id is the
identity multihash of the protobuf-encoded public key ("12D3KooW..."), so it can be computed from
the raw 32-byte public key and turned back into it, which lets the ledger map accounts to peers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import base58
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from p2p.errors import ConfigError, InvalidPeerId

if TYPE_CHECKING:  # libp2p costs ~0.7 s to import: CLI paths that only need ids skip it
    from libp2p.crypto.keys import KeyPair
    from libp2p.peer.id import ID

SEED_BYTES = 32
# A peer id of an Ed25519 key is the *identity* multihash (code 0x00, length 36) of the
# protobuf PublicKey{Type: Ed25519 (1), Data: 32 bytes}: fixed 6-byte prefix + the raw key.
_ED25519_PEER_ID_PREFIX = bytes([0x00, 0x24, 0x08, 0x01, 0x12, 0x20])


def _check_seed(seed: bytes) -> bytes:
    if not isinstance(seed, bytes | bytearray) or len(seed) != SEED_BYTES:
        size = len(seed) if isinstance(seed, bytes | bytearray) else type(seed).__name__
        raise ConfigError(f"identity seed must be {SEED_BYTES} raw bytes, got {size}")
    return bytes(seed)


def key_pair_from_seed(seed: bytes) -> KeyPair:
    """The libp2p Ed25519 key pair of a 32-byte seed (deterministic)."""
    from libp2p.crypto.ed25519 import create_new_key_pair

    return create_new_key_pair(_check_seed(seed))


def public_key_from_seed(seed: bytes) -> bytes:
    """The raw 32-byte Ed25519 public key of a seed (RFC 8032, as ``cryptography`` derives it)."""
    key = Ed25519PrivateKey.from_private_bytes(_check_seed(seed)).public_key()
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def peer_id_from_public_key(pub32: bytes) -> str:
    """The base58 peer id ("12D3KooW...") of a raw 32-byte Ed25519 public key."""
    if not isinstance(pub32, bytes | bytearray) or len(pub32) != 32:
        raise InvalidPeerId("an Ed25519 public key is 32 raw bytes")
    return base58.b58encode(_ED25519_PEER_ID_PREFIX + bytes(pub32)).decode()


def peer_id_from_seed(seed: bytes) -> str:
    """The base58 peer id of a 32-byte seed."""
    return peer_id_from_public_key(public_key_from_seed(seed))


def parse_peer_id(peer_id: str | ID) -> ID:
    """A libp2p ``ID`` from its base58 string, with a clear error on garbage."""
    from libp2p.peer.id import ID

    if isinstance(peer_id, ID):
        return peer_id
    try:
        return ID.from_base58(peer_id)
    except Exception as exc:  # base58 raises ValueError/KeyError variants
        raise InvalidPeerId(f"not a libp2p peer id: {peer_id!r}") from exc


def public_key_from_peer_id(peer_id: str) -> bytes:
    """The raw 32-byte Ed25519 public key embedded in an Ed25519 peer id."""
    if not isinstance(peer_id, str):
        raise InvalidPeerId(f"a peer id is a base58 string, not {type(peer_id).__name__}")
    try:
        raw = base58.b58decode(peer_id)
    except ValueError as exc:
        raise InvalidPeerId(f"not a base58 peer id: {peer_id!r}") from exc
    if len(raw) != len(_ED25519_PEER_ID_PREFIX) + 32 or not raw.startswith(_ED25519_PEER_ID_PREFIX):
        raise InvalidPeerId(f"peer id {peer_id!r} is not an Ed25519 identity (12D3KooW...)")
    return raw[len(_ED25519_PEER_ID_PREFIX) :]
