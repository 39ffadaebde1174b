"""Rewards on a running devnet, through the CLI a user types: three validator processes that are
also providers; node 2 runs the TEST-ONLY ``few-heartbeats`` fault (online in exactly 5 chain hours
a day, the bar, which does not qualify). Days last 24 s (1 s chain hours), so after two settled
days: nodes 0 and 1 have mining AND staking rewards, node 2 staking only, and
``mindnode rewards withdraw --wait`` moves exactly the withdrawable amount to the balance.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from ledger.economics.days import ChainClock
from ledger.genesis_file import read_genesis_bytes
from mindnode.node.devnet import Devnet
from mindnode.node.rpc_client import RpcClient

from .conftest import devnet_ports, stop_and_check, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(180)]

DAY_S = 24


def _genesis(path):
    doc = json.loads(read_genesis_bytes("devnet"))
    doc["params"].update(block_time_ms=1000, out_of_turn_delay_ms=500, out_of_turn_step_ms=250, day_s=DAY_S)
    doc["bootnodes"] = []
    path.write_text(json.dumps(doc, indent=1))
    return path


def cli(*args: str) -> dict:
    out = subprocess.run([sys.executable, "-m", "mindnode", *args, "--json"], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_devnet_days_pay_mining_and_staking_and_withdrawal_moves_them(tmp_path):
    p2p, rpc = devnet_ports(3)
    net = Devnet(tmp_path / "nodes", 3, genesis_source=str(_genesis(tmp_path / "g.json")),
                 base_p2p_port=p2p, base_rpc_port=rpc)
    net.nodes[2].env = {"MINDNODE_TEST_FAULTS": "few-heartbeats"}
    gtime = net.init(fresh=True, genesis_time=int(time.time()) + 2)
    clock = ChainClock(gtime, DAY_S)
    net.start()
    try:
        net.wait_up(timeout=60)
        dirs = [str(n.datadir) for n in net.nodes]
        me = [s["address"] for s in net.wait_up()]
        c0 = RpcClient(net.nodes[0].rpc)
        # node 2's uptime during day 1, sampled while it happens (a day's record is deleted once settled)
        hours2 = {}

        def two_days_settled():
            s = c0.status()
            day = clock.day_of(s["head_timestamp_ms"] // 1000)
            r2 = c0.rewards(me[2])
            if r2["day"] == 1:
                hours2[1] = max(hours2.get(1, 0), r2["hours_today"])
            return day >= 2

        wait_for("two settled devnet days", two_days_settled, timeout=90, interval=0.5)
        views = [cli("rewards", "--rpc", net.nodes[0].rpc, "--datadir", dirs[i]) for i in range(3)]
        for i, v in enumerate(views):
            print(f"node {i}: mining {v['mining']} staking {v['staking']} days {v['days']}")
            assert v["address"] == me[i]
            assert v["profile"] == {"hardware_class": "cpu", "bandwidth_kbps": 100_000}
            assert {0, 1} <= {d["day"] for d in v["days"]}, v
            assert all(int(d["staking"]) > 0 for d in v["days"] if d["day"] in (0, 1)), v
        for v in views[:2]:   # online all day: both days' mining paid
            assert int(v["mining"]) > 0 and int(v["staking"]) > 0
            assert all(int(d["mining"]) > 0 for d in v["days"] if d["day"] in (0, 1)), v
        # node 2 was online (5 hours recorded on day 1) but not MORE than 5: no mining reward at all
        assert 0 < hours2.get(1, 0) <= views[2]["qualifying_hours"], hours2
        assert views[2]["mining"] == "0" and all(d["mining"] == "0" for d in views[2]["days"])
        assert int(views[2]["staking"]) > 0

        # heartbeats travel by gossip: proposers record other providers' hours, not only their own
        recorded_by_other = set()
        for h in range(1, c0.status()["height"] + 1):
            b = c0.block(h)
            for tx in b["txs"]:
                if tx["kind"] == "uptime":
                    recorded_by_other |= {e["provider"] for e in tx["body"]["entries"]} - {b["proposer"]}
        assert recorded_by_other == set(me), recorded_by_other

        # withdraw node 0's rewards early in a day, so no settlement falls between reading and withdrawing
        wait_for("the start of a day", lambda: c0.rewards(me[0])["hour"] < 12, timeout=30)
        before = cli("rewards", "--rpc", net.nodes[0].rpc, "--datadir", dirs[0])
        bal0 = int(cli("account", me[0], "--rpc", net.nodes[0].rpc)["balance"])
        res = cli("rewards", "withdraw", "--wait", "--rpc", net.nodes[0].rpc, "--datadir", dirs[0])
        after = cli("rewards", "--rpc", net.nodes[0].rpc, "--datadir", dirs[0])
        bal1 = int(cli("account", me[0], "--rpc", net.nodes[0].rpc)["balance"])
        block = c0.block(res["height"])
        assert after["withdrawable"] == "0" or after["day"] != before["day"]
        moved = int(after["withdrawn"]) - int(before["withdrawn"])
        print(f"withdrew {res['amount']} (withdrawable was {before['withdrawable']}), balance {bal0} -> {bal1}")
        assert int(res["amount"]) == moved == bal1 - bal0 > 0
        if clock.day_of(block["timestamp_ms"] // 1000) == before["day"]:
            assert moved == int(before["withdrawable"])   # exactly what `mindnode rewards` said
        # nothing left to withdraw is a one-line error, not a burnt fee
        if after["withdrawable"] == "0":
            out = subprocess.run([sys.executable, "-m", "mindnode", "rewards", "withdraw", "--rpc",
                                  net.nodes[0].rpc, "--datadir", dirs[0]], capture_output=True, text=True)
            assert out.returncode == 1 and out.stderr.startswith("error: ") and len(out.stderr.splitlines()) == 1
    finally:
        stop_and_check(net)
    for n in net.nodes:   # honest nodes never penalise each other's heartbeats
        assert "rejected heartbeat" not in n.log_path.read_text(errors="replace")
