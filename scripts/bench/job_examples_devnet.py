#!/usr/bin/env python3
"""Benchmark: every bundled example job (`mindnode job examples`) run unchanged on a real 4-node
devnet (validators 0-2 and provider 4, 1 s blocks; a 3-worker job needs a 4th node to verify it),
plus text-lora fine-tuning a base model artifact published with `mindnode blob put`. Per job:
state, metric, submit -> paid split into scheduling (submit -> running), training (running ->
verifying: result on chain) and verification + settlement (verifying -> done); baseline: the same
training in one process over the trainer's in-memory transport, measured in the same run (ratio =
devnet training / in-process training).

Usage: ``python scripts/bench/job_examples_devnet.py [--only NAME ...]``. Prints one JSON document.
Timings on a shared 2-core box are noisy.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT))
BASE_CFG = {"context": 32, "d_model": 32, "n_layers": 1, "n_heads": 2, "d_ff": 64}


def baseline(doc: dict) -> float:
    """Seconds for the spec's training in one process (job_devnet.py's baseline; a base model does not
    change the compute, so it is left out)."""
    import importlib.util

    loader = importlib.util.spec_from_file_location("job_devnet_bench", HERE / "job_devnet.py")
    mod = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(mod)
    doc = dict(doc, model={k: v for k, v in doc["model"].items() if k != "base"})
    return mod.baseline(doc)


def cli(*args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "mindnode", *args], capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        raise SystemExit(f"mindnode {' '.join(args)} failed: {out.stderr.strip()}")
    return out.stdout


def base_artifact(path: Path) -> None:
    import torch
    from safetensors.torch import save

    from trainer.zoo import ModelSpec, build_model

    m = build_model(ModelSpec("transformer", BASE_CFG), seed=11)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.01)
    path.write_bytes(save({k: v.detach().contiguous() for k, v in m.state_dict().items()}))


def run_job(c, n0, spec_arg: str, timeout: float = 400) -> dict:
    t0 = time.monotonic()
    tx = json.loads(cli("job", "submit", spec_arg, "--json", "--rpc", n0.rpc, "--datadir", str(n0.datadir),
                        "--key", "client"))["hash"]
    seen: dict[str, float] = {}
    while not {"done", "failed", "expired"} & set(seen) and time.monotonic() - t0 < timeout:
        try:
            seen.setdefault(c._call("GET", f"/jobs/by-tx/{tx}")["state"], time.monotonic() - t0)
        except Exception:
            pass
        time.sleep(0.1)
    rec = c._call("GET", f"/jobs/by-tx/{tx}")
    end = seen.get(rec["state"], float("nan"))
    return {"state": rec["state"], "reason": rec.get("reason"),
            "metrics": rec["result"]["metrics"] if rec.get("result") else None,
            "verified_metric": rec.get("verified_metric"), "workers": len(rec["assigned"]),
            "submit_to_paid_s": round(end, 2), "scheduling_s": round(seen.get("running", float("nan")), 2),
            "training_s": round(seen.get("verifying", float("nan")) - seen.get("running", float("nan")), 2),
            "verification_and_settlement_s": round(end - seen.get("verifying", float("nan")), 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", action="append", help="run only these jobs (example names, or text-lora-base)")
    args = ap.parse_args()
    from ledger.genesis_file import read_genesis_bytes
    from ledger.keys import address_to_text, devnet_key
    from mindnode.jobs import examples
    from mindnode.node.devnet import Devnet
    from mindnode.node.rpc_client import RpcClient

    sys.path.insert(0, str(ROOT / "tests"))
    from e2e.conftest import devnet_ports, free_ports

    jobs = [*examples.names(), "text-lora-base"]
    if args.only:
        jobs = [j for j in jobs if j in args.only]
    out: dict = {"devnet": "3 validators + 1 provider, 1 s blocks", "jobs": {}}
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        g = json.loads(read_genesis_bytes("devnet"))
        g["params"].update(block_time_ms=1000, out_of_turn_delay_ms=500, out_of_turn_step_ms=250)
        g["bootnodes"] = []
        (d / "genesis.json").write_text(json.dumps(g))
        p2p, rpc = devnet_ports(3)
        net = Devnet(d / "nodes", 3, genesis_source=str(d / "genesis.json"), base_p2p_port=p2p, base_rpc_port=rpc)
        net.init(fresh=True, genesis_time=int(time.time()) + 2)
        net.add_node(4, *free_ports(2), validator=False)
        n0 = net.nodes[0]
        cli("keys", "import", "--devnet", "3", "--name", "client", "--datadir", str(n0.datadir))
        net.start()
        try:
            net.wait_up(timeout=60)
            with RpcClient(n0.rpc) as c:
                for i in (0, 1, 2, 4):
                    a = address_to_text(devnet_key(i).address)
                    while True:
                        try:
                            c._call("GET", f"/providers/{a}")
                            break
                        except Exception:
                            time.sleep(0.2)
                for name in jobs:
                    if name == "text-lora-base":
                        base_artifact(d / "base.safetensors")
                        cid = json.loads(cli("blob", "put", str(d / "base.safetensors"), "--json", "--rpc",
                                             n0.rpc))["cid"]
                        doc = json.loads(examples.text("text-lora"))
                        doc["model"]["base"] = cid
                        spec_arg = str(d / "text-lora-base.json")
                        Path(spec_arg).write_text(json.dumps(doc))
                    else:
                        doc = json.loads(examples.text(name))
                        spec_arg = name              # the bundled example, by name
                    run = run_job(c, n0, spec_arg)
                    run["baseline_training_in_process_s"] = round(baseline(doc), 2)
                    run["training_ratio_devnet_vs_in_process"] = round(
                        run["training_s"] / run["baseline_training_in_process_s"], 2)
                    out["jobs"][name] = run
        finally:
            net.stop()
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
