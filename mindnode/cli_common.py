"""Options and helpers shared by CLI commands: ``--datadir``, passwords, JSON output.

Passwords come, in this order, from ``--password-file FILE`` (first line), the
``MINDNODE_PASSWORD`` environment variable, or an interactive prompt (with confirmation when a
new key is being created). Never from a command-line argument: those end up in shell history
and ``ps`` output.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from mindnode.config import DataDir
from mindnode.errors import KeystoreError

PASSWORD_ENV = "MINDNODE_PASSWORD"
MAX_PASSWORD_FILE = 64 * 1024

datadir_option = click.option(
    "--datadir", type=click.Path(file_okay=False, path_type=Path), default=None, envvar="MINDNODE_DATADIR",
    help="Data directory [default: $MINDNODE_DATADIR or ~/.mindnode].")

password_file_option = click.option(
    "--password-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
    help=f"Read the keystore password from the first line of this file (else ${PASSWORD_ENV}, else a prompt).")

json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")


def datadir_from(path: Path | None) -> DataDir:
    return DataDir.at(path)


def read_password(password_file: Path | None, *, confirm: bool = False, prompt: str = "Keystore password") -> str:
    """The password from --password-file, $MINDNODE_PASSWORD, or a prompt; never empty."""
    if password_file is not None:
        try:
            with open(password_file, "rb") as f:
                data = f.read(MAX_PASSWORD_FILE + 1)
        except OSError as exc:
            raise KeystoreError(f"cannot read password file {password_file}: {exc.strerror or exc}") from None
        if len(data) > MAX_PASSWORD_FILE:
            raise KeystoreError(f"password file {password_file} is too large")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise KeystoreError(f"password file {password_file} is not UTF-8 text") from None
        password = text.splitlines()[0] if text else ""
        if not password:
            raise KeystoreError(f"password file {password_file} is empty")
        return password
    env = os.environ.get(PASSWORD_ENV)
    if env:
        return env
    try:
        password = click.prompt(prompt, hide_input=True, confirmation_prompt=confirm, err=True)
    except click.Abort:  # end of input: nobody to ask
        raise KeystoreError(f"a password is needed: type it at the prompt, use --password-file FILE "
                            f"or set {PASSWORD_ENV}") from None
    if not password:
        raise KeystoreError("the password must not be empty")
    return password


def unlock_node_key(datadir: Path | None, password_file: Path | None = None, name: str | None = None):
    """The node's `ledger.keys.PrivateKey` for commands that run a node (``start`` etc.).

    Asks for a password (``--password-file``, ``$MINDNODE_PASSWORD`` or a prompt) only when the
    key is encrypted; devnet keys need none. Raises ConfigError/KeystoreError/WrongPassword.
    """
    from mindnode.config import load_config

    dd = datadir_from(datadir)
    key_name = name or load_config(dd).node_key
    store = dd.keystore
    password = read_password(password_file, prompt=f"Password of key {key_name!r}") \
        if store.needs_password(key_name) else None
    return store.load(key_name, password)


def print_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, sort_keys=False))
