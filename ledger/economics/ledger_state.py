"""The economics inside the ledger state: its records, their keys, and what block execution calls.

The pure rules (mining, staking, fees, accrual) know nothing of storage; this module keeps their
inputs and outputs in the `ledger.state.State` key space and moves tokens with the state's own
primitives, so supply stays conserved by construction and `State.audit()` keeps balancing:

* Rewards waiting to be withdrawn sit in the **escrow** module account `ESCROW`; each staking
  validator's F1 outstanding bucket is a slice of the module account `OUTSTANDING` (their sum is
  its balance). Both addresses are SHA-256 outputs, not keys anyone holds, so only these rules
  move their funds (`audit_economics` checks the slices add up).
* Pools: a settlement emits what it pays from the "mining"/"staking" pools
  (`State.emit_from_pool`); whatever it does not pay is simply never emitted, i.e. it stays in the
  pool. Utilisation fees' pool share goes back with `State.return_to_pool`.

Keys (first byte ``E``; values are canonical records of this module, stored as bytes):

==========================================  ============================================
``Ec``                                      `EconCursor`: next day to settle, current day
``Eu`` + day (8 B BE) + provider            `UptimeRecord`: the day's 24-bit hour mask
``Ej`` + day (8 B BE) + provider            `JobsDay`: job outcomes (the jobs issue writes)
``Em`` + provider                           `MiningProfile`: hardware class, bandwidth
``Ep``                                      `PriceHistory`: the last 7 daily oracle prices
``Ev`` + validator                          `ValidatorRewards`: F1 accumulator, outstanding
``Ef`` + staker + validator + kind (1 B)    `F1Entry`: accumulator value at the last realise
``Er`` + address                            `RewardAccount` (ledger.economics.accrual)
==========================================  ============================================

Uptime and job records of a day are deleted when the day is settled, so they do not pile up.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from ledger.codec import BigUInt, Bool, ListOf, Record, Str, UInt, record
from ledger.consensus.slots import withheld
from ledger.economics import accrual
from ledger.economics.days import ChainClock
from ledger.economics.errors import EconomicsError
from ledger.economics.fees import split_utilisation_fee
from ledger.economics.mining import ProviderDay, hardware_class
from ledger.economics.prices import DailyPrice, post_price
from ledger.economics.schedule import MINING, STAKING, rows_daily_cap
from ledger.economics.settlement import DaySettlement, settle_day_with_caps
from ledger.economics.staking import (
    FLEXIBLE,
    LONG_TERM,
    StakePosition,
    ValidatorDay,
    pending_reward,
    stake_weight,
)
from ledger.economics.uptime import UptimeEntry, apply_uptime_entries, build_uptime_entries
from ledger.genesis import AllocationRow, Params
from ledger.hashing import tagged_hash

MODULE_TAG = b"mindnode/module"
ESCROW = tagged_hash(MODULE_TAG, b"rewards/escrow")
OUTSTANDING = tagged_hash(MODULE_TAG, b"rewards/staking-outstanding")
#: At most this many past days are settled by one block (a chain that stood still for longer
#: catches up over the next blocks, so no single block's execution time is unbounded).
MAX_SETTLE_DAYS_PER_BLOCK = 64
MAX_BANDWIDTH_KBPS = 100_000_000       # 100 Gbit/s: anything above is a typo

_STATE_KIND = {b"F": FLEXIBLE, b"L": LONG_TERM}   # ledger.state's stake kind bytes


@record
class EconCursor(Record):
    next_day: Annotated[int, UInt(64)]       # first day not yet settled
    current_day: Annotated[int, UInt(64)]    # the day of the latest block (credits of realised rewards)


@record
class UptimeRecord(Record):
    mask: Annotated[int, UInt(24)]


@record
class JobsDay(Record):
    jobs_done: Annotated[int, UInt(32)]
    jobs_left: Annotated[int, UInt(32)]
    failed_work: Annotated[int, UInt(32)]
    dropped_job_failed: Annotated[bool, Bool()]


@record
class MiningProfile(Record):
    hardware_class: Annotated[str, Str(32)]
    bandwidth_kbps: Annotated[int, UInt(32)]


@record
class PriceHistory(Record):
    prices: Annotated[tuple, ListOf(DailyPrice, 64)]


@record
class ValidatorRewards(Record):
    acc: Annotated[int, BigUInt(40)]
    outstanding: Annotated[int, BigUInt(32)]


@record
class F1Entry(Record):
    entry: Annotated[int, BigUInt(40)]


CURSOR_KEY = b"Ec"
PRICES_KEY = b"Ep"


def _day8(day: int) -> bytes:
    return day.to_bytes(8, "big")


def uptime_key(day: int, provider: bytes) -> bytes:
    return b"Eu" + _day8(day) + provider


def jobs_key(day: int, provider: bytes) -> bytes:
    return b"Ej" + _day8(day) + provider


def profile_key(provider: bytes) -> bytes:
    return b"Em" + provider


def validator_rewards_key(validator: bytes) -> bytes:
    return b"Ev" + validator


def f1_key(staker: bytes, validator: bytes, kind: bytes) -> bytes:
    return b"Ef" + staker + validator + kind


def reward_account_key(address: bytes) -> bytes:
    return b"Er" + address


# -- raw record access (prefix E is not in ledger.state's decode table: values come back as bytes) --

def _load(state, key: bytes, cls: type[Record]) -> Any:
    v = state.get(key)
    if v is None:
        return None
    return v if isinstance(v, cls) else cls.decode(v)


def _store(state, key: bytes, rec: Record | None) -> None:
    if rec is None:
        state.delete(key)
    else:
        state.put(key, rec.encode())


def clock_of(state) -> ChainClock:
    return ChainClock(state.chain.allocation_start, state.params.day_s)


def reward_account(state, address: bytes) -> accrual.RewardAccount:
    return _load(state, reward_account_key(address), accrual.RewardAccount) or accrual.EMPTY


def _credit(state, address: bytes, day: int, kind: str, amount: int) -> None:
    """Accrue `amount` (already in ESCROW) to `address`."""
    if amount:
        acct = accrual.credit(reward_account(state, address), day, kind, amount, state.params.accrual_history_days)
        _store(state, reward_account_key(address), acct)


def _current_day(state) -> int:
    cur = _load(state, CURSOR_KEY, EconCursor)
    return cur.current_day if cur is not None else 0


# -- transactions' effects ------------------------------------------------------------------------

def record_uptime(state, chain_id: str, block_time_s: int, entries: tuple[UptimeEntry, ...]) -> None:
    """Validate a batch of uptime entries against the recorded masks and OR them in."""
    recorded = {}
    for e in entries:
        rec = _load(state, uptime_key(e.day, e.provider), UptimeRecord)
        recorded[(e.provider, e.day)] = rec.mask if rec else 0
    masks = apply_uptime_entries(entries, chain_id=chain_id, clock=clock_of(state), block_time=block_time_s,
                                 recorded=recorded, params=state.params)
    for (provider, day), mask in masks.items():
        _store(state, uptime_key(day, provider), UptimeRecord(mask=mask))


def uptime_entries_for_block(state, chain_id: str, block_time_s: int, heartbeats) -> tuple[UptimeEntry, ...]:
    """Proposer side: the entries of an `uptime` transaction for a block at `block_time_s`, from the
    heartbeats seen on gossip (hours already on chain, other days and bad signatures are dropped)."""
    day = clock_of(state).day_of(block_time_s)
    heartbeats = [hb for hb in heartbeats if hb.day == day]
    recorded = {}
    for hb in heartbeats:
        if (hb.provider, day) not in recorded:
            rec = _load(state, uptime_key(day, hb.provider), UptimeRecord)
            recorded[(hb.provider, day)] = rec.mask if rec else 0
    return build_uptime_entries(heartbeats, chain_id=chain_id, clock=clock_of(state), block_time=block_time_s,
                                recorded=recorded, params=state.params)


def set_mining_profile(state, provider: bytes, hw_class: str, bandwidth_kbps: int) -> None:
    """Register or update what the mining reward weighs a provider by (until the jobs issue's
    benchmark writes it, the provider states it)."""
    hardware_class(state.params, hw_class)      # unknown class -> EconomicsError
    if not 0 <= bandwidth_kbps <= MAX_BANDWIDTH_KBPS:
        raise EconomicsError(f"bandwidth must be 0..{MAX_BANDWIDTH_KBPS} kbps, got {bandwidth_kbps}")
    _store(state, profile_key(provider), MiningProfile(hardware_class=hw_class, bandwidth_kbps=bandwidth_kbps))


def record_job_outcome(state, day: int, provider: bytes, *, done: int = 0, left: int = 0, failed_work: int = 0,
                       dropped_job_failed: bool = False) -> None:
    """Add a provider's job outcomes of `day` (the jobs issue calls this at settlement/verification)."""
    cur = _load(state, jobs_key(day, provider), JobsDay) or JobsDay(jobs_done=0, jobs_left=0, failed_work=0,
                                                                    dropped_job_failed=False)
    _store(state, jobs_key(day, provider), JobsDay(
        jobs_done=cur.jobs_done + done, jobs_left=cur.jobs_left + left, failed_work=cur.failed_work + failed_work,
        dropped_job_failed=cur.dropped_job_failed or dropped_job_failed))


