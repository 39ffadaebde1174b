"""Datasets, their content ids, the held-out split, and deterministic shards.

Sources (``DatasetSpec.kind``):
- ``digits``: scikit-learn's ``load_digits`` (1797 8x8 images, ships with the package).
- ``text``: a byte-level corpus from local files that ship on every machine (by default the
  Python standard library's own ``.py`` files, sorted, up to ``max_bytes``), cut into windows of
  ``context + 1`` bytes for next-byte prediction.
- ``blob``: bytes addressed by content id (CIDv1, raw codec, sha2-256, base32 — the p2p layer's
  blob ids) fetched through a caller-given ``fetch(cid) -> bytes``, or read from ``path``; the
  bytes are verified against the id. Format ``tensors`` is a safetensors file with tensors ``x``
  and ``y``; format ``text`` is raw bytes treated like the text corpus.

Shards: ``BatchPlan`` makes one global stream of training indices from the job seed (a fresh
permutation per epoch) and gives global batch s, of ``world * batch_size`` samples starting at
global position ``s * world * batch_size``, to the workers by rank: rank r takes the r-th slice.
So a worker's data depends only on (seed, rank, world, position), one process with batch
``world * b`` sees exactly the union of what the workers see, and the position (samples consumed
globally) is all a checkpoint needs to resume — even when the world size changes.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trainer.errors import DatasetError, SpecError

MAX_BLOB = 1 << 30
Fetch = Callable[[str], bytes]


def cid_of(data: bytes) -> str:
    """CIDv1 (raw codec 0x55, sha2-256 multihash) in multibase base32 lower case ('b' prefix)."""
    raw = bytes([0x01, 0x55, 0x12, 0x20]) + hashlib.sha256(data).digest()
    return "b" + base64.b32encode(raw).decode().lower().rstrip("=")


def verify_cid(cid: str, data: bytes) -> None:
    if cid_of(data) != cid:
        raise DatasetError(f"blob does not match its content id {cid} (got {cid_of(data)})")


@dataclass(frozen=True)
class DatasetSpec:
    kind: str
    config: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps({"kind": self.kind, "config": self.config}, sort_keys=True, separators=(",", ":"))


@dataclass
class Dataset:
    """Tensors in memory: training split and held-out split (numpy; torch made on demand)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    kind: str  # "classification" or "lm"

    @property
    def n_train(self) -> int:
        return len(self.x_train)


def default_text_files(max_bytes: int) -> list[Path]:
    """Files that ship with this Python: its standard library's .py sources, sorted."""
    root = Path(os.path.dirname(os.__file__))
    files, total = [], 0
    for p in sorted(root.glob("*.py")):
        files.append(p)
        total += p.stat().st_size
        if total >= max_bytes:
            break
    if not files:
        raise DatasetError(f"no text files found under {root}")
    return files


