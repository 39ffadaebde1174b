"""Codec strictness and key derivations: the two things every node must agree on byte for byte."""
from typing import Annotated

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger import keys
from ledger.codec import BigUInt, Bytes, ListOf, Optional, Record, Str, UInt, record, unpack_plain
from ledger.errors import DecodeError, InvalidKey


@record
class Item(Record):
    n: Annotated[int, UInt(16)]


@record
class Sample(Record):
    to: Annotated[bytes, Bytes(32)]
    amount: Annotated[int, BigUInt()]
    memo: Annotated[str, Str(20)]
    items: Annotated[tuple, ListOf(Item, 4)]
    maybe: Annotated[object, Optional(UInt())]


samples = st.builds(
    Sample,
    to=st.binary(min_size=32, max_size=32),
    amount=st.integers(0, 2**256 - 1),
    memo=st.text(max_size=20),
    items=st.lists(st.builds(Item, n=st.integers(0, 2**16 - 1)), max_size=4).map(tuple),
    maybe=st.none() | st.integers(0, 2**64 - 1),
)


@given(samples)
def test_round_trip(s):
    data = s.encode()
    assert Sample.decode(data) == s
    assert Sample.decode(data).encode() == data


@given(st.binary(max_size=200))
def test_fuzz_never_crashes(data):
    try:
        Sample.decode(data)
    except DecodeError:
        pass


@given(samples, st.integers(0, 10_000), st.integers(0, 255))
def test_bit_flip_is_rejected_or_distinct(s, pos, byte):
    data = bytearray(s.encode())
    data[pos % len(data)] = byte
    try:
        again = Sample.decode(bytes(data))
    except DecodeError:
        return
    assert again.encode() == bytes(data)  # anything accepted is canonical


def good():
    return Sample(to=b"a" * 32, amount=5, memo="hi", items=(Item(1),), maybe=None).to_plain()


@pytest.mark.parametrize("mutate, message", [
    (lambda p: p.update(extra=1), "unknown field"),
    (lambda p: p.pop("memo"), "missing field"),
    (lambda p: p.update(to=b"a" * 31), "expected 32 bytes"),
    (lambda p: p.update(memo=b"hi"), "expected a string"),
    (lambda p: p.update(amount=b"\x00\x05"), "leading zero"),
    (lambda p: p.update(amount=b"\x01" * 33), "at most 32"),
    (lambda p: p.update(items=[{"n": 1}] * 5), "over the limit"),
    (lambda p: p.update(items=[{"n": 70000}]), "below 65536"),
    (lambda p: p.update(maybe=True), "unsigned integer"),
    (lambda p: p.update(maybe=-1), "unsigned integer"),
])
def test_rejections_name_the_problem(mutate, message):
    plain = good()
    mutate(plain)
    data = msgpack.packb(dict(sorted(plain.items())), use_bin_type=True)
    with pytest.raises(DecodeError, match=message):
        Sample.decode(data)


def test_non_canonical_forms_rejected():
    plain = good()
    canonical = msgpack.packb(plain, use_bin_type=True)
    with pytest.raises(DecodeError, match="trailing"):
        Sample.decode(canonical + b"\xc0")
    with pytest.raises(DecodeError, match="sorted"):
        Sample.decode(msgpack.packb(dict(reversed(list(plain.items()))), use_bin_type=True))
    with pytest.raises(DecodeError, match="canonical"):  # 1 as uint32 instead of fixint
        unpack_plain(b"\xce\x00\x00\x00\x01")
    with pytest.raises(DecodeError, match="unsigned integer"):  # floats never pass a schema
        Sample.decode(msgpack.packb(dict(plain, maybe=1.5), use_bin_type=True))
    with pytest.raises(DecodeError, match="over the limit"):
        Sample.decode(canonical, max_size=10)
    with pytest.raises(DecodeError):
        Sample.decode(msgpack.packb(msgpack.ExtType(1, b"x")))
    with pytest.raises(DecodeError, match="malformed"):
        Sample.decode(canonical[:-3])


def test_address_text_round_trip_and_checksum():
    k = keys.devnet_key(1)
    text = keys.address_to_text(k.address)
    assert keys.address_from_text(text) == k.address
    assert keys.address_from_text(text.upper().replace("MN", "mn", 1)) == k.address
    broken = text[:10] + ("0" if text[10] != "0" else "1") + text[11:]
    with pytest.raises(InvalidKey, match="checksum"):
        keys.address_from_text(broken)
    with pytest.raises(InvalidKey):
        keys.address_from_text("mn1234")


def test_peer_id_matches_libp2p_derivation():
    """The same seed is the libp2p identity: our pure derivation equals py-libp2p's."""
    from libp2p.crypto.ed25519 import create_new_key_pair
    from libp2p.peer.id import ID

    seed = keys.devnet_seed(2)
    expected = ID.from_pubkey(create_new_key_pair(seed).public_key).to_base58()
    pid = keys.peer_id_from_address(keys.PrivateKey(seed).address)
    assert pid == expected and pid.startswith("12D3KooW")
    assert keys.address_from_peer_id(pid) == keys.PrivateKey(seed).address
    with pytest.raises(InvalidKey):
        keys.address_from_peer_id("QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N")


def test_signatures():
    k = keys.PrivateKey.generate()
    sig = k.sign(b"msg")
    assert keys.verify(k.address, b"msg", sig)
    assert not keys.verify(k.address, b"msg!", sig)
    assert not keys.verify(keys.devnet_key(0).address, b"msg", sig)
    assert not keys.verify(k.address, b"msg", sig[:-1])
    assert "seed" not in repr(k) and k.seed.hex() not in repr(k)
