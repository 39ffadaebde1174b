"""The chain's running random beacon: what "deterministic from a later block hash" draws from.

Advanced at the start of every block h, before any transaction runs:

    seed_h = H("mindnode/jobs-beacon", seed_{h-1} || height || parent_hash)

`parent_hash` is the hash of block h-1 (`BlockContext.parent_hash`): it commits to that block's
header (proposer, timestamp, transactions, state root) and so to the whole chain before it. The
block's own hash cannot be used: it commits to the state root, which depends on these draws.

What the proposer of block h can still do: nothing to seed_h itself (its timestamp, proposer and
transactions are not inputs; they become inputs of seed_{h+1} through its hash). So the party
that can steer the draws of block h is the proposer of block h-1: it can grind its own block's
hash (try timestamps within the header rules, the header's `extra` bytes, transaction order) and
publish the variant whose successor draws it likes; and any proposer can withhold its block (skip
its slot: the out-of-turn sealer's block then has a different hash) or leave a transaction out to
move an event to another height. Every node computes the same value; nobody knows seed_h before
block h-1 is sealed. Removing the grinding needs a VRF or commit-reveal among the validators
(ledger/JOBS.md, "Caveats").
"""

from __future__ import annotations

from ledger.hashing import tagged_hash
from ledger.jobs.records import BEACON_KEY, Beacon, load, store

GENESIS_SEED = tagged_hash(b"mindnode/jobs-beacon", b"genesis")


def next_seed(prev: bytes, height: int, parent_hash: bytes) -> bytes:
    """The beacon step (pure: the tests recompute it from the blocks)."""
    if len(parent_hash) != 32:
        raise ValueError("the parent hash is 32 bytes")
    return tagged_hash(b"mindnode/jobs-beacon", prev + height.to_bytes(8, "big") + parent_hash)


def advance(state, height: int, parent_hash: bytes) -> bytes:
    cur = load(state, BEACON_KEY, Beacon)
    seed = next_seed(cur.seed if cur else GENESIS_SEED, height, parent_hash)
    store(state, BEACON_KEY, Beacon(seed=seed, height=height))
    return seed


def current(state) -> bytes:
    cur = load(state, BEACON_KEY, Beacon)
    return cur.seed if cur else GENESIS_SEED


def draw(seed: bytes, *parts: bytes) -> int:
    """A 256-bit integer drawn from `seed` for the purpose named by `parts`."""
    return int.from_bytes(tagged_hash(b"mindnode/jobs-draw", seed + b"".join(parts)), "big")
