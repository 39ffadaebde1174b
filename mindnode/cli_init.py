"""``mindnode init``: turn an empty directory into a node's data directory.

Order matters for crash safety: directories, then the node key, then the chain database (which
`ledger.store.Store.create` writes atomically with the genesis block and state), then
``genesis.json``, and ``config.toml`` last. A directory counts as initialised once it has a
config or a chain, so an interrupted init is re-run with ``--force``.

``--force`` wipes the chain database, config and genesis copy, but never a key: an existing
node key is reused, because a key may hold funds or be a validator's identity.
"""

from __future__ import annotations

import datetime as _dt
import json
import shutil
from pathlib import Path

import click

from ledger.genesis_file import (
    genesis_hash,
    genesis_to_json,
    load_genesis,
    parse_time,
    read_genesis_bytes,
    with_timestamp,
)
from ledger.keys import PrivateKey, address_to_text, peer_id_from_address
from ledger.keys import devnet_key as _devnet_key
from mindnode.cli_common import (
    datadir_from,
    datadir_option,
    json_option,
    password_file_option,
    print_json,
    read_password,
)
from mindnode.config import (
    DEFAULT_API_PORT,
    DEFAULT_P2P_PORT,
    Config,
    DataDir,
    write_config,
)
from mindnode.errors import ConfigError, KeystoreError
from mindnode.keystore import INSECURE_LABEL, write_private_file

#: Chains on which the published devnet keys may be used as node keys.
MAINNET_CHAIN_PREFIX = "mindnode-mainnet"


def _genesis_time(value: str) -> int:
    if value == "now":
        return int(_dt.datetime.now(_dt.UTC).timestamp())
    return parse_time(int(value) if value.isdigit() and len(value) > 8 else value, "--genesis-time")


def _wipe(dd: DataDir) -> None:
    for path in (dd.config_path, dd.genesis_path):
        path.unlink(missing_ok=True)
    if dd.chain_dir.exists():
        shutil.rmtree(dd.chain_dir)


def _create_chain(dd: DataDir, genesis) -> bytes:
    """Write the genesis block and state (one atomic batch, in ledger.store); its block hash."""
    from ledger.store import Store

    with Store.create(dd.chain_dir, genesis) as store:
        return store.genesis_hash


@click.command()
@click.option("--genesis", "genesis_source", required=True, metavar="FILE|devnet|mainnet",
              help="Genesis file, or a built-in network name.")
@datadir_option
@click.option("--force", is_flag=True, help="Re-initialise: wipe chain/, config.toml and genesis.json (keys are kept).")
@click.option("--devnet-key", type=click.IntRange(0, 999), metavar="I",
              help="Use INSECURE published devnet key I as the node key (devnets only; no password).")
@click.option("--key-name", default="node", show_default=True, help="Name of the node key in keys/.")
@click.option("--p2p-port", type=click.IntRange(0, 65535), default=DEFAULT_P2P_PORT, show_default=True,
              help="TCP port the node listens on for peers.")
@click.option("--api-port", type=click.IntRange(0, 65535), default=DEFAULT_API_PORT, show_default=True,
              help="Port of the HTTP API (always bound to 127.0.0.1).")
@click.option("--genesis-time", metavar="now|YYYY-MM-DD|UNIX",
              help="Re-base the genesis to start at this time (devnets: every node of one network needs the same value).")