def record_price(state, sender: bytes, block_time_s: int, price: int) -> None:
    day = clock_of(state).day_of(block_time_s)
    hist = _load(state, PRICES_KEY, PriceHistory)
    prices = post_price(hist.prices if hist else (), state.params, sender, day, price)
    _store(state, PRICES_KEY, PriceHistory(prices=prices))


def settle_job_fee(state, payer: bytes, fee: int, mode: str, work) -> accrual.RewardAccount | None:
    """Pay a finished job's utilisation fee from `payer` (the job's escrow account): providers'
    shares into the reward escrow as utilisation accruals, the rest back to the mining pool."""
    split = split_utilisation_fee(state.params, fee, mode, work)
    if split.to_pool:
        state.return_to_pool(MINING, split.to_pool, payer)
    if split.paid:
        state.debit(payer, split.paid, "the utilisation fee")
        state.credit(ESCROW, split.paid)
    day = _current_day(state)
    for addr, amount in split.payouts:
        _credit(state, addr, day, accrual.UTILISATION, amount)
    return split


# -- F1 staking rewards ---------------------------------------------------------------------------

def _factor(params: Params, kind: bytes) -> int:
    return stake_weight(params, _STATE_KIND[kind], 1)


def validator_weight(params: Params, cand) -> int:
    """Weighted stake on a candidate: flexible part x1, long-term part x4 (by Params)."""
    return (stake_weight(params, FLEXIBLE, cand.total - cand.long_term)
            + stake_weight(params, LONG_TERM, cand.long_term))


