"""Benchmark of the p2p layer; prints one JSON object.

Measured in one run, on 127.0.0.1:
* ``raw_tcp``: plain trio TCP (the baseline), one process, for 4/40/100 MB;
* ``libp2p_stream``: ``/mindnode/tensor/1.0.0`` in stream mode (Noise + yamux, large writes, no
  msgpack), one process (both ends share the CPU) and two processes (one end each);
* ``bulk_direct``: the direct AES-256-GCM path of ``BulkService``, one and two processes;
  each with its ratio to ``raw_tcp``;
* ``gossip_paced``: latency p50/p95 of 200 messages published 20 ms apart on a 3-node network;
* ``gossip_burst``: delivery of 1,000 back-to-back publishes on a 3-node network;
* ``connect``: median ``Node.connect`` time (py-libp2p's default has a fixed 250 ms delay).

Usage: ``python scripts/bench/p2p.py [--quick]`` (quick: fewer repetitions, no 2-process runs).
Figures on a shared 2-core machine are noisy: compare ratios from the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import trio  # noqa: E402

from p2p import Node, NodeConfig, PeerTimeout  # noqa: E402

SIZES_MB = (4, 40, 100)
MB = 1_000_000


async def raw_tcp(size: int) -> float:
    data = bytes(size)
    done = trio.Event()

    async def handler(stream: trio.SocketStream) -> None:
        got = 0
        while got < size:
            chunk = await stream.receive_some(4 << 20)
            if not chunk:
                break
            got += len(chunk)
        done.set()
        await stream.aclose()

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, handler, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        client = await trio.open_tcp_stream("127.0.0.1", port)
        t0 = time.perf_counter()
        await client.send_all(data)
        await done.wait()
        dt = time.perf_counter() - t0
        await client.aclose()
        nursery.cancel_scope.cancel()
    return size / dt / MB


async def bulk_in_process(mode: str, size: int) -> float:
    cfg = dict(enable_dht=False, bulk_mode=mode)
    async with Node(NodeConfig(seed=os.urandom(32), **cfg)).started() as a, \
            Node(NodeConfig(seed=os.urandom(32), **cfg)).started() as b:
        await a.connect(b.addrs[0])
        await a.bulk.send(b.peer_id, "warm", b"x", timeout=10)  # pipe set-up outside the timing
        await b.bulk.recv(a.peer_id, "warm", timeout=10)
        data = bytes(size)
        t0 = time.perf_counter()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(a.bulk.send, b.peer_id, "t", data, 120)
            got = await b.bulk.recv(a.peer_id, "t", timeout=120)
        dt = time.perf_counter() - t0
        assert len(got) == size
    return size / dt / MB


def bulk_two_processes(mode: str, size: int) -> float:
    """Sender and receiver in separate ``python -m p2p.peer`` processes (one core each)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))

    def start(*args: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "p2p.peer", "--no-dht", "--bulk-mode", mode, *args],
                                cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL)

    def read(p: subprocess.Popen, event: str) -> dict:
        while True:
            line = p.stdout.readline()
            if not line:
                raise RuntimeError("peer process ended")
            e = json.loads(line)
            if e["event"] == event:
                return e
            if e["event"] == "error":
                raise RuntimeError(e["error"])

    def send(p: subprocess.Popen, **cmd) -> None:
        p.stdin.write((json.dumps(cmd) + "\n").encode())
        p.stdin.flush()

    a = start()
    try:
        ra = read(a, "ready")
        b = start("--bootnode", ra["addrs"][0])
        try:
            rb = read(b, "ready")
            read(a, "peer")
            send(b, cmd="bulk_send", peer=ra["peer_id"], channel="warm", size=1)
            send(a, cmd="bulk_recv", peer=rb["peer_id"], channel="warm")
            read(a, "bulk_received")
            read(b, "bulk_sent")  # consume the warm-up's event: the timed one comes next
            send(a, cmd="bulk_recv", peer=rb["peer_id"], channel="t", timeout=120)
            send(b, cmd="bulk_send", peer=ra["peer_id"], channel="t", size=size, timeout=120)
            done = read(a, "bulk_received")
            start_ev = read(b, "bulk_sent")
            return size / (done["t_done"] - start_ev["t_start"]) / MB
        finally:
            send(b, cmd="stop")
            b.communicate(timeout=10)
    finally:
        send(a, cmd="stop")
        a.communicate(timeout=10)