@password_file_option
@json_option
def init(genesis_source: str, datadir: Path | None, force: bool, devnet_key: int | None, key_name: str,
         p2p_port: int, api_port: int, genesis_time: str | None, password_file: Path | None, as_json: bool) -> None:
    """Create a data directory: node key, chain database with the genesis block, config."""
    genesis = load_genesis(genesis_source)
    if genesis_time is not None:
        genesis = with_timestamp(genesis, _genesis_time(genesis_time))
    dd = datadir_from(datadir)
    if genesis.chain_id.startswith(MAINNET_CHAIN_PREFIX):
        if devnet_key is not None:
            raise ConfigError(f"refusing to use a published devnet key on {genesis.chain_id}")
        if genesis_time is not None:
            raise ConfigError(f"refusing to re-base the genesis time of {genesis.chain_id} (it would be another chain)")
    if dd.is_initialised() and not force:
        raise ConfigError(f"{dd.root} is already initialised (use --force to wipe its chain and config; "
                          "keys are kept)")

    # Settle the node key before touching anything: reuse an existing one (never destroy a key),
    # else ask for the new key's password now, so a missing password leaves the directory as it was.
    store = dd.keystore
    existing = store.info(key_name) if store.exists(key_name) else None
    password = None
    if existing is not None:
        if devnet_key is not None and existing.address != devnet_key_address(devnet_key):
            raise KeystoreError(f"{existing.path} already holds a different key than devnet key {devnet_key}; "
                                "remove it or choose another --key-name")
    elif devnet_key is None:
        password = read_password(password_file, confirm=True, prompt="New node key password")

    if dd.is_initialised():
        _wipe(dd)
    dd.create_dirs()
    if existing is not None:
        info, key_note = existing, "existing key"
    elif devnet_key is not None:
        info, key_note = store.add_devnet(key_name, devnet_key), INSECURE_LABEL
    else:
        info, key_note = store.add(key_name, PrivateKey.generate(), password), "new key"

    block_hash = _create_chain(dd, genesis).hex()
    if genesis_time is None:
        genesis_bytes = read_genesis_bytes(genesis_source)
    else:
        genesis_bytes = (json.dumps(genesis_to_json(genesis), indent=1) + "\n").encode()
    write_private_file(dd.genesis_path, genesis_bytes, overwrite=True)
    ghash = genesis_hash(genesis).hex()
    cfg = Config(chain_id=genesis.chain_id, genesis_hash=ghash, genesis_block=block_hash, node_key=key_name,
                 p2p_listen=[f"/ip4/0.0.0.0/tcp/{p2p_port}"], bootnodes=list(genesis.bootnodes), api_port=api_port)
    write_config(dd, cfg, overwrite=True)

    summary = {"datadir": str(dd.root), "chain_id": genesis.chain_id, "genesis_hash": ghash,
               "genesis_block": block_hash,
               "node_key": key_name, "address": address_to_text(info.address),
               "peer_id": peer_id_from_address(info.address), "insecure_key": info.insecure,
               "p2p_port": p2p_port, "api_port": api_port}
    if as_json:
        print_json(summary)
        return
    click.echo(f"initialised {dd.root} for {genesis.chain_id}")
    click.echo(f"  genesis hash {ghash} (genesis block {block_hash})")
    click.echo(f"  node key     keys/{key_name}.json ({key_note})")
    click.echo(f"  address      {summary['address']}")
    click.echo(f"  peer id      {summary['peer_id']}")
    click.echo(f"  p2p port     {p2p_port}, HTTP API 127.0.0.1:{api_port}")
    if info.insecure:
        click.secho(f"  WARNING: the node key is an {INSECURE_LABEL}", fg="red", bold=True)
    if not genesis.validators:
        click.echo("  note: this genesis has no validators yet; the node can sync but not seal blocks")
    ended = _reward_pools_ended(genesis)
    if ended is not None:
        click.echo(f"  note: this genesis's reward pools stopped unlocking at {ended} (UTC), so no mining or "
                   "staking rewards will be paid; for a devnet, use --genesis-time now (same value on every node) "
                   "or 'mindnode devnet'")


def _reward_pools_ended(genesis) -> str | None:
    """When every pool row of the allocation has fully unlocked before now: that time, else None
    (the packaged devnet genesis has a fixed date and one-minute months, so it is long over)."""
    rows = [r for r in genesis.allocation if r.pool]
    if not rows:
        return None
    end = genesis.allocation_start + max(r.cliff_months + r.vesting_months for r in rows) * genesis.params.month_s
    if end > _dt.datetime.now(_dt.UTC).timestamp():
        return None
    return _dt.datetime.fromtimestamp(end, _dt.UTC).strftime("%Y-%m-%d %H:%M")


def devnet_key_address(index: int) -> bytes:
    return _devnet_key(index).address
