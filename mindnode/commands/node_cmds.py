"""CLI commands of the node room: ``start``, ``status``, ``block``, ``account``, ``tx ...``, ``devnet``.

Commands that talk to a running node take ``--rpc URL``; without it they use the HTTP API of the
node whose data directory is ``--datadir`` (its config.toml ``[api]``), which is the local node.
Transactions are signed locally with the keystore key and sent as canonical msgpack; the node
never sees a private key. Human output is a rich table; ``--json`` prints one JSON object.
Heavy imports (libp2p, the ledger store) stay inside the functions so ``--help`` is instant.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import click

from mindnode.cli_common import datadir_from, datadir_option, json_option, password_file_option
from mindnode.commands.tables import kv_table

NMT = 10**18
DEFAULT_RPC = "http://127.0.0.1:8645"

rpc_option = click.option("--rpc", "rpc_url", metavar="URL", default=None, envvar="MINDNODE_RPC",
                          help="HTTP API of the node to use [default: the node of --datadir, else "
                               f"{DEFAULT_RPC}].")


def _rpc_url(rpc_url: str | None, datadir: Path | None) -> str:
    if rpc_url:
        return rpc_url
    try:
        from mindnode.config import load_config

        cfg = load_config(datadir_from(datadir))
        return f"http://{cfg.api_host}:{cfg.api_port}"
    except Exception:
        return DEFAULT_RPC


def _client(rpc_url: str | None, datadir: Path | None):
    from mindnode.node.rpc_client import RpcClient

    return RpcClient(_rpc_url(rpc_url, datadir))


def _print_json(obj: Any) -> None:
    click.echo(json.dumps(obj, sort_keys=True, default=str))




def parse_amount(text: str) -> int:
    """NMT as a decimal string ("1.5") to base units, exactly; "123units" is base units."""
    text = text.strip().replace("_", "")
    if text.endswith("units"):
        digits = text[:-5]
        if not digits.isdigit():
            raise click.BadParameter(f"{text!r} is not a whole number of base units")
        return int(digits)
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise click.BadParameter(f"{text!r} is not an amount (e.g. 1.5 for 1.5 NMT, or 1000units)") from None
    units = value * NMT
    if value <= 0 or units != units.to_integral_value():
        raise click.BadParameter(f"{text!r} must be positive with at most 18 decimals")
    return int(units)


def fmt_amount(units: int | str) -> str:
    units = int(units)
    whole, frac = divmod(units, NMT)
    return f"{whole}.{frac:018d}".rstrip("0").rstrip(".") + " NMT"


# ------------------------------------------------------------------------------------- start
@click.command()
@datadir_option
@click.option("--validator", is_flag=True, help="Seal blocks in this node's turn (its key must be in the validator set).")
@click.option("--listen", multiple=True, metavar="MULTIADDR",
              help="libp2p listen address(es) [default: config.toml [p2p] listen].")
@click.option("--bootnode", multiple=True, metavar="MULTIADDR",
              help="Peer to dial at start (repeatable; replaces config.toml [p2p] bootnodes).")
@click.option("--no-bootnodes", is_flag=True, help="Dial nobody at start (a lone node or the first of a network).")
@click.option("--rpc", "rpc", metavar="HOST:PORT", default=None,
              help="Bind the HTTP API here [default: config.toml [api], 127.0.0.1].")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="Log lines as text, or one JSON object per line (services, benchmarks).")
@click.option("--no-provide", is_flag=True,
              help="Do not offer compute: no provider registration, no jobs trained or verified, no mining "
                   "profile or uptime heartbeats (so no mining reward).")
@click.option("--hardware-class", metavar="CLASS", default=None,
              help="Hardware class for the mining reward (a genesis class: cpu, gpu-consumer, gpu-high, "
                   "gpu-datacenter) [default: a quick look at the machine].")
@click.option("--bandwidth-kbps", type=click.IntRange(0, 100_000_000), default=None,
              help="Self-declared bandwidth in kbit/s for the mining reward (not measured) [default: 100000].")
@password_file_option
def start(datadir: Path | None, validator: bool, listen: tuple[str, ...], bootnode: tuple[str, ...],
          no_bootnodes: bool, rpc: str | None, log_format: str, no_provide: bool, hardware_class: str | None,
          bandwidth_kbps: int | None, password_file: Path | None) -> None:
    """Run the node: join the network, sync, follow the chain, serve the HTTP API, and as a
    --validator seal blocks in turn. Unless --no-provide, the node is a provider: it benchmarks
    itself and registers on chain, offers on jobs it meets, trains and verifies them, declares its
    hardware class and (self-declared) bandwidth, and gossips a signed heartbeat every chain hour,
    which earns the daily mining reward. Stops cleanly on Ctrl-C or SIGTERM."""
    import sys

    from mindnode.node.runner import run_node

    dd = datadir_from(datadir)
    host, port = None, None
    if rpc:
        host, _, p = rpc.rpartition(":")
        if not host or not p.isdigit():
            raise click.BadParameter("--rpc must be HOST:PORT, e.g. 127.0.0.1:8645", param_hint="--rpc")
        host, port = host, int(p)
    run_node(dd, validator=validator, listen=list(listen), bootnodes=None if not bootnode and not no_bootnodes
             else list(bootnode), rpc_host=host, rpc_port=port, log_format=log_format,
             password_file=password_file, status_line=sys.stderr.isatty() and log_format == "text",
             provide=not no_provide, hardware_class=hardware_class, bandwidth_kbps=bandwidth_kbps)


# ------------------------------------------------------------------------------------ status
@click.command()
@rpc_option
@datadir_option
@json_option
def status(rpc_url: str | None, datadir: Path | None, as_json: bool) -> None:
    """Show a running node's chain head, finality, peers and identity."""
    with _client(rpc_url, datadir) as c:
        s = c.status()
    if as_json:
        _print_json(s)
        return
    kv_table(f"mindnode {s['chain_id']}", [
        ("height", s["height"]), ("head", s["head_hash"]), ("finalized", s["finalized_height"]),
        ("peers", s["peers"]), ("validator", s["validator"]), ("syncing", s["syncing"]),
        ("address", s["address"]), ("peer id", s["peer_id"]), ("listen", s["listen_addrs"]),
        ("mempool", s["mempool"]), ("rpc", s["rpc"]),
    ])


