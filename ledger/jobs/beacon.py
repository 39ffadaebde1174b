"""The chain's running random beacon: what "deterministic from a later block hash" draws from.

`BlockContext` carries no block or parent hash (execution happens before the block's hash
exists), so the jobs rules keep their own chained beacon, advanced at the start of every block:

    seed_h = H("mindnode/jobs-beacon", seed_{h-1} || height || timestamp_ms || proposer)

Every node computes the same value; nobody knows seed_h before block h is proposed. Caveat (see
JOBS.md): the proposer of block h can try a few timestamps within the header rules to steer the
draws of that block; a parent hash in the context (one field in `ledger.execution`) would remove
that, and then this module is the only place to change.
"""

from __future__ import annotations

from ledger.hashing import tagged_hash
from ledger.jobs.records import BEACON_KEY, Beacon, load, store

GENESIS_SEED = tagged_hash(b"mindnode/jobs-beacon", b"genesis")


def advance(state, height: int, timestamp_ms: int, proposer: bytes) -> bytes:
    cur = load(state, BEACON_KEY, Beacon)
    prev = cur.seed if cur else GENESIS_SEED
    seed = tagged_hash(b"mindnode/jobs-beacon", prev + height.to_bytes(8, "big")
                       + timestamp_ms.to_bytes(8, "big") + proposer)
    store(state, BEACON_KEY, Beacon(seed=seed, height=height))
    return seed


def current(state) -> bytes:
    cur = load(state, BEACON_KEY, Beacon)
    return cur.seed if cur else GENESIS_SEED


def draw(seed: bytes, *parts: bytes) -> int:
    """A 256-bit integer drawn from `seed` for the purpose named by `parts`."""
    return int.from_bytes(tagged_hash(b"mindnode/jobs-draw", seed + b"".join(parts)), "big")
