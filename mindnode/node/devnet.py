"""`mindnode devnet`: N validator nodes as separate OS processes on 127.0.0.1, one command.

Layout and ports (documented in `mindnode devnet --help` and the README):

* node i uses the INSECURE published devnet key i (`ledger.keys.devnet_key`), data directory
  ``DIR/node<i>``, log ``DIR/node<i>.log`` (JSON lines), libp2p on ``/ip4/127.0.0.1/tcp/<30333+i>``
  and its HTTP API on ``http://127.0.0.1:<8645+i>``;
* every node is given every other node as a bootnode (``/ip4/127.0.0.1/tcp/<port>/p2p/<peer id>``:
  peer ids follow from the devnet keys, so nothing has to be exchanged at start).

A fresh devnet (first run, or ``--fresh``) re-bases the genesis time to a few seconds after now
(the same value for every node), so block 1 is due right after the nodes are up.

The `Devnet` class is also what end-to-end tests and ``scripts/bench/devnet.py`` use, with free
ports and a test genesis; it stops its nodes with SIGTERM (then SIGKILL after a grace period).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ledger.keys import devnet_key, peer_id_from_address
from mindnode.node.errors import NodeError

#: Seconds between init and the genesis time of a fresh devnet: time for processes to start.
GENESIS_LEAD_S = 1


@dataclass
class NodeProc:
    index: int
    datadir: Path
    log_path: Path
    p2p_port: int
    rpc_port: int
    validator: bool = True
    env: dict[str, str] = field(default_factory=dict)
    args: list[str] = field(default_factory=list)     # extra `mindnode start` options of this node
    proc: subprocess.Popen | None = None

    @property
    def peer_id(self) -> str:
        return peer_id_from_address(devnet_key(self.index).address)

    @property
    def rpc(self) -> str:
        return f"http://127.0.0.1:{self.rpc_port}"

    @property
    def multiaddr(self) -> str:
        return f"/ip4/127.0.0.1/tcp/{self.p2p_port}/p2p/{self.peer_id}"

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def _init_node(datadir: Path, genesis_source: str, key_index: int, p2p_port: int, rpc_port: int,
               genesis_time: int, force: bool) -> None:
    """Run `mindnode init` in this process (fast: no interpreter start per node)."""
    from mindnode.cli_init import init

    args = ["--genesis", genesis_source, "--datadir", str(datadir), "--devnet-key", str(key_index),
            "--p2p-port", str(p2p_port), "--api-port", str(rpc_port), "--genesis-time", str(genesis_time), "--json"]
    if force:
        args.append("--force")
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        init.main(args, standalone_mode=False)


class Devnet:
    def __init__(self, directory: Path, nodes: int = 3, *, genesis_source: str = "devnet",
                 base_p2p_port: int = 30333, base_rpc_port: int = 8645, validators: int | None = None,
                 env: dict[str, str] | None = None):
        self.directory = Path(directory).resolve()
        self.genesis_source = genesis_source
        self.env = dict(env or {})
        n_val = nodes if validators is None else validators
        self.nodes = [NodeProc(i, self.directory / f"node{i}", self.directory / f"node{i}.log",
                               base_p2p_port + i, base_rpc_port + i, validator=i < n_val)
                      for i in range(nodes)]
        self.started_at = 0.0

    # ------------------------------------------------------------------------------ lifecycle
    def init(self, fresh: bool = False, genesis_time: int | None = None) -> int:
        """Initialise every node's data directory that needs it. Returns the genesis time used."""
        self.directory.mkdir(parents=True, exist_ok=True)
        need = [n for n in self.nodes if fresh or not (n.datadir / "config.toml").exists()]
        if not need:
            return 0
        if genesis_time is None:
            genesis_time = int(time.time()) + GENESIS_LEAD_S
        if need and len(need) != len(self.nodes):
            # a partial devnet would disagree on genesis: re-init all of them together
            need = self.nodes
        for n in need:
            _init_node(n.datadir, self.genesis_source, n.index, n.p2p_port, n.rpc_port, genesis_time,
                       force=(n.datadir / "config.toml").exists() or (n.datadir / "chain").exists())
        return genesis_time

    def add_node(self, index: int, p2p_port: int, rpc_port: int, validator: bool = False) -> NodeProc:
        """A further node (e.g. a late joiner) on the same genesis as node 0, with an empty chain."""
        node = NodeProc(index, self.directory / f"node{index}", self.directory / f"node{index}.log",
                        p2p_port, rpc_port, validator=validator)
        genesis = self.nodes[0].datadir / "genesis.json"
        _init_node(node.datadir, str(genesis), index, p2p_port, rpc_port, _genesis_time_of(genesis), force=True)
        self.nodes.append(node)
        return node

    def command(self, node: NodeProc) -> list[str]:
        cmd = [sys.executable, "-m", "mindnode", "start", "--datadir", str(node.datadir),
               "--listen", f"/ip4/127.0.0.1/tcp/{node.p2p_port}", "--rpc", f"127.0.0.1:{node.rpc_port}",
               "--log-format", "json"]
        if node.validator:
            cmd.append("--validator")
        others = [o for o in self.nodes if o is not node]
        for o in others:
            cmd += ["--bootnode", o.multiaddr]
        if not others:
            cmd.append("--no-bootnodes")
        return cmd + list(node.args)

    def start_node(self, node: NodeProc) -> None:
        if node.running():
            return
        env = {**os.environ, **self.env, **node.env}
        env.setdefault("MINDNODE_LOG_LEVEL", "info")
        log = open(node.log_path, "ab")  # noqa: SIM115 - owned by the child process from here
        # run from the directory holding this package, so the child imports the same code as we do
        root = Path(__file__).resolve().parents[2]
        node.proc = subprocess.Popen(self.command(node), stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()

    def start(self) -> None:
        self.started_at = time.time()
        for n in self.nodes:
            self.start_node(n)

    def stop_node(self, node: NodeProc, *, kill: bool = False, grace: float = 10.0,
                  signalled: bool = False) -> int | None:
        """Stop one node (SIGTERM, or SIGKILL with `kill`); SIGKILL after `grace` seconds."""
        if node.proc is None:
            return None
        if node.proc.poll() is None:
            if not signalled:
                node.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                node.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                node.proc.kill()
                node.proc.wait()
        return node.proc.returncode

    def stop(self) -> dict[int, int | None]:
        for n in self.nodes:  # signal all first, then wait: they stop in parallel
            if n.running():
                n.proc.send_signal(signal.SIGTERM)
        return {n.index: self.stop_node(n, signalled=True) for n in self.nodes}

    # ------------------------------------------------------------------------------ waiting
    def wait_up(self, timeout: float = 60.0, nodes: list[NodeProc] | None = None) -> list[dict[str, Any]]:
        """Wait until every node answers /status; a node that exits first is an error with its log tail."""
        from mindnode.node.rpc_client import RpcClient

        deadline = time.monotonic() + timeout
        out = []
        for n in nodes or self.nodes:
            with RpcClient(n.rpc, timeout=2) as c:
                while True:
                    if n.proc is not None and n.proc.poll() is not None:
                        raise NodeError(f"node {n.index} exited with status {n.proc.returncode}: "
                                        f"{tail(n.log_path)}")
                    try:
                        out.append(c.status())
                        break
                    except NodeError:
                        if time.monotonic() > deadline:
                            raise NodeError(f"node {n.index} did not answer at {n.rpc} within {timeout:.0f} s: "
                                            f"{tail(n.log_path)}") from None
                        time.sleep(0.1)
        return out

    def summary(self) -> list[dict[str, Any]]:
        return [{"node": n.index, "peer_id": n.peer_id, "rpc": n.rpc, "p2p": n.multiaddr,
                 "log": str(n.log_path), "datadir": str(n.datadir), "validator": n.validator}
                for n in self.nodes]


def _genesis_time_of(path: Path) -> int:
    from ledger.genesis_file import load_genesis

    return load_genesis(path).timestamp


def tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(text[-lines:])


def run_devnet(*, nodes: int, directory: Path, fresh: bool, genesis_source: str, base_p2p_port: int,
               base_rpc_port: int, as_json: bool) -> None:
    """The CLI command: init, start, print the table (or one JSON line), wait for Ctrl-C, stop."""
    net = Devnet(directory, nodes, genesis_source=genesis_source, base_p2p_port=base_p2p_port,
                 base_rpc_port=base_rpc_port)
    net.init(fresh=fresh)
    stop_now = False

    def _on_signal(signum, frame):  # noqa: ARG001
        nonlocal stop_now
        stop_now = True
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _on_signal)
    # explicitly: a process started in the background by a shell inherits SIGINT ignored
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        net.start()
        net.wait_up(timeout=60)
        if as_json:
            print(json.dumps({"nodes": net.summary()}), flush=True)
        else:
            _print_table(net)
        while True:
            for n in net.nodes:
                if not n.running():
                    raise NodeError(f"node {n.index} exited with status {n.proc.returncode}: {tail(n.log_path)}")
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        codes = net.stop()
        if not as_json:
            print(f"stopped {len(codes)} nodes", file=sys.stderr)


def _print_table(net: Devnet) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"mindnode devnet ({len(net.nodes)} validators) -- Ctrl-C stops all", title_justify="left")
    for col in ("node", "peer id", "RPC URL", "log"):
        t.add_column(col, overflow="fold")
    for s in net.summary():
        t.add_row(str(s["node"]), s["peer_id"], s["rpc"], s["log"])
    t.caption = "p2p: /ip4/127.0.0.1/tcp/<port>/p2p/<peer id>, ports " + ", ".join(
        str(n.p2p_port) for n in net.nodes)
    Console().print(t)
