"""Checkpoints: safetensors with a JSON header, written atomically, loaded without pickle.

Why safetensors: a checkpoint may come from another peer (a joining worker downloads one), so it
must not be able to run code when loaded; safetensors holds only tensors plus a string map. The
string map carries one JSON document under ``"mindnode"``: format version, step, data position,
round, group, metrics, the model spec, and the non-tensor parts of optimizer states (param
groups and scalar state). Tensors are named ``model/<param>``, ``opt/<name>/<index>/<key>`` and
``extra/<name>`` (e.g. the async anchor parameters).

Writes go to a temporary file in the same directory, are fsync'ed, then renamed over the target,
so a crash (even SIGKILL mid-write) leaves the previous checkpoint intact; ``latest`` skips
temporary and unreadable files.
"""
from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from trainer.errors import CheckpointError

log = logging.getLogger("mindnode.trainer")
FORMAT = 1
_NAME = re.compile(r"^ckpt-(\d{12})\.safetensors$")


@dataclass
class Checkpoint:
    """Everything needed to resume: model tensors, optimizer states, extras, and the header."""

    model: dict[str, torch.Tensor]
    optimizers: dict[str, dict[str, Any]]  # name -> torch optimizer state_dict
    extra: dict[str, torch.Tensor] = field(default_factory=dict)
    header: dict[str, Any] = field(default_factory=dict)

    @property
    def step(self) -> int:
        return int(self.header.get("step", 0))


def dumps(ckpt: Checkpoint) -> bytes:
    """Serialize to safetensors bytes."""
    tensors: dict[str, torch.Tensor] = {}
    for name, t in ckpt.model.items():
        tensors[f"model/{name}"] = t.detach().contiguous().cpu()
    opt_json: dict[str, Any] = {}
    for oname, sd in ckpt.optimizers.items():
        scalars: dict[str, dict[str, Any]] = {}
        for idx, st in sd["state"].items():
            for key, value in st.items():
                if isinstance(value, torch.Tensor):
                    tensors[f"opt/{oname}/{idx}/{key}"] = value.detach().contiguous().cpu()
                else:
                    scalars.setdefault(str(idx), {})[key] = value
        opt_json[oname] = {"param_groups": sd["param_groups"], "scalars": scalars,
                           "indices": [int(i) for i in sd["state"]]}
    for name, t in ckpt.extra.items():
        tensors[f"extra/{name}"] = t.detach().contiguous().cpu()
    header = dict(ckpt.header)
    header["format"] = FORMAT
    header["optimizers"] = opt_json
    try:
        meta = json.dumps(header, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint header is not JSON-serialisable: {exc}") from None
    return st_save(tensors, metadata={"mindnode": meta})


def loads(data: bytes) -> Checkpoint:
    """Parse safetensors bytes written by ``dumps``; any inconsistency is a ``CheckpointError``."""
    try:
        tensors = st_load(data)
        meta_len = int.from_bytes(data[:8], "little")
        raw_header = json.loads(data[8 : 8 + meta_len])
        header = json.loads(raw_header["__metadata__"]["mindnode"])
    except (SafetensorError, ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"not a mindnode checkpoint: {exc}") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise CheckpointError(f"unsupported checkpoint format {header.get('format') if isinstance(header, dict) else '?'}")
    model = {k[6:]: v for k, v in tensors.items() if k.startswith("model/")}
    extra = {k[6:]: v for k, v in tensors.items() if k.startswith("extra/")}
    optimizers: dict[str, dict[str, Any]] = {}
    opt_json = header.pop("optimizers", {})
    try:
        for oname, oj in opt_json.items():
            state: dict[int, dict[str, Any]] = {int(i): {} for i in oj["indices"]}
            for idx, sc in oj["scalars"].items():
                state.setdefault(int(idx), {}).update(sc)
            prefix = f"opt/{oname}/"
            for k, v in tensors.items():
                if k.startswith(prefix):
                    idx, key = k[len(prefix):].split("/", 1)
                    state.setdefault(int(idx), {})[key] = v
            optimizers[oname] = {"state": state, "param_groups": oj["param_groups"]}
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        raise CheckpointError(f"corrupt optimizer state in checkpoint: {exc}") from None
    return Checkpoint(model, optimizers, extra, header)


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a crash leaves either the old file or the new one."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def save(directory: Path, ckpt: Checkpoint, keep: int = 2) -> Path:
    """Save as ``ckpt-<step>.safetensors`` in ``directory``; keep the newest ``keep`` files."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"ckpt-{ckpt.step:012d}.safetensors"
    write_atomic(path, dumps(ckpt))
    for old in list_checkpoints(directory)[:-keep] if keep > 0 else []:
        old.unlink(missing_ok=True)
    return path


def list_checkpoints(directory: Path) -> list[Path]:
    directory = Path(directory)
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if _NAME.match(p.name))


def load(path: Path) -> Checkpoint:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise CheckpointError(f"cannot read checkpoint: {exc}") from None
    return loads(data)


def latest(directory: Path) -> Checkpoint | None:
    """The newest readable checkpoint in ``directory`` (a corrupt newest one is skipped, logged)."""
    for path in reversed(list_checkpoints(directory)):
        try:
            return load(path)
        except CheckpointError as exc:
            log.warning("skipping unreadable checkpoint %s: %s", path, exc)
    return None


def load_weights(model: torch.nn.Module, tensors: dict[str, torch.Tensor], strict: bool = True) -> None:
    """Copy ``tensors`` into ``model``'s parameters/buffers, checking names and shapes."""
    own = model.state_dict()
    missing = set(own) - set(tensors)
    unexpected = set(tensors) - set(own)
    if (strict and missing) or unexpected:
        raise CheckpointError(f"checkpoint does not fit the model: missing {sorted(missing)[:5]}, "
                              f"unexpected {sorted(unexpected)[:5]}")
    for k, v in tensors.items():
        if own[k].shape != v.shape:
            raise CheckpointError(f"checkpoint tensor {k} has shape {tuple(v.shape)}, model has {tuple(own[k].shape)}")
    model.load_state_dict(tensors, strict=strict)
