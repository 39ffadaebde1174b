"""The blob store under a budget (p2p/blob_gc.py): least recently used blobs go first, pins, kept
ids, held (being served) and recently used blobs stay, the budget holds after a collection, a use
that races an eviction wins, abandoned partial downloads go, and a SIGKILL in the middle of an
eviction leaves a store whose every blob still matches its id."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from p2p import blob_gc
from p2p.blob import BlobStore, cid_of

pytestmark = [pytest.mark.timeout(60)]

KB = 1024


def _fill(store: BlobStore, n: int, size: int = 10 * KB, t0: float | None = None) -> list[str]:
    """``n`` blobs, the i-th last used at t0 + i (oldest first)."""
    t0 = time.time() - 10_000 if t0 is None else t0
    cids = []
    for i in range(n):
        cid = store.put(os.urandom(size - 32))          # + a 32-byte sidecar = `size` on disk
        os.utime(store.path(cid), (t0 + i, t0 + i))
        cids.append(cid)
    return cids


def _intact(store: BlobStore) -> None:
    """Every blob in the store matches its id, and nothing half-evicted is visible."""
    for cid, _, _ in store.entries():
        assert cid_of(store.path(cid).read_bytes()) == cid
        assert b"".join(store.iter_chunks(cid)) == store.path(cid).read_bytes()


def test_least_recently_used_go_first_until_within_budget(tmp_path):
    store = BlobStore(tmp_path)
    cids = _fill(store, 6)
    assert blob_gc.usage(store) == 6 * 10 * KB
    # a later use moves a blob to the back of the queue
    store.touch(cids[0], force=True)
    r = blob_gc.collect(store, 35 * KB, recent_s=0)
    assert [c for c, _ in r.freed] == cids[1:4]         # oldest first, and only as many as needed
    assert (r.before, r.after, r.over_budget) == (60 * KB, 30 * KB, False)
    assert blob_gc.usage(store) == 30 * KB <= 35 * KB
    assert {c for c, _, _ in store.entries()} == {cids[0], *cids[4:]}
    assert not any(p.name.startswith(".") for p in store.blobs.iterdir())   # no temp file left
    assert {p.name for p in store.blobs.iterdir()} == {c for c in (cids[0], *cids[4:])} | {
        f"{c}.chunks" for c in (cids[0], *cids[4:])}
    _intact(store)


def test_under_budget_costs_a_listing_only(tmp_path):
    store = BlobStore(tmp_path)
    _fill(store, 3)

    def keep():
        raise AssertionError("the keep set is computed only when over budget")

    r = blob_gc.collect(store, 30 * KB, keep=keep, recent_s=0)
    assert r.freed == [] and r.after == 30 * KB


def test_pins_kept_ids_held_and_recent_blobs_stay(tmp_path):
    store = BlobStore(tmp_path)
    old = _fill(store, 5)
    recent = store.put(b"just used" * 100)              # mtime now
    store.pin(old[0], "user")
    with store.writer() as w:                           # an upload pinned before it enters the store
        w.write(b"upload" * 100)
        uploaded = w.commit(pin="user")
    os.utime(store.path(uploaded), (1, 1))              # even if it is the oldest of all
    with store.hold(old[2]):
        r = blob_gc.collect(store, 0, keep={old[1]}, recent_s=600)
        assert {c for c, _ in r.freed} == {old[3], old[4]}
        assert r.over_budget and r.protected > 0
    left = {c for c, _, _ in store.entries()}
    assert left == {old[0], old[1], old[2], recent, uploaded}
    assert store.pins() == {old[0]: "user", uploaded: "user"}
    # released, unpinned, no longer needed: now they go
    assert store.unpin(old[0]) and not store.unpin(old[0])
    r = blob_gc.collect(store, 0, keep=set(), recent_s=600)
    assert {c for c, _ in r.freed} == {old[0], old[1], old[2]}
    assert {c for c, _, _ in store.entries()} == {recent, uploaded}


def test_a_use_after_listing_wins_over_the_eviction(tmp_path):
    store = BlobStore(tmp_path)
    (cid,) = _fill(store, 1)
    listed_at = store.entries()[0][2]
    assert store.keep_existing(cid)                     # a put/fetch of the same id meanwhile
    assert not store.evict(cid, unused_since=listed_at)
    assert store.has(cid)
    store._touched.clear()                              # (the throttle would protect it for 30 s too)
    assert store.evict(cid, unused_since=time.time() + 1)
    assert not store.has(cid) and not store.keep_existing(cid)
    assert store.put(b"x") and store.has(cid_of(b"x"))


def test_a_blob_being_served_is_not_removed(tmp_path):
    """The HTTP serve holds the blob (job_service._stream_blob); a collection running in another
    thread meanwhile leaves it, and the whole body arrives intact."""
    store = BlobStore(tmp_path, chunk_bytes=64 * KB)
    data = os.urandom(512 * KB)
    cid = store.put(data)
    os.utime(store.path(cid), (1, 1))
    got = bytearray()
    first = threading.Event()
    go_on = threading.Event()

    def serve() -> None:
        with store.hold(cid):
            for i, piece in enumerate(store.iter_chunks(cid, 64 * KB)):
                got.extend(piece)
                if i == 0:
                    first.set()
                    go_on.wait(10)

    t = threading.Thread(target=serve)
    t.start()
    assert first.wait(10)
    # serving counts as a use; undo that so that only the hold protects it here
    store._touched.clear()
    os.utime(store.path(cid), (1, 1))
    r = blob_gc.collect(store, 0, recent_s=0)
    go_on.set()
    t.join(10)
    assert r.freed == [] and store.has(cid) and bytes(got) == data
    store._touched.clear()
    os.utime(store.path(cid), (1, 1))
    r = blob_gc.collect(store, 0, recent_s=0)           # served and released: now it may go
    assert [c for c, _ in r.freed] == [cid]


def test_abandoned_partial_downloads_go_in_flight_ones_stay(tmp_path):
    store = BlobStore(tmp_path)
    stale, live, fresh = (cid_of(bytes([i])) for i in range(3))
    for cid in (stale, live, fresh):
        with open(store.partial / f"{cid}.part", "wb") as f:
            f.write(os.urandom(8 * KB))
        (store.partial / f"{cid}.manifest").write_bytes(b"m")
    for cid in (stale, live):
        for suffix in (".part", ".manifest"):
            os.utime(store.partial / f"{cid}{suffix}", (1, 1))
    r = blob_gc.collect(store, 10**9, fetching={live}, recent_s=0)
    assert r.partial_freed >= 8 * KB
    assert sorted(p.name for p in store.partial.iterdir()) == sorted(
        f"{c}{s}" for c in (live, fresh) for s in (".part", ".manifest"))


def test_reopening_cleans_what_a_crash_left(tmp_path):
    store = BlobStore(tmp_path)
    a, b = _fill(store, 2)
    # a crash after the rename (blob gone, sidecar left), and one before the unlink of the temp
    os.replace(store.path(a), store.blobs / f".{a}.evict.tmp")
    (store.blobs / f"{b}.chunks").unlink()              # a crash after the sidecar went
    store = BlobStore(tmp_path)
    assert [p.name for p in store.blobs.iterdir() if p.name.startswith(".") or p.name.startswith(a)] == []
    assert {c for c, _, _ in store.entries()} == {b}
    assert store.manifest(b)[0] == 10 * KB - 32         # the missing sidecar is rebuilt on demand
    _intact(store)


CHILD = textwrap.dedent("""
    import sys, time
    from p2p import blob_gc
    from p2p.blob import BlobStore
    store = BlobStore(sys.argv[1])
    real = store.evict
    def slow_evict(cid, **kw):
        ok = real(cid, **kw)
        print("evicted", cid, flush=True)
        time.sleep(0.002)
        return ok
    store.evict = slow_evict
    print("start", flush=True)
    blob_gc.collect(store, 0, recent_s=0)
    print("done", flush=True)
