"""The ledger state: a flat map of keys to canonical records, with typed accessors and a journal.

Layout (every key below is a *state key*; all of them are committed by the state root, see
`ledger.trie`, and stored under the `s` prefix of the database, see `ledger.schema`):

==================================================  =====================================================
key                                                 value
==================================================  =====================================================
``a`` + address                                     `Account` (balance, nonce); absent = zero account
``c`` + address                                     `Candidate` (a registered validator candidate)
``s`` + staker + validator + kind byte              `Stake` (kind ``F`` flexible / ``L`` long-term)
``v`` + validator + staker + kind byte              ``b""``: the same stakes indexed by validator
``q`` + release_ms (8 bytes BE) + staker + vldtr    `Unbonding` (paid back when a block's time >= release)
``r`` + (2**256-1-total) (32 B BE) + address        ``b""``: the validator-set index (eligible candidates)
``g`` + address + row index (2 bytes BE)            `Vesting` (a genesis allocation row vesting to address)
``p`` + pool name                                   `Pool` (genesis rows feeding a reward pool)
``xchain``                                          `ChainRecord` (chain id, params, supply, vesting start)
==================================================  =====================================================

Later modules claim their own prefixes with `register_state_prefix` (no edit here).

Why a flat map with prefixes: every rule is a handful of point reads and writes, prefix order
gives the two ordered queries the chain needs for free (unbondings by release time, candidates by
stake), and the state root can commit to exactly these bytes.

Why a journal: `State` caches decoded records in memory for the whole block (an account touched by
500 transfers is decoded once and encoded once), records every write as (key, previous value), and
`revert(snapshot)` undoes writes back to a snapshot. The executor takes a snapshot before each
transaction, so a transaction that fails half-way changes nothing, and a block that fails is simply
dropped: nothing reaches the base (the database) until the store commits `changes()` in one batch.

Supply is conserved by construction and checked by `audit()`:
``balances + stakes + unbondings + unvested + pool holdings == total supply``.
"""

from __future__ import annotations

import dataclasses
import heapq
from collections.abc import Iterator
from typing import Annotated, Any, Protocol

import msgpack

from ledger.codec import BigUInt, Bytes, ListOf, Record, Str, UInt, record, unpack_plain
from ledger.errors import GenesisError, InvalidTransaction, LedgerError
from ledger.genesis import Genesis, Params
from ledger.keys import address_to_text

# -- records ----------------------------------------------------------------------------------------

AMOUNT = BigUInt(32)


@record
class Account(Record):
    balance: Annotated[int, AMOUNT]
    nonce: Annotated[int, UInt(64)]


@record
class Candidate(Record):
    """A validator candidate. `self_stake` is stake it placed on itself; `delegated` everybody
    else's; `long_term` the long-term part of the total (the economics issue weights it)."""

    name: Annotated[str, Str(64)]
    self_stake: Annotated[int, AMOUNT]
    delegated: Annotated[int, AMOUNT]
    long_term: Annotated[int, AMOUNT]
    jailed_until_ms: Annotated[int, UInt(64)]
    registered_height: Annotated[int, UInt(64)]

    @property
    def total(self) -> int:
        return self.self_stake + self.delegated


@record
class Stake(Record):
    amount: Annotated[int, AMOUNT]
    lock_until_ms: Annotated[int, UInt(64)]   # 0 for flexible stake


@record
class Unbonding(Record):
    amount: Annotated[int, AMOUNT]


@record
class Vesting(Record):
    name: Annotated[str, Str(128)]
    amount: Annotated[int, AMOUNT]
    cliff_months: Annotated[int, UInt(16)]
    vesting_months: Annotated[int, UInt(16)]
    withdrawn: Annotated[int, AMOUNT]


@record
class PoolRow(Record):
    name: Annotated[str, Str(128)]
    amount: Annotated[int, AMOUNT]
    cliff_months: Annotated[int, UInt(16)]
    vesting_months: Annotated[int, UInt(16)]


@record
class Pool(Record):
    """A reward pool fed by genesis rows. It holds ``sum(rows) + returned - emitted``; of that,
    ``unlocked(t) + returned - emitted`` may be emitted at time t (see `State.pool_available`)."""

    rows: Annotated[tuple, ListOf(PoolRow, 64)]
    emitted: Annotated[int, AMOUNT]
    returned: Annotated[int, AMOUNT]

    @property
    def allocated(self) -> int:
        return sum(r.amount for r in self.rows)

    @property
    def holding(self) -> int:
        return self.allocated + self.returned - self.emitted


