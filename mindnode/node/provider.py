"""The node as a provider of compute: heartbeats on the ``heartbeat`` topic, the pool of heartbeats a
proposer records in its blocks, and the mining profile a provider declares at start.

The rules (what a heartbeat is, what a block may record, who qualifies) live in
`ledger.economics.uptime` / `ledger.economics.ledger_state` (ledger/ECONOMICS.md); this module only
decides what to forward and keep:

* **Gossip validation** (`classify`): a heartbeat is decoded bounded (256 bytes) and its chain and
  signature checked: a defect is REJECT (the forwarder misbehaves). Timing is checked against the
  node's *clock*, not its head: the head lags by up to a slot (and by much more while syncing), and
  an honest heartbeat must never cost its forwarder score. One of the current day in an hour that
  has begun is kept (ACCEPT); one just outside that (clock skew, late delivery at an hour or day
  boundary, within `timing_slack_s`) is dropped quietly (IGNORE); anything further off (a replay of
  an old day, a far-future hour) is REJECT. Heartbeats of providers with no `mining_profile` on
  chain are IGNOREd: they earn nothing (settlement skips them), and requiring the profile makes a
  flood of heartbeats from fresh keys cost one transaction per key.
* **The pool** (`HeartbeatPool`) keeps at most one heartbeat per (provider, hour) of the current
  day, bounded in providers; it is emptied when the day changes. The proposer hands it to
  `ledger_state.uptime_entries_for_block`, which drops hours already on chain.
* **The relay account**: the proposer signs its `uptime` transaction with a key derived from its
  node key (`relay_key`), not the node key itself, so the zero-fee relay transactions never take a
  nonce that a user's `mindnode tx ...` with the node key has just read from the API.
* **Hardware class** (`detect_hardware_class`): a quick look at the machine (an NVIDIA driver's
  GPU list) without importing torch; the jobs issue replaces it with a measured benchmark. The
  bandwidth is self-declared (``--bandwidth-kbps``).
"""

from __future__ import annotations

import logging
from pathlib import Path

from ledger.economics.days import ChainClock
from ledger.economics.errors import InvalidHeartbeat
from ledger.economics.uptime import Heartbeat, check_heartbeat, decode_heartbeat, heartbeat_message
from ledger.hashing import tagged_hash
from ledger.keys import PrivateKey, verify
from mindnode.node.network import ACCEPT, IGNORE, REJECT, Validation

log = logging.getLogger("mindnode.node")

RELAY_TAG = b"mindnode/uptime-relay"
#: Providers whose heartbeats one node keeps per day (the ledger caps a block at 4,096 entries).
MAX_POOL_PROVIDERS = 4096
#: Self-declared bandwidth when none is given: 100 Mbit/s (the top bandwidth tier starts above it).
DEFAULT_BANDWIDTH_KBPS = 100_000



def relay_key(node_key: PrivateKey) -> PrivateKey:
    """The account a proposer relays uptime from (deterministic: the same after a restart)."""
    return PrivateKey(tagged_hash(RELAY_TAG, node_key.seed))


def timing_slack_s(clock: ChainClock) -> int:
    """How far outside "an hour of today that has begun" an honest heartbeat may arrive: two chain
    hours, at least 10 s (clock skew between machines, gossip delay on a loaded host)."""
    return max(10, 2 * clock.day_s // 24)


#: However short the chain's days (devnets use minutes), a heartbeat only this old is never called a
#: replay: a loaded forwarder or a gossip cache can deliver one that late to a node that just joined
#: (seen on a 120 s-day devnet: a late joiner banned its bootnode within a second for forwarding
#: 147 s old heartbeats). Older than a day and this floor (plus the slack) is REJECT.
STALE_FLOOR_S = 300


def classify(data: bytes, *, chain_id: str, clock: ChainClock,
             now_s: int) -> tuple[Validation, Heartbeat | None, str]:
    """(verdict, heartbeat, reason) for a gossiped heartbeat; see the module docstring."""
    try:
        hb = decode_heartbeat(data)
    except InvalidHeartbeat as exc:
        return REJECT, None, str(exc)
    if hb.chain_id != chain_id:
        return REJECT, hb, f"heartbeat is for chain {hb.chain_id!r}"
    try:
        check_heartbeat(hb, chain_id, clock, now_s)
        return ACCEPT, hb, ""
    except InvalidHeartbeat as exc:
        reason = str(exc)
    if hb.hour >= 24 or "signature" in reason:
        return REJECT, hb, reason
    start = clock.hour_start(hb.day, hb.hour)
    slack = timing_slack_s(clock)
    if start - now_s > slack or now_s - start > max(clock.day_s, STALE_FLOOR_S) + slack:
        return REJECT, hb, f"heartbeat for day {hb.day} hour {hb.hour} is far from the current time"
    # a little early or late: honest if its signature is good, but of no use to a proposer now
    if not verify(hb.provider, heartbeat_message(chain_id, hb.provider, hb.day, hb.hour), hb.signature):
        return REJECT, hb, "heartbeat signature does not verify for its provider"
    return IGNORE, hb, reason


class HeartbeatPool:
    """Heartbeats of the current day seen on gossip (or made here), one per (provider, hour)."""

    def __init__(self, max_providers: int = MAX_POOL_PROVIDERS):
        self.max_providers = max_providers
        self.day: int | None = None
        self._by_provider: dict[bytes, dict[int, Heartbeat]] = {}

    def __len__(self) -> int:
        return sum(len(h) for h in self._by_provider.values())

    def add(self, hb: Heartbeat) -> bool:
        """Keep `hb`; False when it is a duplicate, of another day than the pool's newest, or the
        pool is full of other providers. A heartbeat of a newer day starts a new pool."""
        if self.day is None or hb.day > self.day:
            self.day = hb.day
            self._by_provider.clear()
        elif hb.day < self.day:
            return False
        hours = self._by_provider.get(hb.provider)
        if hours is None:
            if len(self._by_provider) >= self.max_providers:
                return False
            hours = self._by_provider[hb.provider] = {}
        if hb.hour in hours:
            return False
        hours[hb.hour] = hb
        return True

    def heartbeats(self, day: int) -> list[Heartbeat]:
        if day != self.day:
            return []
        return [hb for hours in self._by_provider.values() for hb in hours.values()]

    def hours_of(self, provider: bytes) -> list[int]:
        return sorted(self._by_provider.get(provider, {}))


def detect_hardware_class() -> str:
    """A quick, torch-free guess of this machine's hardware class: ``gpu-consumer`` when the NVIDIA
    driver lists a GPU, else ``cpu``. Finer classes need the jobs issue's benchmark."""
    gpus = Path("/proc/driver/nvidia/gpus")
    try:
        if gpus.is_dir() and any(gpus.iterdir()):
            return "gpu-consumer"
    except OSError:
        pass
    return "cpu"
