"""Real separate processes (``python -m p2p.peer``): bootnode + DHT discovery, gossip with
validation, bulk transfer, a peer SIGKILLed mid-transfer, and Ctrl-C shutdown without traceback."""

import hashlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from p2p.peer import pattern

ROOT = Path(__file__).resolve().parents[2]


class Peer:
    def __init__(self, *args: str) -> None:
        env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "p2p.peer", *args], cwd=ROOT, env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lines: queue.Queue = queue.Queue()
        self.seen: list[dict] = []
        self.stderr: list[bytes] = []
        self._threads = [threading.Thread(target=self._read, daemon=True),
                         threading.Thread(target=self._read_err, daemon=True)]
        for t in self._threads:
            t.start()
        ready = self.expect(lambda e: e["event"] == "ready", 30)
        self.peer_id, self.addr = ready["peer_id"], ready["addrs"][0]

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))

    def _read_err(self) -> None:
        for line in self.proc.stderr:
            self.stderr.append(line)

    def send(self, **cmd) -> None:
        self.proc.stdin.write((json.dumps(cmd) + "\n").encode())
        self.proc.stdin.flush()

    def expect(self, pred, timeout: float) -> dict:
        for e in self.seen:
            if pred(e):
                self.seen.remove(e)
                return e
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                e = self.lines.get(timeout=left)
            except queue.Empty:
                break
            if pred(e):
                return e
            self.seen.append(e)
        raise AssertionError(f"peer {self.proc.pid}: no matching event within {timeout} s; saw {self.seen[-5:]}")

    def peers(self) -> list[str]:
        self.send(cmd="peers")
        return self.expect(lambda e: e["event"] == "peers", 10)["peers"]

    def interrupt(self) -> tuple[int, str, float]:
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=10)
        took = time.monotonic() - t0
        for t in self._threads:
            t.join(timeout=5)
        return self.proc.returncode, b"".join(self.stderr).decode(errors="replace"), took

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            stream.close()


def wait_for(pred, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.timeout(180)
def test_three_processes():
    peers: list[Peer] = []
    try:
        boot = Peer("--subscribe", "tx")
        peers.append(boot)
        a = Peer("--subscribe", "tx", "--bootnode", boot.addr, "--discovery-interval", "0.5")
        peers.append(a)
        b = Peer("--subscribe", "tx", "--bootnode", boot.addr, "--discovery-interval", "0.5")
        peers.append(b)
        # discovery: both via the bootnode, then each other via the DHT
        wait_for(lambda: b.peer_id in a.peers(), 40, "a and b to find each other through the DHT")
        time.sleep(1.5)  # a GossipSub heartbeat to build the mesh

        # gossip with validation: INVALID... is rejected by every validator, so nobody delivers it
        a.send(cmd="publish", topic="tx", data=b"INVALID tx".hex())
        a.send(cmd="publish", topic="tx", data=b"tx-1".hex())
        for p in (boot, b):
            got = p.expect(lambda e: e["event"] == "gossip", 20)
            assert bytes.fromhex(got["data"]) == b"tx-1" and got["from"] == a.peer_id
        try:  # nothing more: not the INVALID message, not tx-1 twice (say which, if it happens)
            extra = b.expect(lambda e: e["event"] == "gossip", 1)
        except AssertionError:
            extra = None
        assert extra is None, f"b delivered a second gossip message: {extra}"

        # bulk over the direct encrypted path between two processes
        size = 50 * 1024 * 1024
        a.send(cmd="bulk_recv", peer=b.peer_id, channel="t", timeout=60)
        b.send(cmd="bulk_send", peer=a.peer_id, channel="t", size=size, timeout=60)
        got = a.expect(lambda e: e["event"] in ("bulk_received", "error"), 90)
        assert (got["event"], got.get("len"), got.get("sha256")) == (
            "bulk_received", size, hashlib.sha256(pattern(size)).hexdigest())

        # request/response across processes
        a.send(cmd="request", peer=boot.peer_id, protocol="/mindnode/echo/1.0.0", data=b"ping".hex())
        assert a.expect(lambda e: e["event"] in ("response", "error"), 20) == {"event": "response",
                                                                              "data": b"ping".hex()}

        # a peer killed mid-transfer: the receiver gets a clear PeerGone, not a hang
        a.send(cmd="bulk_recv", peer=b.peer_id, channel="k", timeout=60)
        b.send(cmd="bulk_send", peer=a.peer_id, channel="k", size=500 * 1024 * 1024, timeout=60)
        time.sleep(0.5)  # building 500 MiB takes ~0.3 s, sending it ~1 s: killed before it is done
        b.kill()
        t0 = time.monotonic()
        err = a.expect(lambda e: e["event"] in ("bulk_received", "error"), 30)
        assert err["event"] == "error" and "PeerGone" in err["error"], err
        print(f"receiver noticed the SIGKILL after {time.monotonic() - t0:.2f} s")
        # ...and keeps serving the others
        a.send(cmd="request", peer=boot.peer_id, protocol="/mindnode/echo/1.0.0", data=b"again".hex())
        assert a.expect(lambda e: e["event"] in ("response", "error"), 20)["event"] == "response"

        # Ctrl-C: clean exit, no traceback
        for p in (a, boot):
            code, err_text, took = p.interrupt()
            stopped = p.expect(lambda e: e["event"] == "stopped", 5)
            print(f"SIGINT -> node stopped in {stopped['stop_s']} s, process exited {code} after {took:.2f} s")
            assert code == 0, err_text
            assert "Traceback" not in err_text, err_text
    finally:
        for p in peers:
            p.kill()
