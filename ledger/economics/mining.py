"""The daily mining reward (white paper 7.2.1) as an exact integer rule.

Units: amounts in NMT base units (10**18 per NMT); value and prices in integer micro-USD;
rates in basis points (10_000 = 100%).

Issue of day d::

    VC      = sum over QUALIFIED providers of value_per_hour(class) * hours_online   [micro-USD]
    avg     = price_sum / price_count                                              [micro-USD/NMT]
    B       = balancing_coefficient_bps / 10_000
    issued  = min(VC / B, cap * avg) / avg                                          [NMT]
            = min(cap, floor(VC * price_count * 10**18 * 10_000 / (balancing_coefficient_bps * price_sum)))

(one floor, on the exact rational: cap * avg / avg is the cap exactly). `cap` is the day's mining
cap from the allocation table (`ledger.economics.schedule.pool_daily_cap`).

Share of machine i::

    w_i   = class_weight * bandwidth_factor_bps
    p_i   = penalty_bps (below), in 0..10_000
    pay_i = floor(issued * w_i * p_i / sum(w * p))

Penalty (documented formula, all floors)::

    p_i = 0                                       if not qualified (<= 5 hours) or it dropped out of
                                                  a job and made it fail that day
    p_i = uptime_bps * reliability_bps * work_bps // 10_000**2   otherwise, where
      uptime_bps      = 10_000 * hours_online // 24            (24 h online = 100%)
      reliability_bps = 10_000 * (1 + jobs_done) // (1 + jobs_done + jobs_left)
                        (jobs_left: jobs it left early that still finished)
      work_bps        = max(0, 10_000 - failed_work * failed_work_penalty_bps)
                        (failed_work: its work units that failed verification that day)

Where the rest goes: `cap - sum(pay)` stays in the mining pool: both the unissued part
(`cap - issued`, when VC/B binds or no price is known) and the rounding dust (`issued - sum(pay)`,
also all of `issued` when every qualified machine has p = 0). Nothing is created or lost.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ledger.economics.days import HOURS_PER_DAY
from ledger.economics.errors import EconomicsError
from ledger.economics.uptime import hours_online, qualifies
from ledger.genesis import NMT, HardwareClass, Params

BPS = 10_000


@dataclass(frozen=True)
class ProviderDay:
    """What the state knows of one provider for one day (inputs of the mining rule)."""

    address: bytes
    hardware_class: str
    bandwidth_kbps: int
    hour_mask: int                  # 24-bit mask of hours online (from uptime entries)
    jobs_done: int = 0              # jobs it worked on that finished, that day
    jobs_left: int = 0              # jobs it left early that still finished, that day
    failed_work: int = 0            # its work units failing verification, that day
    dropped_job_failed: bool = False  # it disconnected mid-job and the job failed: no mining reward


@dataclass(frozen=True)
class MiningSettlement:
    """The mining outcome of one day. Conservation: cap == paid + retained."""

    day: int
    cap: int                         # base units unlocked into the mining pool for the day
    vc: int                          # total daily VC, micro-USD
    price_sum: int
    price_count: int
    issued: int                      # base units issued to miners before per-machine rounding
    vc_binding: bool                 # True when VC/B (not the cap) set `issued`
    payouts: tuple[tuple[bytes, int], ...]  # (address, amount > 0), ascending address
    paid: int                        # sum of payouts
    dust: int                        # issued - paid (rounding, or nobody with p > 0)
    retained: int                    # cap - paid: stays in the mining pool


def hardware_class(params: Params, name: str) -> HardwareClass:
    for hc in params.hardware_classes:
        if hc.name == name:
            return hc
    known = ", ".join(h.name for h in params.hardware_classes)
    raise EconomicsError(f"unknown hardware class {name!r} (genesis knows: {known})")


def bandwidth_factor_bps(params: Params, kbps: int) -> int:
    """The bandwidth factor: the first tier (from the top) whose `min_kbps` the machine meets."""
    if type(kbps) is not int or kbps < 0:
        raise EconomicsError(f"bandwidth must be a non-negative integer kbps, got {kbps!r}")
    for tier in sorted(params.bandwidth_tiers, key=lambda t: -t.min_kbps):
        if kbps >= tier.min_kbps:
            return tier.factor_bps
    return 0


def machine_weight(params: Params, pd: ProviderDay) -> int:
    """w_i = class weight x bandwidth factor (bps)."""
    return hardware_class(params, pd.hardware_class).weight * bandwidth_factor_bps(params, pd.bandwidth_kbps)


def penalty_bps(params: Params, pd: ProviderDay) -> int:
    """p_i in basis points by the formula in the module docstring."""
    for name in ("jobs_done", "jobs_left", "failed_work"):
        v = getattr(pd, name)
        if type(v) is not int or v < 0:
            raise EconomicsError(f"{name} must be a non-negative integer, got {v!r}")
    if pd.dropped_job_failed or not qualifies(pd.hour_mask, params):
        return 0
    uptime = BPS * hours_online(pd.hour_mask) // HOURS_PER_DAY
    reliability = BPS * (1 + pd.jobs_done) // (1 + pd.jobs_done + pd.jobs_left)
    work = max(0, BPS - pd.failed_work * params.failed_work_penalty_bps)
    return uptime * reliability * work // (BPS * BPS)


def daily_vc(params: Params, providers: Iterable[ProviderDay]) -> int:
    """Total daily VC in micro-USD: value per hour x hours online, over qualified providers."""
    return sum(hardware_class(params, p.hardware_class).value_per_hour * hours_online(p.hour_mask)
               for p in providers if qualifies(p.hour_mask, params))


def issued_amount(vc: int, cap: int, price_sum: int, price_count: int, balancing_bps: int) -> tuple[int, bool]:
    """(issued base units, VC/B binding?) = min(cap, floor(VC/B / avg_price)), exact rational."""
    if balancing_bps <= 0:
        raise EconomicsError("the balancing coefficient B must be positive")
    if cap < 0 or vc < 0 or price_sum < 0 or price_count < 0:
        raise EconomicsError("mining inputs must be non-negative")
    if price_sum == 0 or price_count == 0:
        return 0, False
    by_vc = vc * price_count * NMT * BPS // (balancing_bps * price_sum)
    return (by_vc, True) if by_vc <= cap else (cap, False)


def settle_mining(params: Params, day: int, cap: int, price_sum: int, price_count: int,
                  providers: Iterable[ProviderDay]) -> MiningSettlement:
    """The mining payouts of `day`. Providers may come in any order; each address at most once."""
    providers = tuple(providers)
    seen: set[bytes] = set()
    for p in providers:
        if p.address in seen:
            raise EconomicsError(f"provider {p.address.hex()} appears twice in one day's settlement")
        seen.add(p.address)
    vc = daily_vc(params, providers)
    issued, vc_binding = issued_amount(vc, cap, price_sum, price_count, params.balancing_coefficient_bps)
    eff = {p.address: machine_weight(params, p) * penalty_bps(params, p) for p in providers}
    total = sum(eff.values())
    payouts: list[tuple[bytes, int]] = []
    if total > 0:
        for addr in sorted(eff):
            amount = issued * eff[addr] // total
            if amount:
                payouts.append((addr, amount))
    paid = sum(a for _, a in payouts)
    return MiningSettlement(day=day, cap=cap, vc=vc, price_sum=price_sum, price_count=price_count,
                            issued=issued, vc_binding=vc_binding, payouts=tuple(payouts), paid=paid,
                            dust=issued - paid, retained=cap - paid)
