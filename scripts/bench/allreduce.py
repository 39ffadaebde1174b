#!/usr/bin/env python3
"""Benchmark: our averaging over real libp2p hosts vs torch.distributed gloo, 3 processes.

What it measures, in one run on this machine:
- baseline: ``torch.distributed.all_reduce`` (gloo, TCP on 127.0.0.1) of 1M / 10M / 25M float32;
- ours: ``trainer.allreduce.Averager`` over ``p2p`` Nodes (Noise-authenticated libp2p hosts whose
  BulkService moves the data on AES-256-GCM direct TCP pipes), compression none and fp16.

Each round starts after a barrier; a round's time is the slowest peer's; we report the median
over ``--reps`` rounds, the ratio to gloo, the payload bytes each peer sent against the ideal
2(n-1)/n of the vector, and a correctness check (max error against the exact mean, digest equal
on all peers). Prints one JSON document. Usage: ``python scripts/bench/allreduce.py [--reps 5]``.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
# this directory holds other benches (e.g. p2p.py) that would shadow the packages: drop it
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT))

WORLD = 3


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def vector(rank: int, n: int):
    import numpy as np

    return np.random.default_rng([rank, n]).standard_normal(n).astype(np.float32)


# -- helpers shared with train_digits.py ----------------------------------------------------
async def start_cluster_node(stack, rank: int, workdir: Path, world: int, timeout: float = 60.0):
    """Start a p2p Node for ``rank``, publish its address in ``workdir``, connect to all others.

    Returns (node, [peer ids by rank]). Lower ranks are dialled by higher ones.
    """
    import trio

    from p2p.node import Node, NodeConfig

    node = Node(NodeConfig(seed=bytes([rank + 1]) * 32, enable_dht=False))
    await stack.enter_async_context(node.started())
    (workdir / f"addr-{rank}.tmp").write_text(node.addrs[0])
    os.replace(workdir / f"addr-{rank}.tmp", workdir / f"addr-{rank}")
    addrs: dict[int, str] = {}
    with trio.fail_after(timeout):
        while len(addrs) < world:
            for r in range(world):
                p = workdir / f"addr-{r}"
                if r not in addrs and p.exists():
                    addrs[r] = p.read_text()
            await trio.sleep(0.05)
        ids = [a.rsplit("/p2p/", 1)[1] for _, a in sorted(addrs.items())]
        for r in range(rank):
            await node.connect(addrs[r])
        while not all(pid in node.peers() for i, pid in enumerate(ids) if i != rank):
            await trio.sleep(0.05)
    return node, ids


async def barrier(transport, ids: list[str], tag: str, timeout: float = 60.0) -> None:
    """Everyone sends a byte to everyone and waits for everyone's byte."""
    import trio

    async with trio.open_nursery() as n:
        for pid in ids:
            if pid != transport.self_id:
                n.start_soon(transport.send, pid, f"barrier/{tag}", b"\x01", timeout)
    for pid in ids:
        if pid != transport.self_id:
            await transport.recv(pid, f"barrier/{tag}", timeout)


# -- worker ---------------------------------------------------------------------------------
def gloo_phase(rank: int, port: int, sizes: list[int], reps: int) -> dict:
    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD)
    out = {}
    for n in sizes:
        base = torch.from_numpy(vector(rank, n))
        times, cpu = [], []
        for rep in range(reps + 1):
            t = base.clone()
            dist.barrier()
            t0, c0 = time.perf_counter(), time.process_time()
            dist.all_reduce(t)
            dt, dc = time.perf_counter() - t0, time.process_time() - c0
            if rep:
                times.append(dt)
                cpu.append(dc)
        out[str(n)] = {"times": times, "cpu": cpu}
    dist.destroy_process_group()
    return out


async def ours_phase(rank: int, workdir: Path, sizes: list[int], reps: int, codecs: list[str], chunk: int) -> dict:
    from contextlib import AsyncExitStack

    import numpy as np

    from mindnode.tensor_transport import transport_for
    from trainer.allreduce import Averager
    from trainer.transport import CountingTransport

    out: dict = {}
    # inputs and the exact mean are made before the host starts: a long computation inside the
    # trio loop would stall the libp2p host (identify/gossip time out under load)
    inputs = {}
    for n in sizes:
        vecs = [vector(r, n) for r in range(WORLD)]
        inputs[n] = (vecs[rank], ((vecs[0].astype(np.float64) + vecs[1] + vecs[2]) / WORLD).astype(np.float32))
        del vecs
    async with AsyncExitStack() as stack:
        node, ids = await start_cluster_node(stack, rank, workdir, WORLD)
        transport = CountingTransport(transport_for(node))
        round_id = 0
        for codec in codecs:
            av = Averager(transport, timeout=30.0, compression_name=codec, namespace="bench", chunk_elems=chunk)
            for n in sizes:
                mine, exact = inputs[n]
                out_buf = np.empty_like(mine)  # reused across rounds, as the trainer's Worker does
                times, cpu, sent, errs, digests = [], [], [], [], []
                for rep in range(reps + 1):
                    await barrier(transport, ids, f"{codec}/{n}/{rep}")
                    before = transport.bytes_sent
                    t0, c0 = time.perf_counter(), time.process_time()
                    res = await av.average(round_id, ids, mine, 1.0, out=out_buf)
                    dt, dc = time.perf_counter() - t0, time.process_time() - c0
                    round_id += 1
                    if rep:
                        times.append(dt)
                        cpu.append(dc)
                        sent.append(transport.bytes_sent - before)
                        errs.append(float(np.abs(res.vector - exact).max()))
                        digests.append(res.digest.hex())
                out[f"{codec}/{n}"] = {"times": times, "cpu": cpu, "sent": sent, "max_err": max(errs), "digests": digests}
        await barrier(transport, ids, "done")
    return out


