#!/usr/bin/env python3
"""Benchmark: what the blob store's budget costs (p2p/blob_gc.py).

Steps, on a store of N small blobs (each with its chunk-hash sidecar) in a temp directory:
* ``under_budget_ms``: a collection that finds the store within budget (the node's every-minute
  check) against the baseline ``scandir_ms``: a bare ``os.scandir`` + ``stat`` of the same directory
  (the least any size check can do); ratio = under / scandir.
* ``evict_ms``: a collection that evicts half the blobs (LRU order, re-checks under the lock,
  rename + two unlinks each) against ``unlink_ms``: plain ``os.unlink`` of as many blob + sidecar
  pairs in another copy of the store; ratio = evict / unlink.
* ``touch_us``: one recorded use (``BlobStore.keep_existing``: ``utime`` under the lock).

Usage: ``python scripts/bench/blob_gc.py [--blobs 5000]``. Prints one JSON document. Timings on the
shared 2-core box are noisy.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT))

from p2p import blob_gc  # noqa: E402
from p2p.blob import BlobStore  # noqa: E402


def _fill(store: BlobStore, n: int) -> list[str]:
    cids = []
    for i in range(n):
        cid = store.put(i.to_bytes(8, "big") * 128)
        os.utime(store.path(cid), (1000 + i, 1000 + i))
        cids.append(cid)
    return cids


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--blobs", type=int, default=5000)
    n = ap.parse_args().blobs
    with tempfile.TemporaryDirectory() as tmp:
        a, b = Path(tmp) / "a", Path(tmp) / "b"
        store = BlobStore(a)
        cids = _fill(store, n)
        shutil.copytree(a, b)
        total = blob_gc.usage(store)

        t = time.perf_counter()
        with os.scandir(store.blobs) as it:
            _ = sum(e.stat().st_size for e in it)
        scandir_ms = (time.perf_counter() - t) * 1000
        t = time.perf_counter()
        r = blob_gc.collect(store, total, recent_s=0)
        under_ms = (time.perf_counter() - t) * 1000
        assert not r.freed

        t = time.perf_counter()
        for cid in cids[: n // 2]:
            os.unlink(b / "blobs" / cid)
            os.unlink(b / "blobs" / f"{cid}.chunks")
        unlink_ms = (time.perf_counter() - t) * 1000
        t = time.perf_counter()
        r = blob_gc.collect(store, total - total // 2, recent_s=0)
        evict_ms = (time.perf_counter() - t) * 1000
        assert len(r.freed) >= n // 2 - 1 and not r.over_budget

        left = [c for c, _, _ in store.entries()]
        t = time.perf_counter()
        for cid in left[:1000]:
            store.keep_existing(cid)
        touch_us = (time.perf_counter() - t) * 1e6 / min(1000, len(left))

    print(json.dumps({"bench": "blob_gc", "blobs": n, "freed": len(r.freed),
                      "under_budget_ms": round(under_ms, 2), "scandir_ms": round(scandir_ms, 2),
                      "under_budget_ratio": round(under_ms / scandir_ms, 2),
                      "evict_ms": round(evict_ms, 2), "unlink_ms": round(unlink_ms, 2),
                      "evict_ratio": round(evict_ms / unlink_ms, 2), "touch_us": round(touch_us, 2),
                      "note": "shared 2-core box, noisy"}))


if __name__ == "__main__":
    main()
