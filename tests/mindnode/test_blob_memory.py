"""Moving a large blob through real nodes costs bounded memory: upload (`POST /blobs`), download
from the node that holds it, and download through a second node that fetches it from the first
over the p2p blob exchange. Runs `scripts/bench/blobs.py` in a subprocess (a fresh process, so the
resident-set figures are its own) and asserts on bytes, never on time."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BLOB_MIB = 192


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_large_blob_moves_with_bounded_memory():
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench" / "blobs.py"), "--mb", str(BLOB_MIB)],
                          capture_output=True, text=True, timeout=220, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["blob_mb"] == round(BLOB_MIB * 1024 * 1024 / 1e6, 1)
    # holding the blob anywhere would add >= 201 MB; pieces of 1 MiB (a few in flight) add little
    assert out["rss_growth_mb"] < 64, out