async def gossip(paced_n: int = 200, burst_n: int = 1000) -> dict:
    cfg = dict(enable_dht=False)
    async with Node(NodeConfig(seed=os.urandom(32), **cfg)).started() as a, \
            Node(NodeConfig(seed=os.urandom(32), **cfg)).started() as b, \
            Node(NodeConfig(seed=os.urandom(32), **cfg)).started() as c:
        nodes = [a, b, c]
        for i, x in enumerate(nodes):
            for y in nodes[i + 1:]:
                await x.connect(y.addrs[0])
        paced_topic, burst_topic = a.topic("bench-paced"), a.topic("bench-burst")
        subs = {t: [await n.subscribe(t) for n in nodes] for t in (paced_topic, burst_topic)}
        with trio.fail_after(20):
            while not all(len(n.gossip.mesh_peers(t)) == 2 for n in nodes for t in (paced_topic, burst_topic)):
                await trio.sleep(0.05)

        latencies: list[float] = []

        async def collect_latency(sub) -> None:
            for _ in range(paced_n):
                try:
                    msg = await sub.get(timeout=10)
                except PeerTimeout:
                    return
                latencies.append((time.perf_counter() - float(msg.data)) * 1000)

        async with trio.open_nursery() as nursery:
            for sub in subs[paced_topic][1:]:
                nursery.start_soon(collect_latency, sub)
            for _ in range(paced_n):
                await a.publish(paced_topic, repr(time.perf_counter()).encode())
                await trio.sleep(0.02)

        counts = [0, 0]
        last = [0.0, 0.0]
        t0 = time.perf_counter()

        async def collect_burst(k: int, sub) -> None:
            while counts[k] < burst_n:
                try:
                    await sub.get(timeout=30)
                except PeerTimeout:
                    return
                counts[k] += 1
                last[k] = time.perf_counter() - t0

        publish_errors = 0
        async with trio.open_nursery() as nursery:
            for k, sub in enumerate(subs[burst_topic][1:]):
                nursery.start_soon(collect_burst, k, sub)
            for i in range(burst_n):
                try:
                    await a.publish(burst_topic, b"%d" % i, timeout=30)
                except Exception:
                    publish_errors += 1
            publish_s = time.perf_counter() - t0

    lat = sorted(latencies)
    return {
        "gossip_paced": {
            "messages": paced_n, "interval_ms": 20, "subscribers": 2, "samples": len(lat),
            "p50_ms": round(statistics.median(lat), 2) if lat else None,
            "p95_ms": round(lat[int(0.95 * (len(lat) - 1))], 2) if lat else None,
            "max_ms": round(lat[-1], 2) if lat else None,
        },
        "gossip_burst": {
            "messages": burst_n, "nodes": 3,
            "delivered_per_subscriber": counts,
            "delivery_ratio": round(min(counts) / burst_n, 4),
            "publish_errors": publish_errors,
            "publish_s": round(publish_s, 2),
            "all_delivered_s": round(max(last), 2),
            "msgs_per_s_per_subscriber": round(burst_n / max(last), 1) if max(last) else None,
        },
    }


async def connect_latency(n: int = 5) -> dict:
    """host.connect: py-libp2p waits a fixed 250 ms happy-eyeballs delay unless one connection
    per peer is configured (see p2p/libp2p_host.py); this shows which regime we are in."""
    times = []
    async with Node(NodeConfig(seed=os.urandom(32), enable_dht=False)).started() as a:
        for _ in range(n):
            async with Node(NodeConfig(seed=os.urandom(32), enable_dht=False)).started() as b:
                t0 = time.perf_counter()
                await a.connect(b.addrs[0])
                times.append((time.perf_counter() - t0) * 1000)
    return {"connect_ms_median": round(statistics.median(times), 1), "samples": n,
            "py_libp2p_default_ms": 251}


def best(values: list[float]) -> float:
    return round(max(values), 1)


async def main_async(args: argparse.Namespace) -> dict:
    reps = 1 if args.quick else 2
    out: dict = {"machine_note": f"shared 2-core VM, loopback; best of {reps} runs per figure",
                 "unit": "MB/s (1 MB = 10^6 bytes)"}
    streams: dict = {}
    for mb in SIZES_MB:
        size = mb * MB
        raw = best([await raw_tcp(size) for _ in range(reps)])
        row = {"raw_tcp": raw}
        for mode, key in (("stream", "libp2p_stream"), ("direct", "bulk_direct")):
            v = best([await bulk_in_process(mode, size) for _ in range(reps)])
            row[key + "_1proc"] = v
            row[key + "_1proc_ratio_to_raw"] = round(v / raw, 3)
            if not args.quick:
                v2 = best([bulk_two_processes(mode, size) for _ in range(reps)])
                row[key + "_2proc"] = v2
                row[key + "_2proc_ratio_to_raw"] = round(v2 / raw, 3)
        streams[f"{mb}MB"] = row
    out["throughput"] = streams
    out["connect"] = await connect_latency()
    out.update(await gossip())
    t100 = streams["100MB"]
    out["targets"] = {
        "stream_100MB_ge_150MBps": max(t100.get("libp2p_stream_1proc", 0), t100.get("libp2p_stream_2proc", 0)) >= 150,
        "bulk_100MB_ge_500MBps": max(t100.get("bulk_direct_1proc", 0), t100.get("bulk_direct_2proc", 0)) >= 500,
        "gossip_p95_lt_20ms": (out["gossip_paced"]["p95_ms"] or 1e9) < 20,
        "burst_100pct": out["gossip_burst"]["delivery_ratio"] == 1.0,
    }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="one repetition, in-process only")
    args = parser.parse_args()
    import logging

    logging.basicConfig(level=logging.CRITICAL)
    print(json.dumps(trio.run(main_async, args), indent=2))


if __name__ == "__main__":
    main()
