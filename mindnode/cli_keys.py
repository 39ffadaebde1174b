"""``mindnode keys``: create, list, show, import and export keys in ``DATADIR/keys``.

A key's one 32-byte Ed25519 seed gives both its account address (``mn...``) and its libp2p peer id
(``12D3KooW...``); see `ledger.keys`. Seeds are only ever read from files or stdin and written to
0600 files or stdout on explicit request, never taken from the command line.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from ledger.keys import PrivateKey, address_to_text, peer_id_from_address
from mindnode.cli_common import (
    datadir_from,
    datadir_option,
    json_option,
    password_file_option,
    print_json,
    read_password,
)
from mindnode.errors import KeystoreError
from mindnode.keystore import INSECURE_LABEL, KeyInfo, Keystore, read_document, write_private_file

MAX_SEED_INPUT = 4096


def _info_json(info: KeyInfo) -> dict:
    return {"name": info.name, "address": info.address_text, "peer_id": peer_id_from_address(info.address),
            "public_key": info.address.hex(), "insecure": info.insecure, "file": str(info.path)}


def _print_info(info: KeyInfo) -> None:
    click.echo(f"name:       {info.name}")
    click.echo(f"address:    {info.address_text}")
    click.echo(f"peer id:    {peer_id_from_address(info.address)}")
    click.echo(f"public key: {info.address.hex()}")
    click.echo(f"file:       {info.path}")
    if info.insecure:
        click.secho(f"WARNING:    {INSECURE_LABEL}; never use it outside a local devnet", fg="red", bold=True)


def _store(datadir: Path | None) -> Keystore:
    return datadir_from(datadir).keystore


@click.group()
def keys() -> None:
    """Manage keys (account address = libp2p identity) in DATADIR/keys."""


@keys.command("new")
@click.option("--name", default="node", show_default=True, help="Name of the key file (keys/NAME.json).")
@datadir_option
@password_file_option
@json_option
def keys_new(name: str, datadir: Path | None, password_file: Path | None, as_json: bool) -> None:
    """Generate a new key and store it encrypted with a password."""
    store = _store(datadir)
    Keystore.check_name(name)
    if store.exists(name):
        raise KeystoreError(f"a key named {name!r} already exists in {store.directory}; choose another --name")
    password = read_password(password_file, confirm=True, prompt="New keystore password")
    info = store.add(name, PrivateKey.generate(), password)
    if as_json:
        print_json(_info_json(info))
    else:
        _print_info(info)


@keys.command("list")
@datadir_option
@json_option
def keys_list(datadir: Path | None, as_json: bool) -> None:
    """List stored keys (no password needed)."""
    store = _store(datadir)
    entries, broken = [], []
    for name in store.names():      # one damaged file must not hide the others
        try:
            entries.append(store.info(name))
        except KeystoreError as exc:
            broken.append({"name": name, "error": str(exc)})
    if as_json:
        print_json({"keys": [_info_json(i) for i in entries], "unreadable": broken})
        return
    for item in broken:
        click.echo(f"warning: skipping unreadable key file: {item['error']}", err=True)
    if not entries:
        click.echo(f"no keys in {store.directory} (create one with `mindnode keys new`)")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"keys in {store.directory}")
    for col in ("name", "address", "peer id", "note"):
        table.add_column(col, overflow="fold")
    for info in entries:
        table.add_row(info.name, info.address_text, peer_id_from_address(info.address),
                      "[bold red]INSECURE devnet key[/]" if info.insecure else "")
    Console(width=200).print(table)


@keys.command("show")
@click.argument("name_or_address", default="node")
@datadir_option
@json_option
def keys_show(name_or_address: str, datadir: Path | None, as_json: bool) -> None:
    """Show a key's address, peer id and public key (no password needed)."""
    info = _store(datadir).find(name_or_address)
    if as_json:
        print_json(_info_json(info))
    else:
        _print_info(info)


