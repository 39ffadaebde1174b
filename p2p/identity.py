"""One 32-byte Ed25519 seed is both the account key and the libp2p identity.

py-libp2p and js-libp2p serialise Ed25519 private keys differently (32 vs 64 bytes), so only the
raw 32-byte seed is ever stored; the libp2p key pair is derived from it on start.  A peer id is the
identity multihash of the protobuf-encoded public key ("12D3KooW..."), so it can be computed from
the raw 32-byte public key and turned back into it, which lets the ledger map accounts to peers.
"""

from __future__ import annotations

from libp2p.crypto.ed25519 import Ed25519PublicKey, create_new_key_pair
from libp2p.crypto.keys import KeyPair, KeyType
from libp2p.peer.id import ID

from p2p.errors import ConfigError, InvalidPeerId

SEED_BYTES = 32


def key_pair_from_seed(seed: bytes) -> KeyPair:
    """The libp2p Ed25519 key pair of a 32-byte seed (deterministic)."""
    if not isinstance(seed, bytes | bytearray) or len(seed) != SEED_BYTES:
        raise ConfigError(f"identity seed must be {SEED_BYTES} raw bytes, got {len(seed)!r}")
    return create_new_key_pair(bytes(seed))


def public_key_from_seed(seed: bytes) -> bytes:
    """The raw 32-byte Ed25519 public key of a seed."""
    return key_pair_from_seed(seed).public_key.to_bytes()


def peer_id_from_public_key(pub32: bytes) -> str:
    """The base58 peer id ("12D3KooW...") of a raw 32-byte Ed25519 public key."""
    if not isinstance(pub32, bytes | bytearray) or len(pub32) != 32:
        raise InvalidPeerId("an Ed25519 public key is 32 raw bytes")
    return ID.from_pubkey(Ed25519PublicKey.from_bytes(bytes(pub32))).to_base58()


def peer_id_from_seed(seed: bytes) -> str:
    """The base58 peer id of a 32-byte seed."""
    return peer_id_from_public_key(public_key_from_seed(seed))


def parse_peer_id(peer_id: str | ID) -> ID:
    """A libp2p ``ID`` from its base58 string, with a clear error on garbage."""
    if isinstance(peer_id, ID):
        return peer_id
    try:
        return ID.from_base58(peer_id)
    except Exception as exc:  # base58 raises ValueError/KeyError variants
        raise InvalidPeerId(f"not a libp2p peer id: {peer_id!r}") from exc


def public_key_from_peer_id(peer_id: str) -> bytes:
    """The raw 32-byte Ed25519 public key embedded in an Ed25519 peer id."""
    pid = parse_peer_id(peer_id)
    try:
        key = pid.extract_public_key()
    except Exception as exc:
        raise InvalidPeerId(f"peer id {peer_id!r} does not embed a public key") from exc
    if key is None or key.get_type() != KeyType.Ed25519:
        raise InvalidPeerId(f"peer id {peer_id!r} is not an Ed25519 identity")
    raw = key.to_bytes()
    if len(raw) != 32:
        raise InvalidPeerId(f"peer id {peer_id!r} embeds a malformed Ed25519 key")
    return raw
