"""Wire codecs for averaged vectors: none (float32), fp16, and 8-bit with per-block scales.

Why these three: fp16 halves the bytes at ~1e-3 relative error per value; 8-bit block-scaled
quarters them at ~0.4 % of each block's largest magnitude (the scale is max|x|/127 per block of
``BLOCK`` values, so one outlier only coarsens its own block). The accuracy cost on real training
is measured by ``scripts/bench/train_digits.py`` and the tests; see the trainer note.

Every codec decodes to float32. ``decode`` validates the payload length against the number of
values expected, so a truncated or padded message from a peer is an error, not garbage.
"""
from __future__ import annotations

import sys

import numpy as np

NONE, FP16, INT8 = 0, 1, 2
NAMES = {"none": NONE, "fp16": FP16, "int8": INT8}
BLOCK = 256  # values per 8-bit block; one float32 scale each (1.6 % overhead)


def codec_id(name: str) -> int:
    try:
        return NAMES[name]
    except KeyError:
        raise ValueError(f"unknown compression {name!r}; choose one of {sorted(NAMES)}") from None


def encoded_size(codec: int, n: int) -> int:
    """Bytes on the wire for ``n`` values."""
    if codec == NONE:
        return 4 * n
    if codec == FP16:
        return 2 * n
    if codec == INT8:
        return 4 * (-(-n // BLOCK)) + n
    raise ValueError(f"unknown codec id {codec}")


def encode(codec: int, x: np.ndarray) -> bytes | memoryview:
    """Encode a contiguous float32 vector."""
    if codec == NONE:
        return memoryview(np.ascontiguousarray(x, dtype=np.float32)).cast("B")
    if codec == FP16:
        torch = sys.modules.get("torch")
        if torch is not None:  # same rounding as numpy, 3-4x faster (F16C); only if already loaded
            t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
            return memoryview(t.clamp(-65504.0, 65504.0).to(torch.float16).numpy()).cast("B")
        return np.clip(x, -65504.0, 65504.0).astype(np.float16).tobytes()
    if codec == INT8:
        n = x.size
        nblocks = -(-n // BLOCK)
        padded = np.zeros(nblocks * BLOCK, dtype=np.float32)
        padded[:n] = x
        blocks = padded.reshape(nblocks, BLOCK)
        scales = (np.abs(blocks).max(axis=1) / 127.0).astype(np.float32)
        safe = np.where(scales > 0, scales, np.float32(1.0))
        q = np.rint(blocks / safe[:, None]).astype(np.int8)
        return scales.tobytes() + q.reshape(-1)[:n].tobytes()
    raise ValueError(f"unknown codec id {codec}")


def decode(codec: int, payload: bytes | memoryview, n: int) -> np.ndarray:
    """Decode ``n`` float32 values; raises ValueError if the payload has the wrong size."""
    expected = encoded_size(codec, n)
    if len(payload) != expected:
        raise ValueError(f"payload of {len(payload)} bytes, expected {expected} for {n} values")
    if codec == NONE:
        return np.frombuffer(payload, dtype=np.float32)
    if codec == FP16:
        half = np.frombuffer(payload, dtype=np.float16)
        torch = sys.modules.get("torch")
        if torch is not None:
            return torch.from_numpy(half.copy() if not half.flags.writeable else half).to(torch.float32).numpy()
        return half.astype(np.float32)
    nblocks = -(-n // BLOCK)
    scales = np.frombuffer(payload, dtype=np.float32, count=nblocks)
    if not np.all(np.isfinite(scales)):
        raise ValueError("non-finite block scale")
    q = np.frombuffer(payload, dtype=np.int8, offset=4 * nblocks)
    out = np.empty(nblocks * BLOCK, dtype=np.float32)
    out[:n] = q
    out[n:] = 0
    out = out.reshape(nblocks, BLOCK) * scales[:, None]
    return out.reshape(-1)[:n]


def roundtrip(codec: int, x: np.ndarray) -> np.ndarray:
    """What a peer will hold after ``x`` crossed the wire with this codec."""
    if codec == NONE:
        return np.asarray(x, dtype=np.float32)
    return decode(codec, encode(codec, x), x.size)