def _realize(state, staker: bytes, validator: bytes, kind: bytes) -> ValidatorRewards | None:
    """Pay what the staker's current stake on `validator` earned since its entry; re-enter at A_v."""
    vr = _load(state, validator_rewards_key(validator), ValidatorRewards)
    acc = vr.acc if vr else 0
    st = state.stake(staker, validator, kind)
    amount = st.amount if st else 0
    key = f1_key(staker, validator, kind)
    ent = _load(state, key, F1Entry)
    owed = pending_reward(StakePosition(amount * _factor(state.params, kind), ent.entry if ent else 0), acc)
    if owed:
        if owed > vr.outstanding:   # impossible by the F1 rounding argument; refuse rather than mint
            raise EconomicsError("staking reward exceeds the validator's outstanding rewards (corrupt state)")
        vr = dataclasses.replace(vr, outstanding=vr.outstanding - owed)
        state.debit(OUTSTANDING, owed, "staking rewards")
        state.credit(ESCROW, owed)
        _credit(state, staker, _current_day(state), accrual.STAKING, owed)
    _store(state, key, F1Entry(entry=acc) if acc else None)
    return vr


def on_stake_change(state, staker: bytes, validator: bytes, kind: bytes, delta: int) -> None:
    """The "stake" hook: realise the old stake's reward before it changes; when the change leaves
    the validator without weighted stake, sweep its outstanding dust back to the staking pool."""
    vr = _realize(state, staker, validator, kind)
    if vr is None:
        return
    st = state.stake(staker, validator, kind)
    if (st.amount if st else 0) + delta == 0:
        state.delete(f1_key(staker, validator, kind))      # the position ends: no entry to keep
    cand = state.candidate(validator)
    after = validator_weight(state.params, cand) + delta * _factor(state.params, kind)
    if after == 0 and vr.outstanding and state.pool(STAKING) is not None:
        state.return_to_pool(STAKING, vr.outstanding, OUTSTANDING)
        vr = dataclasses.replace(vr, outstanding=0)
    _store(state, validator_rewards_key(validator), vr)


