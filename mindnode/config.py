"""The data directory and its ``config.toml``: where a node keeps everything it owns.

Layout (created by ``mindnode init``; the directory itself is 0700)::

    DATADIR/                 default ~/.mindnode, or $MINDNODE_DATADIR, or --datadir
      config.toml            node settings (chain id, genesis hash, node key name, ports)
      genesis.json           the genesis file this node was initialised with, copied verbatim
      keys/                  the keystore (0700): one <name>.json per key (0600); the node key is
                             keys/<config node.key>.json, "node" by default
      chain/                 the LevelDB database (ledger.store): blocks, state, head
      blobs/                 content-addressed blobs (model artifacts, datasets) for p2p/trainer,
                             kept under config.toml [blobs] max_store_bytes (p2p/blob_gc.py)

Why TOML: people edit it by hand; Python reads it with the standard `tomllib`. We write it with a
tiny writer for the few value types we use, so no extra dependency. Sections this module does
not know are kept as they are (`Config.tables`), so other rooms can add their own settings.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ledger.keys import PrivateKey
from mindnode.errors import ConfigError, KeystoreError
from mindnode.keystore import Keystore, ensure_private_dir, write_private_file

CONFIG_NAME = "config.toml"
GENESIS_NAME = "genesis.json"
KEYS_DIR = "keys"
CHAIN_DIR = "chain"
BLOBS_DIR = "blobs"
DEFAULT_P2P_PORT = 30333
DEFAULT_API_PORT = 8645
MAX_CONFIG_BYTES = 256 * 1024
#: ``[blobs] max_store_bytes``: what the blob store may hold before the node evicts unpinned blobs
#: no job of its own needs, least recently used first (mindnode/node/blob_keep.py). A volunteer's
#: disk is not ours to fill.
DEFAULT_MAX_STORE_BYTES = 20 * 1024**3


def default_datadir() -> Path:
    """``$MINDNODE_DATADIR`` if set, else ``~/.mindnode``."""
    env = os.environ.get("MINDNODE_DATADIR")
    return Path(env).expanduser() if env else Path.home() / ".mindnode"


@dataclass(frozen=True)
class DataDir:
    """Paths inside one data directory (nothing is created by constructing it)."""

    root: Path

    @classmethod
    def at(cls, path: str | os.PathLike | None) -> DataDir:
        return cls(Path(path).expanduser() if path is not None else default_datadir())

    @property
    def config_path(self) -> Path:
        return self.root / CONFIG_NAME

    @property
    def genesis_path(self) -> Path:
        return self.root / GENESIS_NAME

    @property
    def keys_dir(self) -> Path:
        return self.root / KEYS_DIR

    @property
    def chain_dir(self) -> Path:
        return self.root / CHAIN_DIR

    @property
    def blobs_dir(self) -> Path:
        return self.root / BLOBS_DIR

    @property
    def keystore(self) -> Keystore:
        return Keystore(self.keys_dir)

    def is_initialised(self) -> bool:
        return self.config_path.exists() or self.chain_dir.exists()

    def create_dirs(self) -> None:
        ensure_private_dir(self.root)
        ensure_private_dir(self.keys_dir)
        self.blobs_dir.mkdir(mode=0o700, exist_ok=True)


@dataclass
class Config:
    """The settings in ``config.toml``. Unknown tables/keys are preserved in `tables`."""

    chain_id: str
    genesis_hash: str                                   # hex of ledger.genesis_file.genesis_hash (the file)
    genesis_block: str = ""                             # hex hash of block 0 (ledger.store.Store.genesis_hash)
    node_key: str = "node"
    p2p_listen: list[str] = field(default_factory=lambda: [f"/ip4/0.0.0.0/tcp/{DEFAULT_P2P_PORT}"])
    bootnodes: list[str] = field(default_factory=list)
    api_host: str = "127.0.0.1"
    api_port: int = DEFAULT_API_PORT
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_tables(self) -> dict[str, dict[str, Any]]:
        tables = {k: dict(v) for k, v in self.tables.items()}
        tables.setdefault("chain", {}).update(id=self.chain_id, genesis_hash=self.genesis_hash,
                                              genesis_block=self.genesis_block)
        tables.setdefault("node", {}).update(key=self.node_key)
        tables.setdefault("p2p", {}).update(listen=list(self.p2p_listen), bootnodes=list(self.bootnodes))
        tables.setdefault("api", {}).update(host=self.api_host, port=self.api_port)
        return tables

    @classmethod
    def from_tables(cls, tables: dict[str, Any], where: str = CONFIG_NAME) -> Config:
        def get(table: str, key: str, typ: type, default: Any = ...):
            section = tables.get(table, {})
            if type(section) is not dict:
                raise ConfigError(f"{where}: [{table}] must be a table")
            if key not in section:
                if default is ...:
                    raise ConfigError(f"{where}: missing {table}.{key}")
                return default
            value = section[key]
            if typ is list:
                if type(value) is not list or any(type(v) is not str for v in value):
                    raise ConfigError(f"{where}: {table}.{key} must be a list of strings")
            elif type(value) is not typ:
                raise ConfigError(f"{where}: {table}.{key} must be a {typ.__name__}, got {value!r}")
            return value

        port = get("api", "port", int, DEFAULT_API_PORT)
        if not 0 <= port < 65536:
            raise ConfigError(f"{where}: api.port {port} is out of range")
        host = get("api", "host", str, "127.0.0.1")
        cfg = cls(chain_id=get("chain", "id", str), genesis_hash=get("chain", "genesis_hash", str),
                  genesis_block=get("chain", "genesis_block", str, ""),
                  node_key=get("node", "key", str, "node"),
                  p2p_listen=get("p2p", "listen", list, [f"/ip4/0.0.0.0/tcp/{DEFAULT_P2P_PORT}"]),
                  bootnodes=get("p2p", "bootnodes", list, []), api_host=host, api_port=port)
        known = {"chain": {"id", "genesis_hash", "genesis_block"}, "node": {"key"}, "p2p": {"listen", "bootnodes"},
                 "api": {"host", "port"}}
        for name, section in tables.items():
            rest = {k: v for k, v in section.items() if k not in known.get(name, set())} \
                if type(section) is dict else section
            if rest:
                cfg.tables[name] = rest
        return cfg


# --------------------------------------------------------------------------------------------- TOML
def _toml_key(key: str) -> str:
    if key and all(c.isalnum() or c in "_-" for c in key):
        return key
    return _toml_value(key)


def _toml_value(value: Any) -> str:
    if type(value) is bool:
        return "true" if value else "false"
    if type(value) is int:
        return str(value)
    if type(value) is str:
        out = ['"']
        for ch in value:
            if ch in '"\\':
                out.append("\\" + ch)
            elif ord(ch) < 0x20 or ord(ch) == 0x7F:
                out.append(f"\\u{ord(ch):04x}")
            else:
                out.append(ch)
        out.append('"')
        return "".join(out)
    if type(value) in (list, tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise ConfigError(f"cannot write {type(value).__name__} value {value!r} to TOML")


def dump_toml(tables: dict[str, dict[str, Any]], header: str = "") -> str:
    """TOML text for one level of tables holding str/int/bool/lists (all config.toml needs)."""
    lines = [f"# {line}" for line in header.splitlines()]
    for name, section in tables.items():
        if type(section) is not dict:
            raise ConfigError(f"config section {name!r} must be a table")
        lines.append("")
        lines.append(f"[{_toml_key(name)}]")
        for key, value in section.items():
            if type(value) is dict:
                raise ConfigError(f"nested table {name}.{key} is not supported in config.toml")
            lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
    return "\n".join(lines).lstrip("\n") + "\n"


CONFIG_HEADER = """mindnode node configuration, written by `mindnode init`. Safe to edit while the node is stopped.
[chain] must match genesis.json; [node] key names keys/<key>.json.
Optional (README "Data directory"): a [blobs] table with max_store_bytes (the blob store's budget,
default 21474836480 = 20 GiB), max_upload_bytes (default 4 GiB) and recent_seconds (default 600)."""


def write_config(datadir: DataDir, cfg: Config, *, overwrite: bool = False) -> Path:
    data = dump_toml(cfg.to_tables(), CONFIG_HEADER).encode()
    try:
        return write_private_file(datadir.config_path, data, overwrite=overwrite)
    except KeystoreError as exc:  # the shared atomic writer speaks keystore; here it is config
        raise ConfigError(str(exc)) from None


def load_config(datadir: DataDir | str | os.PathLike | None) -> Config:
    """Read ``DATADIR/config.toml``; ConfigError says to run `mindnode init` if it is missing."""
    dd = datadir if isinstance(datadir, DataDir) else DataDir.at(datadir)
    try:
        with open(dd.config_path, "rb") as f:
            data = f.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"{dd.root} is not an initialised data directory (no {CONFIG_NAME}); "
                          f"run `mindnode init --datadir {dd.root} --genesis devnet|mainnet|FILE`") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {dd.config_path}: {exc.strerror or exc}") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{dd.config_path} is too large")
    try:
        tables = tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{dd.config_path}: not valid TOML: {exc}") from None
    return Config.from_tables(tables, str(dd.config_path))


def load_key(datadir: DataDir | str | os.PathLike | None, password: str | None = None,
             name: str | None = None) -> PrivateKey:
    """The node's private key (``config.toml`` [node] key, or `name`), decrypted with `password`.

    Devnet keys need no password. A wrong password raises `mindnode.errors.WrongPassword`.
    """
    dd = datadir if isinstance(datadir, DataDir) else DataDir.at(datadir)
    if name is None:
        name = load_config(dd).node_key
    return dd.keystore.load(name, password)


def load_node_genesis(datadir: DataDir | str | os.PathLike | None):
    """The `ledger.genesis.Genesis` this data directory was initialised with (its genesis.json),
    checked against the hash recorded in config.toml."""
    from ledger.genesis_file import genesis_hash, load_genesis

    dd = datadir if isinstance(datadir, DataDir) else DataDir.at(datadir)
    cfg = load_config(dd)
    genesis = load_genesis(dd.genesis_path)
    if genesis_hash(genesis).hex() != cfg.genesis_hash:
        raise ConfigError(f"{dd.genesis_path} does not match the genesis hash in {dd.config_path} "
                          "(was genesis.json edited?)")
    return genesis
