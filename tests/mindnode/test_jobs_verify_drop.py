"""Verification across a dropped worker: three sync workers, one dies at step 25, the other two
finish. The checkpoint interval in which the group changed is not replayable with any single group
size (checked here), so the verifier skips it and checks the nearest replayable interval; the
intervals before and after replay exactly."""

import dataclasses
import json

import numpy as np
import pytest
import trio

from mindnode.jobs import examples, verify, work
from mindnode.jobs import spec as job_spec


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_replay_skips_the_interval_of_a_group_change(tmp_path):
    from trainer import checkpoint as ck
    from trainer.errors import TrainerError
    from trainer.replay import SYNC_REPLAY_ATOL, replay
    from trainer.transport import InMemoryHub
    from trainer.worker import Worker, flat_params

    d = json.loads(examples.text("digits-mlp"))
    d.update(limits={"steps": 60}, checkpoint_every=10)
    d["optimizer"]["batch_size"] = 16
    spec = job_spec.validate(d)
    ds = work.load_data(spec)
    cfg = dataclasses.replace(work.train_config(spec), round_timeout=1.0)
    hub, ids = InMemoryHub(), ["w0", "w1", "w2"]

    def kill_at_25(p):
        if p.step == 25:
            hub.kill("w2")

    workers = {p: Worker(hub.transport(p), ids, work.model_spec(spec), ds, cfg, job_id="j",
                         checkpoint_dir=tmp_path / p, progress=kill_at_25 if p == "w2" else None) for p in ids}
    results = {}

    async def one(p):
        try:
            results[p] = await workers[p].run()
        except TrainerError as exc:
            results[p] = exc

    async with trio.open_nursery() as n:
        for p in ids:
            n.start_soon(one, p)
    assert isinstance(results["w2"], TrainerError) and results["w0"].group == ("w0", "w1")
    blobs = [p.read_bytes() for p in ck.list_checkpoints(tmp_path / "w0")]
    cks = [ck.loads(b) for b in blobs]
    assert [(c.step, len(c.header["group"])) for c in cks] == [(10, 3), (20, 3), (30, 2), (40, 2), (50, 2), (60, 2)]
    weights = work.weights_blob(workers["w0"].model)
    names = [n for n, _ in workers["w0"].model.named_parameters()]
    want30 = np.concatenate([cks[2].model[n].reshape(-1).numpy() for n in names])
    for world in (2, 3):     # the interval with the drop: no single group size reproduces it
        assert np.abs(replay(work.model_spec(spec), ds, cfg, cks[1], 10, world=world) - want30).max() > SYNC_REPLAY_ATOL

    across = verify.verify_result(spec, ds, blobs, weights, 22, 5, initial_world=3)
    assert across.ok and "span a group change" in across.reason and (across.start_step, across.end_step) in (
        (10, 20), (30, 40))
    after = verify.verify_result(spec, ds, blobs, weights, 41, 5)
    assert after.ok and (after.start_step, after.end_step) == (40, 50) and after.reason == ""
    early = verify.verify_result(spec, ds, blobs, weights, 3, 5, initial_world=3)
    assert early.ok and (early.start_step, early.end_step) == (0, 10), early
    wide = verify.verify_result(spec, ds, blobs, weights, 15, 20)      # 10..40: the 20..30 pair is skipped
    assert wide.ok and (wide.start_step, wide.end_step) == (10, 40)
    assert np.array_equal(flat_params(workers["w0"].params), flat_params(workers["w1"].params))
    # a made-up result: weights that are not the final checkpoint's
    from trainer.zoo import build_model

    fake = work.weights_blob(build_model(work.model_spec(spec), seed=7))
    made_up = verify.verify_result(spec, ds, blobs, fake, 41, 5)
    assert not made_up.ok and not made_up.weights_match and made_up.replay_ok and "weights" in made_up.reason
    assert made_up.metrics["accuracy"] < 0.5


@pytest.mark.timeout(120)
async def test_a_worker_scaling_its_gradients_fails_every_interval(tmp_path):
    """The issue's cheating worker: one of three sends 3x its gradient into every sync average."""
    from mindnode.node import faults
    from trainer import checkpoint as ck
    from trainer.transport import InMemoryHub
    from trainer.worker import Worker

    d = json.loads(examples.text("digits-mlp"))
    d.update(limits={"steps": 30}, checkpoint_every=10)
    spec = job_spec.validate(d)
    ds = work.load_data(spec)
    cfg = work.train_config(spec)
    hub, ids = InMemoryHub(), ["w0", "w1", "w2"]
    workers = {p: Worker(hub.transport(p), ids, work.model_spec(spec), ds, cfg, job_id="j",
                         checkpoint_dir=tmp_path / p) for p in ids}
    faults.scale_gradients(workers["w1"])          # the node's test-only fault switch cheat-gradients
    async with trio.open_nursery() as n:
        for w in workers.values():
            n.start_soon(w.run)
    blobs = [p.read_bytes() for p in ck.list_checkpoints(tmp_path / "w0")]
    weights = work.weights_blob(workers["w0"].model)
    for start in (0, 12, 25):
        v = verify.verify_result(spec, ds, blobs, weights, start, 5, initial_world=3)
        assert not v.ok and "differs" in v.reason, v
        assert v.max_abs_diff > 5 * v.tolerance             # far outside the tolerance
