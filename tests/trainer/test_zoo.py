"""The model zoo: every entry builds deterministically, trains, and rejects bad specs."""
import pytest
import torch

from trainer.errors import SpecError
from trainer.zoo import ModelSpec, build_model, loss_fn, trainable_names

TRANSFORMER = {"context": 16, "d_model": 32, "n_layers": 2, "n_heads": 4, "d_ff": 64}
SPECS = {
    "mlp": (ModelSpec("mlp", {"in_dim": 64, "hidden": [32, 16], "out_dim": 10}), (4, 64), 10),
    "cnn": (ModelSpec("cnn", {"image_size": 8, "channels": [8, 16], "out_dim": 10}), (4, 64), 10),
    "transformer": (ModelSpec("transformer", TRANSFORMER), (4, 16), 256),
    "lora": (ModelSpec("lora", {"base": TRANSFORMER, "rank": 2}), (4, 16), 256),
}


@pytest.mark.parametrize("name", list(SPECS))
def test_builds_deterministically_and_trains(name):
    spec, shape, classes = SPECS[name]
    m1, m2 = build_model(spec, seed=3), build_model(spec, seed=3)
    for (n1, p1), (n2, p2) in zip(m1.state_dict().items(), m2.state_dict().items(), strict=True):
        assert n1 == n2 and torch.equal(p1, p2)
    x = torch.randint(0, 256, shape) if classes == 256 else torch.rand(shape)
    y = torch.randint(0, classes, shape if classes == 256 else shape[:1])
    out = m1(x)
    assert out.shape[-1] == classes
    params = [p for n, p in m1.named_parameters() if n in trainable_names(m1)]
    before = [p.detach().clone() for p in params]
    opt = torch.optim.SGD(params, lr=0.1)
    loss = loss_fn(spec, m1, x, y)
    loss.backward()
    opt.step()
    assert any(not torch.equal(a, p) for a, p in zip(before, params, strict=True))
    assert ModelSpec.from_json(spec.to_json()) == spec


def test_lora_trains_and_ships_only_adapters():
    spec = SPECS["lora"][0]
    model = build_model(spec, seed=1)
    names = trainable_names(model)
    assert names and all("lora_" in n for n in names)
    n_train = sum(p.numel() for n, p in model.named_parameters() if n in names)
    n_all = sum(p.numel() for p in model.parameters())
    assert n_train < n_all / 4
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if n not in names}
    x = torch.randint(0, 256, (4, 16))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(2):
        opt.zero_grad()
        loss_fn(spec, model, x, x).backward()
        opt.step()
    for n, p in model.named_parameters():
        if n in frozen:
            assert torch.equal(frozen[n], p)
    # the same base seed gives the same frozen base, whatever the adapter seed
    other = build_model(spec, seed=2)
    assert torch.equal(dict(other.named_parameters())["tok.weight"], frozen["tok.weight"])


@pytest.mark.parametrize("spec,msg", [
    (ModelSpec("resnet1000", {}), "unknown model"),
    (ModelSpec("mlp", {"in_dim": 64, "out_dim": 10, "evil": "import os"}), "unknown config"),
    (ModelSpec("mlp", {"in_dim": "64", "out_dim": 10}), "must be an integer"),
    (ModelSpec("mlp", {"out_dim": 10}), "required"),
    (ModelSpec("mlp", {"in_dim": 1 << 20, "hidden": [1 << 16], "out_dim": 1 << 20}), "parameters"),
    (ModelSpec("transformer", {**TRANSFORMER, "n_heads": 5}), "divisible"),
    (ModelSpec("lora", {"base": {**TRANSFORMER, "d_model": 4096, "n_layers": 48, "d_ff": 16384}}), "parameters"),
    (ModelSpec("cnn", {"image_size": 8, "out_dim": 10, "channels": [True]}), "list of integers"),
])
def test_bad_specs_are_rejected(spec, msg):
    with pytest.raises(SpecError, match=msg):
        build_model(spec)


def test_spec_json_is_validated():
    with pytest.raises(SpecError):
        ModelSpec.from_json("{not json")
    with pytest.raises(SpecError):
        ModelSpec.from_json('{"name": "mlp", "code": "x"}')
    with pytest.raises(SpecError):
        ModelSpec.from_json('{"name": "mlp", "config": []}')
