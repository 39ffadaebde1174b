#!/usr/bin/env python3
"""Benchmark: digits-mlp (2 sync workers) on a real 3-node devnet, submit -> paid, split into
scheduling (submit -> running), training (running -> result on chain: verifying), verification
and settlement (verifying -> done); baseline: the same 2-worker training in one process over the
trainer's in-memory transport, measured in the same run (ratio = devnet training / baseline).

Usage: ``python scripts/bench/job_devnet.py [--block-ms 1000]``. Prints one JSON document. The
devnet's nodes are `mindnode start` processes (1 s blocks unless told), the submitter is devnet
key 3. Timings on a shared 2-core box are noisy.

``--announce``: instead, on two fresh devnets (job announcements on, then off as the baseline):
submit -> first offer on chain, submit -> running, and submit -> the job's dataset blob (put on
node 0 with ``mindnode blob put``) present on the two other nodes (prefetched from the
announcement; ``null`` when it did not arrive by running + 10 s).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT))


def baseline(doc: dict) -> float:
    """Seconds for the spec's training with its workers in one process (in-memory transport)."""
    import torch
    import trio

    from mindnode.jobs import spec as job_spec
    from mindnode.jobs import work
    from trainer.transport import InMemoryHub
    from trainer.worker import Worker

    torch.set_num_threads(1)
    spec = job_spec.parse(json.dumps(doc).encode(), "bench spec")
    ds = work.load_data(spec)
    ids = [f"w{i}" for i in range(doc["workers"])]

    async def main() -> None:
        hub = InMemoryHub()
        with tempfile.TemporaryDirectory() as d:
            workers = [Worker(hub.transport(i), ids, work.model_spec(spec), ds, work.train_config(spec),
                              job_id="bench", checkpoint_dir=Path(d) / i) for i in ids]
            async with trio.open_nursery() as n:
                for w in workers:
                    n.start_soon(w.run)

    t0 = time.perf_counter()
    trio.run(main)
    return time.perf_counter() - t0


@contextlib.contextmanager
def devnet(block_ms: int, env: dict[str, str] | None = None):
    """A fresh 3-node devnet (`mindnode start` processes, every node a provider) whose node 0 holds
    devnet key 3 as ``client``; yields (directory, Devnet, RpcClient of node 0) once all three
    providers are registered on chain."""
    from ledger.genesis_file import read_genesis_bytes
    from ledger.keys import address_to_text, devnet_key
    from mindnode.node.devnet import Devnet
    from mindnode.node.rpc_client import RpcClient

    sys.path.insert(0, str(ROOT / "tests"))
    from e2e.conftest import devnet_ports

    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        g = json.loads(read_genesis_bytes("devnet"))
        g["params"].update(block_time_ms=block_ms, out_of_turn_delay_ms=block_ms // 2,
                           out_of_turn_step_ms=block_ms // 4)
        g["bootnodes"] = []
        (d / "genesis.json").write_text(json.dumps(g))
        p2p, rpc = devnet_ports(3)
        net = Devnet(d / "nodes", 3, genesis_source=str(d / "genesis.json"), base_p2p_port=p2p, base_rpc_port=rpc,
                     env=env)
        net.init(fresh=True, genesis_time=int(time.time()) + 2)
        n0 = net.nodes[0]
        subprocess.run([sys.executable, "-m", "mindnode", "keys", "import", "--devnet", "3", "--name", "client",
                        "--datadir", str(n0.datadir)], check=True, capture_output=True, cwd=ROOT)
        net.start()
        try:
            net.wait_up(timeout=60)
            with RpcClient(n0.rpc) as c:
                for i in range(3):
                    a = address_to_text(devnet_key(i).address)
                    while True:
                        try:
                            c._call("GET", f"/providers/{a}")
                            break
                        except Exception:
                            time.sleep(0.2)
                yield d, net, c
        finally:
            net.stop()


def submit(net, spec: Path) -> tuple[str, float]:
    """`mindnode job submit` on node 0 as ``client``; (tx hash, monotonic time before the call)."""
    n0 = net.nodes[0]
    t0 = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "mindnode", "job", "submit", str(spec), "--json",
                          "--rpc", n0.rpc, "--datadir", str(n0.datadir), "--key", "client"],
                         check=True, capture_output=True, text=True, cwd=ROOT)
    return json.loads(out.stdout)["hash"], t0