def worker_main(args) -> None:
    import trio

    workdir = Path(args.dir)
    sizes = [int(s) for s in args.sizes.split(",")]
    result = {"gloo": gloo_phase(args.worker, args.port, sizes, args.reps)}
    if os.environ.get("BENCH_PROFILE") and args.worker == 0:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        result["ours"] = prof.runcall(trio.run, ours_phase, args.worker, workdir, sizes, args.reps, args.codecs.split(","),
                                      args.chunk)
        pstats.Stats(prof, stream=sys.stderr).sort_stats("tottime").print_stats(25)
    else:
        result["ours"] = trio.run(ours_phase, args.worker, workdir, sizes, args.reps, args.codecs.split(","), args.chunk)
    (workdir / f"result-{args.worker}.json").write_text(json.dumps(result))


# -- coordinator ----------------------------------------------------------------------------
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="1000000,10000000,25000000", help="comma-separated float32 counts")
    ap.add_argument("--reps", type=int, default=5, help="timed rounds per size (after one warm-up)")
    ap.add_argument("--codecs", default="none,fp16", help="our compression options to run")
    ap.add_argument("--chunk", type=int, default=1 << 20, help="values per all-reduce chunk")
    ap.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--dir", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker is not None:
        worker_main(args)
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
        procs = [subprocess.Popen([sys.executable, __file__, "--worker", str(r), "--dir", tmp, "--port", str(port),
                                   "--sizes", args.sizes, "--reps", str(args.reps), "--codecs", args.codecs,
                                   "--chunk", str(args.chunk)],
                                  env=env, stderr=subprocess.PIPE, text=True) for r in range(WORLD)]
        errors = []
        for p in procs:
            _, err = p.communicate(timeout=1800)
            if p.returncode:
                errors.append(err[-3000:])
            elif os.environ.get("BENCH_PROFILE"):
                print(err, file=sys.stderr)
        if errors:
            print(json.dumps({"error": errors}, indent=1))
            sys.exit(1)
        results = [json.loads((Path(tmp) / f"result-{r}.json").read_text()) for r in range(WORLD)]
    report: dict = {"world": WORLD, "chunk_elems": args.chunk, "machine": f"{os.cpu_count()} cores, 127.0.0.1", "reps": args.reps,
                    "round_time": "median over rounds of the slowest peer's time",
                    "cpu_s_per_peer": "median CPU seconds (all threads) one peer spends per round",
                    "load_average_at_start": os.getloadavg()[0], "sizes": {}}
    for n in sizes:
        gloo_rounds = [max(results[r]["gloo"][str(n)]["times"][i] for r in range(WORLD)) for i in range(args.reps)]
        gloo = statistics.median(gloo_rounds)
        gloo_cpu = statistics.median(c for r in range(WORLD) for c in results[r]["gloo"][str(n)]["cpu"])
        entry = {"gloo_s": round(gloo, 4), "gloo_cpu_s_per_peer": round(gloo_cpu, 4)}
        ideal = 2 * (WORLD - 1) / WORLD * 4 * n
        for codec in args.codecs.split(","):
            key = f"{codec}/{n}"
            rounds = [max(results[r]["ours"][key]["times"][i] for r in range(WORLD)) for i in range(args.reps)]
            ours = statistics.median(rounds)
            sent = statistics.mean(results[r]["ours"][key]["sent"][-1] for r in range(WORLD))
            digests_equal = all(len({results[r]["ours"][key]["digests"][i] for r in range(WORLD)}) == 1
                                for i in range(args.reps))
            entry[f"ours_{codec}_s"] = round(ours, 4)
            entry[f"ours_{codec}_vs_gloo"] = round(ours / gloo, 2)
            entry[f"ours_{codec}_cpu_s_per_peer"] = round(
                statistics.median(c for r in range(WORLD) for c in results[r]["ours"][key]["cpu"]), 4)
            entry[f"ours_{codec}_bytes_sent_per_peer"] = int(sent)
            entry[f"ours_{codec}_bytes_vs_ideal_fp32"] = round(sent / ideal, 4)
            entry[f"ours_{codec}_max_abs_err"] = max(results[r]["ours"][key]["max_err"] for r in range(WORLD))
            entry[f"ours_{codec}_digests_equal"] = digests_equal
        report["sizes"][str(n)] = entry
    report["ideal_bytes_per_peer"] = {str(n): int(2 * (WORLD - 1) / WORLD * 4 * n) for n in sizes}
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
