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


def verify(
    spec: ModelSpec,
    dataset: Dataset,
    config: TrainConfig,
    ckpt: ckpt_mod.Checkpoint,
    steps: int,
    claimed: np.ndarray,
    *,
    rank: int = 0,
    world: int = 1,
    atol: float | None = None,
) -> tuple[bool, float]:
    """Replay and compare with ``claimed`` trainable parameters: (within tolerance, max abs diff).

    Default tolerance: ``SYNC_REPLAY_ATOL`` for sync mode, ``REPLAY_ATOL`` otherwise.
    """
    got = replay(spec, dataset, config, ckpt, steps, rank=rank, world=world)
    claimed = np.asarray(claimed, dtype=np.float32).reshape(-1)
    if claimed.shape != got.shape:
        return False, float("inf")
    diff = float(np.abs(got - claimed).max()) if got.size else 0.0
    tol = atol if atol is not None else (SYNC_REPLAY_ATOL if config.mode == "sync" else REPLAY_ATOL)
    return bool(diff <= tol), diff


def group_average(contributions: list[np.ndarray], weights: list[float], codec: int, chunk_elems: int) -> np.ndarray:
    """The averaged vector a sync round computes from these per-rank vectors (group order), with the
    Averager's arithmetic: part j is summed by its owner in group order from the owner's own values
    and the others' codec-decoded chunks, divided by the total weight in float32, and (with a codec)
    rounded through it once more for the all-gather. Reproducing it exactly keeps a step-by-step
    replay bitwise on the trajectory the group took, so rank sketches can be compared tightly."""
    from trainer import compression
    from trainer.allreduce import chunk_bounds, part_bounds
    from trainer.sketch import contribution

    n = len(contributions)
    size = contributions[0].size
    parts = part_bounds(size, n)
    out = np.empty(size, dtype=np.float32)
    total = np.float32(sum(weights))
    for j, (a, b) in enumerate(parts):
        xs = [contribution(v, parts, i, j, codec, chunk_elems) for i, v in enumerate(contributions)]
        for s, e in chunk_bounds(a, b, chunk_elems):
            dst = out[s:e]
            for i, x in enumerate(xs):
                piece = x[s - a: e - a]
                w = weights[i]
                if i == 0:
                    np.copyto(dst, piece) if w == 1.0 else np.multiply(piece, np.float32(w), out=dst)
                elif w == 1.0:
                    dst += piece
                else:
                    dst += piece * np.float32(w)
            dst /= total
            if codec != compression.NONE:
                dst[:] = compression.roundtrip(codec, dst.copy())
    return out


class SyncRankReplay:
    """Replays sync steps from a checkpoint rank by rank: each rank's local gradient on its own data
    slice (``rank_gradients``), then the group's average (``apply``). A verifier uses it to compare
    every rank's signed gradient sketch with the gradient the data really gives at each step."""

    def __init__(self, spec: ModelSpec, dataset: Dataset, config: TrainConfig, ckpt: ckpt_mod.Checkpoint,
                 world: int):
        from trainer import compression

        torch.use_deterministic_algorithms(True)
        self.world = world
        self.config = config
        self.codec = compression.codec_id(config.compression)
        cfg = dataclasses.replace(config, mode="local")
        local = ckpt_mod.Checkpoint(ckpt.model, {"inner": ckpt.optimizers["inner"]}, {},
                                    dict(ckpt.header, mode="local"))
        self.w = Worker(_NoTransport("replay"), ["replay"], spec, dataset, cfg)
        self.w._restore(local)

    @property
    def step(self) -> int:
        return self.w.step

    def params(self) -> np.ndarray:
        return flat_params(self.w.params)

    def rank_gradients(self) -> list[tuple[np.ndarray, float]]:
        """(flat gradient, weight = samples) of every rank at the current parameters, rank order."""
        from trainer.worker import flat_grads
        from trainer.zoo import loss_fn

        w = self.w
        out = []
        for rank in range(self.world):
            idx = torch.from_numpy(w.plan.indices(w.position, rank, self.world))
            w.opt.zero_grad(set_to_none=True)
            loss_fn(w.spec, w.model, w.x_train[idx], w.y_train[idx]).backward()
            out.append((flat_grads(w.params), float(len(idx))))
        return out

    def apply(self, contributions: list[tuple[np.ndarray, float]]) -> np.ndarray:
        """Average these contributions as the group would and take the optimizer step."""
        from trainer.worker import set_flat

        avg = group_average([c for c, _ in contributions], [w for _, w in contributions], self.codec,
                            self.config.chunk_elems)
        set_flat(self.w.params, avg, grad=True)
        self.w.opt.step()
        self.w.position += self.world * self.config.batch_size
        self.w.step += 1
        return avg
