"""A job whose dataset is an artifact (`dataset.artifact`, a content id published with `mindnode
blob put`): the workers and the verifier fetch it by id through their blob port before training or
replaying (`work.fetch_data`). Before this, the daemon's agent called `load_data` without a
fetcher, so every artifact-dataset job failed on its workers. Digits, written as the documented
safetensors `x`/`y` dataset, stands in for a user's own data."""

import json

import numpy as np
import pytest
from test_jobs_agent import Blobs, LocalNet, provider_agents, register_all, run_until_finished

from ledger.jobs import records as R
from ledger.keys import devnet_key
from mindnode.jobs import examples, work
from mindnode.jobs import spec as job_spec
from mindnode.jobs.errors import JobSpecError
from trainer.data import tensors_blob

PROVIDERS = [devnet_key(i) for i in range(2, 6)]     # 2 workers, 2 verifiers


def digits_artifact() -> bytes:
    from sklearn.datasets import load_digits

    d = load_digits()
    return tensors_blob((d.data / 16.0).astype(np.float32), d.target.astype(np.int64))


def artifact_spec(cid: str):
    d = json.loads(examples.resolve("digits-mlp").canonical())
    d["dataset"] = {"artifact": cid, "format": "tensors"}
    d["workers"] = d["min_workers"] = 2
    d["limits"]["steps"] = 200
    return job_spec.validate(d)


@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_a_job_on_a_dataset_artifact_trains_verifies_and_pays(tmp_path):
    from trainer.transport import InMemoryHub

    net = LocalNet(tmp_path / "chain", providers=PROVIDERS)
    hub, blobs = InMemoryHub(), Blobs()
    spec = artifact_spec(blobs.put(digits_artifact()))
    agents = provider_agents(net, PROVIDERS, blobs, hub, tmp_path, offering=2)
    await register_all(net, PROVIDERS)
    job = await run_until_finished(net, agents, spec)
    assert job.state == R.DONE, (job.reason, [a.errors for a in agents], net.skipped)
    assert len(job.payments) == 2
    assert job.verified_metric_ppm >= 900_000
    net.store.close()


async def test_fetch_data_fetches_the_artifact_and_refuses_what_is_not_a_dataset(monkeypatch):
    blobs = Blobs()
    raw = digits_artifact()
    spec = artifact_spec(blobs.put(raw))
    ds = await work.fetch_data(spec, blobs.get)
    assert len(ds.x_train) + len(ds.x_test) == 1797
    builtin = await work.fetch_data(examples.resolve("digits-mlp"), blobs.get)     # no fetch for a source
    assert len(builtin.x_train) == len(ds.x_train)
    from trainer.errors import TrainerError

    junk = artifact_spec(blobs.put(b"not safetensors"))
    with pytest.raises(TrainerError):
        await work.fetch_data(junk, blobs.get)
    monkeypatch.setattr(work, "MAX_DATASET_BYTES", 1000)
    with pytest.raises(JobSpecError, match="the limit is 1000"):
        await work.fetch_data(spec, blobs.get)
