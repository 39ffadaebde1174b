"""Async and fine-tuning jobs on a real devnet: four `mindnode start` processes (1 s blocks),
validators 0, 1, 2 and a plain provider 4; nodes 1 and 2 declare `--hardware-class gpu-consumer`.

1. Fine-tune: a small byte-level transformer (made here) is published with `mindnode blob put`;
   the bundled text-lora spec with `model.base` = its id is submitted (class cpu: nodes 0 and 4 fit
   best and train, fetching the base by id over the blob exchange; 1 or 2 verifies, loading the same
   artifact to rebuild step 0 and check the frozen weights). The job is done and paid, and
   `mindnode job result` downloads weights that match their id and carry the base's frozen weights.
2. Async cheat: digits-mlp-async (2 workers, class gpu-consumer, so exactly nodes 1 and 2 train).
   The worker that is not the poster runs with `MINDNODE_TEST_FAULTS=cheat-async` (3x local
   updates). Each worker sends its signed checkpoint list to the poster, which publishes the
   evidence bundle; the verifiers (nodes 0 and 4) replay every worker's rounds from its own
   checkpoints: the cheater alone is accused and confirmed, not paid, -1,000 reputation, slashed
   10% of its self-stake; the honest worker is paid for its samples and keeps its stake.

Submit -> paid (or settled) times are printed (`pytest -s`): JOB TIMING lines.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ledger.genesis_file import load_genesis
from ledger.jobs.cid import cid_of
from ledger.keys import address_to_text, devnet_key
from mindnode.jobs import examples
from mindnode.node.devnet import Devnet
from mindnode.node.rpc_client import RpcClient

from .conftest import devnet_ports, free_ports, stop_and_check, wait_for, write_test_genesis

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]
SUBMITTER = devnet_key(3)
BASE_CFG = {"context": 32, "d_model": 32, "n_layers": 1, "n_heads": 2, "d_ff": 64}


def addr(i: int) -> str:
    return address_to_text(devnet_key(i).address)


#: the async job's poster is the lowest id of its workers (1, 2); the other one cheats
POSTER, CHEATER = sorted((1, 2), key=addr)


def cli(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mindnode", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def get(node, path: str):
    with RpcClient(node.rpc, timeout=10) as c:
        return c._call("GET", path)


@pytest.fixture(scope="module")
def net4(tmp_path_factory):
    d = tmp_path_factory.mktemp("asyncft")
    genesis = write_test_genesis(d / "genesis-test.json")
    p2p, rpc = devnet_ports(3)
    net = Devnet(d / "nodes", 3, genesis_source=str(genesis), base_p2p_port=p2p, base_rpc_port=rpc)
    net.init(fresh=True, genesis_time=int(time.time()) + 2)
    net.add_node(4, *free_ports(2), validator=False)
    for i in (1, 2):
        net.nodes[i].args = ["--hardware-class", "gpu-consumer"]
    net.nodes[CHEATER].env["MINDNODE_TEST_FAULTS"] = "cheat-async"
    r = cli("keys", "import", "--devnet", "3", "--name", "client", "--datadir", str(net.nodes[0].datadir))
    assert r.returncode == 0, r.stderr
    net.start()
    try:
        net.wait_up(timeout=60)
        for i in (0, 1, 2, 4):
            wait_for(f"provider {i} registered", lambda i=i: get(net.nodes[0], f"/providers/{addr(i)}"), timeout=60)
        yield net
    finally:
        stop_and_check(net)


def submit_and_time(n0, spec: Path) -> tuple[dict, dict]:
    """`job submit --json`, then follow the job until it is finished; (record, phase times)."""
    t0 = time.monotonic()
    r = cli("job", "submit", str(spec), "--json", "--rpc", n0.rpc, "--datadir", str(n0.datadir), "--key", "client")
    assert r.returncode == 0, r.stderr
    tx = json.loads(r.stdout)["hash"]
    seen: dict[str, float] = {}
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            try:
                seen.setdefault(get(n0, f"/jobs/by-tx/{tx}")["state"], time.monotonic() - t0)
            except Exception:
                pass
            time.sleep(0.1)

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    try:
        job = wait_for("the job on chain", lambda: get(n0, f"/jobs/by-tx/{tx}"), timeout=30)
        final = wait_for("the job finished", lambda: (j := get(n0, f"/jobs/{job['id']}"))["state"] in
                         ("done", "failed", "expired") and j, timeout=220, interval=0.5)
    finally:
        stop.set()
        t.join()
    end = seen.get(final["state"], time.monotonic() - t0)
    times = {"submit_to_settled_s": round(end, 2), "scheduling_s": round(seen.get("running", 0), 2),
             "training_s": round(seen.get("verifying", 0) - seen.get("running", 0), 2),
             "verification_and_settlement_s": round(end - seen.get("verifying", 0), 2)}
    return final, times


def test_fine_tune_of_a_published_base_model(net4, tmp_path):
    import torch
    from safetensors.torch import load, save

    from trainer.zoo import ModelSpec, build_model

    n0 = net4.nodes[0]
    base = build_model(ModelSpec("transformer", BASE_CFG), seed=11)
    with torch.no_grad():
        for p in base.parameters():          # not any seed's initialisation
            p.add_(0.01)
    raw = save({k: v.detach().contiguous() for k, v in base.state_dict().items()})
    (tmp_path / "base.safetensors").write_bytes(raw)
    r = cli("blob", "put", str(tmp_path / "base.safetensors"), "--json", "--rpc", n0.rpc)
    assert r.returncode == 0, r.stderr
    cid = json.loads(r.stdout)["cid"]
    assert cid == cid_of(raw)
    doc = json.loads(examples.text("text-lora"))
    doc["model"]["base"] = cid
    doc.update(limits={"steps": 40}, checkpoint_every=20)
    spec = tmp_path / "text-lora-ft.json"
    spec.write_text(json.dumps(doc))
    final, times = submit_and_time(n0, spec)
    print("\nJOB TIMING fine-tune (text-lora on a base artifact, 2 sync workers, 40 steps)", json.dumps(times))
    logs = "\n".join(n.log_path.read_text(errors="replace")[-3000:] for n in net4.nodes)
    assert final["state"] == "done", (final, logs)
    assert len(final["payments"]) == 2 and int(final["fee_paid"]) > 0
    out = tmp_path / "out"
    r = cli("job", "result", str(final["id"]), "-o", str(out), "--rpc", net4.nodes[1].rpc, "--json")
    assert r.returncode == 0, r.stderr
    meta = json.loads(r.stdout)
    data = Path(meta["path"]).read_bytes()
    assert cid_of(data) == final["result"]["result_id"] == meta["result_id"]
    w = load(data)
    b = load(raw)
    assert torch.equal(w["blocks.0.fc1.base.weight"], b["blocks.0.fc1.weight"]) and torch.equal(w["tok.weight"],
                                                                                                b["tok.weight"])
    assert w["blocks.0.fc1.lora_b"].abs().max() > 0          # the adapters trained


def test_an_async_cheater_is_named_alone_not_paid_and_slashed(net4, tmp_path):
    n0 = net4.nodes[0]
    cheater, poster = addr(CHEATER), addr(POSTER)
    before = {a: (get(n0, f"/providers/{a}"), get(n0, f"/accounts/{a}")["candidate"]) for a in (cheater, poster)}
    doc = json.loads(examples.text("digits-mlp-async"))
    doc.update(workers=2, min_workers=2, limits={"steps": 100}, hardware={"class": "gpu-consumer", "min_score": 1})
    spec = tmp_path / "digits-mlp-async-gpu.json"
    spec.write_text(json.dumps(doc))
    final, times = submit_and_time(n0, spec)
    print("\nJOB TIMING async with a cheater (2 workers, 100 steps, H 20)", json.dumps(times))
    logs = "\n".join(n.log_path.read_text(errors="replace")[-3000:] for n in net4.nodes)
    assert final["state"] == "failed", (final, logs)
    assert {w["provider"] for w in final["assigned"]} == {cheater, poster}
    assert final["accused"] == [cheater], (final, logs)           # named alone, and confirmed
    assert final["accuser"] in {addr(0), addr(4)}
    assert final["result"]["evidence"], final["result"]
    assert "TEST FAULT cheat-async" in net4.nodes[CHEATER].log_path.read_text(errors="replace")
    # the honest worker is paid for its samples; the cheater nothing
    paid = {p["provider"]: int(p["amount"]) for p in final["payments"]}
    assert set(paid) == {poster} and paid[poster] > 0
    # the two verifiers of a confirmed accusation are paid their fee from the escrow (ledger/JOBS.md)
    assert int(final["fee_paid"]) + int(final["verifier_fees"]) + int(final["refunded"]) == int(final["budget"])
    assert int(final["escrow"]) == 0 and len(final["verifier_payments"]) == 2
    bps = load_genesis(net4.genesis_source).params.slash_fraction_bps
    for a in (cheater, poster):
        p0, c0 = before[a]
        p1, c1 = get(n0, f"/providers/{a}"), get(n0, f"/accounts/{a}")["candidate"]
        controls = 20 * (p1["controls_passed"] - p0["controls_passed"]) - 200 * (
            p1["controls_failed"] - p0["controls_failed"])
        stake0 = int(c0["self_stake"])
        if a == cheater:
            assert p1["reputation"] == p0["reputation"] - 1_000 + controls, (p0, p1)
            assert int(c1["self_stake"]) == stake0 - stake0 * bps // 10_000
        else:
            assert p1["reputation"] == p0["reputation"] + controls        # failed job: no bonus, no penalty
            assert int(c1["self_stake"]) == stake0
