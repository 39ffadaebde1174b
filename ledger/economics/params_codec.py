"""Plain (msgpack/JSON) forms of the economics parameters that are not plain integers.

Why: `Params` is mostly integers, which the genesis loader and the state's chain record handle
generically; three economics fields are structured (a table of hardware classes, a table of
bandwidth tiers, the oracle's address), and so is the jobs rules' ``jobs`` section. This module gives each one canonical plain form, the
same in JSON and in msgpack, and a strict parser with messages naming the field, so
`ledger.genesis_file` and `ledger.state` delegate to it instead of special-casing them:

* ``hardware_classes``: ``[{"name": "gpu-high", "value_per_hour": 400000, "weight": 20}, ...]``
  (names unique, 1..32 classes, value_per_hour >= 0, weight >= 1)
* ``bandwidth_tiers``: ``[{"min_kbps": 100001, "factor_bps": 10000}, ...]`` (1..16 tiers, distinct
  min_kbps, factor 0..10000, one tier must start at 0 so every machine has a factor)
* ``price_oracle``: an address text ``"mn..."`` in JSON, 32 raw bytes in msgpack, or null.
* ``jobs``: the jobs rules' section, a map of integers (parsed by `ledger.jobs.params`).

`params_to_plain` / `params_from_plain` do a whole `Params` (amounts such as
``min_validator_stake`` as decimal strings, every other field an integer) for the chain record.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ledger.errors import GenesisError, InvalidKey
from ledger.genesis import BandwidthTier, HardwareClass, Params

STRUCTURED = frozenset({"hardware_classes", "bandwidth_tiers", "price_oracle", "jobs"})
#: Token amounts: decimal strings of base units in both forms (they exceed 2**64).
AMOUNTS = frozenset({"min_validator_stake"})
#: Integer params that may be 0 (every other integer parameter must be >= 1).
ZERO_OK = frozenset({"genesis_price_micro_usd", "failed_work_penalty_bps", "sync_provider_fee_bps",
                     "async_provider_fee_bps", "master_node_share_bps", "stake_weight_liquidity",
                     "qualifying_hours"})
#: Integer params that are basis points (at most 10_000).
BPS_FIELDS = frozenset({"failed_work_penalty_bps", "sync_provider_fee_bps", "async_provider_fee_bps",
                        "master_node_share_bps"})


def _err(where: str, msg: str) -> GenesisError:
    return GenesisError(f"{where}: {msg}")


def _int(value: Any, where: str, lo: int, hi: int = 2**63 - 1) -> int:
    if type(value) is not int or not lo <= value <= hi:
        raise _err(where, f"expected an integer in {lo}..{hi}, got {value!r}")
    return value


def _obj(value: Any, where: str, keys: tuple[str, ...]) -> dict:
    if type(value) is not dict:
        raise _err(where, f"expected an object with {', '.join(keys)}")
    if set(value) != set(keys):
        raise _err(where, f"expected exactly the fields {', '.join(keys)}, got {', '.join(sorted(map(str, value)))}")
    return value


def param_to_plain(name: str, value: Any, *, json: bool = False) -> Any:
    """The plain form of one structured parameter (`json=True`: addresses as text)."""
    if name == "price_oracle":
        if value is None:
            return None
        if json:
            from ledger.keys import address_to_text

            return address_to_text(value)
        return value
    if name in ("hardware_classes", "bandwidth_tiers"):
        return [dataclasses.asdict(x) for x in value]
    if name == "jobs":      # the jobs room's section (ledger/jobs/params.py): a map of integers
        from ledger.jobs.params import job_params_to_plain

        return job_params_to_plain(value)
    raise KeyError(name)


def param_from_plain(name: str, value: Any, where: str, *, json: bool = False) -> Any:
    """Parse one structured parameter, strictly; GenesisError names the field on any defect."""
    if name == "jobs":
        from ledger.jobs.params import job_params_from_plain

        return job_params_from_plain(value, where)
    if name == "price_oracle":
        if value is None:
            return None
        if json:
            from ledger.keys import address_from_text

            if type(value) is not str:
                raise _err(where, "expected an address 'mn...' or null")
            try:
                return address_from_text(value)
            except InvalidKey as exc:
                raise _err(where, str(exc)) from None
        if type(value) is not bytes or len(value) != 32:
            raise _err(where, "expected 32 address bytes or nil")
        return value
    if name == "hardware_classes":
        if type(value) is not list or not 1 <= len(value) <= 32:
            raise _err(where, "expected a list of 1..32 hardware classes")
        out = []
        for i, item in enumerate(value):
            w = f"{where}[{i}]"
            obj = _obj(item, w, ("name", "value_per_hour", "weight"))
            if type(obj["name"]) is not str or not 1 <= len(obj["name"]) <= 32:
                raise _err(f"{w}.name", "expected a name of 1..32 characters")
            out.append(HardwareClass(obj["name"], _int(obj["value_per_hour"], f"{w}.value_per_hour", 0),
                                     _int(obj["weight"], f"{w}.weight", 1)))
        if len({h.name for h in out}) != len(out):
            raise _err(where, "hardware class names must be unique")
        return tuple(out)
    if name == "bandwidth_tiers":
        if type(value) is not list or not 1 <= len(value) <= 16:
            raise _err(where, "expected a list of 1..16 bandwidth tiers")
        tiers = []
        for i, item in enumerate(value):
            w = f"{where}[{i}]"
            obj = _obj(item, w, ("factor_bps", "min_kbps"))
            tiers.append(BandwidthTier(_int(obj["min_kbps"], f"{w}.min_kbps", 0),
                                       _int(obj["factor_bps"], f"{w}.factor_bps", 0, 10_000)))
        if len({t.min_kbps for t in tiers}) != len(tiers):
            raise _err(where, "bandwidth tiers must have distinct min_kbps")
        if min(t.min_kbps for t in tiers) != 0:
            raise _err(where, "one bandwidth tier must start at min_kbps 0")
        return tuple(tiers)
    raise KeyError(name)


#: Upper bounds the stored records impose (a larger value would make blocks fail to encode).
UPPER = {"price_window_days": 64, "accrual_history_days": 366, "qualifying_hours": 23}
#: Lower bounds the rules need (B divides; a day has 24 hours of at least a second).
LOWER = {"balancing_coefficient_bps": 1, "day_s": 24, "stake_weight_long_term": 1, "stake_weight_flexible": 1,
         "max_uptime_entries_per_block": 1}


def check_economics(params: Params, where: str = "params") -> None:
    """Ranges of the economics integers: basis points at most 10_000, the zero-able fields, and the
    bounds of the stored records (`UPPER`), so a genesis cannot make settlement fail later."""
    for f in dataclasses.fields(Params):
        if f.name in STRUCTURED or f.name not in ZERO_OK | BPS_FIELDS | set(UPPER) | set(LOWER):
            continue
        v = getattr(params, f.name)
        lo = LOWER.get(f.name, 0 if f.name in ZERO_OK else 1)
        _int(v, f"{where}.{f.name}", lo, 10_000 if f.name in BPS_FIELDS else UPPER.get(f.name, 2**63 - 1))


def params_to_plain(params: Params, *, json: bool = False) -> dict:
    """Every Params field as a plain value (sorted keys)."""
    out = {}
    for f in sorted(dataclasses.fields(Params), key=lambda f: f.name):
        v = getattr(params, f.name)
        if f.name in STRUCTURED:
            v = param_to_plain(f.name, v, json=json)
        elif f.name in AMOUNTS:
            v = str(v)
        out[f.name] = v
    return out


def params_from_plain(plain: Any, where: str = "params", *, json: bool = False) -> Params:
    """Params from `params_to_plain` output (any subset; missing fields take their defaults)."""
    if type(plain) is not dict:
        raise _err(where, "expected an object")
    names = {f.name for f in dataclasses.fields(Params)}
    unknown = sorted(str(k) for k in plain if k not in names)
    if unknown:
        raise _err(where, f"unknown parameter(s) {', '.join(unknown)}")
    kwargs = {}
    for name, v in plain.items():
        w = f"{where}.{name}"
        if name in STRUCTURED:
            kwargs[name] = param_from_plain(name, v, w, json=json)
        elif name in AMOUNTS:
            if type(v) is not str or not v.isdigit() or (len(v) > 1 and v[0] == "0") or len(v) > 78:
                raise _err(w, f"expected a decimal string of base units, got {v!r}")
            kwargs[name] = int(v)
        else:   # ranges of other rooms' integers are their genesis parser's business: >= 0 here
            kwargs[name] = _int(v, w, 0)
    params = Params(**kwargs)
    check_economics(params, where)
    return params
