"""Job spec files: the bundled examples are valid and map to the trainer's spec and to a
job_submit body the chain accepts; every invalid field is reported by name."""

import copy
import json

import pytest

from ledger.genesis import NMT, AllocationRow, Genesis, GenesisAccount, GenesisValidator, Params
from ledger.jobs import records as R
from ledger.keys import devnet_key
from ledger.store import Store, build_block
from ledger.tx import sign_tx
from mindnode.jobs import examples, spec
from mindnode.jobs.errors import JobSpecError

BASE = json.loads(examples.text("digits-mlp"))
CID = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"


def test_bundled_examples():
    assert examples.names() == ["digits-mlp", "digits-mlp-async", "text-lora"]
    sync, asyn, lora = (examples.resolve(n) for n in examples.names())
    assert (sync.data["mode"], sync.data["workers"]) == ("sync", 3)
    assert asyn.trainer_spec()["train"]["inner_steps"] == 20 and asyn.data["mode"] == "async"
    assert lora.trainer_spec()["model"]["name"] == "lora"
    t = sync.trainer_spec()
    assert t["model"] == {"name": "mlp", "config": {"in_dim": 64, "hidden": [128], "out_dim": 10}}
    assert t["dataset"] == {"kind": "digits", "config": {}}
    assert t["train"]["steps"] == 400 and t["train"]["batch_size"] == 32
    body = sync.submit_body(now_ms=1_000)
    assert (body.budget, body.max_price, body.threshold_ppm) == (50 * NMT, NMT, 950_000)
    assert body.max_samples == 400 * 32 and body.deadline_ms == 1_000 + 1800 * 1000
    assert json.loads(body.spec) == sync.data


def test_resolve_path_and_unknown(tmp_path):
    p = tmp_path / "my.json"
    p.write_text(json.dumps(BASE))
    assert examples.resolve(str(p)).data == examples.resolve("digits-mlp").data
    with pytest.raises(JobSpecError, match="neither a spec file nor a bundled example"):
        examples.resolve("digits-cnn")
    with pytest.raises(JobSpecError, match="cannot read job spec"):
        examples.resolve(str(tmp_path / "missing.json"))
    p.write_text("{not json")
    with pytest.raises(JobSpecError, match="not valid JSON"):
        examples.resolve(str(p))


def _with(path: str, value, *, delete: bool = False) -> dict:
    d = copy.deepcopy(BASE)
    *parents, last = path.split(".")
    cur = d
    for k in parents:
        cur = cur[k]
    if delete:
        del cur[last]
    else:
        cur[last] = value
    return d


@pytest.mark.parametrize("path,value,field", [
    ("model.zoo", "resnet", "model.zoo"),
    ("model.config", [], "model.config"),
    ("model.base", "bafy-nope", "model.base"),
    ("dataset", {"source": "digits", "artifact": CID}, "dataset"),
    ("dataset", {"source": "imagenet"}, "dataset.source"),
    ("dataset", {"artifact": "Qm123"}, "dataset.artifact"),
    ("optimizer.name", "lamb", "optimizer.name"),
    ("optimizer.lr", 0, "optimizer.lr"),
    ("optimizer.lr", float("nan"), "optimizer.lr"),
    ("optimizer.batch_size", 0, "optimizer.batch_size"),
    ("mode", "federated", "mode"),
    ("H", 20, "H"),
    ("workers", 17, "workers"),
    ("workers", True, "workers"),
    ("min_workers", 4, "min_workers"),
    ("limits", {"steps": 10, "epochs": 1}, "limits"),
    ("limits", {"steps": 0}, "limits.steps"),
    ("deadline_s", 5, "deadline_s"),
    ("hardware.class", "tpu", "hardware.class"),
    ("acceptance.metric", "f1", "acceptance.metric"),
    ("acceptance.op", ">", "acceptance.op"),
    ("acceptance.threshold", 1.5, "acceptance.threshold"),
    ("budget", 50, "budget"),
    ("budget", "0", "budget"),
    ("budget", "1.1234567890123456789", "budget"),
    ("max_price", "-1", "max_price"),
    ("scheduling.offer_window", 0, "scheduling.offer_window"),
    ("scheduling.strategy", "random", "scheduling.strategy"),
    ("compression", "zip", "compression"),
    ("colour", "blue", ""),
])
def test_invalid_fields_are_named(path, value, field):
    with pytest.raises(JobSpecError) as exc:
        spec.validate(_with(path, value))
    msg = str(exc.value)
    assert f"field {field!r}" in msg, msg


