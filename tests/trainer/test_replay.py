"""Replaying steps from a checkpoint reproduces the parameters (the basis of verification)."""
import dataclasses

import numpy as np
import trio
from wkhelpers import run_workers

from trainer import checkpoint as ck
from trainer.replay import SYNC_REPLAY_ATOL, replay
from trainer.transport import InMemoryHub
from trainer.worker import TrainConfig, Worker, flat_params
from trainer.zoo import ModelSpec


async def test_local_replay_is_bitwise(digits, mlp_spec, tmp_path):
    cfg = TrainConfig(mode="local", steps=25, batch_size=16, checkpoint_every=10, keep_checkpoints=5)
    _, w = await run_workers(["a"], mlp_spec, digits, cfg, checkpoint_dirs={"a": tmp_path})
    c10 = ck.load(tmp_path / "ckpt-000000000010.safetensors")
    c20 = ck.load(tmp_path / "ckpt-000000000020.safetensors")
    got = replay(mlp_spec, digits, cfg, c10, 10)
    want = c20.model
    names = [n for n, _ in w["a"].model.named_parameters()]
    assert np.array_equal(got, np.concatenate([want[n].reshape(-1).numpy() for n in names]))
    assert np.array_equal(replay(mlp_spec, digits, cfg, c10, 15), flat_params(w["a"].params))
    # a wrong claim is caught: other data order
    other = replay(mlp_spec, digits, dataclasses.replace(cfg, seed=1), c10, 10)
    assert not np.array_equal(other, got)


async def test_async_inner_steps_replay_bitwise_per_rank(digits, tmp_path):
    spec = ModelSpec("cnn", {"image_size": 8, "channels": [4], "out_dim": 10})
    cfg = TrainConfig(mode="async", steps=13, batch_size=8, inner_steps=5, checkpoint_every=5, keep_checkpoints=5)
    ids = ["w0", "w1"]
    snaps = {}
    hub = InMemoryHub()
    workers = {p: Worker(hub.transport(p), ids, spec, digits, cfg, checkpoint_dir=tmp_path / p) for p in ids}

    def grab(p):
        if p.step == 8:
            for pid, w in workers.items():
                if w.step == 8 and pid not in snaps:
                    snaps[pid] = flat_params(w.params)

    for w in workers.values():
        w.progress = grab
    async with trio.open_nursery() as n:
        for w in workers.values():
            n.start_soon(w.run)
    for rank, p in enumerate(ids):
        c5 = ck.load(tmp_path / p / "ckpt-000000000005.safetensors")
        assert np.array_equal(replay(spec, digits, cfg, c5, 3, rank=rank, world=2), snaps[p])


async def test_sync_replay_matches_within_tolerance(digits, mlp_spec, tmp_path):
    ids = ["w0", "w1", "w2"]
    cfg = TrainConfig(mode="sync", steps=12, batch_size=8, checkpoint_every=6, keep_checkpoints=5)
    _, w = await run_workers(ids, mlp_spec, digits, cfg, checkpoint_dirs={p: tmp_path / p for p in ids})
    c6 = ck.load(tmp_path / "w1" / "ckpt-000000000006.safetensors")
    got = replay(mlp_spec, digits, cfg, c6, 6, world=3)
    assert np.abs(got - flat_params(w["w1"].params)).max() <= SYNC_REPLAY_ATOL
