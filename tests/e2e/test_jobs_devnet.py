"""A training job on a real devnet: three `mindnode start` processes (1 s blocks) register as
providers at start, offer on the job, two of them train digits-mlp over libp2p (sync, gradient
averaging per step), the third verifies (replay + held-out accuracy), the chain pays.

The job is the bundled digits-mlp with 2 workers instead of 3: the verifier must be a registered
provider that did not train and is not the submitter (ledger/JOBS.md), so with 3 nodes a 3-worker
job could never be verified. The submitter is devnet key 3 (not a node), imported into node 0's
keystore, and the CLI talks to node 0.

Also measured and printed (`pytest -s`): submit -> paid, split into scheduling (submit -> running),
training (running -> verifying: result on chain), verification (verifying -> verdict) and
settlement (the verdict's block settles at once; we record the time to see `done`).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ledger.economics.fees import split_utilisation_fee
from ledger.genesis_file import load_genesis
from ledger.jobs.cid import cid_of
from ledger.jobs.rules import WORK_UNIT_SAMPLES
from ledger.keys import address_from_text, address_to_text, devnet_key
from mindnode.jobs import examples
from mindnode.node.devnet import Devnet
from mindnode.node.rpc_client import RpcClient

from .conftest import devnet_ports, stop_and_check, wait_for, write_test_genesis

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]
SUBMITTER = devnet_key(3)


def cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mindnode", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


@pytest.fixture(scope="module")
def jobnet(tmp_path_factory):
    d = tmp_path_factory.mktemp("jobnet")
    genesis = write_test_genesis(d / "genesis-test.json")
    p2p, rpc = devnet_ports(3)
    net = Devnet(d / "nodes", 3, genesis_source=str(genesis), base_p2p_port=p2p, base_rpc_port=rpc)
    net.init(fresh=True, genesis_time=int(time.time()) + 2)
    r = cli("keys", "import", "--devnet", "3", "--name", "client", "--datadir", str(net.nodes[0].datadir))
    assert r.returncode == 0, r.stderr
    net.start()
    try:
        net.wait_up(timeout=60)
        yield net
    finally:
        stop_and_check(net)


def get(node, path: str):
    with RpcClient(node.rpc, timeout=10) as c:
        return c._call("GET", path)


def balance(node, key) -> int:
    with RpcClient(node.rpc, timeout=10) as c:
        return int(c.account(address_to_text(key.address))["balance"])


def test_digits_mlp_trains_verifies_and_pays_on_a_devnet(jobnet, tmp_path):
    n0 = jobnet.nodes[0]
    providers = [address_to_text(devnet_key(i).address) for i in range(3)]
    for a in providers:    # each node benchmarked itself and registered at start
        wait_for(f"provider {a[:12]} registered", lambda a=a: get(n0, f"/providers/{a}"), timeout=60)
    doc = json.loads(examples.text("digits-mlp"))
    doc.update(workers=2, min_workers=2)
    spec = tmp_path / "digits-mlp-2.json"
    spec.write_text(json.dumps(doc))
    before = balance(n0, SUBMITTER)

    # Submit with --wait --json (the CLI under test) while this thread records when each state shows.
    seen: dict[str, float] = {}
    stop = threading.Event()

    def watch_states() -> None:
        while not stop.is_set():
            try:
                for j in get(n0, "/jobs"):
                    if j["submitter"] == address_to_text(SUBMITTER.address):
                        seen.setdefault(j["state"], time.monotonic())
            except Exception:
                pass
            time.sleep(0.1)

    t = threading.Thread(target=watch_states, daemon=True)
    t0 = time.monotonic()
    t.start()
    try:
        r = cli("job", "submit", str(spec), "--wait", "--json", "--rpc", n0.rpc, "--datadir", str(n0.datadir),
                "--key", "client", "--timeout", "400", timeout=450)
    finally:
        stop.set()
        t.join()
    t_end = time.monotonic()
    assert r.returncode == 0, r.stderr + r.stdout
    rec = json.loads(r.stdout.strip().splitlines()[-1])
    logs = "\n".join(n.log_path.read_text(errors="replace")[-2000:] for n in jobnet.nodes)
    assert rec["state"] == "done", (rec, logs)
    marks = {k: round(v - t0, 2) for k, v in seen.items()}
    times = {
        "submit_to_paid_s": round(t_end - t0, 2),
        "scheduling_s": round(seen["running"] - t0, 2) if "running" in seen else None,
        "training_s": round(seen["verifying"] - seen["running"], 2) if {"running", "verifying"} <= set(seen) else None,
        "verification_and_settlement_s": round(seen["done"] - seen["verifying"], 2)
        if {"verifying", "done"} <= set(seen) else None,
        "first_seen_s": marks,
    }
    print("\nJOB TIMING", json.dumps(times))

    # accuracy: reported by the workers and measured again by the verifier
    assert rec["result"]["metrics"]["accuracy"] >= 0.95
    assert rec["verified_metric"] >= 0.95
    workers = {w["provider"] for w in rec["assigned"]}
    assert len(workers) == 2 and workers < set(providers)
    verifier = (set(providers) - workers).pop()
    vnode = jobnet.nodes[providers.index(verifier)]          # the node that did not train verified
    assert f"job {rec['id']} verdict" in vnode.log_path.read_text(errors="replace")

    # money: escrow -> fee (split between the workers' rewards and the pool) + refund to the submitter
    budget, fee, refund = int(rec["budget"]), int(rec["fee_paid"]), int(rec["refunded"])
    vfees = int(rec["verifier_fees"])                       # the verifier's fee (ledger/JOBS.md, Settlement)
    assert vfees == sum(int(p["amount"]) for p in rec["verifier_payments"]) and len(rec["verifier_payments"]) == 1
    assert fee > 0 and fee + vfees + refund == budget and int(rec["escrow"]) == 0
    assert balance(n0, SUBMITTER) == before - fee - vfees  # the budget left, the refund came back; no tx fee
    price = {w["provider"]: int(w["price"]) for w in rec["assigned"]}
    samples = {w["provider"]: int(w["samples"]) for w in rec["result"]["work"]}
    assert set(samples) == workers
    assert fee == sum(price[p] * samples[p] for p in workers) // WORK_UNIT_SAMPLES
    paid = {p["provider"]: int(p["amount"]) for p in rec["payments"]}
    split = split_utilisation_fee(load_genesis(jobnet.genesis_source).params, fee, "sync",
                                  [(address_from_text(p), price[p] * samples[p]) for p in sorted(workers)])
    assert paid == {address_to_text(a): amount for a, amount in split.payouts}
    assert sum(paid.values()) + split.to_pool == fee and sum(paid.values()) * 2 <= fee   # sync: 50% to providers
    # the job view of every node agrees (same chain)
    for n in jobnet.nodes[1:]:
        wait_for("the same record on every node", lambda n=n: get(n, f"/jobs/{rec['id']}")["state"] == "done")
        assert get(n, f"/jobs/{rec['id']}")["payments"] == rec["payments"]

    # the weights download through the worker that did not post the result (it never stored them:
    # its node fetches them from a peer) and match their id
    other = jobnet.nodes[providers.index(sorted(workers)[1])]
    assert not (other.datadir / "blobs").exists() or not any((other.datadir / "blobs").rglob(
        rec["result"]["result_id"] + "*"))
    out = tmp_path / "out"
    r = cli("job", "result", str(rec["id"]), "-o", str(out), "--rpc", other.rpc, "--json")
    assert r.returncode == 0, r.stderr
    meta = json.loads(r.stdout)
    data = Path(meta["path"]).read_bytes()
    assert cid_of(data) == rec["result"]["result_id"] == meta["result_id"]
    from safetensors.numpy import load

    assert load(data)      # a real safetensors file

    # the workers gossiped their progress: the last step each node saw is the job's last step
    prog = get(n0, f"/jobs/{rec['id']}/progress")
    assert set(prog["workers"]) == workers and prog["total_steps"] == doc["limits"]["steps"]
    assert prog["step"] >= doc["limits"]["steps"] - 5

    # a job id that does not exist / a result id nobody has: one-line errors
    r = cli("job", "result", "999", "-o", str(out), "--rpc", n0.rpc)
    assert r.returncode != 0 and "Traceback" not in r.stderr and r.stderr.strip()

    # `job watch --json` of a finished job: one line with its final state, exit 0
    r = cli("job", "watch", str(rec["id"]), "--json", "--rpc", n0.rpc)
    assert r.returncode == 0, r.stderr
    last = json.loads(r.stdout.strip().splitlines()[-1])
    assert last["state"] == "done" and last["step"] >= doc["limits"]["steps"] - 5
    r = cli("job", "watch", str(rec["id"]), "--rpc", n0.rpc)        # the human view ends with the record
    assert r.returncode == 0 and "/400" in r.stdout and "done" in r.stdout, r.stdout + r.stderr
    # `provider status` of a node: its record, with the finished job counted
    w = sorted(workers)[0]
    wnode = jobnet.nodes[providers.index(w)]
    r = cli("provider", "status", "--rpc", wnode.rpc, "--datadir", str(wnode.datadir), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["provider"]["jobs_done"] >= 1


def test_blob_route_refuses_bad_ids_and_unknown_blobs(jobnet):
    from mindnode.node.errors import BadRequest, NotFound

    n0 = jobnet.nodes[0]
    with RpcClient(n0.rpc, timeout=30) as c:
        with pytest.raises(BadRequest):
            c.get_bytes("/blobs/not-a-cid")
        with pytest.raises(NotFound):          # nobody holds it: every peer says so
            c.get_bytes("/blobs/" + cid_of(b"nobody has this blob"))
        empty = c._call("GET", "/jobs/4242/progress")
    assert empty["workers"] == {} and empty["step"] == 0


def test_a_job_nobody_can_take_expires_at_its_deadline_with_a_full_refund(jobnet, tmp_path):
    n0 = jobnet.nodes[0]
    doc = json.loads(examples.text("digits-mlp"))
    # no provider meets the score, the offer window outlasts the deadline: the deadline decides
    doc.update(deadline_s=10, hardware={"class": "cpu", "min_score": 10**15},
               scheduling={"offer_window": 200, "replay_steps": 5})
    spec = tmp_path / "unservable.json"
    spec.write_text(json.dumps(doc))
    before = balance(n0, SUBMITTER)
    r = cli("job", "submit", str(spec), "--wait", "--json", "--rpc", n0.rpc, "--datadir", str(n0.datadir),
            "--key", "client", "--timeout", "120", timeout=180)
    assert r.returncode == 0, r.stderr + r.stdout
    rec = json.loads(r.stdout.strip().splitlines()[-1])
    assert rec["state"] == "expired" and rec["assigned"] == []
    assert int(rec["refunded"]) == int(rec["budget"]) and int(rec["fee_paid"]) == 0 and rec["payments"] == []
    assert balance(n0, SUBMITTER) == before


def test_a_worker_killed_mid_job_is_replaced_and_loses_reputation(jobnet, tmp_path):
    """A 4th provider joins (not a validator), so after a replacement someone who did not train is
    left to verify. One assigned worker is SIGKILLed after its step-100 area: the survivor reports
    it, the chain marks it missing and assigns the spare offer, the job still finishes and pays."""
    from .conftest import free_ports

    p2p, rpc = free_ports(2)
    extra = jobnet.add_node(4, p2p, rpc, validator=False)
    jobnet.start_node(extra)
    jobnet.wait_up(timeout=60, nodes=[extra])
    n0 = jobnet.nodes[0]
    providers = [address_to_text(devnet_key(n.index).address) for n in jobnet.nodes]
    for a in providers:
        wait_for(f"provider {a[:12]} registered", lambda a=a: get(n0, f"/providers/{a}"), timeout=60)
    doc = json.loads(examples.text("digits-mlp"))
    doc.update(workers=2, min_workers=2)
    spec = tmp_path / "digits-mlp-2.json"
    spec.write_text(json.dumps(doc))
    r = cli("job", "submit", str(spec), "--json", "--rpc", n0.rpc, "--datadir", str(n0.datadir), "--key", "client")
    assert r.returncode == 0, r.stderr
    tx = json.loads(r.stdout)["hash"]
    job = wait_for("the job running", lambda: (j := get(n0, f"/jobs/by-tx/{tx}"))["state"] == "running" and j,
                   timeout=60)
    # never kill the node the test talks to
    victim_addr = next(w["provider"] for w in job["assigned"] if w["provider"] != providers[0])
    victim = jobnet.nodes[providers.index(victim_addr)]
    rep_before = get(n0, f"/providers/{victim_addr}")["reputation"]
    wait_for("training past step 100", lambda: get(n0, f"/jobs/{job['id']}/progress")["step"] >= 100, timeout=180)
    jobnet.stop_node(victim, kill=True)
    final = wait_for("the job finished", lambda: (j := get(n0, f"/jobs/{job['id']}"))["state"] in
                     ("done", "failed", "expired") and j, timeout=400, interval=1.0)
    assert final["state"] == "done", final
    assert final["verified_metric"] >= 0.95
    left = [w for w in final["assigned"] if w["provider"] == victim_addr]
    assert left and not left[0]["active"]
    assert len([w for w in final["assigned"] if w["active"]]) == 2     # the spare offer replaced it
    assert get(n0, f"/providers/{victim_addr}")["reputation"] < rep_before