@record
class ChainRecord(Record):
    chain_id: Annotated[str, Str(64)]
    params: Annotated[bytes, Bytes(max_len=4096)]   # canonical msgpack map of Params fields
    total_supply: Annotated[int, AMOUNT]
    allocation_start: Annotated[int, UInt(64)]


FLEXIBLE = b"F"
LONG_TERM = b"L"
CHAIN_KEY = b"xchain"
_MAX_TOTAL = (1 << 256) - 1

#: How each prefix's values decode (None: raw bytes).
RECORD_OF_PREFIX: dict[int, type[Record] | None] = {
    ord("a"): Account, ord("c"): Candidate, ord("s"): Stake, ord("q"): Unbonding, ord("r"): None,
    ord("g"): Vesting, ord("p"): Pool, ord("x"): ChainRecord, ord("v"): None,
}


def register_state_prefix(prefix: bytes, cls: type[Record] | None) -> None:
    """Claim a one-byte state-key prefix for a module's own records (e.g. a later issue's job or
    reward records), so a new kind or hook needs no edit here. Claiming a taken prefix is an error."""
    if len(prefix) != 1:
        raise ValueError("a state prefix is one byte")
    if prefix[0] in RECORD_OF_PREFIX and RECORD_OF_PREFIX[prefix[0]] is not cls:
        raise ValueError(f"state prefix {prefix!r} is already used by {RECORD_OF_PREFIX[prefix[0]]}")
    RECORD_OF_PREFIX[prefix[0]] = cls


def account_key(addr: bytes) -> bytes:
    return b"a" + addr


def candidate_key(addr: bytes) -> bytes:
    return b"c" + addr


def stake_key(staker: bytes, validator: bytes, kind: bytes) -> bytes:
    return b"s" + staker + validator + kind


def unbonding_key(release_ms: int, staker: bytes, validator: bytes) -> bytes:
    return b"q" + release_ms.to_bytes(8, "big") + staker + validator


def rank_key(total: int, addr: bytes) -> bytes:
    return b"r" + (_MAX_TOTAL - total).to_bytes(32, "big") + addr


def vesting_key(addr: bytes, row: int) -> bytes:
    return b"g" + addr + row.to_bytes(2, "big")


def pool_key(name: str) -> bytes:
    return b"p" + name.encode()


def params_to_bytes(params: Params) -> bytes:
    """Params as a canonical map of name -> plain value (`ledger.economics.params_codec`: integers,
    amounts as decimal strings, the economics tables as lists of maps, the oracle as bytes)."""
    from ledger.economics.params_codec import params_to_plain

    return msgpack.packb(params_to_plain(params), use_bin_type=True)


def params_from_bytes(data: bytes) -> Params:
    from ledger.economics.params_codec import params_from_plain

    try:
        return params_from_plain(unpack_plain(data))
    except LedgerError as exc:
        raise LedgerError(f"stored chain parameters are malformed: {exc}") from None


def decode_value(key: bytes, raw: bytes) -> Any:
    """Decode a stored state value. The bytes come from our own database, where only canonical
    encodings are ever written, so the canonical re-encoding check of `codec.decode` is skipped
    (the schema check is not): this is the hottest read of block execution."""
    cls = RECORD_OF_PREFIX.get(key[0]) if key else None
    if cls is None:
        return raw
    try:
        plain = msgpack.unpackb(raw, raw=False, use_list=True, strict_map_key=True)
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise LedgerError(f"stored state value at {key[:1]!r} is corrupt: {exc}") from None
    return cls.from_plain(plain)


def encode_value(value: Any) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


# -- base views -------------------------------------------------------------------------------------

class StateView(Protocol):
    """Read-only raw state: what a `State` sits on (the database, or a dict in tests)."""

    def get(self, key: bytes) -> bytes | None: ...

    def iter_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]: ...


