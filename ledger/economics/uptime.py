"""Heartbeats and the uptime qualification rule of the mining reward (white paper 7.2.1).

A provider proves it was online by signing a tiny heartbeat once per chain hour; the p2p layer
gossips them (a `Heartbeat` decodes from at most `MAX_HEARTBEAT_BYTES`). The proposer writes the
heartbeats it has seen into its block compactly: ONE `UptimeEntry` per provider and day carrying a
24-bit mask of the hours it adds plus those hours' signatures, so every node re-verifies that each
hour bit was really signed by the provider (a proposer cannot invent uptime for a friend). The
state ORs the masks into its per-(provider, day) record; a provider qualifies for a day when it
was online in MORE than `Params.qualifying_hours` (5) distinct hours of it - the white paper's
"more than 5 non-consecutive hours in one 24 hour period".

A block may only record hours of its own day that have already begun, so a day's uptime is final
when the first block of the next day settles it. Heartbeats of the last hour that miss the day's
last block are lost; a provider online 6+ hours loses at most one of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Annotated

from ledger.codec import Bytes, ListOf, Record, Str, UInt, encode, record
from ledger.economics.days import HOURS_PER_DAY, ChainClock
from ledger.economics.errors import InvalidHeartbeat
from ledger.errors import DecodeError
from ledger.genesis import Params
from ledger.hashing import tagged_hash
from ledger.keys import PrivateKey, verify

HEARTBEAT_TAG = b"mindnode/heartbeat"
FULL_MASK = (1 << HOURS_PER_DAY) - 1
#: Upper bound on an encoded heartbeat read from the network.
MAX_HEARTBEAT_BYTES = 256


@record
class HeartbeatBody(Record):
    """What a provider signs: the chain, itself, and the (day, hour) it is online in."""

    chain_id: Annotated[str, Str(64)]
    provider: Annotated[bytes, Bytes(32)]
    day: Annotated[int, UInt(32)]
    hour: Annotated[int, UInt(8)]


@record
class Heartbeat(Record):
    """A signed heartbeat as gossiped on the `heartbeat` topic."""

    chain_id: Annotated[str, Str(64)]
    provider: Annotated[bytes, Bytes(32)]
    day: Annotated[int, UInt(32)]
    hour: Annotated[int, UInt(8)]
    signature: Annotated[bytes, Bytes(64)]


@record
class UptimeEntry(Record):
    """Hours of `day` newly recorded for `provider` in one block.

    `signatures` holds the provider's heartbeat signature of every hour set in `mask`, in
    ascending hour order.
    """

    provider: Annotated[bytes, Bytes(32)]
    day: Annotated[int, UInt(32)]
    mask: Annotated[int, UInt(HOURS_PER_DAY)]
    signatures: Annotated[tuple, ListOf(Bytes(64), HOURS_PER_DAY)]


def heartbeat_message(chain_id: str, provider: bytes, day: int, hour: int) -> bytes:
    """The domain-tagged digest a provider signs for (day, hour)."""
    body = HeartbeatBody(chain_id=chain_id, provider=provider, day=day, hour=hour)
    return tagged_hash(HEARTBEAT_TAG, encode(body))


def sign_heartbeat(key: PrivateKey, chain_id: str, day: int, hour: int) -> Heartbeat:
    if not 0 <= hour < HOURS_PER_DAY:
        raise InvalidHeartbeat(f"hour must be 0..23, got {hour}")
    sig = key.sign(heartbeat_message(chain_id, key.address, day, hour))
    return Heartbeat(chain_id=chain_id, provider=key.address, day=day, hour=hour, signature=sig)


def decode_heartbeat(data: bytes) -> Heartbeat:
    """Decode a gossiped heartbeat, bounded and strict; any defect is an InvalidHeartbeat."""
    try:
        return Heartbeat.decode(data, max_size=MAX_HEARTBEAT_BYTES)
    except DecodeError as exc:
        raise InvalidHeartbeat(f"malformed heartbeat: {exc}") from None


def check_heartbeat(hb: Heartbeat, chain_id: str, clock: ChainClock, now: int) -> None:
    """Gossip validation: right chain, hour 0..23, an hour of today that has begun, good signature.

    `now` is the validating node's view of the chain time (its head's timestamp or its clock);
    heartbeats for another day or a future hour are useless to a proposer and are dropped.
    """
    if hb.chain_id != chain_id:
        raise InvalidHeartbeat(f"heartbeat is for chain {hb.chain_id!r}, not {chain_id!r}")
    if hb.hour >= HOURS_PER_DAY:
        raise InvalidHeartbeat(f"heartbeat hour {hb.hour} is not 0..23")
    day, hour = clock.hour_of(now)
    if hb.day != day or hb.hour > hour:
        raise InvalidHeartbeat(f"heartbeat for day {hb.day} hour {hb.hour} is not of the current day {day} "
                               f"up to hour {hour}")
    if not verify(hb.provider, heartbeat_message(chain_id, hb.provider, hb.day, hb.hour), hb.signature):
        raise InvalidHeartbeat("heartbeat signature does not verify for its provider")


def hours_in(mask: int) -> tuple[int, ...]:
    """The hours set in `mask`, ascending."""
    return tuple(h for h in range(HOURS_PER_DAY) if mask >> h & 1)


def hours_online(mask: int) -> int:
    """Distinct hours online in a day's mask."""
    return (mask & FULL_MASK).bit_count()