def devnet_run(doc: dict, block_ms: int) -> dict:
    with devnet(block_ms) as (d, net, c):
        spec = d / "spec.json"
        spec.write_text(json.dumps(doc))
        tx, t0 = submit(net, spec)
        seen: dict[str, float] = {}
        while "done" not in seen and "failed" not in seen and time.monotonic() - t0 < 600:
            try:
                rec = c._call("GET", f"/jobs/by-tx/{tx}")
                seen.setdefault(rec["state"], time.monotonic() - t0)
                if rec["offers"]:
                    seen.setdefault("first_offer", time.monotonic() - t0)
            except Exception:
                pass
            time.sleep(0.1)
        rec = c._call("GET", f"/jobs/by-tx/{tx}")
    return {"state": rec["state"], "accuracy": rec["result"]["metrics"].get("accuracy") if rec["result"] else None,
            "verified_metric": rec["verified_metric"], "seen_s": {k: round(v, 2) for k, v in seen.items()},
            "submit_to_paid_s": round(seen.get("done", float("nan")), 2),
            "scheduling_s": round(seen["running"], 2),
            "training_s": round(seen["verifying"] - seen["running"], 2),
            "verification_and_settlement_s": round(seen["done"] - seen["verifying"], 2)}


def announce_run(doc: dict, block_ms: int, announce: bool, blob_mb: int) -> dict:
    """Submit -> first offer on chain, submit -> running, and submit -> the job's dataset blob
    (uploaded to node 0 with `mindnode blob put`) present in the stores of the two other nodes,
    with job announcements on or off (MINDNODE_JOB_ANNOUNCE) on every node. Stops at running
    (+ up to 10 s for the blobs): the dataset is random bytes, never trained on."""
    with devnet(block_ms, env={"MINDNODE_JOB_ANNOUNCE": "1" if announce else "0"}) as (d, net, c):
        blob = d / "dataset.bin"
        with open(blob, "wb") as f:
            for _ in range(blob_mb):
                f.write(os.urandom(1024 * 1024))
        n0 = net.nodes[0]
        out = subprocess.run([sys.executable, "-m", "mindnode", "blob", "put", str(blob), "--rpc", n0.rpc],
                             check=True, capture_output=True, text=True, cwd=ROOT)
        cid = out.stdout.strip()
        spec = d / "spec.json"
        spec.write_text(json.dumps({**doc, "dataset": {"artifact": cid, "format": "tensors"}}))
        stores = [n.datadir / "blobs" / "blobs" / cid for n in net.nodes[1:]]
        tx, t0 = submit(net, spec)
        seen: dict[str, float] = {}
        while time.monotonic() - t0 < 120:
            now = time.monotonic() - t0
            if all(p.is_file() for p in stores):
                seen.setdefault("dataset_on_other_nodes", now)
            try:
                rec = c._call("GET", f"/jobs/by-tx/{tx}")
                seen.setdefault(rec["state"], now)
                if rec["offers"]:
                    seen.setdefault("first_offer", now)
            except Exception:
                pass
            if "running" in seen and ("dataset_on_other_nodes" in seen or now - seen["running"] > 10):
                break
            time.sleep(0.05)
    return {"announce": announce, "blob_mb": blob_mb,
            "submit_to_first_offer_s": round(seen.get("first_offer", float("nan")), 2),
            "submit_to_running_s": round(seen.get("running", float("nan")), 2),
            "submit_to_dataset_on_other_nodes_s": round(seen["dataset_on_other_nodes"], 2)
            if "dataset_on_other_nodes" in seen else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--block-ms", type=int, default=1000)
    ap.add_argument("--announce", action="store_true",
                    help="Instead: submit -> first offer / running / dataset prefetched, with job announcements "
                         "on vs off (two devnets).")
    ap.add_argument("--blob-mb", type=int, default=64, help="Dataset blob size for --announce (MiB).")
    args = ap.parse_args()
    from mindnode.jobs import examples

    doc = json.loads(examples.text("digits-mlp"))
    doc.update(workers=2, min_workers=2)
    if args.announce:
        on = announce_run(doc, args.block_ms, True, args.blob_mb)
        off = announce_run(doc, args.block_ms, False, args.blob_mb)
        print(json.dumps({"job": "digits-mlp spec, 2 workers, dataset = a blob on node 0", "block_ms": args.block_ms,
                          "with_announcement": on, "without_announcement_baseline": off}, indent=1))
        return
    base = baseline(doc)
    run = devnet_run(doc, args.block_ms)
    print(json.dumps({"job": "digits-mlp, 2 sync workers, 400 steps", "block_ms": args.block_ms,
                      "baseline_training_in_process_s": round(base, 2), "devnet": run,
                      "training_ratio_devnet_vs_in_process": round(run["training_s"] / base, 2)}, indent=1))


if __name__ == "__main__":
    main()
