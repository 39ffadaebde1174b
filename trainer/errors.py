"""Domain exceptions of the trainer room.

Every error a caller can see derives from ``TrainerError`` and carries a message a user can act on.
Transport adapters map their own errors (p2p's) onto ``PeerFailure`` / ``PeerTimeout`` /
``TransportClosed`` so that the averaging code can tell "that peer is gone" from "we are gone".
"""
from __future__ import annotations


class TrainerError(Exception):
    """Base of all trainer errors."""


class SpecError(TrainerError):
    """A model, dataset or training spec is invalid (unknown name, bad config value, too large)."""


class DatasetError(TrainerError):
    """A dataset could not be loaded or does not match its content id."""


class CheckpointError(TrainerError):
    """A checkpoint is missing, corrupt, or does not fit the model it is loaded into."""


class PeerFailure(TrainerError):
    """A peer disconnected, sent something malformed, or cannot be reached.

    ``peer_id`` names the peer at fault so the averaging can drop it from the next attempt.
    """

    def __init__(self, peer_id: str, message: str):
        super().__init__(f"peer {peer_id}: {message}")
        self.peer_id = peer_id


class PeerTimeout(PeerFailure):
    """A peer did not answer (or did not accept data) within the timeout."""


class TransportClosed(TrainerError):
    """Our own side of the transport is closed: this worker cannot take part any more."""


class RoundFailed(TrainerError):
    """An averaging round could not finish; no partial result was returned.

    ``suspects`` are the peers believed to have failed; ``round_id`` identifies the round.
    """

    def __init__(self, round_id: int, message: str, suspects: frozenset[str] = frozenset()):
        super().__init__(f"averaging round {round_id} failed: {message}")
        self.round_id = round_id
        self.suspects = suspects


def leaf_exceptions(exc: BaseException) -> list[BaseException]:
    """The exceptions inside (nested) exception groups, as trio's nurseries raise them."""
    if isinstance(exc, BaseExceptionGroup):
        out: list[BaseException] = []
        for e in exc.exceptions:
            out.extend(leaf_exceptions(e))
        return out
    return [exc]