def qualifies(mask: int, params: Params) -> bool:
    """Online in MORE than `qualifying_hours` distinct hours of the day (6 of 24 by default)."""
    return hours_online(mask) > params.qualifying_hours


def apply_uptime_entries(entries: Iterable[UptimeEntry], *, chain_id: str, clock: ChainClock,
                         block_time: int, recorded: Mapping[tuple[bytes, int], int],
                         params: Params) -> dict[tuple[bytes, int], int]:
    """Validate a block's uptime entries against the masks already `recorded` in the state and return
    the updated masks of the (provider, day) keys the block touches (the state ORs nothing itself).

    Rules, each an InvalidHeartbeat that makes the block invalid: at most
    `max_uptime_entries_per_block` entries; at most one per (provider, day); the entry's day is the
    block's day; its mask is non-empty, adds only hours not yet recorded, and no hour after the
    block's hour; one valid signature per added hour, ascending. Work is bounded by 24 signature
    checks per entry.
    """
    entries = tuple(entries)
    if len(entries) > params.max_uptime_entries_per_block:
        raise InvalidHeartbeat(f"block carries {len(entries)} uptime entries, at most "
                               f"{params.max_uptime_entries_per_block} allowed")
    day, hour = clock.hour_of(block_time)
    out: dict[tuple[bytes, int], int] = {}
    for i, e in enumerate(entries):
        key = (e.provider, e.day)
        where = f"uptime entry {i}"
        if key in out:
            raise InvalidHeartbeat(f"{where}: a second entry for the same provider and day")
        if e.day != day:
            raise InvalidHeartbeat(f"{where}: day {e.day} is not the block's day {day}")
        if e.mask == 0 or e.mask > FULL_MASK:
            raise InvalidHeartbeat(f"{where}: empty or oversized hour mask")
        if e.mask >> (hour + 1):
            raise InvalidHeartbeat(f"{where}: records an hour after the block's hour {hour}")
        before = recorded.get(key, 0)
        if e.mask & before:
            raise InvalidHeartbeat(f"{where}: records hours already on chain")
        hours = hours_in(e.mask)
        if len(e.signatures) != len(hours):
            raise InvalidHeartbeat(f"{where}: {len(hours)} hours but {len(e.signatures)} signatures")
        for h, sig in zip(hours, e.signatures, strict=True):
            if not verify(e.provider, heartbeat_message(chain_id, e.provider, e.day, h), sig):
                raise InvalidHeartbeat(f"{where}: signature of hour {h} does not verify")
        out[key] = before | e.mask
    return out


def build_uptime_entries(heartbeats: Iterable[Heartbeat], *, chain_id: str, clock: ChainClock,
                         block_time: int, recorded: Mapping[tuple[bytes, int], int],
                         params: Params) -> tuple[UptimeEntry, ...]:
    """What a proposer puts in its block: the seen heartbeats of the block's day (already hour-checked
    or not: each is re-verified here) that are not yet on chain, grouped per provider, ordered by
    provider address, capped at `max_uptime_entries_per_block`. Bad heartbeats are skipped."""
    day, hour = clock.hour_of(block_time)
    sigs: dict[bytes, dict[int, bytes]] = {}
    for hb in heartbeats:
        if hb.chain_id != chain_id or hb.day != day or hb.hour > hour:
            continue
        if recorded.get((hb.provider, day), 0) >> hb.hour & 1:
            continue
        have = sigs.setdefault(hb.provider, {})
        if hb.hour in have:
            continue
        if verify(hb.provider, heartbeat_message(chain_id, hb.provider, day, hb.hour), hb.signature):
            have[hb.hour] = hb.signature
    out = []
    for provider in sorted(sigs):
        have = sigs[provider]
        if not have:
            continue
        hours = sorted(have)
        mask = sum(1 << h for h in hours)
        out.append(UptimeEntry(provider=provider, day=day, mask=mask,
                               signatures=tuple(have[h] for h in hours)))
        if len(out) == params.max_uptime_entries_per_block:
            break
    return tuple(out)