def _read_seed(source: str) -> PrivateKey:
    if source == "-":
        data = sys.stdin.read(MAX_SEED_INPUT + 1)
    else:
        try:
            with open(source, encoding="utf-8") as f:
                data = f.read(MAX_SEED_INPUT + 1)
        except (OSError, UnicodeDecodeError) as exc:
            raise KeystoreError(f"cannot read seed file {source}: {getattr(exc, 'strerror', None) or exc}") from None
    text = data.strip().lower().removeprefix("0x")
    if len(text) != 64:
        raise KeystoreError(f"a seed is 64 hex digits (32 bytes); {source} holds {len(text)} characters")
    try:
        return PrivateKey(bytes.fromhex(text))
    except ValueError:
        raise KeystoreError(f"the seed in {source} is not hex") from None


@keys.command("import")
@click.option("--name", default="node", show_default=True, help="Name to store the key under.")
@click.option("--seed-file", metavar="FILE", help="Import a raw 32-byte seed written as 64 hex digits ('-' = stdin).")
@click.option("--keystore-file", type=click.Path(dir_okay=False, path_type=Path),
              help="Import a keystore file (stays encrypted under its own password).")
@click.option("--devnet", "devnet_index", type=click.IntRange(0, 999), metavar="I",
              help="Import the INSECURE published devnet key number I (local devnets only).")
@click.option("--force", is_flag=True, help="Replace an existing key of the same name.")
@datadir_option
@password_file_option
@json_option
def keys_import(name: str, seed_file: str | None, keystore_file: Path | None, devnet_index: int | None,
                force: bool, datadir: Path | None, password_file: Path | None, as_json: bool) -> None:
    """Import a key from a raw seed, a keystore file, or the devnet keys."""
    sources = [s for s in (seed_file, keystore_file, devnet_index) if s is not None]
    if len(sources) != 1:
        raise click.UsageError("give exactly one of --seed-file, --keystore-file or --devnet")
    store = _store(datadir)
    Keystore.check_name(name)
    if store.exists(name) and not force:
        raise KeystoreError(f"a key named {name!r} already exists in {store.directory} (use --force to replace it)")
    if devnet_index is not None:
        info = store.add_devnet(name, devnet_index, overwrite=force)
    elif keystore_file is not None:
        info = store.add_document(name, read_document(keystore_file), overwrite=force)
    else:
        key = _read_seed(seed_file)
        password = read_password(password_file, confirm=True, prompt="New keystore password")
        info = store.add(name, key, password, overwrite=force)
    if as_json:
        print_json(_info_json(info))
    else:
        _print_info(info)


@keys.command("export")
@click.argument("name_or_address", default="node")
@click.option("--format", "fmt", type=click.Choice(["keystore", "seed"]), default="keystore", show_default=True,
              help="keystore: the encrypted key file; seed: the raw seed as 64 hex digits (needs the password).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="Write to this file (created 0600, never overwritten) instead of stdout.")
@datadir_option
@password_file_option
def keys_export(name_or_address: str, fmt: str, output: Path | None, datadir: Path | None,
                password_file: Path | None) -> None:
    """Export a key as its keystore file or as the raw seed (hex)."""
    store = _store(datadir)
    info = store.find(name_or_address)
    if fmt == "keystore":
        data = json.dumps(read_document(info.path), indent=2, sort_keys=True) + "\n"
    else:
        password = None if info.insecure else read_password(password_file)
        key = store.load(info.name, password)
        data = key.seed.hex() + "\n"
        click.echo("WARNING: this is the raw private seed; anyone who sees it controls the key"
                   + (f" ({INSECURE_LABEL})" if info.insecure else ""), err=True)
    if output is None:
        click.echo(data, nl=False)
    else:
        write_private_file(output, data.encode())
        click.echo(f"wrote {output} ({fmt}, {address_to_text(info.address)})", err=True)
