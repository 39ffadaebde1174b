"""End to end: a validator that seals two blocks at one height (test-only fault switch) is caught
by the honest nodes, who submit the evidence; the chain slashes its stake and jails it, and the
two honest validators carry on with blocks and finality."""

from __future__ import annotations

import time

import pytest

from ledger.keys import address_to_text, devnet_key
from mindnode.node.devnet import Devnet
from mindnode.node.rpc_client import RpcClient

from .conftest import devnet_ports, status, wait_for, write_test_genesis

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(180)]

STAKE0 = 100_000 * 10**18  # devnet genesis self-stake of each validator


@pytest.fixture(scope="module")
def faulty_devnet(tmp_path_factory):
    d = tmp_path_factory.mktemp("devnet-fault")
    genesis = write_test_genesis(d / "genesis-test.json")
    p2p, rpc = devnet_ports(3)
    net = Devnet(d / "nodes", 3, genesis_source=str(genesis), base_p2p_port=p2p, base_rpc_port=rpc)
    net.nodes[2].env["MINDNODE_TEST_FAULTS"] = "double-seal"
    net.init(fresh=True, genesis_time=int(time.time()) + 2)
    net.start()
    try:
        net.wait_up(timeout=60)
        yield net
    finally:
        net.stop()
        for n in net.nodes:
            assert "Traceback" not in n.log_path.read_text(errors="replace")


def test_double_sealer_is_slashed_and_jailed(faulty_devnet):
    honest = faulty_devnet.nodes[0]
    offender = address_to_text(devnet_key(2).address)
    assert status(faulty_devnet.nodes[2])["test_faults"] == ["double-seal"]

    def punished():
        cand = RpcClient(honest.rpc).account(offender)["candidate"]
        return cand if cand and cand["jailed_until_ms"] > 0 else None

    cand = wait_for("evidence included: the offender slashed and jailed", punished, timeout=90)
    assert int(cand["self_stake"]) <= STAKE0 * 9 // 10  # at least one 10% slash
    wait_for("the offender out of the active validator set",
             lambda: offender not in RpcClient(honest.rpc).validators()["active"], timeout=60)
    s0 = status(honest)
    wait_for("blocks and finality to continue with the two honest validators",
             lambda: status(honest)["finalized_height"] >= s0["finalized_height"] + 2, timeout=60)
    logs = "".join(n.log_path.read_text() for n in faulty_devnet.nodes[:2])
    assert '"event": "evidence"' in logs
