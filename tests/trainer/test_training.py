"""Training modes end to end over the in-memory transport: sync equivalence, async, faults, joins."""
import dataclasses

import numpy as np
import pytest
import trio
from wkhelpers import run_workers

from trainer.allreduce import AG, RS
from trainer.errors import TransportClosed
from trainer.transport import InMemoryHub
from trainer.worker import TrainConfig, Worker, flat_params


@pytest.mark.parametrize("optimizer,lr", [("sgd", 0.2), ("adamw", 3e-3)])
async def test_sync_three_workers_equal_one_process_with_triple_batch(digits, mlp_spec, optimizer, lr):
    b = 8
    cfg = TrainConfig(mode="sync", steps=20, batch_size=b, optimizer=optimizer, lr=lr, momentum=0.9)
    ids = ["w0", "w1", "w2"]
    results, workers = await run_workers(ids, mlp_spec, digits, cfg)
    single_cfg = dataclasses.replace(cfg, mode="local", batch_size=3 * b)
    single = {}
    res, one = await run_workers(["solo"], mlp_spec, digits, single_cfg)
    ref = flat_params(one["solo"].params)
    start = flat_params(Worker(InMemoryHub().transport("x"), ["x"], mlp_spec, digits, cfg).params)
    assert np.abs(ref - start).max() > 1e-2  # training moved the parameters
    for p in ids:
        got = flat_params(workers[p].params)
        assert np.abs(got - ref).max() <= 1e-5, (p, np.abs(got - ref).max())
    assert len({r.params_digest for r in results.values()}) == 1
    del single


async def test_async_diloco_converges_with_h_times_fewer_bytes(digits, mlp_spec):
    ids = ["w0", "w1", "w2"]
    base = dict(steps=200, batch_size=16, lr=3e-3)
    sync, _ = await run_workers(ids, mlp_spec, digits, TrainConfig(mode="sync", **base))
    progress = []
    asyn, workers = await run_workers(ids, mlp_spec, digits, TrainConfig(mode="async", inner_steps=20, **base),
                                      progress=progress.append)
    for r in asyn.values():
        assert r.eval_accuracy >= 0.9, r.eval_accuracy
        assert r.rounds == 10
    assert len({r.params_digest for r in asyn.values()}) == 1  # the outer step leaves everyone equal
    ratio = np.mean([r.bytes_sent for r in sync.values()]) / np.mean([r.bytes_sent for r in asyn.values()])
    assert 18 <= ratio <= 21, ratio
    # progress callbacks: every step, with bytes growing at round boundaries
    mine = [p for p in progress if p.peers == 3]
    assert len(mine) == 3 * 200 and all(p.samples_per_s > 0 for p in mine)
    assert max(p.bytes_sent for p in mine) > 0 and max(p.bytes_recv for p in mine) > 0


@pytest.mark.parametrize("codec", ["fp16", "int8"])
async def test_sync_with_compression_trains(digits, mlp_spec, codec):
    ids = ["w0", "w1", "w2"]
    cfg = TrainConfig(mode="sync", steps=120, batch_size=16, lr=3e-3, compression=codec)
    results, _ = await run_workers(ids, mlp_spec, digits, cfg)
    assert len({r.params_digest for r in results.values()}) == 1
    assert all(r.eval_accuracy >= 0.9 for r in results.values())


@pytest.mark.parametrize("mode,kind", [("sync", RS), ("sync", AG), ("async", AG)])
async def test_worker_killed_mid_training_others_finish(digits, mlp_spec, mode, kind, autojump_clock):
    ids = ["w0", "w1", "w2", "w3"]
    hub = InMemoryHub()
    round_id = 7 if mode == "sync" else 1
    hub.fault("w2", "die", lambda to, ch, data: f"/avg/{round_id}/" in ch and data[1] == kind)
    cfg = TrainConfig(mode=mode, steps=15, batch_size=8, lr=3e-3, round_timeout=2.0, inner_steps=5)
    results, workers = await run_workers(ids, mlp_spec, digits, cfg, hub=hub)
    assert isinstance(results["w2"], TransportClosed)
    alive = [results[p] for p in ids if p != "w2"]
    assert all(r.steps == 15 and r.group == ("w0", "w1", "w3") for r in alive)
    assert len({r.params_digest for r in alive}) == 1


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_joining_peer_downloads_state_and_takes_part(digits, mlp_spec, mode):
    hub = InMemoryHub()
    ids = ["w0", "w1"]
    cfg = TrainConfig(mode=mode, steps=40, batch_size=8, lr=3e-3, inner_steps=5)
    workers = {p: Worker(hub.transport(p), ids, mlp_spec, digits, cfg) for p in ids}
    joiner = Worker(hub.transport("w2"), ["w2"], mlp_spec, digits, cfg)
    results = {}
    admitted_at = {}

    def admit_later(p):
        if p.step == 12 and "round" not in admitted_at:
            admitted_at["round"] = p.round
            workers["w0"].admit("w2")

    workers["w0"].progress = admit_later

    async def one(p, w):
        results[p] = await (w.join("w0") if p == "w2" else w.run())

    async with trio.open_nursery() as n:
        for p, w in {**workers, "w2": joiner}.items():
            n.start_soon(one, p, w)
    assert {r.group for r in results.values()} == {("w0", "w1", "w2")}
    assert len({r.params_digest for r in results.values()}) == 1
    assert results["w2"].rounds == results["w0"].rounds
    assert results["w2"].bytes_recv > 0
    assert 0 < len(joiner.history) < 40  # it trained only after joining


@pytest.mark.parametrize("bad", ["short_header", "too_big", "wrong_hash", "silent"])
async def test_joiner_rejects_a_bad_state_transfer(digits, mlp_spec, bad, autojump_clock):
    import hashlib
    import struct

    from trainer.errors import TrainerError

    hub = InMemoryHub()
    donor = hub.transport("d")
    cfg = TrainConfig(mode="sync", steps=5, batch_size=8, round_timeout=1.0, max_state_bytes=10_000)
    joiner = Worker(hub.transport("j"), ["j"], mlp_spec, digits, cfg)
    payload = b"x" * 100
    head = {
        "short_header": b"\x00" * 10,
        "too_big": struct.pack("<Q", 10**9) + hashlib.sha256(payload).digest(),
        "wrong_hash": struct.pack("<Q", len(payload)) + hashlib.sha256(b"other").digest(),
        "silent": None,
    }[bad]
    if head is not None:
        await donor.send("j", "job/state", head, 1)
        await donor.send("j", "job/state", payload, 1)
    with pytest.raises(TrainerError):
        await joiner.join("d", timeout=2.0)
