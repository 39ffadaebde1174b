"""End to end: a validator that stops misses its in-turn slots; the other nodes count them in block
execution, withhold its rewards at `missed_blocks_withhold` (2 here), jail it at
`missed_blocks_jail` (4 here) and drop it from the active set at the next epoch boundary, while the
two live validators carry on with blocks and finality. (Parlia's 50 / 150 would take minutes.)"""

from __future__ import annotations

import json

import pytest

from ledger.keys import address_to_text, devnet_key
from mindnode.node.rpc_client import RpcClient

from .conftest import running_devnet, status, wait_for, write_test_genesis

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(150)]


@pytest.fixture(scope="module")
def devnet(tmp_path_factory):
    d = tmp_path_factory.mktemp("devnet-slots")
    path = write_test_genesis(d / "genesis-test.json")
    doc = json.loads(path.read_text())
    doc["params"].update(missed_blocks_withhold=2, missed_blocks_jail=4, jail_period_s=3600)
    path.write_text(json.dumps(doc, indent=1))
    with running_devnet(d, path) as net:
        yield net


def test_stopped_validator_is_withheld_then_jailed_and_leaves_the_set(devnet):
    live, stopped = devnet.nodes[0], devnet.nodes[2]
    absent = address_to_text(devnet_key(2).address)
    wait_for("the first blocks", lambda: status(live)["height"] >= 3, timeout=30)
    assert RpcClient(live.rpc).validators()["missed_slots"] == {}
    devnet.stop_node(stopped)

    def vals():
        return RpcClient(live.rpc).validators()

    def withheld():
        v = vals()
        return v if absent in v["withheld"] else None

    v = wait_for("the stopped validator's rewards withheld", withheld, timeout=40)
    assert v["missed_slots"][absent] >= 2 and v["missed_blocks_withhold"] == 2

    def jailed():
        cand = RpcClient(live.rpc).account(absent)["candidate"]
        return cand if cand["jailed_until_ms"] > 0 else None

    cand = wait_for("the stopped validator jailed at 4 missed slots", jailed, timeout=40)
    assert int(cand["self_stake"]) == 100_000 * 10**18          # jailed for liveness, not slashed
    wait_for("the jailed validator out of the active set at the next epoch",
             lambda: absent not in vals()["active"], timeout=40)
    s0 = status(live)
    wait_for("blocks and finality to continue with the two live validators",
             lambda: status(live)["finalized_height"] >= s0["finalized_height"] + 2, timeout=30)
    # the other live node executed the same blocks: the same jail (part of the state)
    other = RpcClient(devnet.nodes[1].rpc).account(absent)["candidate"]
    assert other["jailed_until_ms"] == cand["jailed_until_ms"]
