"""A cheating worker on a real devnet: caught by verification, not paid, reputation down, slashed.

Four `mindnode start` processes (1 s blocks): validators 0, 1, 2 and a plain provider 4. Nodes 1 and
2 declare `--hardware-class gpu-consumer` and the job asks for that class, so exactly they offer and
train (deterministic assignment); nodes 0 and 4 (cpu) cannot offer but may verify: a 2-worker job
has two registered providers that did not train, which an accusation needs (ledger/JOBS.md: a
verdict naming bad workers must be confirmed by a second verifier that did not train). Node 1 runs
with the test-only fault `MINDNODE_TEST_FAULTS=cheat-gradients` (mindnode/node/faults.py: it sends
3x its gradient into every sync average).

What the rules say happens, and what is asserted: the drawn verifier's replay differs, it names
the workers, a second verifier replays the same steps and confirms, the job `failed`. In sync mode a
failing replay cannot tell which worker sent the wrong gradient (both hold the same averaged
parameters), so `verify_body` names EVERY worker of the result (JOBS.md, caveats): the honest
partner is treated like the cheater. Each is not paid, loses 1,000 reputation and is slashed
`slash_fraction_bps` (10%) of each stake entry -- here the validators' self-stake, one entry each.
Nothing is paid: the whole budget returns to the submitter.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ledger.genesis_file import load_genesis
from ledger.keys import address_to_text, devnet_key
from mindnode.jobs import examples
from mindnode.node.devnet import Devnet
from mindnode.node.rpc_client import RpcClient

from .conftest import devnet_ports, free_ports, stop_and_check, wait_for, write_test_genesis

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]
SUBMITTER = devnet_key(3)
REP_FAILED_VERIFICATION = -1_000


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mindnode", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def get(node, path: str):
    with RpcClient(node.rpc, timeout=10) as c:
        return c._call("GET", path)


def addr(i: int) -> str:
    return address_to_text(devnet_key(i).address)


def test_a_cheating_worker_is_caught_not_paid_and_slashed(tmp_path):
    genesis = write_test_genesis(tmp_path / "genesis-test.json")
    p2p, rpc = devnet_ports(3)
    net = Devnet(tmp_path / "nodes", 3, genesis_source=str(genesis), base_p2p_port=p2p, base_rpc_port=rpc)
    net.init(fresh=True, genesis_time=int(time.time()) + 2)
    extra = net.add_node(4, *free_ports(2), validator=False)
    for i in (1, 2):
        net.nodes[i].args = ["--hardware-class", "gpu-consumer"]
    cheater, honest = net.nodes[1], net.nodes[2]
    cheater.env["MINDNODE_TEST_FAULTS"] = "cheat-gradients"
    n0 = net.nodes[0]
    r = cli("keys", "import", "--devnet", "3", "--name", "client", "--datadir", str(n0.datadir))
    assert r.returncode == 0, r.stderr
    net.start()
    try:
        net.wait_up(timeout=60)
        assert get(cheater, "/status")["test_faults"] == ["cheat-gradients"]
        for i in (0, 1, 2, 4):
            wait_for(f"provider {i} registered", lambda i=i: get(n0, f"/providers/{addr(i)}"), timeout=60)
        workers = {addr(1), addr(2)}
        before = {a: (get(n0, f"/providers/{a}"), get(n0, f"/accounts/{a}")["candidate"]) for a in workers}
        balance0 = int(get(n0, f"/accounts/{address_to_text(SUBMITTER.address)}")["balance"])

        doc = json.loads(examples.text("digits-mlp"))
        doc.update(workers=2, min_workers=2, limits={"steps": 100}, checkpoint_every=25,
                   hardware={"class": "gpu-consumer", "min_score": 1})
        spec = tmp_path / "digits-mlp-gpu.json"
        spec.write_text(json.dumps(doc))
        r = cli("job", "submit", str(spec), "--json", "--rpc", n0.rpc, "--datadir", str(n0.datadir),
                "--key", "client")
        assert r.returncode == 0, r.stderr
        tx = json.loads(r.stdout)["hash"]
        job = wait_for("the job on chain", lambda: get(n0, f"/jobs/by-tx/{tx}"), timeout=30)
        final = wait_for("the job finished", lambda: (j := get(n0, f"/jobs/{job['id']}"))["state"] in
                         ("done", "failed", "expired") and j, timeout=200, interval=1.0)
        logs = "\n".join(n.log_path.read_text(errors="replace")[-3000:] for n in net.nodes)
        assert final["state"] == "failed", (final, logs)
        assert {w["provider"] for w in final["assigned"]} == workers
        # caught by verification: accused by one non-worker, confirmed by the other (same steps)
        assert set(final["accused"]) == workers and final["accuser"] in {addr(0), addr(4)}
        for vnode in (n0, extra):          # both posted a verdict: the accuser and the confirmer
            assert f"job {final['id']} verdict" in vnode.log_path.read_text(errors="replace")
        assert "TEST FAULT cheat-gradients" in cheater.log_path.read_text(errors="replace")
        assert "TEST FAULT" not in honest.log_path.read_text(errors="replace")
        # not paid: no payment, no fee; the two verifiers (a confirmed accusation) are paid their fee
        # (ledger/JOBS.md, Settlement), the rest of the budget goes back to the submitter
        assert final["payments"] == [] and int(final["fee_paid"]) == 0
        vfees = int(final["verifier_fees"])
        assert len(final["verifier_payments"]) == 2 and vfees > 0
        assert int(final["refunded"]) + vfees == int(final["budget"]) and int(final["escrow"]) == 0
        assert int(get(n0, f"/accounts/{address_to_text(SUBMITTER.address)}")["balance"]) == balance0 - vfees
        # reputation and stake: -1,000 each (plus whatever control tasks did meanwhile), 10% slashed
        bps = load_genesis(net.genesis_source).params.slash_fraction_bps
        for a in workers:
            p0, c0 = before[a]
            p1, c1 = get(n0, f"/providers/{a}"), get(n0, f"/accounts/{a}")["candidate"]
            controls = 20 * (p1["controls_passed"] - p0["controls_passed"]) - 200 * (
                p1["controls_failed"] - p0["controls_failed"])
            assert p1["reputation"] == p0["reputation"] + REP_FAILED_VERIFICATION + controls, (a, p0, p1)
            assert p1["jobs_failed"] == p0["jobs_failed"] + 1
            assert c0["long_term"] == "0" and c0["delegated"] == "0"         # one stake entry: self-stake
            self_stake = int(c0["self_stake"])
            assert self_stake > 0 and int(c1["self_stake"]) == self_stake - self_stake * bps // 10_000
    finally:
        stop_and_check(net)