def _split(n: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    perm = np.random.default_rng([seed, 0x5EED]).permutation(n)
    n_test = max(1, int(round(n * test_fraction)))
    return np.sort(perm[n_test:]), np.sort(perm[:n_test])


def _lm_windows(data: bytes, context: int) -> tuple[np.ndarray, np.ndarray]:
    arr = np.frombuffer(data, dtype=np.uint8)
    n = (len(arr) - 1) // context
    if n < 2:
        raise DatasetError(f"text of {len(arr)} bytes is too short for context {context}")
    x = arr[: n * context].reshape(n, context).astype(np.int64)
    y = arr[1 : n * context + 1].reshape(n, context).astype(np.int64)
    return x, y


def load_dataset(spec: DatasetSpec, fetch: Fetch | None = None, split_seed: int = 0) -> Dataset:
    """Load a dataset and split it into train and held-out parts (deterministic in ``split_seed``)."""
    c = dict(spec.config)
    test_fraction = float(c.pop("test_fraction", 0.2))
    if not 0 < test_fraction < 1:
        raise SpecError("test_fraction must be between 0 and 1")
    if spec.kind == "digits":
        if c:
            raise SpecError(f"digits: unknown config {sorted(c)}")
        from sklearn.datasets import load_digits

        d = load_digits()
        x = (d.data / 16.0).astype(np.float32)
        y = d.target.astype(np.int64)
        kind = "classification"
    elif spec.kind == "text":
        context = _int(c.pop("context", 64), "context", 2, 4096)
        max_bytes = _int(c.pop("max_bytes", 200_000), "max_bytes", 1000, 1 << 28)
        paths = c.pop("paths", None)
        if c:
            raise SpecError(f"text: unknown config {sorted(c)}")
        files = [Path(p) for p in paths] if paths else default_text_files(max_bytes)
        try:
            data = b"".join(f.read_bytes() for f in files)[:max_bytes]
        except OSError as exc:
            raise DatasetError(f"cannot read text corpus: {exc}") from None
        x, y = _lm_windows(data, context)
        kind = "lm"
    elif spec.kind == "blob":
        cid = c.pop("cid", None)
        path = c.pop("path", None)
        fmt = c.pop("format", "tensors")
        context = _int(c.pop("context", 64), "context", 2, 4096)
        if c:
            raise SpecError(f"blob: unknown config {sorted(c)}")
        data = _blob_bytes(cid, path, fetch)
        if fmt == "tensors":
            x, y = _tensors_from_safetensors(data)
            kind = "classification"
        elif fmt == "text":
            x, y = _lm_windows(data, context)
            kind = "lm"
        else:
            raise SpecError(f"blob: unknown format {fmt!r} (tensors or text)")
    else:
        raise SpecError(f"unknown dataset kind {spec.kind!r}; choose digits, text or blob")
    train, test = _split(len(x), test_fraction, split_seed)
    return Dataset(x[train], y[train], x[test], y[test], kind)


def _int(v: Any, name: str, lo: int, hi: int) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise SpecError(f"{name} must be an integer in {lo}..{hi}, got {v!r}")
    return v


def _blob_bytes(cid: str | None, path: str | None, fetch: Fetch | None) -> bytes:
    if path is not None:
        try:
            size = os.path.getsize(path)
            if size > MAX_BLOB:
                raise DatasetError(f"{path}: {size} bytes exceeds the {MAX_BLOB} byte limit")
            data = Path(path).read_bytes()
        except OSError as exc:
            raise DatasetError(f"cannot read dataset file: {exc}") from None
        if cid is not None:
            verify_cid(cid, data)
        return data
    if cid is None:
        raise SpecError("blob dataset needs a cid or a path")
    if fetch is None:
        raise DatasetError(f"dataset {cid} needs a blob fetcher (none given)")
    data = fetch(cid)
    if len(data) > MAX_BLOB:
        raise DatasetError(f"blob {cid} exceeds the {MAX_BLOB} byte limit")
    verify_cid(cid, data)
    return data


def _tensors_from_safetensors(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    from safetensors import SafetensorError
    from safetensors.numpy import load

    try:
        tensors = load(data)
    except (SafetensorError, ValueError, OSError) as exc:
        raise DatasetError(f"dataset blob is not a valid safetensors file: {exc}") from None
    if set(tensors) != {"x", "y"}:
        raise DatasetError(f"dataset blob must hold exactly tensors 'x' and 'y', got {sorted(tensors)}")
    x, y = tensors["x"], tensors["y"]
    if len(x) != len(y) or len(x) < 2:
        raise DatasetError(f"dataset blob: x has {len(x)} rows, y has {len(y)}")
    return x.astype(np.float32) if x.dtype.kind == "f" else x, y.astype(np.int64)


def tensors_blob(x: np.ndarray, y: np.ndarray) -> bytes:
    """The safetensors bytes of a classification dataset (what a ``blob`` dataset expects)."""
    from safetensors.numpy import save

    return save({"x": np.ascontiguousarray(x), "y": np.ascontiguousarray(y)})


class BatchPlan:
    """Deterministic data order: which training indices rank r uses at global position p."""

    def __init__(self, n_train: int, seed: int, batch_size: int):
        if n_train < 1 or batch_size < 1:
            raise SpecError("need at least one training example and a batch size >= 1")
        self.n = n_train
        self.seed = seed
        self.batch_size = batch_size
        self._perm_cache: dict[int, np.ndarray] = {}

    def _perm(self, epoch: int) -> np.ndarray:
        perm = self._perm_cache.get(epoch)
        if perm is None:
            if len(self._perm_cache) > 4:
                self._perm_cache.clear()
            perm = self._perm_cache[epoch] = np.random.default_rng([self.seed, epoch]).permutation(self.n)
        return perm

    def global_indices(self, position: int, count: int) -> np.ndarray:
        """Indices of global stream positions [position, position + count)."""
        out = np.empty(count, dtype=np.int64)
        i = 0
        while i < count:
            epoch, offset = divmod(position + i, self.n)
            take = min(count - i, self.n - offset)
            out[i : i + take] = self._perm(epoch)[offset : offset + take]
            i += take
        return out

    def indices(self, position: int, rank: int, world: int) -> np.ndarray:
        """Rank ``rank``'s slice of the global batch that starts at ``position``."""
        if not 0 <= rank < world:
            raise ValueError(f"rank {rank} out of range for world {world}")
        b = self.batch_size
        return self.global_indices(position + rank * b, b)

    def shard(self, epoch: int, rank: int, world: int) -> np.ndarray:
        """All indices rank ``rank`` sees in ``epoch`` when the world size stays ``world``."""
        step = world * self.batch_size
        out = [self.indices(pos, rank, world) for pos in range(epoch * self.n, (epoch + 1) * self.n, step)]
        return np.concatenate(out) if out else np.empty(0, dtype=np.int64)


def python_text_available() -> bool:
    """True if this interpreter ships its stdlib sources (the default text corpus)."""
    return any(Path(os.path.dirname(os.__file__)).glob("*.py")) and sys.version_info >= (3, 11)
