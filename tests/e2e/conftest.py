"""Fixtures for end-to-end tests: real `mindnode` processes on 127.0.0.1, free ports, a test genesis.

One three-validator devnet is shared by the whole module that asks for it (`devnet3`), so the
suite pays the start-up once; tests that disturb it (stop, kill, restart) leave it running again.
The test genesis is the devnet's with a 1 s block time and proportionally shorter out-of-turn
back-offs, so finality shows within a few seconds.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ledger.genesis_file import read_genesis_bytes
from mindnode.node.devnet import Devnet
from mindnode.node.errors import NodeError
from mindnode.node.rpc_client import RpcClient

BLOCK_TIME_MS = 1000


def free_ports(n: int) -> list[int]:
    """n distinct free TCP ports on 127.0.0.1 (bound together so they differ, then released)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def consecutive_free_ports(n: int) -> int:
    """A base port b with b..b+n-1 all free (the devnet numbers ports base + i)."""
    for _ in range(200):
        base = free_ports(1)[0]
        if base + n >= 65535:
            continue
        ok = True
        for p in range(base, base + n):
            s = socket.socket()
            try:
                s.bind(("127.0.0.1", p))
            except OSError:
                ok = False
            finally:
                s.close()
        if ok:
            return base
    raise RuntimeError("no run of free ports found")


def devnet_ports(n: int) -> tuple[int, int]:
    """(base p2p port, base rpc port) for n nodes, from one run of 2n free ports (so they never overlap)."""
    base = consecutive_free_ports(2 * n)
    return base, base + n


def write_test_genesis(path: Path) -> Path:
    doc = json.loads(read_genesis_bytes("devnet"))
    doc["params"].update(block_time_ms=BLOCK_TIME_MS, out_of_turn_delay_ms=500, out_of_turn_step_ms=250)
    doc["bootnodes"] = []
    path.write_text(json.dumps(doc, indent=1))
    return path


def wait_for(what: str, fn: Callable[[], object], timeout: float = 30.0, interval: float = 0.2):
    """Poll `fn` until it returns something truthy; fail the test with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = fn()
            if value:
                return value
        except NodeError as exc:
            last_exc = exc
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}" + (f" (last error: {last_exc})" if last_exc else ""))


def status(node) -> dict:
    with RpcClient(node.rpc, timeout=3) as c:
        return c.status()


@contextlib.contextmanager
def running_devnet(d: Path, genesis: Path, n: int = 3, env: dict | None = None,
                   node_env: dict[int, dict] | None = None, prepare: Callable[[Devnet], None] | None = None):
    """A fresh n-node devnet from `genesis` on free ports, up and answering; on exit every node is
    stopped and checked (no traceback, no error exit). `node_env` adds variables to single nodes
    (e.g. a test-only fault switch); `prepare(net)` runs after init, before the nodes start
    (config edits, keys)."""
    p2p, rpc = devnet_ports(n)
    net = Devnet(d / "nodes", n, genesis_source=str(genesis), base_p2p_port=p2p, base_rpc_port=rpc,
                 env=env or {})
    for i, extra in (node_env or {}).items():
        net.nodes[i].env.update(extra)
    net.init(fresh=True, genesis_time=int(time.time()) + 2)
    if prepare is not None:
        prepare(net)
    net.start()
    try:
        net.wait_up(timeout=60)
        yield net
    finally:
        stop_and_check(net)


@pytest.fixture(scope="module")
def devnet3(tmp_path_factory):
    d = tmp_path_factory.mktemp("devnet")
    with running_devnet(d, write_test_genesis(d / "genesis-test.json"),
                        env={"MINDNODE_TEST_FAULTS": "debug-api"}) as net:
        yield net


def stop_and_check(net: Devnet) -> None:
    """Stop every node; no node may have logged a traceback or exited with an error."""
    codes = net.stop()
    for n in net.nodes:
        log = n.log_path.read_text(errors="replace")
        assert "Traceback" not in log, f"node {n.index} logged a traceback:\n{log[-3000:]}"
    assert all(c in (0, None, -9) for c in codes.values()), codes