def realize_all(state, staker: bytes) -> None:
    """Realise every stake position of `staker` (before a withdrawal)."""
    for key, _ in list(state.iter_prefix(b"s" + staker)):
        validator, kind = key[33:65], key[65:66]
        vr = _realize(state, staker, validator, kind)
        if vr is not None:
            _store(state, validator_rewards_key(validator), vr)


def pending_staking(state, staker: bytes) -> int:
    """Read-only: F1 rewards `staker` would realise now."""
    total = 0
    for key, st in state.iter_prefix(b"s" + staker):
        validator, kind = key[33:65], key[65:66]
        vr = _load(state, validator_rewards_key(validator), ValidatorRewards)
        ent = _load(state, f1_key(staker, validator, kind), F1Entry)
        if vr is not None:
            total += pending_reward(StakePosition(st.amount * _factor(state.params, kind), ent.entry if ent else 0),
                                    vr.acc)
    return total


def withdraw_rewards(state, address: bytes) -> int:
    """Realise `address`'s staking positions and move everything accrued to its balance."""
    realize_all(state, address)
    acct, amount = accrual.withdraw(reward_account(state, address))   # NothingToWithdraw when 0
    _store(state, reward_account_key(address), acct)
    state.debit(ESCROW, amount, "accrued rewards")
    state.credit(address, amount)
    return amount


# -- daily settlement (begin-block) -----------------------------------------------------------

def _pool_rows(state, name: str) -> tuple[AllocationRow, ...]:
    pool = state.pool(name)
    if pool is None:
        return ()
    return tuple(AllocationRow(r.name, r.amount, r.cliff_months, r.vesting_months, pool=name) for r in pool.rows)


