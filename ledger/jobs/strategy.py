"""Assignment strategies: which offers become a job's workers when its offer window closes.

Pluggable: a strategy is a function registered under a name with `@strategy("name")`; a job names
its strategy at submit (unknown names are refused), and block execution calls it from the
end-block hook, so it must be deterministic: integers only, ties broken by a beacon draw and then
the address. Every node runs the same function on the same inputs and gets the same workers.

The default (`"default"`) picks greedily, one worker at a time, the candidate with the highest

    total = 2 * fit + 3 * reputation + 3 * price + 2 * latency            (each part in bps)

* fit: 10_000 when the provider's hardware class is exactly the class asked for, 1_500 less per
  class above it (floor 4_000): a big GPU on a small job is wasted;
* reputation: the provider's reputation (0..10_000);
* price: 10_000 * cheapest candidate price / this price (10_000 for a free offer);
* latency: keep a job's workers close: 10_000 when the offer's zone equals a zone already chosen
  for the job (or nothing is chosen yet), 5_000 for another zone, 7_500 when the zone is unknown.

The same function picks a replacement for a missing worker (`count=1`, with the zones of the
remaining workers as `chosen_zones`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ledger.jobs import beacon
from ledger.jobs.errors import JobError
from ledger.jobs.providers import class_rank
from ledger.jobs.records import Offer, Provider


@dataclass(frozen=True)
class Candidate:
    provider: bytes
    offer: Offer
    record: Provider


Strategy = Callable[..., list[bytes]]
STRATEGIES: dict[str, Strategy] = {}


def strategy(name: str) -> Callable[[Strategy], Strategy]:
    def deco(fn: Strategy) -> Strategy:
        STRATEGIES[name] = fn
        return fn

    return deco


def check_strategy(name: str) -> None:
    if name not in STRATEGIES:
        raise JobError(f"unknown assignment strategy {name!r} (known: {', '.join(sorted(STRATEGIES))})")


def choose(name: str, params, job_id: int, min_class: str, candidates: Sequence[Candidate], count: int,
           seed: bytes, chosen_zones: Sequence[str] = ()) -> list[bytes]:
    check_strategy(name)
    return STRATEGIES[name](params, job_id, min_class, list(candidates), count, seed, list(chosen_zones))


def offer_score(params, min_class: str, c: Candidate, cheapest: int, chosen_zones: Sequence[str]) -> int:
    over = class_rank(params, c.record.hardware_class) - class_rank(params, min_class)
    fit = max(4_000, 10_000 - 1_500 * over)
    rep = c.record.reputation
    price = 10_000 if c.offer.price == 0 else 10_000 * cheapest // c.offer.price
    if not chosen_zones:
        lat = 10_000
    elif not c.offer.zone:
        lat = 7_500
    else:
        lat = 10_000 if c.offer.zone in chosen_zones else 5_000
    return 2 * fit + 3 * rep + 3 * price + 2 * lat


@strategy("default")
def weighted(params, job_id: int, min_class: str, candidates: list[Candidate], count: int, seed: bytes,
             chosen_zones: list[str]) -> list[bytes]:
    picked: list[bytes] = []
    zones = list(chosen_zones)
    pool = list(candidates)
    if not pool:
        return picked
    cheapest = min(c.offer.price for c in pool)
    jid = job_id.to_bytes(8, "big")
    while pool and len(picked) < count:
        best = max(pool, key=lambda c: (offer_score(params, min_class, c, cheapest, zones),
                                        beacon.draw(seed, b"assign", jid, c.provider), c.provider))
        pool.remove(best)
        picked.append(best.provider)
        if best.offer.zone and best.offer.zone not in zones:
            zones.append(best.offer.zone)
    return picked


@strategy("cheapest")
def cheapest_first(params, job_id: int, min_class: str, candidates: list[Candidate], count: int, seed: bytes,
                   chosen_zones: list[str]) -> list[bytes]:
    """Lowest price first, then higher reputation, then address: the simplest alternative."""
    ranked = sorted(candidates, key=lambda c: (c.offer.price, -c.record.reputation, c.provider))
    return [c.provider for c in ranked[:count]]
