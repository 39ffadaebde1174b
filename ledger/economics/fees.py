"""Utilisation fees of a job (white paper 7.2.2): the providers' share and the mining pool's.

A finished job's fee (what its escrow pays for the work done) splits by the job's mode:

    to_providers = fee * provider_bps // 10_000     sync 5_000 (50%), async 2_000 (20%)
    pay_i        = to_providers * samples_i // sum(samples)   (shared by work done)
    to_pool      = fee - sum(pay_i)   -> the mining pool ("returned to contract without increasing
                                          the circulating supply"): the 50% / 80% plus rounding dust

A provider that dropped out and made the job fail still gets its share for the samples it
processed (7.2.2 "Sudden disconnection"); it only loses that day's MINING reward (`mining`). When
nobody processed a sample the whole fee goes to the pool. Transaction (gas) fees are not here:
they go to the block's proposer in the state machine.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ledger.economics.errors import EconomicsError
from ledger.genesis import Params

BPS = 10_000
SYNC = "sync"
ASYNC = "async"
MODES = (SYNC, ASYNC)


@dataclass(frozen=True)
class FeeSplit:
    """Conservation: fee == paid + to_pool."""

    fee: int
    mode: str
    to_providers: int
    payouts: tuple[tuple[bytes, int], ...]   # (provider, amount > 0), ascending address
    paid: int
    to_pool: int


def provider_share_bps(params: Params, mode: str) -> int:
    if mode == SYNC:
        return params.sync_provider_fee_bps
    if mode == ASYNC:
        return params.async_provider_fee_bps
    raise EconomicsError(f"unknown job mode {mode!r} (one of {', '.join(MODES)})")


def split_utilisation_fee(params: Params, fee: int, mode: str,
                          work: Iterable[tuple[bytes, int]]) -> FeeSplit:
    """Split `fee` base units of a job in `mode` among `work` = (provider, samples processed)."""
    if type(fee) is not int or fee < 0:
        raise EconomicsError(f"fee must be a non-negative integer, got {fee!r}")
    bps = provider_share_bps(params, mode)
    samples: dict[bytes, int] = {}
    for addr, n in work:
        if type(n) is not int or n < 0:
            raise EconomicsError(f"samples processed must be a non-negative integer, got {n!r}")
        if addr in samples:
            raise EconomicsError(f"provider {addr.hex()} listed twice for one job")
        samples[addr] = n
    to_providers = fee * bps // BPS
    total = sum(samples.values())
    payouts: list[tuple[bytes, int]] = []
    if total > 0:
        for addr in sorted(samples):
            amount = to_providers * samples[addr] // total
            if amount:
                payouts.append((addr, amount))
    paid = sum(a for _, a in payouts)
    return FeeSplit(fee=fee, mode=mode, to_providers=to_providers, payouts=tuple(payouts),
                    paid=paid, to_pool=fee - paid)
