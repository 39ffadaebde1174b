"""Scores fall with penalties, recover with time, and a ban expires."""

import pytest

from p2p.scoring import PeerScores


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def test_ban_at_threshold_and_expiry():
    clock, bans = Clock(), []
    s = PeerScores(ban_threshold=-100, ban_seconds=60, recovery_per_s=0.0, clock=clock,
                   on_ban=lambda p, r: bans.append((p, r)))
    assert not s.penalise("A", 60, "junk")
    assert not s.is_banned("A")
    assert s.penalise("A", 40, "more junk")
    assert s.is_banned("A") and bans == [("A", "more junk")]
    assert not s.penalise("A", 50, "while banned")  # no second ban event
    clock.t += 61
    assert not s.is_banned("A") and s.score("A") == 0.0


def test_scores_recover_towards_zero():
    clock = Clock()
    s = PeerScores(recovery_per_s=1.0, clock=clock)
    s.penalise("B", 30, "timeout")
    clock.t += 10
    assert s.score("B") == pytest.approx(-20)
    clock.t += 100
    assert s.score("B") == 0.0


def test_bad_arguments():
    with pytest.raises(ValueError):
        PeerScores(ban_threshold=5)
    with pytest.raises(ValueError):
        PeerScores().penalise("C", -1, "negative")
