"""Node CLI commands without a running node: amounts, one-line errors, help."""

from __future__ import annotations

import socket
import subprocess
import sys

import click
import pytest

from mindnode.commands.node_cmds import fmt_amount, parse_amount


def test_amounts_are_exact():
    assert parse_amount("1.5") == 15 * 10**17
    assert parse_amount("0.000000000000000001") == 1
    assert parse_amount("1_000") == 1000 * 10**18
    assert parse_amount("123units") == 123
    assert fmt_amount(15 * 10**17) == "1.5 NMT" and fmt_amount(10**18) == "1 NMT"
    for bad in ("0", "-1", "1e-19", "0.0000000000000000001", "abc", "12xunits"):
        with pytest.raises(click.BadParameter):
            parse_amount(bad)


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.mark.timeout(60)
def test_no_node_is_one_line_error(tmp_path):
    url = f"http://127.0.0.1:{_closed_port()}"
    for args in (["status", "--rpc", url], ["block", "1", "--rpc", url], ["tx", "transfer", "mnx", "1", "--rpc", url,
                                                                         "--datadir", str(tmp_path)],
                 ["rewards", "mnx", "--rpc", url], ["rewards", "withdraw", "--rpc", url, "--datadir", str(tmp_path)]):
        out = subprocess.run([sys.executable, "-m", "mindnode", *args], capture_output=True, text=True, timeout=30)
        assert out.returncode != 0
        assert out.stderr.startswith("error: ") and out.stderr.count("\n") == 1, out.stderr
    out = subprocess.run([sys.executable, "-m", "mindnode", "status", "--rpc", url], capture_output=True, text=True)
    assert "no mindnode answers" in out.stderr
    out = subprocess.run([sys.executable, "-m", "mindnode", "start", "--datadir", str(tmp_path / "none")],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode != 0 and "mindnode init" in out.stderr and out.stderr.count("\n") == 1


def test_every_node_command_has_help():
    for cmd in (["start"], ["status"], ["block"], ["account"], ["tx"], ["tx", "transfer"], ["tx", "stake"],
                ["tx", "unstake"], ["tx", "register-validator"], ["devnet"], ["rewards"], ["rewards", "show"],
                ["rewards", "withdraw"]):
        out = subprocess.run([sys.executable, "-m", "mindnode", *cmd, "--help"], capture_output=True, text=True,
                             timeout=30)
        assert out.returncode == 0 and "Usage:" in out.stdout, (cmd, out.stderr)


@pytest.mark.timeout(60)
def test_port_in_use_is_one_line_error(tmp_path):
    api = socket.socket()
    api.bind(("127.0.0.1", 0))
    api.listen()
    port = api.getsockname()[1]
    dd = tmp_path / "node"
    subprocess.run([sys.executable, "-m", "mindnode", "init", "--genesis", "devnet", "--datadir", str(dd),
                    "--devnet-key", "5", "--api-port", str(port)], check=True, capture_output=True, timeout=30)
    out = subprocess.run([sys.executable, "-m", "mindnode", "start", "--datadir", str(dd), "--no-bootnodes",
                          "--listen", "/ip4/127.0.0.1/tcp/0"], capture_output=True, text=True, timeout=30)
    api.close()
    assert out.returncode == 1
    assert out.stderr.count("\n") == 1 and "Address already in use" in out.stderr, out.stderr


@pytest.mark.timeout(60)
def test_unknown_hardware_class_is_one_line_error(tmp_path):
    dd = tmp_path / "node"
    subprocess.run([sys.executable, "-m", "mindnode", "init", "--genesis", "devnet", "--datadir", str(dd),
                    "--devnet-key", "5"], check=True, capture_output=True, timeout=30)
    out = subprocess.run([sys.executable, "-m", "mindnode", "start", "--datadir", str(dd), "--no-bootnodes",
                          "--hardware-class", "quantum"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 1 and out.stderr.count("\n") == 1
    assert "not a hardware class" in out.stderr and "gpu-high" in out.stderr, out.stderr
