"""Fine-tuning from a base model artifact: a small byte-level transformer's weights (made here,
trained a few steps so they are not the seeded initialisation) are published by content id, and
the bundled `text-lora` spec with `model.base` = that id runs on provider agents over a real chain:
the workers fetch the artifact by id and train LoRA adapters on top of it, the verifier loads the
same artifact to rebuild step 0 and checks the frozen weights of every checkpoint and the result.
Plus the clear errors for an artifact that is not safetensors, too big, or for another model."""

import json

import pytest
import torch
from safetensors.torch import load, save
from test_jobs_agent import Blobs, LocalNet, provider_agents, register_all, run_until_finished

from ledger.jobs import records as R
from ledger.keys import devnet_key
from mindnode.jobs import examples, verify, work
from mindnode.jobs import spec as job_spec
from mindnode.jobs.errors import JobSpecError

PROVIDERS = [devnet_key(i) for i in range(2, 6)]     # 2 offer (the workers), 2 verify
BASE_CFG = {"context": 32, "d_model": 32, "n_layers": 1, "n_heads": 2, "d_ff": 64}


def base_artifact(cfg=BASE_CFG, seed=7) -> bytes:
    """A 'pretrained' transformer: seeded, then 5 SGD steps on bytes, so it is not any seed's init."""
    from trainer.zoo import ModelSpec, build_model, loss_fn

    ms = ModelSpec("transformer", cfg)
    m = build_model(ms, seed=seed)
    opt = torch.optim.SGD(m.parameters(), lr=0.5)
    x = torch.arange(64 * cfg["context"]).reshape(64, cfg["context"]) % 97
    for _ in range(5):
        opt.zero_grad()
        loss_fn(ms, m, x[:, :-1], x[:, 1:]).backward()
        opt.step()
    return save({k: v.detach().contiguous() for k, v in m.state_dict().items()})


def finetune_spec(cid: str, **model):
    d = json.loads(examples.resolve("text-lora").canonical())
    d["model"]["base"] = cid
    d["model"].update(model)
    d["limits"]["steps"] = 40
    return job_spec.validate(d)       # the bundled checkpoint_every (20): intervals 0..20..40


@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_text_lora_fine_tunes_a_base_artifact_and_verifies(tmp_path):
    from trainer.transport import InMemoryHub

    net = LocalNet(tmp_path / "chain", providers=PROVIDERS)
    hub, blobs = InMemoryHub(), Blobs()
    raw = base_artifact()
    cid = blobs.put(raw)
    spec = finetune_spec(cid)
    agents = provider_agents(net, PROVIDERS, blobs, hub, tmp_path, offering=2)
    await register_all(net, PROVIDERS)
    job = await run_until_finished(net, agents, spec)
    assert job.state == R.DONE, (job.reason, [a.errors for a in agents], net.skipped)
    assert len(job.payments) == 2
    base = load(raw)
    result = load(blobs.data[job.result.result_cid])
    # the result is the base artifact's frozen weights plus trained adapters
    assert torch.equal(result["blocks.0.qkv.base.weight"], base["blocks.0.qkv.weight"])
    assert torch.equal(result["tok.weight"], base["tok.weight"])
    assert result["blocks.0.qkv.lora_b"].abs().max() > 0
    # the verifier's view: the same checkpoints checked against another base artifact fail at once
    ds = work.load_data(spec)
    ckpts = [blobs.data[c] for c in job.result.checkpoints]
    weights = blobs.data[job.result.result_cid]
    good = verify.verify_result(spec, ds, ckpts, weights, 0, 5, initial_world=2, base=work.base_weights(spec, raw))
    assert good.ok and good.start_step == 0, good
    other = work.base_weights(spec, base_artifact(seed=8))
    bad = verify.verify_result(spec, ds, ckpts, weights, 0, 5, initial_world=2, base=other)
    assert not bad.ok and "not the base model's" in bad.reason
    with pytest.raises(JobSpecError, match="fetch it and pass base"):
        verify.initial_checkpoint(spec, ds)
    net.store.close()


def test_base_artifact_errors(monkeypatch):
    raw = base_artifact()
    cid = Blobs().put(raw)
    spec = finetune_spec(cid)
    assert set(work.base_weights(spec, raw)) == set(load(raw))
    with pytest.raises(JobSpecError, match="not a safetensors file"):
        work.base_weights(spec, b"\x80\x04pickle")
    with pytest.raises(JobSpecError, match="does not fit the job's model config.*shape"):
        work.base_weights(spec, base_artifact(dict(BASE_CFG, d_ff=32)))
    t = load(raw)
    del t["head.weight"]
    with pytest.raises(JobSpecError, match=r"missing weight\(s\) \['head.weight'\]"):
        work.base_weights(spec, save(t))
    with pytest.raises(JobSpecError, match="matches no parameter"):
        work.base_weights(spec, save({**load(raw), "extra.weight": torch.zeros(2)}))
    monkeypatch.setattr(work, "MAX_BASE_MODEL_BYTES", 1000)
    with pytest.raises(JobSpecError, match="the limit is 1000"):
        work.base_weights(spec, raw)


def test_a_chain_job_always_has_checkpoints_to_verify_from():
    """A spec without checkpoint_every still checkpoints (a job without any could never be verified)."""
    d = json.loads(examples.resolve("text-lora").canonical())
    d.pop("checkpoint_every")
    d["limits"]["steps"] = 40
    assert work.train_config(job_spec.validate(d)).checkpoint_every == 10
    assert work.train_config(examples.resolve("text-lora")).checkpoint_every == 20
    assert work.train_config(examples.resolve("digits-mlp-async")).checkpoint_every == 20     # = H
