"""The model zoo: a job names a model and a config, never code.

Why declarative: a job travels over the network and lands on a volunteer's machine; running
anything but a known architecture would be remote code execution. Each entry validates its
config strictly (unknown keys, wrong types, out-of-range sizes are a ``SpecError``) and bounds the
parameter count, so a spec cannot make a node allocate without limit.

Entries:
- ``mlp``: in_dim, hidden (list), out_dim. Classification.
- ``cnn``: in_channels, image_size, channels (list), kernel, out_dim. Small conv net.
- ``transformer``: decoder-only, byte-level (vocab 256): context, d_model, n_layers, n_heads, d_ff.
- ``lora``: a ``transformer`` (its ``base`` config) with frozen weights plus rank-r adapters on
  the attention and MLP projections; only the adapters train, so only they travel.

``build_model(spec, seed)`` is deterministic: the same spec and seed give bitwise the same weights.
``trainable_names(model)`` lists what is averaged and checkpointed as the trained state.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from trainer.errors import SpecError

MAX_PARAMS = 200_000_000


@dataclass(frozen=True)
class ModelSpec:
    """A model by name and config; ``to_json``/``from_json`` give its canonical wire form."""

    name: str
    config: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps({"name": self.name, "config": self.config}, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> ModelSpec:
        try:
            obj = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise SpecError(f"model spec is not valid JSON: {exc}") from None
        if not isinstance(obj, dict) or set(obj) - {"name", "config"} or not isinstance(obj.get("name"), str):
            raise SpecError('model spec must be {"name": str, "config": {...}}')
        config = obj.get("config", {})
        if not isinstance(config, dict):
            raise SpecError("model spec config must be an object")
        return cls(obj["name"], config)


def _cfg(name: str, config: dict[str, Any], schema: dict[str, tuple[type, Any, tuple[int, int] | None]]):
    """Validate ``config`` against ``schema`` {key: (type, default, (lo, hi) for ints)}."""
    if not isinstance(config, dict):
        raise SpecError(f"{name}: config must be an object")
    unknown = set(config) - set(schema)
    if unknown:
        raise SpecError(f"{name}: unknown config key(s) {sorted(unknown)}; allowed: {sorted(schema)}")
    out = {}
    for key, (typ, default, bounds) in schema.items():
        value = config.get(key, default)
        if value is None:
            raise SpecError(f"{name}: config key {key!r} is required")
        if typ is int:
            if not isinstance(value, int) or isinstance(value, bool):
                raise SpecError(f"{name}: {key} must be an integer, got {value!r}")
            if bounds and not bounds[0] <= value <= bounds[1]:
                raise SpecError(f"{name}: {key}={value} out of range {bounds[0]}..{bounds[1]}")
        elif typ is list:
            if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
                raise SpecError(f"{name}: {key} must be a list of integers, got {value!r}")
            if len(value) > 16 or (bounds and not all(bounds[0] <= v <= bounds[1] for v in value)):
                raise SpecError(f"{name}: {key} must have at most 16 values in {bounds}")
        elif typ is float:
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                raise SpecError(f"{name}: {key} must be a number, got {value!r}")
            value = float(value)
        elif typ is dict:
            if not isinstance(value, dict):
                raise SpecError(f"{name}: {key} must be an object")
        out[key] = value
    return out


# -- MLP ------------------------------------------------------------------------------------
class MLP(nn.Module):
    def __init__(self, in_dim: int, hidden: list[int], out_dim: int):
        super().__init__()
        dims = [in_dim, *hidden]
        layers: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:], strict=True):
            layers += [nn.Linear(a, b), nn.ReLU()]
        layers.append(nn.Linear(dims[-1], out_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1))


# -- CNN ------------------------------------------------------------------------------------
class SmallCNN(nn.Module):
    def __init__(self, in_channels: int, image_size: int, channels: list[int], kernel: int, out_dim: int):
        super().__init__()
        layers: list[nn.Module] = []
        c, size = in_channels, image_size
        for ch in channels:
            layers += [nn.Conv2d(c, ch, kernel, padding=kernel // 2), nn.ReLU()]
            c = ch
            if size >= 4:
                layers.append(nn.MaxPool2d(2))
                size //= 2
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(c * size * size, out_dim)
        self.in_channels, self.image_size = in_channels, image_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(x.shape[0], self.in_channels, self.image_size, self.image_size)
        return self.head(self.features(x).flatten(1))


# -- transformer and LoRA -------------------------------------------------------------------
class LoRALinear(nn.Module):
    """y = W x + (alpha / r) B A x with W frozen; B starts at zero so training starts from W."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float):
        super().__init__()
        self.base = base
        self.lora_a = nn.Parameter(torch.randn(rank, base.in_features) / math.sqrt(base.in_features))
        self.lora_b = nn.Parameter(torch.zeros(base.out_features, rank))
        self.scale = alpha / rank

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + F.linear(F.linear(x, self.lora_a), self.lora_b) * self.scale


