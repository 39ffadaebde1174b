#!/usr/bin/env python3
"""Benchmark: the cost of signed gradient sketches (trainer/sketch.py) per sync step.

Measured in one run on this machine, each against a baseline from the same run:
- all-reduce of 10M float32 among 3 processes over real libp2p hosts (as scripts/bench/allreduce.py),
  rounds alternating plain (`Averager.average`) and signed (`average` keeping what peers sent, then
  `sketch.exchange`: sketch every part, Ed25519-sign, send to every peer, verify, check the received
  part and the averaged parts); ratio = median signed / median plain;
- the sketch alone on 10M floats, and one sign + verify;
- digits-mlp (the bundled job, 3 sync workers over the in-memory transport, one process): steps/s
  with and without signing.
Prints one JSON document. Usage: ``python scripts/bench/sketch.py [--reps 5] [--size 10000000]``.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT))
WORLD = 3


def _allreduce_bench():
    spec = importlib.util.spec_from_file_location("bench_allreduce", HERE / "allreduce.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _key(rank: int):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.from_private_bytes(bytes([rank + 7]) * 32)


async def network_phase(rank: int, workdir: Path, size: int, reps: int) -> dict:
    from contextlib import AsyncExitStack

    import numpy as np

    from mindnode.tensor_transport import transport_for
    from trainer import sketch as sk
    from trainer.allreduce import Averager

    ar = _allreduce_bench()
    mine = ar.vector(rank, size)
    out_buf = np.empty_like(mine)
    key = _key(rank)
    async with AsyncExitStack() as stack:
        node, ids = await ar.start_cluster_node(stack, rank, workdir, WORLD)
        publics = {pid: _key(r).public_key() for r, pid in enumerate(ids)}

        def verify(peer: str, msg: bytes, sig: bytes) -> bool:
            try:
                publics[peer].verify(bytes(sig), bytes(msg))
                return True
            except Exception:
                return False

        transport = transport_for(node)
        plain = Averager(transport, timeout=30.0, namespace="plain")
        signed = Averager(transport, timeout=30.0, namespace="signed", keep_received=True)
        times: dict[str, list[float]] = {"plain": [], "signed": [], "exchange": [], "signed_average": []}
        for rep in range(reps + 1):
            for kind in ("plain", "signed"):
                await ar.barrier(transport, ids, f"{kind}/{rep}")
                t0 = time.perf_counter()
                if kind == "plain":
                    await plain.average(rep, ids, mine, 1.0, out=out_buf)
                else:
                    res = await signed.average(rep, ids, mine, 1.0, out=out_buf)
                    t1 = time.perf_counter()
                    await sk.exchange(transport, res, mine, 1.0, namespace="bench", step=rep + 1, codec=0,
                                      chunk_elems=1 << 20, params=sk.NO_PARAMS, signer=key.sign, verify_peer=verify,
                                      timeout=30.0)
                    if rep:
                        times["exchange"].append(time.perf_counter() - t1)
                        times["signed_average"].append(t1 - t0)
                if rep:
                    times[kind].append(time.perf_counter() - t0)
        await ar.barrier(transport, ids, "done")
    return times


def worker_main(args) -> None:
    import trio

    out = trio.run(network_phase, args.worker, Path(args.dir), args.size, args.reps)
    (Path(args.dir) / f"result-{args.worker}.json").write_text(json.dumps(out))


def local_costs(size: int) -> dict:
    import numpy as np

    from trainer import sketch as sk

    x = np.random.default_rng(0).standard_normal(size).astype(np.float32)
    seed = sk.sketch_seed("bench", 1, b"d" * 32)
    sk.sketch(x, seed, 0)
    t = []
    for _ in range(5):
        t0 = time.perf_counter()
        sk.sketch(x, seed, 0)
        t.append(time.perf_counter() - t0)
    key = _key(0)
    msg = sk.SketchMessage("bench", b"g" * 32, 1, 0, 0, WORLD, 1.0, b"d" * 32, sk.NO_PARAMS,
                           np.zeros((WORLD, sk.K))).encode()
    t0 = time.perf_counter()
    for _ in range(200):
        key.public_key().verify(key.sign(msg), msg)
    sign_verify = (time.perf_counter() - t0) / 200
    t0 = time.perf_counter()
    sk.params_digest_of(x)
    digest = time.perf_counter() - t0
    return {"sketch_s": round(statistics.median(t), 5), "sign_and_verify_s": round(sign_verify, 6),
            "params_sha256_s": round(digest, 5), "message_bytes": len(msg)}


def digits_phase(steps: int) -> dict:
    import torch
    import trio

    from mindnode.jobs import examples, sketchlog, work
    from trainer.transport import InMemoryHub
    from trainer.worker import Worker

    torch.set_num_threads(1)
    from ledger.keys import address_to_text, devnet_key

    spec = examples.resolve("digits-mlp")
    ds = work.load_data(spec)
    cfg = work.train_config(spec)
    import dataclasses

    cfg = dataclasses.replace(cfg, steps=steps)
    keys = {address_to_text(devnet_key(i).address): devnet_key(i) for i in (2, 3, 4)}
    ids = sorted(keys)
    out = {}
    for kind in ("plain", "signed", "plain2", "signed2"):
        hub = InMemoryHub()
        extra = (lambda p: {"signer": sketchlog.signer(keys[p].sign), "verify_peer": sketchlog.verify_peer}) \
            if kind.startswith("signed") else (lambda p: {})
        ws = [Worker(hub.transport(p), ids, work.model_spec(spec), ds, cfg, job_id="b", **extra(p)) for p in ids]

        async def main(ws=ws):
            async with trio.open_nursery() as n:
                for w in ws:
                    n.start_soon(w.run)

        t0 = time.perf_counter()
        trio.run(main)
        out[kind] = steps / (time.perf_counter() - t0)
    plain = max(out["plain"], out["plain2"])
    signed = max(out["signed"], out["signed2"])
    return {"steps": steps, "plain_steps_per_s": round(plain, 1), "signed_steps_per_s": round(signed, 1),
            "slowdown_ratio": round(plain / signed, 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=10_000_000, help="float32 values per all-reduce")
    ap.add_argument("--reps", type=int, default=5, help="timed rounds of each kind (after one warm-up)")
    ap.add_argument("--digits-steps", type=int, default=200, help="digits-mlp steps per run")
    ap.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--dir", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker is not None:
        worker_main(args)
        return
    report: dict = {"machine": f"{os.cpu_count()} cores, 127.0.0.1, shared (noisy)",
                    "load_average_at_start": os.getloadavg()[0], "world": WORLD, "size": args.size}
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
        procs = [subprocess.Popen([sys.executable, __file__, "--worker", str(r), "--dir", tmp, "--size",
                                   str(args.size), "--reps", str(args.reps)], env=env, stderr=subprocess.PIPE, text=True)
                 for r in range(WORLD)]
        errors = [err[-3000:] for p in procs for _, err in [p.communicate(timeout=1800)] if p.returncode]
        if errors:
            print(json.dumps({"error": errors}, indent=1))
            sys.exit(1)
        res = [json.loads((Path(tmp) / f"result-{r}.json").read_text()) for r in range(WORLD)]
    rounds = {k: [max(res[r][k][i] for r in range(WORLD)) for i in range(args.reps)] for k in ("plain", "signed")}
    plain, signed = statistics.median(rounds["plain"]), statistics.median(rounds["signed"])
    report["allreduce_libp2p"] = {
        "plain_s": round(plain, 4), "signed_s": round(signed, 4), "ratio": round(signed / plain, 3),
        "overhead_pct": round(100 * (signed / plain - 1), 1),
        "exchange_s": round(statistics.median(x for r in range(WORLD) for x in res[r]["exchange"]), 4),
        "signed_average_part_s": round(statistics.median(x for r in range(WORLD) for x in res[r]["signed_average"]), 4),
        "round_time": "median over rounds of the slowest peer's time"}
    report["local"] = local_costs(args.size)
    report["digits_mlp"] = digits_phase(args.digits_steps)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
