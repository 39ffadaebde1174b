"""trainer: data-parallel torch training whose averaging runs over peer links.

The package knows tensors and peers, never the chain (ARCHITECTURE.md). Importing it is cheap:
torch is only imported by the modules that need it (``trainer.zoo``, ``trainer.worker``, ...), so a
CLI that merely names a model spec does not pay torch's ~1.6 s import.

Public entry points (import them from their modules):

- ``trainer.transport``: ``Transport`` (the interface a node adapts its p2p layer to) and
  ``InMemoryHub`` (N peers in one trio process, with fault injection) for tests.
- ``trainer.allreduce``: ``Averager.average(round_id, group, vector, weight)``: reduce-scatter +
  all-gather with a commit digest, so a round never returns a partly averaged vector.
- ``trainer.zoo``: ``ModelSpec`` and ``build_model`` (mlp, cnn, transformer, lora).
- ``trainer.data``: ``DatasetSpec``, ``load_dataset``, ``BatchPlan`` (deterministic shards).
- ``trainer.worker``: ``TrainConfig``, ``Worker`` (sync / async DiLoCo / local modes, joins).
- ``trainer.checkpoint`` and ``trainer.replay``: safetensors checkpoints and verification replay.
"""
from trainer.errors import (
    CheckpointError,
    DatasetError,
    PeerFailure,
    PeerTimeout,
    RoundFailed,
    SpecError,
    TrainerError,
    TransportClosed,
)

__all__ = [
    "CheckpointError",
    "DatasetError",
    "PeerFailure",
    "PeerTimeout",
    "RoundFailed",
    "SpecError",
    "TrainerError",
    "TransportClosed",
]