def settle_day_in_state(state, day: int, block_time_ms: int) -> DaySettlement:
    """Settle `day`: gather its inputs from the state, apply the pure rules, move the tokens."""
    params = state.params
    clock = clock_of(state)
    start, month_s = state.chain.allocation_start, params.month_s
    providers = []
    for key, raw in list(state.iter_prefix(b"Eu" + _day8(day))):
        provider = key[10:]
        mask = (raw if isinstance(raw, UptimeRecord) else UptimeRecord.decode(raw)).mask
        state.delete(key)
        profile = _load(state, profile_key(provider), MiningProfile)
        if profile is None:
            continue                      # no hardware class on record: its uptime earns nothing
        jobs = _load(state, jobs_key(day, provider), JobsDay)
        providers.append(ProviderDay(provider, profile.hardware_class, profile.bandwidth_kbps, mask,
                                     jobs_done=jobs.jobs_done if jobs else 0, jobs_left=jobs.jobs_left if jobs else 0,
                                     failed_work=jobs.failed_work if jobs else 0,
                                     dropped_job_failed=jobs.dropped_job_failed if jobs else False))
    for key, _ in list(state.iter_prefix(b"Ej" + _day8(day))):
        state.delete(key)
    validators = []
    for addr, _total in state.validator_set(block_time_ms):
        validators.append(ValidatorDay(addr, validator_weight(params, state.candidate(addr)),
                                       withheld=withheld(state, addr)))
    hist = _load(state, PRICES_KEY, PriceHistory)
    s = settle_day_with_caps(params, day, rows_daily_cap(_pool_rows(state, MINING), start, month_s, clock, day),
                             rows_daily_cap(_pool_rows(state, STAKING), start, month_s, clock, day),
                             hist.prices if hist else (), providers, validators)
    now_s = block_time_ms // 1000
    if s.mining.paid:
        state.emit_from_pool(MINING, s.mining.paid, ESCROW, now_s)
    if s.staking.master_paid:
        state.emit_from_pool(STAKING, s.staking.master_paid, ESCROW, now_s)
    if s.staking.allocated:
        state.emit_from_pool(STAKING, s.staking.allocated, OUTSTANDING, now_s)
    for v, amount in s.staking.allocations:
        vr = _load(state, validator_rewards_key(v), ValidatorRewards) or ValidatorRewards(acc=0, outstanding=0)
        _store(state, validator_rewards_key(v), ValidatorRewards(acc=vr.acc + s.staking.reward_per_weight,
                                                                 outstanding=vr.outstanding + amount))
    for addr, kind, amount in s.credits:
        _credit(state, addr, day, kind, amount)
    return s


def settle_due_days(state, block_time_ms: int) -> list[DaySettlement]:
    """Begin-block: settle every finished day not yet settled (at most MAX_SETTLE_DAYS_PER_BLOCK).

    The first block that runs this only starts the cursor at its own day: days before the chain's
    first block have no uptime or stake changes on record, and their caps stay in the pools."""
    today = clock_of(state).day_of(block_time_ms // 1000)
    cur = _load(state, CURSOR_KEY, EconCursor)
    if today < 0:
        return []
    if cur is None:
        _store(state, CURSOR_KEY, EconCursor(next_day=today, current_day=today))
        return []
    out = []
    day = cur.next_day
    while day < today and len(out) < MAX_SETTLE_DAYS_PER_BLOCK:
        out.append(settle_day_in_state(state, day, block_time_ms))
        day += 1
    if day != cur.next_day or today != cur.current_day:
        _store(state, CURSOR_KEY, EconCursor(next_day=day, current_day=today))
    return out


# -- views and audit ------------------------------------------------------------------------------

def rewards_view(state, address: bytes) -> dict:
    """What `mindnode rewards ADDR` shows: accrued per kind, per recent day, and withdrawable
    (including staking rewards not yet realised). Amounts are decimal strings of base units."""
    acct = reward_account(state, address)
    pending = pending_staking(state, address)
    return {
        "mining": str(acct.mining),
        "staking": str(acct.staking + pending),
        "staking_unrealised": str(pending),
        "utilisation": str(acct.utilisation),
        "withdrawable": str(accrual.withdrawable(acct) + pending),
        "withdrawn": str(acct.withdrawn),
        "days": [{"day": h.day, "mining": str(h.mining), "staking": str(h.staking),
                  "utilisation": str(h.utilisation)} for h in acct.history],
    }


def audit_economics(state) -> dict[str, int]:
    """Full scan (tests, tools): the module accounts hold at least what the records say is owed."""
    accrued = sum(accrual.withdrawable(accrual.RewardAccount.decode(v) if isinstance(v, bytes) else v)
                  for _, v in state.iter_prefix(b"Er"))
    outstanding = sum((ValidatorRewards.decode(v) if isinstance(v, bytes) else v).outstanding
                      for _, v in state.iter_prefix(b"Ev"))
    escrow, out_bal = state.account(ESCROW).balance, state.account(OUTSTANDING).balance
    if escrow < accrued or out_bal != outstanding:
        raise EconomicsError(f"reward accounts disagree: escrow {escrow} < accrued {accrued} or "
                             f"outstanding balance {out_bal} != buckets {outstanding}")
    return {"accrued": accrued, "escrow": escrow, "outstanding": outstanding}