class MemoryView:
    """A dict as a state base (genesis construction, tests)."""

    def __init__(self, data: dict[bytes, bytes] | None = None):
        self.data = dict(data or {})

    def get(self, key: bytes) -> bytes | None:
        return self.data.get(key)

    def iter_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        for k in sorted(k for k in self.data if k.startswith(prefix)):
            yield k, self.data[k]

    def apply(self, changes: dict[bytes, bytes | None]) -> None:
        for k, v in changes.items():
            if v is None:
                self.data.pop(k, None)
            else:
                self.data[k] = v


_ABSENT = object()    # cached: key has no value
_UNCACHED = object()  # journal: key was not in the cache before the write


class InsufficientFunds(InvalidTransaction):
    pass


class State:
    """Typed, journaled read/write access to the state over a read-only base view."""

    def __init__(self, base: StateView):
        self.base = base
        self._cache: dict[bytes, Any] = {}
        self._raw: dict[bytes, bytes | None] = {}   # base bytes of every key read (undo logs)
        self._journal: list[tuple[bytes, Any]] = []
        self._chain: ChainRecord | None = None
        self._params: Params | None = None
        # A base may hand out already-decoded values (the store keeps the head's hot records
        # decoded between blocks, see `ledger.store.DBView.load_decoded`); others are decoded here.
        self._load = getattr(base, "load_decoded", None) or self._decode_from_base

    # -- raw access ---------------------------------------------------------------------------
    def get(self, key: bytes) -> Any:
        """The decoded value at `key`, or None."""
        v = self._cache.get(key, _UNCACHED)
        if v is _UNCACHED:
            raw, v = self._load(key)
            self._raw[key] = raw
            if raw is None:
                v = _ABSENT
            self._cache[key] = v
        return None if v is _ABSENT else v

    def _decode_from_base(self, key: bytes) -> tuple[bytes | None, Any]:
        raw = self.base.get(key)
        return raw, (None if raw is None else decode_value(key, raw))

    def original(self, key: bytes) -> bytes | None:
        """The base's bytes at `key` (what it was before this State changed anything)."""
        if key in self._raw:
            return self._raw[key]
        return self.base.get(key)

    def put(self, key: bytes, value: Any) -> None:
        self._journal.append((key, self._cache.get(key, _UNCACHED)))
        self._cache[key] = value

    def delete(self, key: bytes) -> None:
        self._journal.append((key, self._cache.get(key, _UNCACHED)))
        self._cache[key] = _ABSENT

    def snapshot(self) -> int:
        return len(self._journal)

    def revert(self, snap: int) -> None:
        journal, cache = self._journal, self._cache
        while len(journal) > snap:
            key, prev = journal.pop()
            if prev is _UNCACHED:
                cache.pop(key, None)
            else:
                cache[key] = prev

    def changes(self) -> dict[bytes, bytes | None]:
        """Encoded values of every key written since creation (None = deleted)."""
        out: dict[bytes, bytes | None] = {}
        for key in dict.fromkeys(k for k, _ in self._journal):
            v = self._cache[key]
            out[key] = None if v is _ABSENT else encode_value(v)
        return out

    def iter_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, Any]]:
        """(key, decoded value) for every present key starting with `prefix`, in key order,
        merging the base with this state's writes."""
        local = sorted(k for k in self._cache if k.startswith(prefix))
        local_set = set(local)
        base = ((k, raw) for k, raw in self.base.iter_prefix(prefix) if k not in local_set)
        merged = heapq.merge(((k, None) for k in local), base, key=lambda kv: kv[0])
        for key, raw in merged:
            if raw is None:
                v = self._cache[key]
                if v is _ABSENT:
                    continue
                yield key, v
            else:
                yield key, decode_value(key, raw)

    # -- chain record ---------------------------------------------------------------------------
    @property
    def chain(self) -> ChainRecord:
        if self._chain is None:
            rec = self.get(CHAIN_KEY)
            if rec is None:
                raise LedgerError("state has no chain record (not initialised from a genesis)")
            self._chain = rec
        return self._chain

    @property
    def params(self) -> Params:
        if self._params is None:
            self._params = params_from_bytes(self.chain.params)
        return self._params

    # -- accounts -------------------------------------------------------------------------------
    def account(self, addr: bytes) -> Account:
        acc = self.get(b"a" + addr)
        return acc if acc is not None else _ZERO_ACCOUNT

    def set_account(self, addr: bytes, acc: Account) -> None:
        if acc.balance == 0 and acc.nonce == 0:
            self.delete(b"a" + addr)
        else:
            self.put(b"a" + addr, acc)

    def credit(self, addr: bytes, amount: int) -> None:
        if amount:
            acc = self.account(addr)
            self.set_account(addr, Account(balance=acc.balance + amount, nonce=acc.nonce))

    def debit(self, addr: bytes, amount: int, what: str = "") -> None:
        acc = self.account(addr)
        if acc.balance < amount:
            raise InsufficientFunds(
                f"insufficient balance{' for ' + what if what else ''}: {address_to_text(addr)} has "
                f"{acc.balance} base units, needs {amount}")
        if amount:
            self.set_account(addr, Account(balance=acc.balance - amount, nonce=acc.nonce))

    # -- candidates and the validator-set index -------------------------------------------------
    def candidate(self, addr: bytes) -> Candidate | None:
        return self.get(b"c" + addr)

    def set_candidate(self, addr: bytes, cand: Candidate) -> None:
        """Write a candidate and keep the rank index in step (eligible: self-stake >= minimum)."""
        old = self.candidate(addr)
        min_stake = self.params.min_validator_stake
        old_rank = rank_key(old.total, addr) if old is not None and old.self_stake >= min_stake else None
        new_rank = rank_key(cand.total, addr) if cand.self_stake >= min_stake else None
        if old_rank != new_rank:
            if old_rank is not None:
                self.delete(old_rank)
            if new_rank is not None:
                self.put(new_rank, b"")
        self.put(b"c" + addr, cand)

    def validator_set(self, at_ms: int, limit: int | None = None) -> list[tuple[bytes, int]]:
        """The top `limit` (default Params.max_validators) eligible candidates as (address, total
        stake), highest stake first, ties by address bytes ascending; jailed ones (jailed_until_ms >
        at_ms) are skipped. Reads the rank index in order: cost ~ limit + jailed, not the staker count."""
        limit = self.params.max_validators if limit is None else limit
        out: list[tuple[bytes, int]] = []
        if limit <= 0:
            return out
        for key, _ in self.iter_prefix(b"r"):
            addr = key[33:]
            cand = self.candidate(addr)
            if cand is None or cand.jailed_until_ms > at_ms:
                continue
            out.append((addr, _MAX_TOTAL - int.from_bytes(key[1:33], "big")))
            if len(out) >= limit:
                break
        return out

    # -- stakes ---------------------------------------------------------------------------------
    def stake(self, staker: bytes, validator: bytes, kind: bytes) -> Stake | None:
        return self.get(stake_key(staker, validator, kind))

    def set_stake(self, staker: bytes, validator: bytes, kind: bytes, stake: Stake | None) -> None:
        key = stake_key(staker, validator, kind)
        index = b"v" + validator + staker + kind
        if stake is None or stake.amount == 0:
            if self.get(key) is not None:
                self.delete(key)
                self.delete(index)
        else:
            if self.get(key) is None:
                self.put(index, b"")
            self.put(key, stake)

    def stakes_on(self, validator: bytes) -> list[tuple[bytes, bytes, Stake]]:
        """(staker, kind, stake) of every stake on `validator` (slashing), via the by-validator
        index: cost ~ that validator's stakers, not all stakes."""
        out = []
        for key, _ in self.iter_prefix(b"v" + validator):
            staker, kind = key[33:65], key[65:66]
            out.append((staker, kind, self.stake(staker, validator, kind)))
        return out

    def change_stake(self, staker: bytes, validator: bytes, kind: bytes, delta: int,
                     lock_until_ms: int = 0) -> None:
        """Add (delta > 0) or remove (delta < 0) stake and update the candidate's totals.

        Every change of a stake goes through here, so the "stake" hooks (F1 staking rewards) see
        each one before it happens."""
        cand = self.candidate(validator)
        if cand is None:
            raise InvalidTransaction(f"{address_to_text(validator)} is not a validator candidate")
        from ledger.registry import hooks

        for fn in hooks("stake"):
            fn(self, staker, validator, kind, delta)
        cur = self.stake(staker, validator, kind)
        amount = (cur.amount if cur else 0) + delta
        if amount < 0:
            raise InvalidTransaction(f"stake of {cur.amount if cur else 0} cannot be reduced by {-delta}")
        lock = max(cur.lock_until_ms if cur else 0, lock_until_ms)
        self.set_stake(staker, validator, kind, Stake(amount=amount, lock_until_ms=lock) if amount else None)
        changes: dict[str, int] = {}
        if staker == validator:
            changes["self_stake"] = cand.self_stake + delta
        else:
            changes["delegated"] = cand.delegated + delta
        if kind == LONG_TERM:
            changes["long_term"] = cand.long_term + delta
        self.set_candidate(validator, dataclasses.replace(cand, **changes))

    def add_unbonding(self, release_ms: int, staker: bytes, validator: bytes, amount: int) -> None:
        key = unbonding_key(release_ms, staker, validator)
        cur = self.get(key)
        self.put(key, Unbonding(amount=(cur.amount if cur else 0) + amount))

    def unbondings_of(self, staker: bytes) -> list[tuple[int, bytes, int]]:
        """(release_ms, validator, amount) of `staker`'s pending unbondings (scans the queue)."""
        return [(int.from_bytes(k[1:9], "big"), k[41:73], v.amount)
                for k, v in self.iter_prefix(b"q") if k[9:41] == staker]

    # -- vesting and pools ------------------------------------------------------------------------
    def vesting_rows(self, addr: bytes) -> list[tuple[bytes, Vesting]]:
        return list(self.iter_prefix(b"g" + addr))

    def pool(self, name: str) -> Pool | None:
        return self.get(pool_key(name))

    def pool_unlocked(self, name: str, t_s: int) -> int:
        """How much of pool `name`'s genesis rows has unlocked by unix time `t_s` (emitted or not)."""
        from ledger.vesting import unlocked

        pool = self.pool(name)
        if pool is None:
            return 0
        start, month_s = self.chain.allocation_start, self.params.month_s
        return sum(unlocked(_row(r), start, month_s, t_s) for r in pool.rows)

    def pool_available(self, name: str, t_s: int) -> int:
        """What pool `name` may emit at unix time `t_s`: its unlocked rows plus returns, less emissions.
        (Its still-locked part is ``pool.allocated - pool_unlocked``; the two add up to ``pool.holding``.)"""
        pool = self.pool(name)
        if pool is None:
            return 0
        return self.pool_unlocked(name, t_s) + pool.returned - pool.emitted

    def emit_from_pool(self, name: str, amount: int, to: bytes, t_s: int) -> None:
        """Move `amount` from pool `name` to `to`'s balance (the economics issue's primitive)."""
        if amount > self.pool_available(name, t_s):
            raise InvalidTransaction(f"pool {name!r} has only {self.pool_available(name, t_s)} available")
        pool = self.pool(name)
        self.put(pool_key(name), dataclasses.replace(pool, emitted=pool.emitted + amount))
        self.credit(to, amount)

    def return_to_pool(self, name: str, amount: int, from_addr: bytes) -> None:
        pool = self.pool(name)
        if pool is None:
            raise InvalidTransaction(f"no reward pool named {name!r}")
        self.debit(from_addr, amount, f"return to pool {name}")
        self.put(pool_key(name), dataclasses.replace(pool, returned=pool.returned + amount))

    # -- accounting -----------------------------------------------------------------------------
    def audit(self) -> dict[str, int]:
        """Sum every place a base unit can be (a full scan: tests and tools, not blocks) and check
        supply conservation and that candidate totals equal their stakes. Raises LedgerError."""
        parts = {
            "balances": sum(a.balance for _, a in self.iter_prefix(b"a")),
            "stakes": 0,
            "unbonding": sum(u.amount for _, u in self.iter_prefix(b"q")),
            "unvested": sum(v.amount - v.withdrawn for _, v in self.iter_prefix(b"g")),
            "pools": sum(p.holding for _, p in self.iter_prefix(b"p")),
        }
        per_validator: dict[bytes, list[int]] = {}
        for key, st in self.iter_prefix(b"s"):
            staker, validator, kind = key[1:33], key[33:65], key[65:66]
            parts["stakes"] += st.amount
            t = per_validator.setdefault(validator, [0, 0, 0])
            t[0 if staker == validator else 1] += st.amount
            if kind == LONG_TERM:
                t[2] += st.amount
        indexed = {k[1:] for k, _ in self.iter_prefix(b"v")}
        if indexed != {k[33:65] + k[1:33] + k[65:66] for k, _ in self.iter_prefix(b"s")}:
            raise LedgerError("the by-validator stake index disagrees with the stakes")
        ranked = {k[33:]: _MAX_TOTAL - int.from_bytes(k[1:33], "big") for k, _ in self.iter_prefix(b"r")}
        for key, cand in self.iter_prefix(b"c"):
            want = per_validator.pop(key[1:], [0, 0, 0])
            if [cand.self_stake, cand.delegated, cand.long_term] != want:
                raise LedgerError(f"candidate {key[1:].hex()} totals {cand} disagree with its stakes {want}")
            eligible = cand.self_stake >= self.params.min_validator_stake
            if ranked.pop(key[1:], None) != (cand.total if eligible else None):
                raise LedgerError(f"rank index disagrees with candidate {key[1:].hex()}")
        if per_validator or ranked:
            raise LedgerError("stakes or rank entries exist for unknown candidates")
        total = sum(parts.values())
        parts["total"] = total
        if total != self.chain.total_supply:
            raise LedgerError(f"supply not conserved: {parts} != {self.chain.total_supply}")
        return parts


