#!/usr/bin/env python3
"""Benchmark: an MLP on scikit-learn digits, 1 worker vs 3 workers sync vs 3 workers async (DiLoCo).

The 3-worker runs are 3 processes, each a p2p Node (real libp2p host, Noise, BulkService direct
pipes) running ``trainer.worker.Worker`` through ``mindnode.tensor_transport``. All runs see the
same number of samples: the single worker uses the global batch (3 x per-worker batch) for the
same number of steps. Reported per run: held-out accuracy (every worker's), payload bytes sent
per worker, wall time, and the async/sync byte ratio and accuracy gap. Prints one JSON document.
Usage: ``python scripts/bench/train_digits.py [--steps 400]``.
"""
from __future__ import annotations

import argparse
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
# this directory holds other benches (e.g. p2p.py) that would shadow the packages: drop it
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT))

WORLD = 3
SPEC = {"name": "mlp", "config": {"in_dim": 64, "hidden": [128], "out_dim": 10}}


def _cluster_helpers():
    """``start_cluster_node`` and ``barrier`` from allreduce.py beside this file."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_allreduce", HERE / "allreduce.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.barrier, mod.start_cluster_node


def config(args, mode: str):
    from trainer.worker import TrainConfig

    batch = args.batch * WORLD if mode == "local" else args.batch
    return TrainConfig(mode=mode, steps=args.steps, batch_size=batch, lr=args.lr, inner_steps=args.inner_steps,
                       seed=args.seed, round_timeout=30.0, compression=args.compression)


def dataset_and_spec():
    import torch

    torch.set_num_threads(1)
    from trainer.data import DatasetSpec, load_dataset
    from trainer.zoo import ModelSpec

    return load_dataset(DatasetSpec("digits")), ModelSpec(SPEC["name"], SPEC["config"])


async def worker_run(rank: int, workdir: Path, args) -> dict:
    from contextlib import AsyncExitStack

    barrier, start_cluster_node = _cluster_helpers()

    from mindnode.tensor_transport import transport_for
    from trainer.worker import Worker

    ds, spec = dataset_and_spec()
    async with AsyncExitStack() as stack:
        node, ids = await start_cluster_node(stack, rank, workdir, WORLD)
        transport = transport_for(node)
        await barrier(transport, ids, "start")
        worker = Worker(transport, ids, spec, ds, config(args, args.mode), job_id=f"digits-{args.mode}")
        t0 = time.perf_counter()
        res = await worker.run(resume=False)
        seconds = time.perf_counter() - t0
        await barrier(transport, ids, "end")
    return {"accuracy": res.eval_accuracy, "eval_loss": res.eval_loss, "bytes_sent": res.bytes_sent,
            "bytes_recv": res.bytes_recv, "seconds": seconds, "rounds": res.rounds, "digest": res.params_digest}


def run_three(args, mode: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
        cmd = [sys.executable, __file__, "--dir", tmp, "--mode", mode, "--steps", str(args.steps),
               "--batch", str(args.batch), "--lr", str(args.lr), "--inner-steps", str(args.inner_steps),
               "--seed", str(args.seed), "--compression", args.compression]
        procs = [subprocess.Popen([*cmd, "--worker", str(r)], env=env, stderr=subprocess.PIPE, text=True)
                 for r in range(WORLD)]
        errors = []
        for p in procs:
            _, err = p.communicate(timeout=1800)
            if p.returncode:
                errors.append(err[-3000:])
        if errors:
            raise SystemExit(json.dumps({"error": errors}, indent=1))
        workers = [json.loads((Path(tmp) / f"result-{r}.json").read_text()) for r in range(WORLD)]
    return {
        "accuracy_per_worker": [round(w["accuracy"], 4) for w in workers],
        "accuracy": round(min(w["accuracy"] for w in workers), 4),
        "bytes_sent_per_worker": int(statistics.mean(w["bytes_sent"] for w in workers)),
        "bytes_recv_per_worker": int(statistics.mean(w["bytes_recv"] for w in workers)),
        "seconds": round(max(w["seconds"] for w in workers), 2),
        "rounds": workers[0]["rounds"],
        "workers_hold_equal_parameters": len({w["digest"] for w in workers}) == 1,
    }


def run_single(args) -> dict:
    import trio

    from trainer.transport import InMemoryHub
    from trainer.worker import Worker

    ds, spec = dataset_and_spec()
    w = Worker(InMemoryHub().transport("solo"), ["solo"], spec, ds, config(args, "local"))
    t0 = time.perf_counter()
    res = trio.run(w.run)
    return {"accuracy": round(res.eval_accuracy, 4), "bytes_sent_per_worker": 0,
            "seconds": round(time.perf_counter() - t0, 2), "batch": args.batch * WORLD}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=400, help="optimizer steps (inner steps in async)")
    ap.add_argument("--batch", type=int, default=32, help="per-worker batch size")
    ap.add_argument("--lr", type=float, default=3e-3, help="AdamW learning rate (inner, in async)")
    ap.add_argument("--inner-steps", type=int, default=20, help="H: local steps per async round")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--compression", default="none", choices=["none", "fp16", "int8"])
    ap.add_argument("--mode", default="sync", help=argparse.SUPPRESS)
    ap.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--dir", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker is not None:
        import trio

        out = trio.run(worker_run, args.worker, Path(args.dir), args)
        (Path(args.dir) / f"result-{args.worker}.json").write_text(json.dumps(out))
        return
    single = run_single(args)
    sync = run_three(args, "sync")
    asyn = run_three(args, "async")
    report = {
        "model": SPEC, "dataset": "sklearn load_digits, 20% held out", "steps": args.steps,
        "per_worker_batch": args.batch, "inner_steps_H": args.inner_steps, "compression": args.compression,
        "transport": "3 processes, p2p.Node (libp2p, Noise) + BulkService direct AES-GCM pipes, 127.0.0.1",
        "one_worker": single, "three_sync": sync, "three_async": asyn,
        "async_bytes_reduction_vs_sync": round(sync["bytes_sent_per_worker"] / max(1, asyn["bytes_sent_per_worker"]), 2),
        "async_accuracy_gap_vs_sync_points": round(100 * (sync["accuracy"] - asyn["accuracy"]), 2),
        "all_at_least_0.95": min(single["accuracy"], sync["accuracy"], asyn["accuracy"]) >= 0.95,
    }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