@click.command()
@click.argument("ref")
@rpc_option
@datadir_option
@json_option
def block(ref: str, rpc_url: str | None, datadir: Path | None, as_json: bool) -> None:
    """Show block REF: a height, a hex hash, 'head' or 'finalized'."""
    with _client(rpc_url, datadir) as c:
        b = c.block(ref)
    if as_json:
        _print_json(b)
        return
    rows = [(k, v) for k, v in b.items() if k != "txs"]
    rows.append(("txs", [f"{t['hash'][:16]}.. {t['kind']} from {t['sender'][:14]}.. nonce {t['nonce']}"
                         for t in b.get("txs", [])]))
    kv_table(f"block {b.get('height')}", rows)


@click.command()
@click.argument("address")
@rpc_option
@datadir_option
@json_option
def account(address: str, rpc_url: str | None, datadir: Path | None, as_json: bool) -> None:
    """Show an account's balance, nonce and stakes (ADDRESS is mn..., or a keystore key name)."""
    address = _resolve_address(address, datadir)
    with _client(rpc_url, datadir) as c:
        a = c.account(address)
    if as_json:
        _print_json(a)
        return
    rows = [("address", a["address"]), ("balance", fmt_amount(a["balance"])), ("nonce", a["nonce"]),
            ("next nonce", a.get("pending_nonce", a["nonce"]))]
    if a.get("candidate"):
        rows.append(("candidate", json.dumps(a["candidate"])))
    kv_table("account", rows)


def _resolve_address(text: str, datadir: Path | None) -> str:
    if text.startswith("mn"):
        return text
    from ledger.keys import address_to_text

    info = datadir_from(datadir).keystore.find(text)
    return address_to_text(info.address)


# ------------------------------------------------------------------------------------------ tx
@click.group()
def tx() -> None:
    """Sign a transaction locally with the node's key and submit it to a node."""


def _tx_options(f):
    f = click.option("--wait", is_flag=True, help="Wait until the transaction is included in a block.")(f)
    f = click.option("--timeout", type=float, default=30.0, show_default=True, help="Seconds to --wait.")(f)
    f = click.option("--fee", default="0units", show_default=True, help="Fee (NMT, or Nunits).")(f)
    f = click.option("--key", "key_name", default=None, help="Keystore key to sign with [default: the node key].")(f)
    f = password_file_option(f)
    f = json_option(f)
    f = datadir_option(f)
    f = rpc_option(f)
    return f


