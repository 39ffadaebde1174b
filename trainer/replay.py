"""Replay steps from a checkpoint, to verify what a worker claims it computed.

Why: the jobs layer checks a provider's work by re-running a few steps from one of its
checkpoints with the same data indices and comparing parameters. On CPU with
``torch.use_deterministic_algorithms(True)`` and the same thread count, replaying local (or
async inner) steps reproduces the parameters bit for bit (tolerance 0, tested); across thread
counts or machines, allow ``REPLAY_ATOL``. A sync-mode step depends on the whole global batch,
so ``replay`` runs it as one process over all ranks' slices (the equivalence the sync mode
guarantees), which matches to ``SYNC_REPLAY_ATOL``.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import torch

from trainer import checkpoint as ckpt_mod
from trainer.data import Dataset
from trainer.worker import TrainConfig, Worker, flat_params
from trainer.zoo import ModelSpec

REPLAY_ATOL = 1e-6
SYNC_REPLAY_ATOL = 1e-5


class _NoTransport:
    def __init__(self, self_id: str):
        self.self_id = self_id

    async def send(self, peer_id, channel, data, timeout):  # pragma: no cover - never called
        raise RuntimeError("replay does not use the network")

    async def recv(self, peer_id, channel, timeout):  # pragma: no cover - never called
        raise RuntimeError("replay does not use the network")


def replay(
    spec: ModelSpec,
    dataset: Dataset,
    config: TrainConfig,
    ckpt: ckpt_mod.Checkpoint,
    steps: int,
    *,
    rank: int = 0,
    world: int = 1,
) -> np.ndarray:
    """Run ``steps`` optimizer steps from ``ckpt`` and return the trainable parameters (flat).

    ``config.mode`` "local"/"async": rank ``rank`` of ``world`` replays its own inner steps.
    ``config.mode`` "sync": one process takes the global batch (``world`` x ``batch_size``).
    """
    torch.use_deterministic_algorithms(True)
    mode = config.mode
    if mode == "sync":
        cfg = dataclasses.replace(config, mode="local", batch_size=config.batch_size * world)
        ckpt = ckpt_mod.Checkpoint(ckpt.model, {"inner": ckpt.optimizers["inner"]}, {}, dict(ckpt.header, mode="local"))
        rank, world = 0, 1
    else:
        cfg = config
    cfg = dataclasses.replace(cfg, steps=ckpt.step + steps)
    group = [f"rank{i:06d}" for i in range(world)]
    w = Worker(_NoTransport(group[rank]), group, spec, dataset, cfg)
    w._restore(ckpt)
    w.group = tuple(group)
    for _ in range(steps):
        w._local_step(average=False)
        w.step += 1
    return flat_params(w.params)
