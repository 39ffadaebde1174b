"""One 32-byte seed is the account key and the libp2p identity; peer ids map back to keys."""

import os

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from p2p import (
    ConfigError,
    InvalidPeerId,
    peer_id_from_public_key,
    peer_id_from_seed,
    public_key_from_peer_id,
    public_key_from_seed,
)


def test_seed_public_key_matches_cryptography():
    seed = os.urandom(32)
    raw = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert public_key_from_seed(seed) == raw


def test_peer_id_round_trip():
    seed = bytes(range(32))
    pid = peer_id_from_seed(seed)
    assert pid.startswith("12D3KooW")
    assert peer_id_from_public_key(public_key_from_seed(seed)) == pid
    assert public_key_from_peer_id(pid) == public_key_from_seed(seed)
    assert pid == peer_id_from_seed(bytes(range(32)))  # deterministic


@pytest.mark.parametrize("bad", [b"", b"x" * 31, b"x" * 33, b"x" * 64])
def test_bad_seed_is_refused(bad):
    with pytest.raises(ConfigError):
        peer_id_from_seed(bad)


@pytest.mark.parametrize("bad", ["", "hello", "12D3KooW", "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N"])
def test_bad_peer_id_is_refused(bad):
    with pytest.raises(InvalidPeerId):
        public_key_from_peer_id(bad)


def test_bad_public_key_length():
    with pytest.raises(InvalidPeerId):
        peer_id_from_public_key(b"\x00" * 31)


def test_matches_libp2p_and_needs_no_libp2p_import():
    import subprocess
    import sys

    from libp2p.crypto.ed25519 import create_new_key_pair
    from libp2p.peer.id import ID

    seed = os.urandom(32)
    assert peer_id_from_seed(seed) == ID.from_pubkey(create_new_key_pair(seed).public_key).to_base58()
    code = "import sys, p2p.identity as i; i.peer_id_from_seed(bytes(32)); print('libp2p' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"  # CLI paths that only need ids stay fast