def _send(kind: str, fields: dict[str, Any], *, rpc_url, datadir, key_name, password_file, fee, wait,
          timeout, as_json, quiet: bool = False) -> dict[str, Any]:
    """Sign `kind` with the keystore key at the sender's next nonce, submit it, optionally wait for
    its block; prints the outcome unless `quiet`, and returns the node's answer."""
    from ledger.registry import body_class
    from ledger.tx import sign_tx
    from mindnode.cli_common import read_password
    from mindnode.config import load_config

    dd = datadir_from(datadir)
    name = key_name or load_config(dd).node_key
    store = dd.keystore
    password = None if not store.needs_password(name) else read_password(password_file)
    key = store.load(name, password)
    from ledger.keys import address_to_text

    with _client(rpc_url, datadir) as c:
        chain_id = c.status()["chain_id"]
        acct = c.account(address_to_text(key.address))
        nonce = int(acct.get("pending_nonce", acct["nonce"]))
        signed = sign_tx(key, chain_id, nonce, parse_amount(fee) if fee != "0units" else 0,
                         body_class(kind)(**fields))
        res = c.submit_tx(signed.encode())
        if wait:
            res = c.wait_tx(res["hash"], timeout=timeout)
    if quiet:
        return res
    if as_json:
        _print_json(res)
        return res
    where = f" in block {res['height']}" if res.get("status") == "included" else " (pending)"
    click.echo(f"{kind} {res['hash']}{where}")
    return res


@tx.command()
@click.argument("to")
@click.argument("amount")
@_tx_options
def transfer(to: str, amount: str, **kw) -> None:
    """Send AMOUNT (NMT, e.g. 1.5) to address TO."""
    from ledger.keys import address_from_text

    _send("transfer", {"to": address_from_text(_resolve_address(to, kw["datadir"])), "amount": parse_amount(amount)},
          **kw)


@tx.command()
@click.argument("validator")
@click.argument("amount")
@click.option("--long-term", "days", type=int, default=0, help="Lock for DAYS days (long-term stake).")
@_tx_options
def stake(validator: str, amount: str, days: int, **kw) -> None:
    """Stake AMOUNT on VALIDATOR (flexible, or --long-term DAYS)."""
    from ledger.keys import address_from_text

    _send("stake", {"validator": address_from_text(_resolve_address(validator, kw["datadir"])),
                    "amount": parse_amount(amount), "lock_days": days}, **kw)


@tx.command()
@click.argument("validator")
@click.argument("amount")
@click.option("--long-term", is_flag=True, help="Take back expired long-term stake (else flexible stake).")
@_tx_options
def unstake(validator: str, amount: str, long_term: bool, **kw) -> None:
    """Take AMOUNT of stake back from VALIDATOR."""
    from ledger.keys import address_from_text

    _send("unstake", {"validator": address_from_text(_resolve_address(validator, kw["datadir"])),
                      "amount": parse_amount(amount), "long_term": long_term}, **kw)


@tx.command("register-validator")
@click.option("--name", required=True, help="Public name of the validator.")
@click.option("--stake", "stake_amount", required=True, help="Self-stake (NMT), at least the genesis minimum.")
@_tx_options
def register_validator(name: str, stake_amount: str, **kw) -> None:
    """Become a validator candidate with a self-stake."""
    _send("register_validator", {"name": name, "stake": parse_amount(stake_amount)}, **kw)


# -------------------------------------------------------------------------------------- devnet
@click.command()
@click.option("--nodes", type=click.IntRange(1, 10), default=3, show_default=True, help="Validators to run.")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path), default=Path(".devnet"),
              show_default=True, help="Where the nodes' data directories and logs go.")
@click.option("--fresh", is_flag=True, help="Wipe the chains in --dir first (keys are kept).")
@click.option("--genesis", "genesis_source", default="devnet", show_default=True, metavar="FILE|devnet",
              help="Genesis to use; its first N validators must be devnet keys 0..N-1.")
@click.option("--base-p2p-port", type=int, default=30333, show_default=True, help="Node i listens on this + i.")
@click.option("--base-rpc-port", type=int, default=8645, show_default=True, help="Node i serves its API on this + i.")
@json_option
def devnet(nodes: int, directory: Path, fresh: bool, genesis_source: str, base_p2p_port: int, base_rpc_port: int,
           as_json: bool) -> None:
    """Run a local network of N validator nodes (separate processes) until Ctrl-C.

    Node i uses INSECURE devnet key i, p2p port 30333+i on 127.0.0.1, HTTP API
    http://127.0.0.1:(8645+i), data directory DIR/node<i> and log DIR/node<i>.log.
    """
    from mindnode.node.devnet import run_devnet

    run_devnet(nodes=nodes, directory=directory, fresh=fresh, genesis_source=genesis_source,
               base_p2p_port=base_p2p_port, base_rpc_port=base_rpc_port, as_json=as_json)
