"""Peer scores and temporary bans.

Why our own score beside GossipSub's: penalties come from every protocol (invalid gossip, oversized
or garbage frames, request timeouts, corrupt blob chunks) and from the application
(``Node.report``), and a ban must cut the peer off everywhere -- connection, gossip, streams --
not only in the gossip mesh.  Scores start at 0, penalties subtract, and scores recover towards 0
at ``recovery_per_s`` so that an occasional timeout is forgiven.  At or below ``ban_threshold``
the peer is banned for ``ban_seconds``; the node then disconnects it and refuses it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("mindnode.p2p")

# Penalties used by the p2p layer itself (the application picks its own for ``report``).
PENALTY_INVALID_GOSSIP = 25.0
PENALTY_PROTOCOL = 30.0
PENALTY_OVERSIZE = 50.0
PENALTY_TIMEOUT = 5.0
PENALTY_CORRUPT_DATA = 50.0


@dataclass
class _Entry:
    score: float
    at: float
    banned_until: float = 0.0


class PeerScores:
    """Score book keyed by peer id string; ``on_ban(peer_id, reason)`` fires once per ban."""

    def __init__(self, *, ban_threshold: float = -100.0, ban_seconds: float = 600.0,
                 recovery_per_s: float = 0.5, clock: Callable[[], float] = time.monotonic,
                 on_ban: Callable[[str, str], None] | None = None) -> None:
        if ban_threshold >= 0:
            raise ValueError("ban_threshold must be negative")
        self.ban_threshold = ban_threshold
        self.ban_seconds = ban_seconds
        self.recovery_per_s = recovery_per_s
        self.clock = clock
        self.on_ban = on_ban
        self._book: dict[str, _Entry] = {}

    def _entry(self, peer_id: str) -> _Entry:
        now = self.clock()
        e = self._book.get(peer_id)
        if e is None:
            e = self._book[peer_id] = _Entry(0.0, now)
        elif e.score < 0:
            e.score = min(0.0, e.score + (now - e.at) * self.recovery_per_s)
        e.at = now
        return e

    def score(self, peer_id: str) -> float:
        return self._entry(peer_id).score

    def penalise(self, peer_id: str, penalty: float, reason: str) -> bool:
        """Lower the score; returns True if this penalty caused a ban."""
        if penalty < 0:
            raise ValueError("penalty must be >= 0")
        e = self._entry(peer_id)
        e.score -= penalty
        log.info("peer %s penalised %.1f (%s): score %.1f", peer_id, penalty, reason, e.score)
        if e.score <= self.ban_threshold and not self.is_banned(peer_id):
            e.banned_until = self.clock() + self.ban_seconds
            log.warning("peer %s banned for %.0f s: %s", peer_id, self.ban_seconds, reason)
            if self.on_ban is not None:
                self.on_ban(peer_id, reason)
            return True
        return False

    def is_banned(self, peer_id: str) -> bool:
        e = self._book.get(peer_id)
        if e is None or e.banned_until == 0.0:
            return False
        if self.clock() >= e.banned_until:
            e.banned_until = 0.0
            e.score = 0.0  # a served ban wipes the slate
            return False
        return True

    def banned(self) -> list[str]:
        return [p for p in list(self._book) if self.is_banned(p)]