def test_missing_required_and_mode_rules():
    with pytest.raises(JobSpecError, match="'budget': is required"):
        spec.validate(_with("budget", None, delete=True))
    d = _with("mode", "async")
    with pytest.raises(JobSpecError, match="async mode needs H"):
        spec.validate(d)
    d["H"] = 500
    with pytest.raises(JobSpecError, match="no averaging round"):
        spec.validate(d)
    d = _with("limits", {"epochs": 3})
    s = spec.validate(d)
    assert s.steps == -(-3 * spec.DIGITS_TRAIN // (32 * 3))          # ceil(epochs * n / (batch * workers))
    d = _with("dataset", {"source": "text"})
    d["limits"] = {"epochs": 1}
    with pytest.raises(JobSpecError, match="epochs need a dataset of known size"):
        spec.validate(d)
    with pytest.raises(JobSpecError, match="bytes in canonical form; the limit is 8192"):
        spec.validate(_with("model.config", {"in_dim": 64, "hidden": list(range(3000)), "out_dim": 10}))
    d = _with("model", {"zoo": "lora", "config": {}, "base": CID})
    d["dataset"] = {"source": "text"}                     # a language model needs a text dataset
    s = spec.validate(d)
    assert s.base_model == CID


def test_spec_body_is_accepted_on_a_real_chain(tmp_path):
    sub, v0 = devnet_key(1), devnet_key(0)
    g = Genesis(chain_id="spec-test", timestamp=1_700_000_000, params=Params(min_validator_stake=NMT),
                accounts=(GenesisAccount(sub.address, 100 * NMT),), validators=(GenesisValidator(v0.address, NMT),),
                allocation_start=1_700_000_000, allocation=(AllocationRow("m", 10 * NMT, 0, 1, pool="mining"),))
    store = Store.create(tmp_path / "c", g, sync=False)
    try:
        t = store.head.timestamp + 2000
        body = examples.resolve("digits-mlp").submit_body(now_ms=t)
        skipped = []
        store.import_block(build_block(store, v0, [sign_tx(sub, "spec-test", 0, 0, body)], t, 2,
                                       on_skip=lambda tx, e: skipped.append(e)))
        assert not skipped, skipped
        job = R.get_job(store.state(), 1)
        assert job.state == R.OPEN and job.budget == 50 * NMT and job.spec == body.spec
        assert store.account(sub.address).balance == 50 * NMT
    finally:
        store.close()


@pytest.mark.parametrize("path,value,field,why", [
    ("model.config", {"in_dim": 64, "hidden": "big", "out_dim": 10}, "model.config", "hidden must be a list"),
    ("model.config", {"in_dim": 64, "out_dim": 10, "dropout": 0.1}, "model.config", "unknown config key"),
    ("model.config", {"in_dim": 65, "out_dim": 10}, "model.config.in_dim", "64 features"),
    ("model.config", {"in_dim": 64, "out_dim": 2}, "model.config.out_dim", "10 classes"),
    ("model", {"zoo": "cnn", "config": {"image_size": 9, "out_dim": 10}}, "model.config.image_size", "64 pixels"),
    ("model", {"zoo": "transformer", "config": {}}, "model.zoo", "needs mlp or cnn"),
    ("dataset", {"source": "text"}, "model.zoo", "needs transformer or lora"),
])
def test_model_config_is_checked_before_the_budget_is_escrowed(path, value, field, why):
    """A model the zoo cannot build, or one the built-in dataset cannot feed, used to pass `job show`
    and fail on every worker after submit; now it is one error naming the field."""
    with pytest.raises(JobSpecError) as exc:
        spec.validate(_with(path, value))
    assert f"field {field!r}" in str(exc.value) and why in str(exc.value), str(exc.value)
    assert spec.validate(_with("model", {"zoo": "cnn", "config": {"image_size": 8, "out_dim": 10}}))


def test_text_context_must_fit_the_model():
    d = json.loads(examples.text("text-lora"))
    d["dataset"]["config"]["context"] = 64
    with pytest.raises(JobSpecError, match=r"'dataset.config.context': windows of 64 bytes do not fit the model's "
                                           r"context of 32 \(model.config.base.context\)"):
        spec.validate(d)