class Block(nn.Module):
    def __init__(self, d_model: int, n_heads: int, d_ff: int):
        super().__init__()
        self.n_heads = n_heads
        self.ln1 = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.ln2 = nn.LayerNorm(d_model)
        self.fc1 = nn.Linear(d_model, d_ff)
        self.fc2 = nn.Linear(d_ff, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
        q, k, v = (z.reshape(b, t, self.n_heads, d // self.n_heads).transpose(1, 2) for z in (q, k, v))
        att = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(att.transpose(1, 2).reshape(b, t, d))
        return x + self.fc2(F.gelu(self.fc1(self.ln2(x))))


class ByteTransformer(nn.Module):
    """Decoder-only language model over bytes: logits for the next byte at every position."""

    vocab = 256

    def __init__(self, context: int, d_model: int, n_layers: int, n_heads: int, d_ff: int):
        super().__init__()
        self.context = context
        self.tok = nn.Embedding(self.vocab, d_model)
        self.pos = nn.Embedding(context, d_model)
        self.blocks = nn.ModuleList(Block(d_model, n_heads, d_ff) for _ in range(n_layers))
        self.ln = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, self.vocab, bias=False)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        t = idx.shape[1]
        if t > self.context:
            raise ValueError(f"sequence of {t} tokens exceeds the context of {self.context}")
        x = self.tok(idx.long()) + self.pos(torch.arange(t, device=idx.device))
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln(x))


def _transformer_cfg(config: dict[str, Any]) -> dict[str, Any]:
    c = _cfg("transformer", config, {
        "context": (int, 64, (2, 4096)),
        "d_model": (int, 64, (8, 4096)),
        "n_layers": (int, 2, (1, 48)),
        "n_heads": (int, 4, (1, 64)),
        "d_ff": (int, 256, (8, 16384)),
    })
    if c["d_model"] % c["n_heads"]:
        raise SpecError(f"transformer: d_model={c['d_model']} must be divisible by n_heads={c['n_heads']}")
    return c


def _estimate_params(name: str, c: dict[str, Any]) -> int:
    if name == "mlp":
        dims = [c["in_dim"], *c["hidden"], c["out_dim"]]
        return sum(a * b + b for a, b in zip(dims[:-1], dims[1:], strict=True))
    if name == "cnn":
        chans = [c["in_channels"], *c["channels"]]
        conv = sum(a * b * c["kernel"] ** 2 + b for a, b in zip(chans[:-1], chans[1:], strict=True))
        return conv + chans[-1] * c["image_size"] ** 2 * c["out_dim"]
    d, f, layers = c["d_model"], c["d_ff"], c["n_layers"]
    return 256 * d * 2 + c["context"] * d + layers * (4 * d * d + 2 * d * f + 9 * d + f)


def build_model(spec: ModelSpec, seed: int = 0) -> nn.Module:
    """Build the model named by ``spec`` with weights drawn from ``seed`` (deterministic)."""
    name, config = spec.name, spec.config
    if name == "mlp":
        c = _cfg("mlp", config, {"in_dim": (int, None, (1, 1 << 20)), "hidden": (list, [64], (1, 1 << 16)),
                                 "out_dim": (int, None, (1, 1 << 20))})
        make = lambda: MLP(c["in_dim"], c["hidden"], c["out_dim"])  # noqa: E731
    elif name == "cnn":
        c = _cfg("cnn", config, {"in_channels": (int, 1, (1, 64)), "image_size": (int, None, (2, 512)),
                                 "channels": (list, [16, 32], (1, 1024)), "kernel": (int, 3, (1, 11)),
                                 "out_dim": (int, None, (1, 1 << 16))})
        make = lambda: SmallCNN(c["in_channels"], c["image_size"], c["channels"], c["kernel"], c["out_dim"])  # noqa: E731
    elif name == "transformer":
        c = _transformer_cfg(config)
        make = lambda: ByteTransformer(**c)  # noqa: E731
    elif name == "lora":
        c = _cfg("lora", config, {"base": (dict, {}, None), "rank": (int, 4, (1, 256)),
                                  "alpha": (float, 8.0, None), "base_seed": (int, 0, (0, 2**63 - 1))})
        base_c = _transformer_cfg(c["base"])
        if _estimate_params("transformer", base_c) > MAX_PARAMS:
            raise SpecError(f"lora: base model exceeds {MAX_PARAMS} parameters")
        torch.manual_seed(c["base_seed"])
        model = ByteTransformer(**base_c)
        for p in model.parameters():
            p.requires_grad_(False)
        torch.manual_seed(seed)
        for block in model.blocks:
            for attr in ("qkv", "proj", "fc1", "fc2"):
                setattr(block, attr, LoRALinear(getattr(block, attr), c["rank"], c["alpha"]))
        return model
    else:
        raise SpecError(f"unknown model {name!r}; the zoo has: mlp, cnn, transformer, lora")
    if _estimate_params(name, c) > MAX_PARAMS:
        raise SpecError(f"{name}: more than {MAX_PARAMS} parameters")
    torch.manual_seed(seed)
    return make()


def trainable_names(model: nn.Module) -> list[str]:
    """Names of the parameters that train (and travel), in a fixed order."""
    return [n for n, p in model.named_parameters() if p.requires_grad]


def loss_fn(spec: ModelSpec, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy: per example for classifiers, per next byte for language models."""
    logits = model(x)
    if spec.name in ("transformer", "lora"):
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1).long())
    return F.cross_entropy(logits, y.long())


def accuracy(spec: ModelSpec, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of correct argmax predictions (per example, or per next byte)."""
    with torch.no_grad():
        pred = model(x).argmax(dim=-1)
    return float((pred == y.long()).float().mean())


def load_pretrained(model: nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    """Load pretrained weights, e.g. a trained ``transformer``'s into a ``lora`` model's frozen base.

    Names of a plain model map onto LoRA-wrapped layers (``blocks.0.qkv.weight`` ->
    ``blocks.0.qkv.base.weight``). Unknown names or wrong shapes are a ``SpecError``; weights not
    given keep their initial values (adapters, typically).
    """
    own = model.state_dict()
    mapped: dict[str, torch.Tensor] = {}
    for name, t in tensors.items():
        target = name if name in own else None
        if target is None:
            head, _, leaf = name.rpartition(".")
            alt = f"{head}.base.{leaf}"
            target = alt if alt in own else None
        if target is None:
            raise SpecError(f"pretrained weight {name!r} matches no parameter of the model")
        if tuple(own[target].shape) != tuple(t.shape):
            raise SpecError(f"pretrained weight {name!r} has shape {tuple(t.shape)}, model wants {tuple(own[target].shape)}")
        mapped[target] = t
    model.load_state_dict(mapped, strict=False)