""")


@pytest.mark.timeout(60)
def test_sigkill_mid_eviction_leaves_a_consistent_store(tmp_path):
    store = BlobStore(tmp_path)
    cids = _fill(store, 300, size=4 * KB)
    store.pin(cids[-1])
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path)], stdout=subprocess.PIPE, text=True,
                            cwd=root, env={**os.environ, "PYTHONPATH": str(root)})
    try:
        assert proc.stdout.readline().strip() == "start"
        for _ in range(20):                               # well inside the eviction loop
            assert proc.stdout.readline().startswith("evicted")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        proc.kill()
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    store = BlobStore(tmp_path)                          # the next start
    left = {c for c, _, _ in store.entries()}
    assert 0 < len(left) < 300 and cids[-1] in left      # cut in the middle; the pin held
    assert [c for c in cids if c in left] == cids[-len(left):]          # oldest went first
    assert not [p for p in store.blobs.iterdir() if p.name.startswith(".")]
    assert {p.name[:-7] for p in store.blobs.glob("*.chunks")} <= left
    _intact(store)
    store._touched.clear()                               # (reading them all just now was a use)
    r = blob_gc.collect(store, 0, recent_s=0)            # and the store still collects normally
    assert {c for c, _, _ in store.entries()} == {cids[-1]} and r.after == 4 * KB


def test_a_blob_being_written_is_not_touched(tmp_path):
    """An upload in progress is a temp file (and a download a partial file): not in the store, so
    a collection neither counts nor removes it; committed, it is a blob like any other."""
    store = BlobStore(tmp_path)
    old = _fill(store, 2)
    with store.writer() as w:
        w.write(b"a" * 50 * KB)
        r = blob_gc.collect(store, 0, recent_s=0)
        assert {c for c, _ in r.freed} == set(old) and w.tmp.exists()
        w.write(b"b" * 10)
        cid = w.commit()
    assert store.has(cid) and cid_of(store.path(cid).read_bytes()) == cid
    assert blob_gc.collect(store, 0, recent_s=600).freed == []          # just written: recent
