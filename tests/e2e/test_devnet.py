"""End to end: three real validator processes seal, gossip, sync and finalize blocks.

The tests share one devnet (module fixture) and run in file order: each leaves all nodes running.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from ledger.keys import address_to_text, devnet_key
from mindnode.node.rpc_client import RpcClient

from .conftest import BLOCK_TIME_MS, free_ports, status, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(180)]


def heads(net):
    return [status(n) for n in net.nodes if n.running()]


def test_blocks_produced_and_finalized_on_all_three(devnet3):
    wait_for("finalized height >= 2 on all three nodes",
             lambda: all(s["finalized_height"] >= 2 for s in heads(devnet3)))
    sts = heads(devnet3)
    assert {s["peers"] for s in sts} == {2}
    # The same block is finalized at the same height everywhere (no two finalized forks).
    h = min(s["finalized_height"] for s in sts)
    hashes = set()
    for n in devnet3.nodes:
        with RpcClient(n.rpc) as c:
            b = c.block(h)
            assert b["finalized"] is True
            hashes.add(b["hash"])
    assert len(hashes) == 1
    # Every validator sealed some block: turns rotate.
    with RpcClient(devnet3.nodes[0].rpc) as c:
        top = c.status()["height"]
        proposers = {c.block(i)["proposer"] for i in range(1, top + 1)}
    assert len(proposers) == 3
    # status carries dialable multiaddrs ending in the peer id
    for s, n in zip(sts, devnet3.nodes, strict=True):
        assert s["peer_id"] == n.peer_id
        assert all(a.endswith(f"/p2p/{n.peer_id}") for a in s["listen_addrs"])


def test_second_node_on_a_datadir_in_use_is_refused(devnet3):
    out = subprocess.run([sys.executable, "-m", "mindnode", "start", "--datadir", str(devnet3.nodes[0].datadir),
                          "--no-bootnodes"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "in use by another running mindnode" in out.stderr, out.stderr
    assert out.stderr.count("\n") == 1


def test_cli_transfer_visible_on_every_node(devnet3):
    to = address_to_text(devnet_key(7).address)
    before = [int(RpcClient(n.rpc).account(to)["balance"]) for n in devnet3.nodes]
    out = subprocess.run(
        [sys.executable, "-m", "mindnode", "tx", "transfer", to, "2.5", "--datadir", str(devnet3.nodes[0].datadir),
         "--rpc", devnet3.nodes[1].rpc, "--wait", "--json"],
        capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    assert res["status"] == "included" and res["tx"]["kind"] == "transfer"
    for n, b0 in zip(devnet3.nodes, before, strict=True):
        wait_for(f"the transfer on node {n.index}",
                 lambda n=n, b0=b0: int(RpcClient(n.rpc).account(to)["balance"]) == b0 + 25 * 10**17)
        assert RpcClient(n.rpc).tx(res["hash"])["height"] == res["height"]
    # A CLI error is one line on stderr and a non-zero exit status.
    bad = subprocess.run([sys.executable, "-m", "mindnode", "account", "mnnot-an-address", "--rpc",
                          devnet3.nodes[0].rpc], capture_output=True, text=True, timeout=30)
    assert bad.returncode != 0 and bad.stderr.count("\n") == 1 and "error:" in bad.stderr


def test_stopped_validator_then_restart_catches_up(devnet3):
    victim = devnet3.nodes[2]
    assert devnet3.stop_node(victim) == 0  # SIGTERM: clean exit
    assert '"event": "stopped"' in victim.log_path.read_text()
    live = devnet3.nodes[:2]
    s0 = status(live[0])
    wait_for("blocks and finality to continue with one validator stopped",
             lambda: all(s["height"] >= s0["height"] + 4 and s["finalized_height"] > s0["finalized_height"]
                         for s in (status(n) for n in live)), timeout=60)
    devnet3.start_node(victim)
    devnet3.wait_up(nodes=[victim])
    target = status(live[0])["height"]
    wait_for("the restarted validator to catch up", lambda: status(victim)["height"] >= target, timeout=60)
    h = target
    assert RpcClient(victim.rpc).block(h)["hash"] == RpcClient(live[0].rpc).block(h)["hash"]


def test_late_joiner_with_empty_datadir_syncs_to_head(devnet3):
    p2p, rpc = free_ports(2)
    node = devnet3.add_node(3, p2p, rpc, validator=False)
    devnet3.start_node(node)
    devnet3.wait_up(nodes=[node])
    target = status(devnet3.nodes[0])["height"]
    wait_for("the new node to sync to the head", lambda: status(node)["height"] >= target, timeout=60)
    assert RpcClient(node.rpc).block(target)["hash"] == RpcClient(devnet3.nodes[0].rpc).block(target)["hash"]
    assert status(node)["validator"] is False


def test_sigkilled_node_restarts_with_intact_database(devnet3):
    victim = devnet3.nodes[1]
    before = status(victim)["height"]
    victim.proc.send_signal(signal.SIGKILL)
    victim.proc.wait(timeout=10)
    devnet3.start_node(victim)
    devnet3.wait_up(nodes=[victim])
    s = status(victim)
    assert s["height"] >= before - 1  # at most the block being written is lost, never the database
    target = status(devnet3.nodes[0])["height"]
    wait_for("the killed node to follow the chain again", lambda: status(victim)["height"] >= target, timeout=60)
    assert RpcClient(victim.rpc).block(target)["hash"] == RpcClient(devnet3.nodes[0].rpc).block(target)["hash"]


def _cut(a, b) -> None:
    RpcClient(a.rpc).debug("deny", b.peer_id)
    RpcClient(b.rpc).debug("deny", a.peer_id)


def _heal(a, b) -> None:
    RpcClient(a.rpc).debug("allow", b.peer_id)
    RpcClient(b.rpc).debug("allow", a.peer_id)


def test_partition_minority_does_not_finalize_and_heals(devnet3):
    minority = devnet3.nodes[2]
    majority = [n for n in devnet3.nodes if n is not minority]
    for b in majority:
        _cut(minority, b)
    wait_for("the minority to lose its peers", lambda: status(minority)["peers"] == 0, timeout=20)
    # Votes gathered before the cut may still finalize one block when the minority seals its single
    # allowed block; after that, alone, it finalizes nothing.
    time.sleep(3 * BLOCK_TIME_MS / 1000)
    fin_before = status(minority)["finalized_height"]
    fin_hash = RpcClient(minority.rpc).block(fin_before)["hash"]
    m0 = status(majority[0])
    wait_for("the majority to keep finalizing",
             lambda: status(majority[0])["finalized_height"] >= m0["finalized_height"] + 3, timeout=60)
    assert status(minority)["finalized_height"] == fin_before  # a lone validator of 3 finalizes nothing
    for b in majority:
        _heal(minority, b)
    target = status(majority[0])["height"]
    wait_for("all nodes to converge after healing",
             lambda: status(minority)["height"] >= target
             and RpcClient(minority.rpc).block(target)["hash"] == RpcClient(majority[0].rpc).block(target)["hash"],
             timeout=60)
    for n in devnet3.nodes:  # nothing finalized before the cut was reverted anywhere
        assert RpcClient(n.rpc).block(fin_before)["hash"] == fin_hash
    wait_for("finality to move on the healed node",
             lambda: status(minority)["finalized_height"] > fin_before, timeout=30)
