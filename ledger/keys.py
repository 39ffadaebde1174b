"""Ed25519 keys, addresses and peer ids: one 32-byte seed is a node's whole identity.

Why one seed: a Mind Node's account (which receives rewards and signs blocks) and its libp2p peer
identity are the same key, so a validator's address tells you which peer to expect, and a peer
id tells you which account it is. Both derive from the Ed25519 public key of the seed:

* **address** = the 32-byte Ed25519 public key itself. Signatures verify against the address
  with no extra public-key field in transactions. Its text form is ``mn`` + 64 hex digits of the
  key + 8 hex digits of ``sha256(key)[:4]`` as a checksum, so a mistyped address is rejected
  instead of burning funds.
* **peer id** = libp2p's identity multihash of the protobuf-encoded public key
  (``0x00 0x24 | 0x08 0x01 0x12 0x20 | key``) in base58btc: the familiar ``12D3KooW...``
  that py-libp2p, go-libp2p and js-libp2p all derive from the same seed.

Devnet keys come from fixed, published seeds (``sha256("mindnode devnet key <i>")``), like
anvil's accounts: anyone can derive them, so they are INSECURE and for local networks only.
"""

from __future__ import annotations

import hashlib
import os

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger import sigs as _sigs
from ledger.errors import InvalidKey, InvalidSignature

SEED_LEN = 32
ADDRESS_LEN = 32
SIGNATURE_LEN = 64
ADDRESS_PREFIX = "mn"
_RAW = serialization.Encoding.Raw


class PrivateKey:
    """An Ed25519 signing key held as its 32-byte seed (the form every libp2p implementation accepts)."""

    __slots__ = ("_seed", "_key", "address")

    def __init__(self, seed: bytes):
        if type(seed) is not bytes or len(seed) != SEED_LEN:
            raise InvalidKey(f"a private key seed is {SEED_LEN} bytes")
        self._seed = seed
        self._key = Ed25519PrivateKey.from_private_bytes(seed)
        self.address: bytes = self._key.public_key().public_bytes(_RAW, serialization.PublicFormat.Raw)

    @classmethod
    def generate(cls) -> PrivateKey:
        return cls(os.urandom(SEED_LEN))

    @property
    def seed(self) -> bytes:
        return self._seed

    @property
    def public_key(self) -> bytes:
        return self.address

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message)

    def __repr__(self) -> str:  # never print the seed
        return f"PrivateKey({address_to_text(self.address)})"


def verify(address: bytes, message: bytes, signature: bytes) -> bool:
    """True when `signature` is `address`'s Ed25519 signature of `message`.

    Delegates to `ledger.sigs.verify` (libsodium) so that every consensus check in every room
    accepts exactly the same signatures (Ed25519 libraries differ on edge cases).
    """
    return _sigs.verify(address, message, signature)


def verify_or_raise(address: bytes, message: bytes, signature: bytes, what: str = "signature") -> None:
    if not verify(address, message, signature):
        raise InvalidSignature(f"{what} does not verify for {address_to_text(address)}")


def _checksum(address: bytes) -> str:
    return hashlib.sha256(address).digest()[:4].hex()


def address_to_text(address: bytes) -> str:
    if len(address) != ADDRESS_LEN:
        raise InvalidKey(f"an address is {ADDRESS_LEN} bytes, got {len(address)}")
    return f"{ADDRESS_PREFIX}{address.hex()}{_checksum(address)}"


def address_from_text(text: str) -> bytes:
    """Parse ``mn<64 hex><8 hex checksum>``; a bad length, digit or checksum is an InvalidKey."""
    text = text.strip()
    want = len(ADDRESS_PREFIX) + 2 * ADDRESS_LEN + 8
    if not text.startswith(ADDRESS_PREFIX) or len(text) != want:
        raise InvalidKey(f"not an address: {text[:80]!r} (expected '{ADDRESS_PREFIX}' followed by 72 hex digits)")
    body = text[len(ADDRESS_PREFIX):].lower()
    try:
        raw = bytes.fromhex(body[:64])
    except ValueError:
        raise InvalidKey(f"not an address: {text!r} has non-hex digits") from None
    if body[64:] != _checksum(raw):
        raise InvalidKey(f"address {text!r} has a wrong checksum (mistyped?)")
    return raw


_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_PEER_ID_PREFIX = bytes([0x00, 0x24, 0x08, 0x01, 0x12, 0x20])


def _b58encode(data: bytes) -> str:
    n = int.from_bytes(data, "big")
    out = []
    while n:
        n, r = divmod(n, 58)
        out.append(_B58[r])
    pad = len(data) - len(data.lstrip(b"\x00"))
    return "1" * pad + "".join(reversed(out))


def _b58decode(text: str) -> bytes:
    n = 0
    for ch in text:
        i = _B58.find(ch)
        if i < 0:
            raise InvalidKey(f"not a peer id: {text!r} has a non-base58 character {ch!r}")
        n = n * 58 + i
    pad = len(text) - len(text.lstrip("1"))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    return b"\x00" * pad + body


def peer_id_from_address(address: bytes) -> str:
    """The libp2p peer id (``12D3KooW...``) of the node whose account is `address`."""
    if len(address) != ADDRESS_LEN:
        raise InvalidKey(f"an address is {ADDRESS_LEN} bytes, got {len(address)}")
    return _b58encode(_PEER_ID_PREFIX + address)


def address_from_peer_id(peer_id: str) -> bytes:
    raw = _b58decode(peer_id)
    if len(raw) != len(_PEER_ID_PREFIX) + ADDRESS_LEN or not raw.startswith(_PEER_ID_PREFIX):
        raise InvalidKey(f"peer id {peer_id!r} is not an Ed25519 identity peer id")
    return raw[len(_PEER_ID_PREFIX):]


def devnet_seed(index: int) -> bytes:
    """The published, INSECURE seed of devnet key number `index` (0-based)."""
    return hashlib.sha256(f"mindnode devnet key {index}".encode()).digest()


def devnet_key(index: int) -> PrivateKey:
    return PrivateKey(devnet_seed(index))
