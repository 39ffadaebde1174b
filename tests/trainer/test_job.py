"""The jobs layer's entry point: JobSpec (strict JSON) and run_worker; transformer and LoRA jobs."""
import numpy as np
import pytest
import torch
import trio

from trainer.data import cid_of, tensors_blob
from trainer.errors import SpecError
from trainer.job import JobSpec, make_worker, run_worker
from trainer.transport import InMemoryHub
from trainer.worker import TrainConfig
from trainer.zoo import ModelSpec, build_model, load_pretrained

MLP_JOB = JobSpec({"name": "mlp", "config": {"in_dim": 64, "hidden": [32], "out_dim": 10}},
                  {"kind": "digits", "config": {}}, {"mode": "sync", "steps": 30, "batch_size": 16, "lr": 0.003})


def test_jobspec_json_is_canonical_and_strict():
    text = MLP_JOB.to_json()
    assert JobSpec.from_json(text) == MLP_JOB and " " not in text
    for bad in ("[]", "{}", '{"model": {}, "dataset": {}, "train": {}, "code": 1}', "{x",
                '{"model": {"name": "mlp"}, "dataset": {"kind": "digits"}, "train": {"mode": "fast"}}',
                '{"model": {"name": "mlp"}, "dataset": {"kind": "digits"}, "train": {"stepz": 3}}',
                '{"model": {"name": "mlp"}, "dataset": {"kind": "digits"}, "train": {"steps": -1}}',
                '{"model": {"name": "mlp"}, "dataset": {"kind": "digits"}, "train": {"lr": "big"}}',
                "x" * 70000):
        with pytest.raises(SpecError):
            JobSpec.from_json(bad)


async def test_run_worker_three_peers_with_async_blob_fetch():
    from sklearn.datasets import load_digits

    d = load_digits()
    blob = tensors_blob((d.data / 16).astype(np.float32), d.target)
    cid = cid_of(blob)
    job = JobSpec(MLP_JOB.model, {"kind": "blob", "config": {"cid": cid}}, MLP_JOB.train)
    fetched = []

    async def fetch(c):
        fetched.append(c)
        await trio.sleep(0)
        return blob

    hub = InMemoryHub()
    ids = ["a", "b", "c"]
    results = {}

    async def one(p):
        results[p] = await run_worker(hub.transport(p), ids, job, job_id="job1", fetch=fetch)

    async with trio.open_nursery() as n:
        for p in ids:
            n.start_soon(one, p)
    assert fetched == [cid] * 3
    assert len({r.params_digest for r in results.values()}) == 1 and results["a"].steps == 30


async def test_transformer_learns_text_and_lora_finetunes_only_adapters():
    text_job = JobSpec({"name": "transformer", "config": {"context": 32, "d_model": 32, "n_layers": 1,
                                                          "n_heads": 2, "d_ff": 64}},
                       {"kind": "text", "config": {"context": 32, "max_bytes": 30000}},
                       {"mode": "local", "steps": 60, "batch_size": 16, "lr": 0.01})
    w = make_worker(InMemoryHub().transport("a"), ["a"], text_job, job_id="t")
    first = w.evaluate()[0]
    await w.run()
    trained_loss = w.evaluate()[0]
    assert trained_loss < first - 1.0  # from ~ln(256)=5.5 to well below
    base = {k: v.clone() for k, v in w.model.state_dict().items()}

    lora_spec = ModelSpec("lora", {"base": text_job.model["config"], "rank": 2})
    lora = build_model(lora_spec, seed=0)
    load_pretrained(lora, base)
    assert torch.equal(lora.state_dict()["blocks.0.qkv.base.weight"], base["blocks.0.qkv.weight"])
    with pytest.raises(SpecError):
        load_pretrained(lora, {"nope.weight": torch.ones(1)})
    with pytest.raises(SpecError):
        load_pretrained(lora, {"tok.weight": torch.ones(3, 3)})

    # sync LoRA fine-tuning among 3 peers: only adapters travel, the base stays as loaded
    from trainer.data import DatasetSpec, load_dataset

    ds = load_dataset(DatasetSpec("text", {"context": 32, "max_bytes": 30000}))
    cfg = TrainConfig(mode="sync", steps=5, batch_size=4, lr=0.01)
    hub = InMemoryHub()
    ids = ["a", "b", "c"]
    from trainer.worker import Worker

    workers = {p: Worker(hub.transport(p), ids, lora_spec, ds, cfg, init_weights=base) for p in ids}
    results = {}

    async def one(p):
        results[p] = await workers[p].run()

    async with trio.open_nursery() as n:
        for p in ids:
            n.start_soon(one, p)
    n_adapters = sum(p.numel() for p in workers["a"].params)
    per_round = 2 * 2 / 3 * 4 * n_adapters
    assert results["a"].bytes_sent <= 5 * per_round * 1.05
    assert n_adapters < sum(p.numel() for p in workers["a"].model.parameters()) / 4
    assert len({r.params_digest for r in results.values()}) == 1
    sd = workers["b"].model.state_dict()
    assert torch.equal(sd["blocks.0.fc1.base.weight"], base["blocks.0.fc1.weight"])
    assert not torch.equal(sd["blocks.0.fc1.lora_b"], torch.zeros_like(sd["blocks.0.fc1.lora_b"]))

