"""Provider records: what a node lends, at what price, and how far the network trusts it.

A provider registers once (`provider_register`) and updates its record when its benchmark, price
or capacity change (`provider_update`); prices are the provider's own (the white paper's
"decentralized pricing"). The record also becomes the provider's economics mining profile
(hardware class + bandwidth), so the benchmark, not a self-declared class, weighs its mining reward.

Reputation is an integer in [REPUTATION_MIN, REPUTATION_MAX] that only the jobs rules move:
verified work and passed control tasks raise it; failed verification, dropped jobs, expired
assignments and failed control tasks lower it; a client's rating moves it a bounded step.
"""

from __future__ import annotations

import dataclasses

from ledger.economics import ledger_state as econ
from ledger.economics.errors import EconomicsError
from ledger.jobs import rules
from ledger.jobs.errors import JobError
from ledger.jobs.records import SLASH_ACCOUNT, Provider, get_provider, put_provider
from ledger.keys import address_to_text
from ledger.state import LONG_TERM

MAX_SCORE = 10**15


def class_rank(params, name: str) -> int:
    """Index of hardware class `name` in the genesis table (cpu < gpu-consumer < ...)."""
    for i, hc in enumerate(params.hardware_classes):
        if hc.name == name:
            return i
    known = ", ".join(hc.name for hc in params.hardware_classes)
    raise JobError(f"unknown hardware class {name!r} (known: {known})")


def check_offer_fields(params, hardware_class: str, score: int, capacity: int, bandwidth_kbps: int) -> None:
    class_rank(params, hardware_class)
    if not 0 < score <= MAX_SCORE:
        raise JobError(f"benchmark score must be in 1..{MAX_SCORE}, got {score}")
    cap = params.jobs.max_provider_capacity
    if not 1 <= capacity <= cap:
        raise JobError(f"capacity must be 1..{cap} jobs, got {capacity}")
    if not 0 <= bandwidth_kbps <= econ.MAX_BANDWIDTH_KBPS:
        raise JobError(f"bandwidth must be 0..{econ.MAX_BANDWIDTH_KBPS} kbps, got {bandwidth_kbps}")


def register(state, addr: bytes, height: int, *, hardware_class: str, score: int, price: int, capacity: int,
             zone: str, bandwidth_kbps: int) -> Provider:
    if get_provider(state, addr) is not None:
        raise JobError(f"{address_to_text(addr)} is already a registered provider (use provider_update)")
    check_offer_fields(state.params, hardware_class, score, capacity, bandwidth_kbps)
    p = Provider(hardware_class=hardware_class, score=score, price=price, capacity=capacity, zone=zone,
                 bandwidth_kbps=bandwidth_kbps, reputation=state.params.jobs.reputation_start, active_jobs=0, jobs_done=0,
                 jobs_failed=0, controls_passed=0, controls_failed=0, registered_height=height)
    put_provider(state, addr, p)
    _mining_profile(state, addr, hardware_class, bandwidth_kbps)
    return p


def update(state, addr: bytes, *, hardware_class: str, score: int, price: int, capacity: int, zone: str,
           bandwidth_kbps: int) -> Provider:
    cur = get_provider(state, addr)
    if cur is None:
        raise JobError(f"{address_to_text(addr)} is not a registered provider (use provider_register)")
    check_offer_fields(state.params, hardware_class, score, capacity, bandwidth_kbps)
    p = dataclasses.replace(cur, hardware_class=hardware_class, score=score, price=price, capacity=capacity,
                            zone=zone, bandwidth_kbps=bandwidth_kbps)
    put_provider(state, addr, p)
    _mining_profile(state, addr, hardware_class, bandwidth_kbps)
    return p


def _mining_profile(state, addr: bytes, hardware_class: str, bandwidth_kbps: int) -> None:
    try:
        econ.set_mining_profile(state, addr, hardware_class, bandwidth_kbps)
    except EconomicsError as exc:
        raise JobError(str(exc)) from None


def adjust_reputation(state, addr: bytes, delta: int, **counters: int) -> None:
    """Move `addr`'s reputation by `delta` (clamped to the bounds) and add to its counters."""
    p = get_provider(state, addr)
    if p is None:
        return
    rep = min(rules.REPUTATION_MAX, max(rules.REPUTATION_MIN, p.reputation + delta))
    changes = {k: getattr(p, k) + v for k, v in counters.items()}
    put_provider(state, addr, dataclasses.replace(p, reputation=rep, **changes))


def change_active(state, addr: bytes, delta: int) -> None:
    p = get_provider(state, addr)
    if p is not None:
        put_provider(state, addr, dataclasses.replace(p, active_jobs=max(0, p.active_jobs + delta)))


def meets(params, p: Provider, min_class: str, min_score: int) -> bool:
    return class_rank(params, p.hardware_class) >= class_rank(params, min_class) and p.score >= min_score


def slash_provider(state, addr: bytes, bps: int) -> int:
    """Slash `bps` of every stake entry `addr` holds (as a staker, on any validator), each floored on
    its own like the consensus penalties, through `State.change_stake` (so F1 realises first); the
    slashed tokens go to the staking pool (or stay in the SLASH_ACCOUNT if the chain has none).
    Returns the amount slashed."""
    from ledger.economics.schedule import STAKING

    total = 0
    for key, st in list(state.iter_prefix(b"s" + addr)):
        validator, kind = key[33:65], key[65:66]
        cut = st.amount * bps // 10_000
        if not cut:
            continue
        state.change_stake(addr, validator, kind, -cut, st.lock_until_ms if kind == LONG_TERM else 0)
        total += cut
    if total:
        state.credit(SLASH_ACCOUNT, total)
        if state.pool(STAKING) is not None:
            state.return_to_pool(STAKING, total, SLASH_ACCOUNT)
    return total
