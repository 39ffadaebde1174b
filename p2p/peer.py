"""``python -m p2p.peer``: a stand-alone p2p node driven by JSON lines (tests, demos, debugging).

Why it exists: the multi-process tests need real separate peers, and a developer sometimes wants
a bare peer to poke a node with.  It prints one JSON object per line on stdout (``ready`` first,
then ``peer``, ``gossip`` and command replies) and reads commands as JSON lines on stdin:

    {"cmd": "publish", "topic": "tx", "data": "<hex>"}
    {"cmd": "peers"}
    {"cmd": "put", "data": "<hex>"}              -> {"event": "put", "cid": ...}
    {"cmd": "fetch", "cid": "bafk...", "timeout": 30}
    {"cmd": "request", "peer": "12D3...", "protocol": "/echo/1", "data": "<hex>", "timeout": 5}
    {"cmd": "bulk_send", "peer": ..., "channel": "c", "size": n}   -> sends n pattern bytes
    {"cmd": "bulk_recv", "peer": ..., "channel": "c", "timeout": 10}  -> {"len", "sha256"}
    {"cmd": "stop"}

SIGINT/SIGTERM stop it cleanly (no traceback, exit status 0) in well under a second.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import signal
import sys
import time

import trio

from p2p.errors import P2PError
from p2p.gossip import ACCEPT, REJECT
from p2p.node import Node, NodeConfig


def _emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def pattern(size: int) -> bytes:
    """Deterministic test payload both ends can check by hash."""
    block = hashlib.sha256(b"mindnode-bulk").digest() * 2048  # 64 KiB
    reps = size // len(block) + 1
    return (block * reps)[:size]


async def _commands(node: Node, stop: trio.CancelScope) -> None:
    stream = trio.lowlevel.FdStream(os.dup(sys.stdin.fileno()))
    buf = b""
    async with trio.open_nursery() as nursery:
        while True:
            chunk = await stream.receive_some(65536)
            if not chunk:
                stop.cancel()
                return
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                if line.strip():
                    nursery.start_soon(_run_command, node, line, stop)


async def _run_command(node: Node, line: bytes, stop: trio.CancelScope) -> None:
    try:
        cmd = json.loads(line)
        name = cmd["cmd"]
        if name == "stop":
            stop.cancel()
        elif name == "peers":
            _emit({"event": "peers", "peers": node.peers()})
        elif name == "publish":
            await node.publish(node.topic(cmd["topic"]), bytes.fromhex(cmd["data"]))
            _emit({"event": "published"})
        elif name == "put":
            assert node.blobs is not None, "start with --blob-dir"
            _emit({"event": "put", "cid": node.blobs.store.put(bytes.fromhex(cmd["data"]))})
        elif name == "fetch":
            assert node.blobs is not None, "start with --blob-dir"
            path = await node.blobs.fetch(cmd["cid"], timeout=cmd.get("timeout", 30))
            _emit({"event": "fetched", "cid": cmd["cid"], "path": str(path)})
        elif name == "request":
            out = await node.request(cmd["peer"], cmd["protocol"], bytes.fromhex(cmd["data"]),
                                     cmd.get("timeout", 5))
            _emit({"event": "response", "data": out.hex()})
        elif name == "bulk_send":
            data = pattern(cmd["size"])
            t_start = time.time()  # wall clock: comparable with the receiver's on one machine
            await node.bulk.send(cmd["peer"], cmd["channel"], data, cmd.get("timeout", 30))
            _emit({"event": "bulk_sent", "size": cmd["size"], "t_start": t_start})
        elif name == "bulk_recv":
            data = await node.bulk.recv(cmd["peer"], cmd["channel"], cmd.get("timeout", 30))
            t_done = time.time()
            _emit({"event": "bulk_received", "len": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                   "t_done": t_done})
        else:
            _emit({"event": "error", "error": f"unknown command {name!r}"})
    except P2PError as exc:
        _emit({"event": "error", "error": f"{type(exc).__name__}: {exc}"})
    except (ValueError, KeyError, AssertionError) as exc:
        _emit({"event": "error", "error": f"bad command: {exc!r}"})


async def _pump_gossip(node: Node, kind: str) -> None:
    def validator(data: bytes, from_peer: str):
        return REJECT if data.startswith(b"INVALID") else ACCEPT

    sub = await node.subscribe(node.topic(kind), validator)
    async for msg in sub:
        _emit({"event": "gossip", "topic": kind, "data": msg.data.hex(), "from": msg.from_peer})


async def _pump_events(node: Node) -> None:
    async for ev in node.events():
        _emit({"event": "peer", "kind": ev.kind, "peer": ev.peer_id, "reason": ev.reason})


async def main_async(args: argparse.Namespace) -> None:
    seed = bytes.fromhex(args.seed) if args.seed else os.urandom(32)
    cfg = NodeConfig(seed=seed, listen=args.listen or ["/ip4/127.0.0.1/tcp/0"], bootnodes=args.bootnode,
                     chain_id=args.chain_id, max_peers=args.max_peers, enable_dht=not args.no_dht,
                     discovery_interval_s=args.discovery_interval, blob_dir=args.blob_dir,
                     bulk_mode=args.bulk_mode)
    # trap 8: a signal that lands while we are already stopping would be re-raised by trio when
    # the receiver closes (KeyboardInterrupt traceback, or death by SIGTERM): make the handlers
    # restored at that point "ignore", since we are exiting anyway.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with Node(cfg).started() as node, trio.open_nursery() as nursery:
            stop = nursery.cancel_scope
            node.serve("/mindnode/echo/1.0.0", lambda data, peer: data, max_request_bytes=1 << 20)

            async def on_signal() -> None:
                async for _ in signals:
                    stop.cancel()
                    return

            nursery.start_soon(on_signal)
            nursery.start_soon(_pump_events, node)
            for kind in args.subscribe:
                nursery.start_soon(_pump_gossip, node, kind)
            _emit({"event": "ready", "peer_id": node.peer_id, "addrs": node.addrs})
            if not args.no_stdin:
                nursery.start_soon(_commands, node, stop)
    _emit({"event": "stopped"})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m p2p.peer", description=__doc__.split("\n")[0])
    parser.add_argument("--seed", help="32-byte identity seed as hex (default: random)")
    parser.add_argument("--listen", action="append", help="listen multiaddr (repeatable)")
    parser.add_argument("--bootnode", action="append", default=[], help="bootnode multiaddr (repeatable)")
    parser.add_argument("--chain-id", default="devnet")
    parser.add_argument("--subscribe", action="append", default=[], help="topic kind to print (repeatable)")
    parser.add_argument("--max-peers", type=int, default=50)
    parser.add_argument("--no-dht", action="store_true")
    parser.add_argument("--discovery-interval", type=float, default=10.0)
    parser.add_argument("--blob-dir")
    parser.add_argument("--bulk-mode", choices=["direct", "stream"], default="direct")
    parser.add_argument("--no-stdin", action="store_true", help="ignore stdin (run until a signal)")
    parser.add_argument("--log-level", default="ERROR")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr)
    try:
        trio.run(main_async, args)
    except P2PError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