_ZERO_ACCOUNT = Account(balance=0, nonce=0)


def _row(r: PoolRow | Vesting):
    from ledger.genesis import AllocationRow

    return AllocationRow(name=r.name, amount=r.amount, cliff_months=r.cliff_months,
                         vesting_months=r.vesting_months)


def vesting_row(v: Vesting):
    """A vesting entry as the `AllocationRow` that `ledger.vesting.unlocked` understands."""
    return _row(v)


# -- genesis -------------------------------------------------------------------------------------

def genesis_state(genesis: Genesis, base: StateView | None = None) -> State:
    """The state at height 0: accounts, validator candidates with their genesis self-stake (minted
    into the stake), vesting entries and reward pools. Raises GenesisError on inconsistencies."""
    state = State(base if base is not None else MemoryView())
    params = genesis.params
    accounts = sum(a.balance for a in genesis.accounts)
    stakes = sum(v.stake for v in genesis.validators)
    alloc = sum(r.amount for r in genesis.allocation)
    total = accounts + stakes + alloc
    if genesis.total_supply is not None and genesis.total_supply != total:
        raise GenesisError(f"total_supply {genesis.total_supply} != accounts {accounts} + validator stakes "
                           f"{stakes} + allocation {alloc} = {total}")
    state.put(CHAIN_KEY, ChainRecord(chain_id=genesis.chain_id, params=params_to_bytes(params),
                                     total_supply=total, allocation_start=genesis.allocation_start))
    seen: set[bytes] = set()
    for a in genesis.accounts:
        if a.address in seen:
            raise GenesisError(f"account {address_to_text(a.address)} is listed twice")
        seen.add(a.address)
        state.credit(a.address, a.balance)
    seen.clear()
    for v in genesis.validators:
        if v.address in seen:
            raise GenesisError(f"validator {address_to_text(v.address)} is listed twice")
        seen.add(v.address)
        if v.stake < params.min_validator_stake:
            raise GenesisError(f"validator {address_to_text(v.address)} stakes {v.stake}, below "
                               f"min_validator_stake {params.min_validator_stake}")
        state.set_candidate(v.address, Candidate(name=v.name, self_stake=0, delegated=0, long_term=0,
                                                 jailed_until_ms=0, registered_height=0))
        state.change_stake(v.address, v.address, FLEXIBLE, v.stake)
    pools: dict[str, list[PoolRow]] = {}
    for i, r in enumerate(genesis.allocation):
        if (r.pool is None) == (r.account is None):
            raise GenesisError(f"allocation row {r.name!r} must name exactly one of pool or account")
        if r.pool is not None:
            pools.setdefault(r.pool, []).append(PoolRow(name=r.name, amount=r.amount,
                                                        cliff_months=r.cliff_months,
                                                        vesting_months=r.vesting_months))
        else:
            state.put(vesting_key(r.account, i), Vesting(name=r.name, amount=r.amount,
                                                         cliff_months=r.cliff_months,
                                                         vesting_months=r.vesting_months, withdrawn=0))
    for name, rows in sorted(pools.items()):
        state.put(pool_key(name), Pool(rows=tuple(rows), emitted=0, returned=0))
    return state
