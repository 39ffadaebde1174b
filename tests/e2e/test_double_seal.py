"""End to end: a validator that seals two blocks at one height (test-only fault switch) is caught
by the honest nodes, who submit the evidence; the chain slashes its stake and jails it, and the
two honest validators carry on with blocks and finality."""

from __future__ import annotations

import pytest

from ledger.keys import address_to_text, devnet_key
from mindnode.node.rpc_client import RpcClient

from .conftest import running_devnet, status, wait_for, write_test_genesis

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(180)]

STAKE0 = 100_000 * 10**18  # devnet genesis self-stake of each validator


@pytest.fixture(scope="module")
def faulty_devnet(tmp_path_factory):
    d = tmp_path_factory.mktemp("devnet-fault")
    with running_devnet(d, write_test_genesis(d / "genesis-test.json"),
                        node_env={2: {"MINDNODE_TEST_FAULTS": "double-seal"}}) as net:
        yield net


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
