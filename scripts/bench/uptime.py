"""What recording providers' uptime costs a node: heartbeat gossip validation, and a block carrying
the proposer's `uptime` transaction.

Measured in one run on a real LevelDB chain (one validator, devnet genesis re-based to now):
- per heartbeat: `mindnode.node.provider.classify` (bounded decode, chain/time checks, signature)
  against the baseline of a bare Ed25519 verify of the same heartbeat;
- per block: `Chain.uptime_tx` (proposer side, N providers' heartbeats of one hour) plus sealing and
  importing the block (every node re-verifies each hour's signature), against the baseline of
  sealing an empty block in the same run.

Prints one JSON object. Timings on a shared 2-core machine are noisy; compare ratios.
Usage: ``python scripts/bench/uptime.py [--providers 500]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]   # p2p.py here shadows p2p/
sys.path.insert(0, str(ROOT))

from ledger.economics.uptime import heartbeat_message, sign_heartbeat  # noqa: E402
from ledger.genesis_file import load_genesis, with_timestamp  # noqa: E402
from ledger.keys import PrivateKey, devnet_key, verify  # noqa: E402
from mindnode.node import provider  # noqa: E402
from mindnode.node.chain import Chain  # noqa: E402


def _median_us(fn, items) -> float:
    times = []
    for it in items:
        t0 = time.perf_counter()
        fn(it)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e6


def _in_turn(chain: Chain) -> tuple[PrivateKey, int, int]:
    """(key, difficulty, timestamp) of the devnet validator whose turn the next block is."""
    for i in range(3):
        plan = chain.seal_plan(devnet_key(i).address)
        if plan is not None and plan.in_turn:
            return devnet_key(i), plan.difficulty, plan.not_before_ms
    raise RuntimeError("no devnet validator is in turn")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--providers", type=int, default=500)
    args = ap.parse_args()
    genesis = with_timestamp(load_genesis("devnet"), int(time.time()) - 3600)   # blocks never in the future
    keys = [PrivateKey(i.to_bytes(4, "big") * 8) for i in range(1, args.providers + 1)]
    with tempfile.TemporaryDirectory() as tmp:
        chain = Chain.open(str(Path(tmp) / "chain"), genesis)
        try:
            relay = provider.relay_key(devnet_key(0))
            # baseline block: empty
            key, diff, t_ms = _in_turn(chain)
            t0 = time.perf_counter()
            chain.seal(key, [], t_ms, diff)
            empty_ms = (time.perf_counter() - t0) * 1e3
            key, diff, t_ms = _in_turn(chain)
            day, hour = chain.clock.hour_of(t_ms // 1000)
            hbs = [sign_heartbeat(k, genesis.chain_id, day, hour) for k in keys]
            raw = [hb.encode() for hb in hbs]
            now = t_ms // 1000
            classify_us = _median_us(lambda d: provider.classify(d, chain_id=genesis.chain_id, clock=chain.clock,
                                                                 now_s=now), raw)
            verify_us = _median_us(lambda hb: verify(hb.provider, heartbeat_message(
                genesis.chain_id, hb.provider, hb.day, hb.hour), hb.signature), hbs)
            t0 = time.perf_counter()
            tx = chain.uptime_tx(relay, hbs, t_ms)
            build_ms = (time.perf_counter() - t0) * 1e3
            t0 = time.perf_counter()
            block = chain.seal(key, [tx], t_ms, diff)
            seal_ms = (time.perf_counter() - t0) * 1e3
            entries = len(tx.body.entries)
        finally:
            chain.close()
    print(json.dumps({
        "bench": "uptime", "providers": args.providers,
        "heartbeat_validate_us": round(classify_us, 1), "baseline_ed25519_verify_us": round(verify_us, 1),
        "validate_ratio": round(classify_us / verify_us, 2),
        "uptime_tx_entries": entries, "uptime_tx_bytes": len(tx.encode()),
        "build_uptime_tx_ms": round(build_ms, 2), "seal_block_with_uptime_ms": round(seal_ms, 2),
        "baseline_seal_empty_block_ms": round(empty_ms, 2), "block_ratio": round(seal_ms / empty_ms, 2),
        "per_entry_us": round((build_ms + seal_ms - empty_ms) * 1e3 / entries, 1),
        "block_txs": len(block.txs),
        "note": "shared 2-core machine, noisy; a block holds one uptime tx of at most max_tx_bytes (64 KiB)",
    }))


if __name__ == "__main__":
    main()
