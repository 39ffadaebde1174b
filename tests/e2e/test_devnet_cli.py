"""`mindnode devnet` as a user runs it: one JSON line with every node's RPC URL once all are up,
and Ctrl-C (SIGINT) stops every node cleanly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from mindnode.node.rpc_client import RpcClient

from .conftest import devnet_ports, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(120)]


def test_devnet_command_json_and_ctrl_c(tmp_path):
    p2p, rpc = devnet_ports(3)
    proc = subprocess.Popen(
        [sys.executable, "-m", "mindnode", "devnet", "--dir", str(tmp_path / "dn"), "--fresh", "--json",
         "--base-p2p-port", str(p2p), "--base-rpc-port", str(rpc)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        nodes = json.loads(proc.stdout.readline())["nodes"]
        assert [n["rpc"] for n in nodes] == [f"http://127.0.0.1:{rpc + i}" for i in range(3)]
        wait_for("a block on every node", lambda: all(RpcClient(n["rpc"]).status()["height"] >= 1 for n in nodes))
        pids = [int(open(f"{n['datadir']}/node.lock").read()) for n in nodes]
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    for pid in pids:  # every node process is gone
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    for n in nodes:
        log = open(n["log"]).read()
        assert '"event": "stopped"' in log and "Traceback" not in log
