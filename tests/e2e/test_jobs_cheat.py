"""A cheating worker on a real devnet: caught by verification, named alone, not paid, reputation
down, slashed; its honest co-worker is paid for its samples and keeps its reputation and stake.

Four `mindnode start` processes (1 s blocks): validators 0, 1, 2 and a plain provider 4. Nodes 1 and
2 declare `--hardware-class gpu-consumer` and the job asks for that class, so exactly they offer and
train (deterministic assignment); nodes 0 and 4 (cpu) cannot offer but may verify: a 2-worker job
has two registered providers that did not train, which an accusation needs (ledger/JOBS.md: a
verdict naming bad workers must be confirmed by a second verifier that did not train). Node 1's
address sorts first, so node 1 posts the result.

Two cheats (test-only switches, mindnode/node/faults.py):
* `cheat-gradients` on node 2 (not the poster): it sends 3x its gradient into every sync average.
  Its signed gradient sketches match what it sent (its peer checks that online), and the verifier's
  step-by-step replay finds its sketch 2x off the gradient its data gives: it alone is named.
* `cheat-result` on node 1 (the poster): it posts made-up weights and metrics. The weights are not
  the parameters both workers signed at the last step: the poster alone is named.

Asserted: the drawn verifier names only the cheater, a second verifier confirms; the job `failed`;
the cheater is not paid, loses 1,000 reputation and `slash_fraction_bps` (10%) of its self-stake;
the honest worker is paid for its samples at its price (through the sync split), its reputation
does not fall and its stake is untouched; the submitter pays exactly the honest worker's fee.
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


@pytest.mark.parametrize("fault,cheater_index", [("cheat-gradients", 2), ("cheat-result", 1)])
def test_a_cheating_worker_is_caught_named_alone_and_slashed(tmp_path, fault, cheater_index):
    genesis = write_test_genesis(tmp_path / "genesis-test.json")
    p2p, rpc = devnet_ports(3)
    net = Devnet(tmp_path / "nodes", 3, genesis_source=str(genesis), base_p2p_port=p2p, base_rpc_port=rpc)
    net.init(fresh=True, genesis_time=int(time.time()) + 2)
    extra = net.add_node(4, *free_ports(2), validator=False)
    for i in (1, 2):
        net.nodes[i].args = ["--hardware-class", "gpu-consumer"]
    honest_index = 3 - cheater_index
    cheater, honest = net.nodes[cheater_index], net.nodes[honest_index]
    bad, good = addr(cheater_index), addr(honest_index)
    assert min(addr(1), addr(2)) == addr(1)           # node 1 posts the result
    cheater.env["MINDNODE_TEST_FAULTS"] = fault
    n0 = net.nodes[0]
    r = cli("keys", "import", "--devnet", "3", "--name", "client", "--datadir", str(n0.datadir))
    assert r.returncode == 0, r.stderr
    net.start()
    try:
        net.wait_up(timeout=60)
        assert get(cheater, "/status")["test_faults"] == [fault]
        for i in (0, 1, 2, 4):
            wait_for(f"provider {i} registered", lambda i=i: get(n0, f"/providers/{addr(i)}"), timeout=60)
        workers = {bad, good}
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
        assert final["result"]["evidence"], final["result"]          # the bundle with the sketch log
        # caught by verification and named alone: accused by one non-worker, confirmed by the other
        assert final["accused"] == [bad] and final["accuser"] in {addr(0), addr(4)}, (final, logs)
        for vnode in (n0, extra):          # both posted a verdict: the accuser and the confirmer
            text = vnode.log_path.read_text(errors="replace")
            assert f"job {final['id']} verdict" in text and f"job {final['id']} blames {bad[:12]}" in text
        assert f"TEST FAULT {fault}" in cheater.log_path.read_text(errors="replace")
        assert "TEST FAULT" not in honest.log_path.read_text(errors="replace")
        # paid: only the honest worker, for its samples at its agreed price (the sync split's share);
        # the two verifiers (a confirmed accusation) are paid their fee (ledger/JOBS.md, Settlement);
        # the rest of the budget goes back to the submitter
        paid = {p["provider"]: int(p["amount"]) for p in final["payments"]}
        assert set(paid) == {good} and paid[good] > 0, final["payments"]
        price = next(int(w["price"]) for w in final["assigned"] if w["provider"] == good)
        samples = next(int(w["samples"]) for w in final["result"]["work"] if w["provider"] == good)
        assert int(final["fee_paid"]) == price * samples // 1000
        vfees = int(final["verifier_fees"])
        assert len(final["verifier_payments"]) == 2 and vfees > 0
        assert int(final["refunded"]) + vfees == int(final["budget"]) - int(final["fee_paid"])
        assert int(final["escrow"]) == 0
        assert int(get(n0, f"/accounts/{address_to_text(SUBMITTER.address)}")["balance"]) == \
            balance0 - int(final["fee_paid"]) - vfees
        # reputation and stake: the cheater -1,000 and 10% slashed; the honest worker neither
        bps = load_genesis(net.genesis_source).params.slash_fraction_bps
        for a in workers:
            p0, c0 = before[a]
            p1, c1 = get(n0, f"/providers/{a}"), get(n0, f"/accounts/{a}")["candidate"]
            controls = 20 * (p1["controls_passed"] - p0["controls_passed"]) - 200 * (
                p1["controls_failed"] - p0["controls_failed"])
            assert c0["long_term"] == "0" and c0["delegated"] == "0"         # one stake entry: self-stake
            self_stake = int(c0["self_stake"])
            if a == bad:
                assert p1["reputation"] == p0["reputation"] + REP_FAILED_VERIFICATION + controls, (a, p0, p1)
                assert p1["jobs_failed"] == p0["jobs_failed"] + 1
                assert self_stake > 0 and int(c1["self_stake"]) == self_stake - self_stake * bps // 10_000
            else:
                assert p1["reputation"] >= p0["reputation"] + controls, (a, p0, p1)
                assert p1["jobs_failed"] == p0["jobs_failed"]
                assert int(c1["self_stake"]) == self_stake
    finally:
        stop_and_check(net)
