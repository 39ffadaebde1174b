"""Blob ids are IPFS CIDv1 raw sha2-256; fetches are chunk-verified, resumable, and survive liars."""

import hashlib
import os

import cid as pycid
import msgpack
import multihash
import pytest
import trio
from conftest import connect_all, running

from p2p import BLOB_PROTOCOL, BlobNotFound, BlobStore, InvalidContentId, cid_of, digest_of_cid
from p2p.blob import CHUNK_BYTES
from p2p.scoring import PENALTY_CORRUPT_DATA


@pytest.mark.parametrize("data", [b"", b"hello", os.urandom(3 * 1024 * 1024 + 7)])
def test_cid_matches_py_cid(data):
    mh = multihash.encode(hashlib.sha256(data).digest(), "sha2-256")
    assert cid_of(data) == pycid.make_cid(1, "raw", mh).encode("base32").decode()
    assert digest_of_cid(cid_of(data)) == hashlib.sha256(data).digest()


@pytest.mark.parametrize("bad", ["", "hello", "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N",
                                 "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi",
                                 "bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4ye!"])
def test_invalid_cids(bad):
    with pytest.raises(InvalidContentId):
        digest_of_cid(bad)


def test_store_put_get(tmp_path):
    store = BlobStore(tmp_path)
    data = os.urandom(CHUNK_BYTES + 5)
    cid = store.put(data)
    assert store.has(cid) and store.get(cid) == data
    size, chunk, hashes = store.manifest(cid)
    assert (size, chunk, len(hashes)) == (len(data), CHUNK_BYTES, 64)
    assert store.read_chunk(cid, 1) == data[CHUNK_BYTES:]
    with pytest.raises(BlobNotFound):
        store.read_chunk(cid, 2)
    with pytest.raises(BlobNotFound):
        store.get(cid_of(b"absent"))
    assert not list(tmp_path.glob("blobs/*.tmp"))


@pytest.mark.timeout(60)
async def test_fetch_from_peer_with_corrupt_chunk_peer(tmp_path):
    data = os.urandom(5 * CHUNK_BYTES + 123)
    async with running(1, blob_dir=str(tmp_path / "a")) as (a,), \
            running(1, blob_dir=str(tmp_path / "b")) as (honest,), \
            running(1, blob_dir=str(tmp_path / "evil")) as (evil,):
        cid = honest.blobs.store.put(data)
        evil.blobs.store.put(data)
        real = evil.blobs._handle

        def lying_handler(request: bytes, from_peer: str) -> bytes:
            out = real(request, from_peer)
            if msgpack.unpackb(request)["op"] == "chunk":
                return bytes([out[0] ^ 1]) + out[1:]  # flip one bit in every chunk
            return out

        evil.serve(BLOB_PROTOCOL, lying_handler, max_request_bytes=256, max_response_bytes=8 << 20)
        await connect_all([a, honest, evil])
        path = await a.blobs.fetch(cid, peers=[evil.peer_id, honest.peer_id], timeout=30)
        assert path.read_bytes() == data
        assert a.score(evil.peer_id) < -PENALTY_CORRUPT_DATA / 2
        assert a.score(honest.peer_id) == 0.0
        assert await a.blobs.fetch(cid) == path  # already local: no network


@pytest.mark.timeout(60)
async def test_fetch_resumes_after_peer_vanishes(tmp_path):
    data = os.urandom(6 * CHUNK_BYTES)
    async with running(1, blob_dir=str(tmp_path / "a")) as (a,), \
            running(1, blob_dir=str(tmp_path / "b")) as (b,):
        cid = b.blobs.store.put(data)
        await connect_all([a, b])
        real = b.blobs._handle
        served = []

        def flaky(request: bytes, from_peer: str) -> bytes:
            req = msgpack.unpackb(request)
            if req["op"] == "chunk" and req["i"] >= 3:
                raise BlobNotFound("disk went away")
            served.append(req.get("i"))
            return real(request, from_peer)

        b.serve(BLOB_PROTOCOL, flaky, max_request_bytes=256, max_response_bytes=8 << 20)
        with pytest.raises(BlobNotFound):
            await a.blobs.fetch(cid, timeout=30)
        assert (tmp_path / "a" / "partial" / f"{cid}.part").exists()
        served.clear()

        def counting(request: bytes, from_peer: str) -> bytes:
            served.append(msgpack.unpackb(request).get("i"))
            return real(request, from_peer)

        b.serve(BLOB_PROTOCOL, counting, max_request_bytes=256, max_response_bytes=8 << 20)
        path = await a.blobs.fetch(cid, timeout=30)
        assert path.read_bytes() == data
        chunks = [i for i in served if i is not None]
        assert sorted(chunks) == [3, 4, 5], f"resume should fetch only the missing chunks, fetched {chunks}"
        assert not (tmp_path / "a" / "partial" / f"{cid}.part").exists()


@pytest.mark.timeout(30)
async def test_fetch_unknown_blob(tmp_path):
    async with running(2, blob_dir=str(tmp_path)) as nodes:
        await connect_all(nodes)
        with trio.fail_after(20), pytest.raises(BlobNotFound):
            await nodes[0].blobs.fetch(cid_of(b"nobody has this"), timeout=10)
