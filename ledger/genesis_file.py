"""Genesis files: strict JSON in, a validated `ledger.genesis.Genesis` out, plus its canonical hash.

Why strict: every node of a chain must build the very same genesis state from the same file, so a
typo must stop `mindnode init` with a message naming the field (``$.allocation[3].amount``), not
become a silently different chain. The format, field by field:

* ``format``: 1.
* ``chain_id``: a short string such as ``"mindnode-devnet-1"``.
* ``timestamp`` / ``allocation_start``: ``"YYYY-MM-DD"`` (midnight UTC) or integer unix seconds.
  ``allocation_start`` defaults to ``timestamp``.
* ``params``: any subset of `ledger.genesis.Params` fields; unknown names are errors.
  ``min_validator_stake`` is an amount; ``hardware_classes``, ``bandwidth_tiers`` and
  ``price_oracle`` are structured (`ledger.economics.params_codec`); ``jobs`` is an object of the
  jobs rules' integers (any subset, `ledger.jobs.params`); every other parameter a JSON integer.
* ``accounts``: ``[{"address": "mn...", "balance": AMOUNT, "label": "..."}]``.
* ``validators``: ``[{"address": "mn...", "stake": AMOUNT, "name": "..."}]``.
* ``allocation``: ``[{"name", "amount", "cliff_months", "vesting_months", "pool" | "account"}]``
  where ``pool`` is ``"mining"`` or ``"staking"`` and ``account`` an address.
* ``total_supply`` (optional): AMOUNT; when given, accounts + validator stakes + allocation rows
  must add up to it exactly.
* ``bootnodes``: libp2p multiaddrs ``/ip4/HOST/tcp/PORT/p2p/12D3KooW...``.
* ``extra``: a JSON object reserved for later issues (no floats).
* Keys starting with ``_`` (e.g. ``"_comment"``) are ignored anywhere, so files can document
  themselves; every other unknown key is an error.

AMOUNT is a decimal string of base units (1 NMT = 10**18 base units), never a JSON number: JSON
numbers above 2**53 lose precision in many tools, and a wrong digit here is a wrong chain.

The names ``devnet`` and ``mainnet`` resolve to the files shipped with the package: the
repository's top-level ``genesis/`` directory, which the installed distribution carries as
``mindnode/genesis/`` (a symlink in the source tree, copied into wheels). The lookup uses
`importlib.util.find_spec`, which does not import `mindnode`, so `ledger` stays self-contained.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import importlib.util
import json
import os
import re
from pathlib import Path
from typing import Any

import msgpack

from ledger.economics import params_codec as econ_params
from ledger.errors import GenesisError, InvalidKey
from ledger.genesis import AllocationRow, Genesis, GenesisAccount, GenesisValidator, Params
from ledger.hashing import tagged_hash
from ledger.keys import address_from_peer_id, address_from_text

FORMAT_VERSION = 1
BUILTIN_NAMES = ("devnet", "mainnet")
POOLS = ("mining", "staking")
MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_AMOUNT = 2**256 - 1
_AMOUNT_FIELDS_OF_PARAMS = frozenset({"min_validator_stake"})
_DECIMAL = re.compile(r"0|[1-9][0-9]{0,77}")
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_CHAIN_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_BOOTNODE = re.compile(r"/(ip4|ip6|dns|dns4|dns6)/([^/]+)/tcp/(\d{1,5})/p2p/([1-9A-HJ-NP-Za-km-z]+)")


# --------------------------------------------------------------------------------------------- lookup
def builtin_genesis_dir() -> Path:
    """The directory holding the packaged ``devnet.json`` and ``mainnet.json``."""
    spec = importlib.util.find_spec("mindnode")
    if spec is None or not spec.submodule_search_locations:
        raise GenesisError("the mindnode package is not installed, so built-in genesis files are unavailable")
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "genesis"
        if (candidate / "devnet.json").is_file():
            return candidate
    raise GenesisError("built-in genesis files are missing from the installed mindnode package")


def resolve_genesis_path(path_or_name: str | os.PathLike) -> Path:
    """``devnet``/``mainnet`` -> the packaged file; anything else is a path that must exist."""
    text = os.fspath(path_or_name)
    if text in BUILTIN_NAMES:
        return builtin_genesis_dir() / f"{text}.json"
    path = Path(text)
    if not path.is_file():
        raise GenesisError(f"genesis file {text!r} not found (give a path, or one of: {', '.join(BUILTIN_NAMES)})")
    return path


def load_genesis(path_or_name: str | os.PathLike) -> Genesis:
    """Read, parse and validate a genesis file (or a built-in name); raises GenesisError."""
    return parse_genesis_bytes(read_genesis_bytes(path_or_name), source=os.fspath(path_or_name))


def read_genesis_bytes(path_or_name: str | os.PathLike) -> bytes:
    path = resolve_genesis_path(path_or_name)
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise GenesisError(f"cannot read genesis file {str(path)!r}: {exc.strerror or exc}") from None
    if len(data) > MAX_FILE_BYTES:
        raise GenesisError(f"genesis file {str(path)!r} is larger than {MAX_FILE_BYTES} bytes")
    return data


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    seen: dict = {}
    for key, value in pairs:
        if key in seen:
            raise GenesisError(f"duplicate key {key!r} in genesis JSON")
        seen[key] = value
    return seen


def _no_floats(text: str):
    raise GenesisError(f"floating-point number {text} in genesis JSON (amounts are decimal strings, "
                       "everything else integers)")


def _no_constants(text: str):
    raise GenesisError(f"{text} is not allowed in genesis JSON")


def parse_genesis_bytes(data: bytes, source: str = "genesis") -> Genesis:
    """Parse genesis JSON bytes; every error names `source` and the offending JSON path."""
    try:
        doc = json.loads(data.decode("utf-8"), object_pairs_hook=_no_duplicates,
                         parse_float=_no_floats, parse_constant=_no_constants)
    except GenesisError as exc:
        raise GenesisError(f"{source}: {exc}") from None
    except UnicodeDecodeError:
        raise GenesisError(f"{source}: not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise GenesisError(f"{source}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    try:
        return genesis_from_json(doc)
    except GenesisError as exc:
        raise GenesisError(f"{source}: {exc}") from None


# --------------------------------------------------------------------------------------------- fields
def _err(where: str, msg: str) -> GenesisError:
    return GenesisError(f"{where}: {msg}")


def _object(value: Any, where: str, required: set[str], optional: set[str]) -> dict:
    if type(value) is not dict:
        raise _err(where, f"expected a JSON object, got {_jtype(value)}")
    value = {k: v for k, v in value.items() if not k.startswith("_")}
    unknown = sorted(set(value) - required - optional)
    if unknown:
        raise _err(where, f"unknown field(s) {', '.join(unknown)} (allowed: {', '.join(sorted(required | optional))})")
    missing = sorted(required - set(value))
    if missing:
        raise _err(where, f"missing field(s) {', '.join(missing)}")
    return value


def _jtype(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "true/false", int: "an integer",
            type(None): "null"}.get(type(value), type(value).__name__)


def _amount(value: Any, where: str) -> int:
    if type(value) is not str:
        raise _err(where, f"an amount is a decimal string of base units (1 NMT = 10**18), got {_jtype(value)}")
    if not _DECIMAL.fullmatch(value):
        raise _err(where, f"{value[:40]!r} is not a decimal string of base units (digits only, no sign, "
                          "no leading zeros, no decimal point)")
    n = int(value)
    if n > MAX_AMOUNT:
        raise _err(where, "amount is larger than 2**256 - 1")
    return n


def _int(value: Any, where: str, lo: int = 0, hi: int = 2**63 - 1) -> int:
    if type(value) is not int:
        raise _err(where, f"expected an integer, got {_jtype(value)}")
    if not lo <= value <= hi:
        raise _err(where, f"{value} is out of range [{lo}, {hi}]")
    return value


def _str(value: Any, where: str, max_len: int = 200) -> str:
    if type(value) is not str:
        raise _err(where, f"expected a string, got {_jtype(value)}")
    if len(value) > max_len:
        raise _err(where, f"string is longer than {max_len} characters")
    return value


def _address(value: Any, where: str) -> bytes:
    text = _str(value, where, 100)
    try:
        return address_from_text(text)
    except InvalidKey as exc:
        raise _err(where, str(exc)) from None


def _list(value: Any, where: str, max_len: int = 10_000) -> list:
    if type(value) is not list:
        raise _err(where, f"expected a list, got {_jtype(value)}")
    if len(value) > max_len:
        raise _err(where, f"more than {max_len} entries")
    return value


def parse_time(value: Any, where: str = "time") -> int:
    """``"YYYY-MM-DD"`` (midnight UTC) or integer unix seconds -> unix seconds."""
    if type(value) is int:
        return _int(value, where, 0, 2**40)
    if type(value) is str:
        m = _DATE.fullmatch(value)
        if m:
            try:
                day = _dt.date(int(m[1]), int(m[2]), int(m[3]))
            except ValueError as exc:
                raise _err(where, f"{value!r} is not a valid date: {exc}") from None
            return int(_dt.datetime(day.year, day.month, day.day, tzinfo=_dt.UTC).timestamp())
    raise _err(where, f"expected a date 'YYYY-MM-DD' (UTC) or integer unix seconds, got {value!r}")


def _params(value: Any, where: str) -> Params:
    names = {f.name for f in dataclasses.fields(Params)}
    obj = _object(value, where, set(), names)
    kwargs = {}
    for name, v in obj.items():
        if name in _AMOUNT_FIELDS_OF_PARAMS:
            kwargs[name] = _amount(v, f"{where}.{name}")
        elif name in econ_params.STRUCTURED:   # hardware classes, bandwidth tiers, price oracle
            kwargs[name] = econ_params.param_from_plain(name, v, f"{where}.{name}", json=True)
        else:
            kwargs[name] = _int(v, f"{where}.{name}", 0 if name in econ_params.ZERO_OK else 1)
    params = Params(**kwargs)
    econ_params.check_economics(params, where)
    if params.min_long_term_days > params.max_long_term_days:
        raise _err(f"{where}.min_long_term_days", "is larger than max_long_term_days")
    if params.block_time_ms < 100:
        raise _err(f"{where}.block_time_ms", "must be at least 100 ms")
    return params


def _bootnode(value: Any, where: str) -> str:
    text = _str(value, where, 300)
    m = _BOOTNODE.fullmatch(text)
    if not m:
        raise _err(where, f"{text!r} is not a multiaddr like /ip4/127.0.0.1/tcp/30333/p2p/12D3KooW...")
    if not 0 < int(m[3]) < 65536:
        raise _err(where, f"port {m[3]} is out of range")
    try:
        address_from_peer_id(m[4])
    except InvalidKey as exc:
        raise _err(where, str(exc)) from None
    return text


def _plain_json(value: Any, where: str, depth: int = 0) -> Any:
    if depth > 16:
        raise _err(where, "nested too deeply")
    if type(value) is dict:
        return {k: _plain_json(v, f"{where}.{k}", depth + 1) for k, v in value.items()}
    if type(value) is list:
        return [_plain_json(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(value)]
    if value is None or type(value) in (str, int, bool):
        return value
    raise _err(where, f"unsupported value {value!r}")  # pragma: no cover - json cannot produce others


def genesis_from_json(doc: Any) -> Genesis:
    """Validate a decoded JSON document and build the `Genesis`; errors carry the JSON path."""
    top = _object(doc, "$", {"format", "chain_id", "timestamp", "accounts"},
                  {"params", "validators", "allocation_start", "allocation", "total_supply", "bootnodes",
                   "extra"})
    if top["format"] != FORMAT_VERSION or type(top["format"]) is not int:
        raise _err("$.format", f"unsupported format {top['format']!r} (this mindnode reads format {FORMAT_VERSION})")
    chain_id = _str(top["chain_id"], "$.chain_id", 64)
    if not _CHAIN_ID.fullmatch(chain_id):
        raise _err("$.chain_id", f"{chain_id!r} must be 1-64 characters of a-z 0-9 . _ - starting with a letter or digit")
    timestamp = parse_time(top["timestamp"], "$.timestamp")
    allocation_start = parse_time(top.get("allocation_start", timestamp), "$.allocation_start")
    params = _params(top.get("params", {}), "$.params")

    accounts = []
    seen_accounts: set[bytes] = set()
    for i, item in enumerate(_list(top["accounts"], "$.accounts")):
        w = f"$.accounts[{i}]"
        obj = _object(item, w, {"address", "balance"}, {"label"})
        address = _address(obj["address"], f"{w}.address")
        if address in seen_accounts:
            raise _err(f"{w}.address", "account listed twice")
        seen_accounts.add(address)
        accounts.append(GenesisAccount(address, _amount(obj["balance"], f"{w}.balance"),
                                       _str(obj.get("label", ""), f"{w}.label")))

    validators = []
    seen_validators: set[bytes] = set()
    for i, item in enumerate(_list(top.get("validators", []), "$.validators", params.max_validators * 10)):
        w = f"$.validators[{i}]"
        obj = _object(item, w, {"address", "stake"}, {"name"})
        address = _address(obj["address"], f"{w}.address")
        if address in seen_validators:
            raise _err(f"{w}.address", "validator listed twice")
        seen_validators.add(address)
        stake = _amount(obj["stake"], f"{w}.stake")
        if stake < params.min_validator_stake:
            raise _err(f"{w}.stake", f"{stake} is below params.min_validator_stake ({params.min_validator_stake})")
        validators.append(GenesisValidator(address, stake, _str(obj.get("name", ""), f"{w}.name")))

    rows = []
    seen_names: set[str] = set()
    for i, item in enumerate(_list(top.get("allocation", []), "$.allocation", 1000)):
        w = f"$.allocation[{i}]"
        obj = _object(item, w, {"name", "amount", "cliff_months", "vesting_months"}, {"pool", "account"})
        name = _str(obj["name"], f"{w}.name", 100)
        if not name.strip():
            raise _err(f"{w}.name", "must not be empty")
        if name in seen_names:
            raise _err(f"{w}.name", f"row name {name!r} is used twice")
        seen_names.add(name)
        if ("pool" in obj) == ("account" in obj):
            raise _err(w, "give exactly one of 'pool' (mining/staking) or 'account' (an address)")
        pool = account = None
        if "pool" in obj:
            pool = _str(obj["pool"], f"{w}.pool")
            if pool not in POOLS:
                raise _err(f"{w}.pool", f"{pool!r} is not a reward pool (one of: {', '.join(POOLS)})")
        else:
            account = _address(obj["account"], f"{w}.account")
        rows.append(AllocationRow(name=name, amount=_amount(obj["amount"], f"{w}.amount"),
                                  cliff_months=_int(obj["cliff_months"], f"{w}.cliff_months", 0, 1200),
                                  vesting_months=_int(obj["vesting_months"], f"{w}.vesting_months", 0, 1200),
                                  pool=pool, account=account))

    total_supply = None
    if "total_supply" in top:
        total_supply = _amount(top["total_supply"], "$.total_supply")
        parts = supply_parts(accounts, validators, rows)
        summed = sum(parts.values())
        if summed != total_supply:
            detail = ", ".join(f"{k} {v}" for k, v in parts.items())
            raise _err("$.total_supply", f"is {total_supply} but the allocation adds up to {summed} "
                                         f"({detail}; difference {total_supply - summed})")

    bootnodes = tuple(_bootnode(b, f"$.bootnodes[{i}]")
                      for i, b in enumerate(_list(top.get("bootnodes", []), "$.bootnodes", 100)))
    extra = _plain_json(top.get("extra", {}), "$.extra")
    if type(extra) is not dict:
        raise _err("$.extra", f"expected a JSON object, got {_jtype(extra)}")
    return Genesis(chain_id=chain_id, timestamp=timestamp, params=params, accounts=tuple(accounts),
                   validators=tuple(validators), allocation_start=allocation_start, allocation=tuple(rows),
                   total_supply=total_supply, bootnodes=bootnodes, extra=extra)


def supply_parts(accounts, validators, rows) -> dict[str, int]:
    """The three sums a total supply is made of (base units)."""
    return {"accounts": sum(a.balance for a in accounts),
            "validator stakes": sum(v.stake for v in validators),
            "allocation rows": sum(r.amount for r in rows)}


def genesis_supply(genesis: Genesis) -> int:
    """Everything the genesis mints: accounts + validator stakes + allocation rows."""
    return sum(supply_parts(genesis.accounts, genesis.validators, genesis.allocation).values())


# --------------------------------------------------------------------------------------------- hash
def _canonical(value: Any) -> Any:
    """A plain, canonically ordered form of a Genesis for hashing.

    Dataclasses become maps with sorted keys (`extra` included); integers up to 2**64 stay msgpack
    integers and larger ones become minimal big-endian byte strings (each field has one type, so
    the mapping is injective); tuples become lists.
    """
    if dataclasses.is_dataclass(value):
        return {f.name: _canonical(getattr(value, f.name))
                for f in sorted(dataclasses.fields(value), key=lambda f: f.name)}
    if type(value) is dict:
        return {k: _canonical(value[k]) for k in sorted(value)}
    if type(value) in (list, tuple):
        return [_canonical(v) for v in value]
    if type(value) is int and not -(2**63) <= value < 2**64:
        if value < 0:  # pragma: no cover - genesis integers are never this negative
            raise GenesisError("cannot hash a negative integer below -2**63")
        return value.to_bytes((value.bit_length() + 7) // 8, "big")
    return value


def genesis_hash(genesis: Genesis) -> bytes:
    """The 32-byte identity of a genesis: two nodes with equal hashes build the same chain.

    Computed from the parsed `Genesis` (not the file's bytes), so whitespace, key order and
    ``_comment`` keys do not change it, while every value that reaches the state does.
    """
    data = msgpack.packb(_canonical(genesis), use_bin_type=True)
    return tagged_hash(b"mindnode/genesis", data)


def with_timestamp(genesis: Genesis, timestamp: int) -> Genesis:
    """The same genesis re-based to start at `timestamp` (vesting clock moved by the same offset).

    For local devnets: the packaged devnet genesis has a fixed date so its hash is reproducible;
    a launcher that wants vesting and rewards to start "now" re-bases it (all of its nodes with the
    same value, which changes the genesis hash).
    """
    offset = genesis.allocation_start - genesis.timestamp
    return dataclasses.replace(genesis, timestamp=timestamp, allocation_start=timestamp + offset)


# --------------------------------------------------------------------------------------------- to JSON
def genesis_to_json(genesis: Genesis) -> dict:
    """The JSON document of a Genesis (round-trips through `genesis_from_json`)."""
    from ledger.keys import address_to_text

    doc: dict[str, Any] = {
        "format": FORMAT_VERSION,
        "chain_id": genesis.chain_id,
        "timestamp": genesis.timestamp,
        "allocation_start": genesis.allocation_start,
        "params": {f.name: (str(getattr(genesis.params, f.name)) if f.name in _AMOUNT_FIELDS_OF_PARAMS
                            else econ_params.param_to_plain(f.name, getattr(genesis.params, f.name), json=True)
                            if f.name in econ_params.STRUCTURED
                            else getattr(genesis.params, f.name)) for f in dataclasses.fields(Params)},
        "accounts": [{"address": address_to_text(a.address), "balance": str(a.balance), "label": a.label}
                     for a in genesis.accounts],
        "validators": [{"address": address_to_text(v.address), "stake": str(v.stake), "name": v.name}
                       for v in genesis.validators],
        "allocation": [{"name": r.name, "amount": str(r.amount), "cliff_months": r.cliff_months,
                        "vesting_months": r.vesting_months,
                        **({"pool": r.pool} if r.pool else {"account": address_to_text(r.account)})}
                       for r in genesis.allocation],
        "bootnodes": list(genesis.bootnodes),
        "extra": genesis.extra,
    }
    if genesis.total_supply is not None:
        doc["total_supply"] = str(genesis.total_supply)
    return doc
