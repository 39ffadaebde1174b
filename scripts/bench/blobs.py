#!/usr/bin/env python3
"""Benchmark: a large blob through two real nodes (in one process: one-validator chain, libp2p
hosts with Noise + yamux, hypercorn HTTP APIs), with the process's peak RSS growth.

Steps: upload FILE to node A (`POST /blobs`, the CLI's `RpcClient.put_blob`), download it from A
(`GET /blobs/{cid}`, local store -> file), and download it from node B, which first fetches it from
A over the p2p blob exchange. Baseline in the same run: a plain file copy of the same file
(`shutil.copyfile`); ratio = node MB/s / copy MB/s. Memory: the resident set is sampled every 10 ms
(and the kernel's peak, ru_maxrss) while the steps run; ``rss_growth_mb`` is the peak minus the
resident set just before (after a warm-up round with a small blob), i.e. what moving the blob
costs in memory, which must stay far below its size.

Usage: ``python scripts/bench/blobs.py [--mb 256]``. Prints one JSON document. Timings on the
shared 2-core box are noisy; the memory figure is what tests assert on.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "mindnode"))


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def write_file(path: Path, size: int) -> None:
    """`size` bytes of incompressible data, written in 1 MiB pieces (never held whole)."""
    piece = os.urandom(1024 * 1024)
    with open(path, "wb") as f:
        left = size
        i = 0
        while left:
            n = min(left, len(piece))
            f.write(i.to_bytes(8, "little") + piece[8:n] if n >= 8 else piece[:n])
            left -= n
            i += 1


async def scenario(tmp: Path, size: int) -> dict:
    import dataclasses

    import trio
    from test_node_service import _port, one_validator_genesis

    from ledger.keys import devnet_key
    from mindnode.node.chain import Chain
    from mindnode.node.rpc_client import RpcClient
    from mindnode.node.service import NodeOptions, NodeService

    genesis = one_validator_genesis()
    base = NodeOptions(datadir="", validator=True, listen=["/ip4/127.0.0.1/tcp/0"], bootnodes=[],
                       rpc_host="127.0.0.1", rpc_port=0, provide=False, max_blob_upload_bytes=size + 1)
    out: dict = {"blob_mb": round(size / 1e6, 1)}
    async with trio.open_nursery() as n:
        a = NodeService(Chain.open(str(tmp / "a" / "chain"), genesis), devnet_key(0),
                        dataclasses.replace(base, datadir=str(tmp / "a"), rpc_port=_port()))
        await n.start(a.run)
        b = NodeService(Chain.open(str(tmp / "b" / "chain"), genesis), devnet_key(6),
                        dataclasses.replace(base, datadir=str(tmp / "b"), validator=False, rpc_port=_port(),
                                            bootnodes=[a.net.listen_addrs()[0]]))
        await n.start(b.run)
        with trio.fail_after(30):
            while not b.net.connected_peers():
                await trio.sleep(0.05)

        src = tmp / "src.bin"

        def run(fn, *args):
            return trio.to_thread.run_sync(lambda: fn(*args))

        ca, cb = RpcClient(a.rpc_url, timeout=120), RpcClient(b.rpc_url, timeout=120)
        # warm-up: every code path once with a small blob, so imports and first-use buffers are
        # in the baseline and the growth below is what the size of the blob costs
        write_file(src, 3 * 1024 * 1024 + 5)
        cid = (await run(ca.put_blob, src))["cid"]
        await run(ca.download_blob, cid, tmp / "warm-a.bin")
        await run(cb.download_blob, cid, tmp / "warm-b.bin")
        write_file(src, size)

        t = time.perf_counter()
        await trio.to_thread.run_sync(shutil.copyfile, src, tmp / "copy.bin")
        copy_s = time.perf_counter() - t
        (tmp / "copy.bin").unlink()

        samples = {"max": 0}

        async def sample() -> None:
            while True:
                samples["max"] = max(samples["max"], rss_bytes())
                await trio.sleep(0.01)

        before, peak_before = rss_bytes(), peak_rss_bytes()
        n.start_soon(sample)
        t = time.perf_counter()
        cid = (await run(ca.put_blob, src))["cid"]
        up_s = time.perf_counter() - t
        t = time.perf_counter()
        await run(ca.download_blob, cid, tmp / "from-a.bin")
        down_a_s = time.perf_counter() - t
        (tmp / "from-a.bin").unlink()
        t = time.perf_counter()
        await run(cb.download_blob, cid, tmp / "from-b.bin")
        down_b_s = time.perf_counter() - t
        assert (tmp / "from-b.bin").stat().st_size == size
        (tmp / "from-b.bin").unlink()
        peak = max(samples["max"], peak_rss_bytes() if peak_rss_bytes() > peak_before else 0)
        ca.close()
        cb.close()
        n.cancel_scope.cancel()

    mb = size / 1e6
    copy = mb / copy_s
    out.update({
        "copy_mb_s": round(copy, 1),
        "upload_mb_s": round(mb / up_s, 1),
        "download_local_mb_s": round(mb / down_a_s, 1),
        "download_via_peer_mb_s": round(mb / down_b_s, 1),
        "upload_plus_download_mb_s": round(2 * mb / (up_s + down_a_s), 1),
        "ratio_upload_plus_download_vs_copy": round((2 * mb / (up_s + down_a_s)) / copy, 3),
        "ratio_via_peer_vs_copy": round((mb / down_b_s) / copy, 3),
        "rss_before_mb": round(before / 1e6, 1),
        "rss_peak_mb": round(peak / 1e6, 1),
        "rss_growth_mb": round(max(0, peak - before) / 1e6, 1),
    })
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=int, default=256, help="Blob size in MiB.")
    args = ap.parse_args()
    import trio

    with tempfile.TemporaryDirectory(prefix="bench-blobs-") as d:
        result = trio.run(scenario, Path(d), args.mb * 1024 * 1024)
    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
