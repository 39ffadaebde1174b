"""Checkpoints: safetensors + JSON header, atomic writes, resume after a crash gives the same run."""
import dataclasses
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from wkhelpers import run_workers

from trainer import checkpoint as ck
from trainer.errors import CheckpointError, TrainerError
from trainer.worker import TrainConfig, flat_params


def test_roundtrip_keeps_tensors_optimizer_and_header(tmp_path):
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=0.1)
    model(torch.ones(1, 3)).sum().backward()
    opt.step()
    c = ck.Checkpoint({k: v.clone() for k, v in model.state_dict().items()}, {"inner": opt.state_dict()},
                      {"anchor": torch.arange(4.0)}, {"step": 7, "data_position": 99, "metrics": {"loss": 1.5}})
    path = ck.save(tmp_path, c)
    assert path.name == "ckpt-000000000007.safetensors"
    back = ck.load(path)
    assert back.step == 7 and back.header["data_position"] == 99 and back.header["metrics"] == {"loss": 1.5}
    assert torch.equal(back.extra["anchor"], torch.arange(4.0))
    opt2 = torch.optim.AdamW(model.parameters(), lr=0.1)
    opt2.load_state_dict(back.optimizers["inner"])
    for a, b in zip(opt.state_dict()["state"].values(), opt2.state_dict()["state"].values(), strict=True):
        assert all(torch.equal(a[k], b[k]) for k in a)
    # no pickle anywhere: the file is plain safetensors
    from safetensors.torch import load_file

    assert "model/weight" in load_file(path)


def test_corrupt_and_partial_files_are_skipped(tmp_path):
    c = ck.Checkpoint({"w": torch.ones(2)}, {}, {}, {"step": 1})
    ck.save(tmp_path, c)
    (tmp_path / "ckpt-000000000002.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{garbage")
    (tmp_path / ".ckpt-000000000003.safetensors.tmp-1").write_bytes(b"half")
    assert ck.latest(tmp_path).step == 1
    with pytest.raises(CheckpointError):
        ck.load(tmp_path / "ckpt-000000000002.safetensors")
    with pytest.raises(CheckpointError):
        ck.loads(b"\x00" * 8)
    with pytest.raises(CheckpointError, match="shape"):
        ck.load_weights(torch.nn.Linear(2, 2), {"weight": torch.ones(3, 3), "bias": torch.ones(2)})
    assert ck.latest(tmp_path / "nothing") is None


def test_keeps_only_the_newest(tmp_path):
    for s in range(5):
        ck.save(tmp_path, ck.Checkpoint({"w": torch.ones(1)}, {}, {}, {"step": s}), keep=2)
    assert [p.name[5:17] for p in ck.list_checkpoints(tmp_path)] == ["000000000003", "000000000004"]


async def test_sync_group_resumes_after_crash_to_the_same_parameters(digits, mlp_spec, tmp_path):
    ids = ["w0", "w1", "w2"]
    cfg = TrainConfig(mode="sync", steps=30, batch_size=8, lr=3e-3, checkpoint_every=10)
    straight, sw = await run_workers(ids, mlp_spec, digits, cfg)
    dirs = {p: tmp_path / p for p in ids}

    # crash every worker at step 25 (after the step-20 checkpoint)
    class Crash(Exception):
        pass

    def crash_at(p):
        if p.step == 25:
            raise Crash()

    with pytest.raises(BaseException) as info:
        await run_workers(ids, mlp_spec, digits, cfg, checkpoint_dirs=dirs, progress=crash_at)
    assert info.group_contains(Crash) if hasattr(info, "group_contains") else True
    assert all(ck.latest(d).step == 20 for d in dirs.values())
    resumed, rw = await run_workers(ids, mlp_spec, digits, cfg, checkpoint_dirs=dirs)
    for p in ids:
        assert resumed[p].steps == 30
        assert np.array_equal(flat_params(rw[p].params), flat_params(sw[p].params))


@pytest.mark.slow
def test_sigkill_mid_run_leaves_a_loadable_checkpoint(tmp_path):
    """A real process killed at random while checkpointing every step: the newest file loads."""
    code = textwrap.dedent(f"""
        import trio, torch
        torch.set_num_threads(1)
        from trainer.data import DatasetSpec, load_dataset
        from trainer.transport import InMemoryHub
        from trainer.worker import TrainConfig, Worker
        from trainer.zoo import ModelSpec
        ds = load_dataset(DatasetSpec("digits"))
        spec = ModelSpec("mlp", {{"in_dim": 64, "hidden": [256, 256], "out_dim": 10}})
        cfg = TrainConfig(mode="local", steps=100000, batch_size=8, checkpoint_every=1)
        w = Worker(InMemoryHub().transport("a"), ["a"], spec, ds, cfg, checkpoint_dir={str(tmp_path)!r})
        print("ready", flush=True)
        trio.run(w.run)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, cwd=os.getcwd())
    assert proc.stdout.readline().strip() == b"ready"
    import time

    deadline = time.monotonic() + 60
    while len(ck.list_checkpoints(tmp_path)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    latest = ck.latest(tmp_path)
    assert latest is not None and latest.step >= 2
    for p in ck.list_checkpoints(tmp_path):
        ck.load(p)  # every visible checkpoint is whole


async def test_resume_refuses_a_checkpoint_of_another_model(digits, mlp_spec, tmp_path):
    from trainer.zoo import ModelSpec

    cfg = TrainConfig(mode="local", steps=3, batch_size=8, checkpoint_every=1)
    await run_workers(["a"], mlp_spec, digits, cfg, checkpoint_dirs={"a": tmp_path})
    other = ModelSpec("mlp", {"in_dim": 64, "hidden": [8], "out_dim": 10})
    with pytest.raises(CheckpointError, match="different model"):
        res, _ = await run_workers(["a"], other, digits, cfg, checkpoint_dirs={"a": tmp_path})
        raise res["a"]



async def test_workers_resumed_at_different_steps_fail_clearly(digits, mlp_spec, tmp_path, autojump_clock):
    ids = ["w0", "w1"]
    cfg = TrainConfig(mode="sync", steps=12, batch_size=8, checkpoint_every=4, keep_checkpoints=5)
    dirs = {p: tmp_path / p for p in ids}
    await run_workers(ids, mlp_spec, digits, cfg, checkpoint_dirs=dirs)
    (dirs["w1"] / "ckpt-000000000012.safetensors").unlink()  # w1 lost its newest checkpoint
    results, _ = await run_workers(ids, mlp_spec, digits, dataclasses.replace(cfg, steps=16), checkpoint_dirs=dirs)
    for p in ids:
        assert isinstance(results[p], TrainerError) and "same checkpoint step" in str(results[p])


async def test_a_worker_restarted_alone_is_told_to_rejoin(digits, mlp_spec, autojump_clock):
    from trainer.transport import InMemoryHub
    from trainer.worker import Worker

    hub = InMemoryHub()
    hub.transport("w0")  # w0 exists but is busy training, not starting
    lonely = Worker(hub.transport("w1"), ["w0", "w1"], mlp_spec, digits, TrainConfig(mode="sync", round_timeout=1.0))
    with pytest.raises(TrainerError, match="rejoin"):
        await lonely.run()
