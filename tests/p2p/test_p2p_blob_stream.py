"""`BlobWriter` and `BlobStore.iter_chunks`: a blob written in pieces gets the id and chunk-hash
sidecar of the whole; over the cap nothing is kept; a crash mid-write leaves only a temp file the
next start removes; a blob damaged on disk is never yielded whole."""

from __future__ import annotations

import os

import pytest

from p2p.blob import BlobStore, _chunk_hashes, cid_of
from p2p.errors import BlobCorrupt, BlobNotFound, BlobTooLarge


def test_writer_in_odd_pieces_matches_put(tmp_path):
    store = BlobStore(tmp_path, chunk_bytes=4096)
    data = os.urandom(3 * 4096 + 123)
    with store.writer() as w:
        for i in range(0, len(data), 1000):          # pieces that straddle chunk boundaries
            w.write(data[i:i + 1000])
        cid = w.commit()
    assert cid == cid_of(data) and store.get(cid) == data and w.size == len(data)
    assert store.manifest(cid)[2] == _chunk_hashes(store.path(cid), 4096)
    assert b"".join(store.iter_chunks(cid, 5000)) == data
    with store.writer() as w:                         # the same bytes again: stored once
        w.write(data)
        assert w.commit() == cid
    assert sorted(p.name for p in store.blobs.iterdir()) == sorted([cid, f"{cid}.chunks"])


def test_writer_cap_abort_and_stale_temp(tmp_path):
    store = BlobStore(tmp_path)
    with pytest.raises(BlobTooLarge, match="100-byte limit"):
        with store.writer(max_bytes=100) as w:
            w.write(b"x" * 60)
            w.write(b"x" * 41)
    with store.writer() as w:                         # left without commit: aborted
        w.write(b"half a blob")
    assert list(store.blobs.iterdir()) == []
    w = store.writer()                                # a crash mid-write (no abort, no commit)
    w.write(b"never finished")
    w._f.flush()
    assert [p.name.endswith(".tmp") for p in store.blobs.iterdir()] == [True]
    BlobStore(tmp_path)                               # the next start clears it
    assert list(store.blobs.iterdir()) == []


def test_iter_chunks_refuses_a_damaged_blob(tmp_path):
    store = BlobStore(tmp_path)
    data = os.urandom(10_000)
    cid = store.put(data)
    with open(store.path(cid), "r+b") as f:
        f.seek(9_999)
        f.write(bytes([data[-1] ^ 1]))
    got = []
    with pytest.raises(BlobCorrupt):
        for piece in store.iter_chunks(cid, 4096):
            got.append(piece)
    assert sum(map(len, got)) < len(data)            # the last piece never went out
    with pytest.raises(BlobNotFound):
        list(store.iter_chunks(cid_of(b"absent")))
    empty = store.put(b"")
    assert list(store.iter_chunks(empty)) == []


@pytest.mark.timeout(60)
async def test_concurrent_fetches_of_one_blob_share_one_download(tmp_path):
    import trio
    from p2phelpers import connect_all, running

    data = os.urandom(3 * 1024 * 1024 + 1)
    async with running(1, blob_dir=str(tmp_path / "a")) as (a,), \
            running(1, blob_dir=str(tmp_path / "b")) as (b,):
        cid = b.blobs.store.put(data)
        await connect_all([a, b])
        paths = []

        async def one() -> None:
            paths.append(await a.blobs.fetch(cid, timeout=30))

        async with trio.open_nursery() as n:
            for _ in range(3):
                n.start_soon(one)
        assert len(set(paths)) == 1 and paths[0].read_bytes() == data
        assert b.blobs.chunks_served == 4                  # one download, not three
        assert a.blobs._fetching == {} and list(a.blobs.store.partial.iterdir()) == []


@pytest.mark.timeout(60)
async def test_a_self_consistent_lying_manifest_fails_the_whole_hash(tmp_path):
    """A peer that answers for the id with another blob's manifest and chunks passes every chunk
    check; the whole-blob hash, computed as the chunks arrive, catches it at the end: the peer is
    penalised and the honest peer's copy is fetched instead."""
    import msgpack
    from p2phelpers import connect_all, running

    from p2p.blob import BLOB_PROTOCOL
    from p2p.scoring import PENALTY_CORRUPT_DATA

    data, other = os.urandom(3 * 1024 * 1024 + 5), os.urandom(3 * 1024 * 1024 + 5)
    async with running(1, blob_dir=str(tmp_path / "a")) as (a,), \
            running(1, blob_dir=str(tmp_path / "h")) as (honest,), \
            running(1, blob_dir=str(tmp_path / "e")) as (evil,):
        cid = honest.blobs.store.put(data)
        fake = evil.blobs.store.put(other)
        real = evil.blobs._handle

        def lying(request: bytes, from_peer: str) -> bytes:
            req = msgpack.unpackb(request)
            return real(msgpack.packb({**req, "cid": fake}), from_peer)

        evil.serve(BLOB_PROTOCOL, lying, max_request_bytes=256, max_response_bytes=8 << 20)
        await connect_all([a, honest, evil])
        path = await a.blobs.fetch(cid, peers=[evil.peer_id, honest.peer_id], timeout=30)
        assert path.read_bytes() == data
        assert a.score(evil.peer_id) <= -PENALTY_CORRUPT_DATA / 2
