"""Ledger import throughput: blocks of signed transfers through the full path, vs raw Ed25519 verify.

Builds BLOCKS blocks of TXS signed transfers among ACCOUNTS funded accounts on one store, then
imports their *bytes* into a second store created from the same genesis, timing only the import:
decode, header + seal, stateless checks, signature verification (parallel, see ledger/sigs.py),
execution, state-trie update, and the fsynced LevelDB write batch. In the same run it measures the
raw single-thread Ed25519 verification rate (libsodium, and `cryptography` for reference), so the
ratio `tx_per_s / verify_per_s` says how much of a core's verify rate the whole path keeps.

Prints one JSON object. Timings on a shared 2-core machine are noisy; compare ratios, and
`tx_per_cpu_s` (transactions per CPU-second of all the process's threads), which a busy machine
disturbs less than wall-clock rates.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import json
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey  # noqa: E402

from ledger import sigs  # noqa: E402
from ledger.genesis import NMT, Genesis, GenesisAccount, GenesisValidator, Params  # noqa: E402
from ledger.keys import PrivateKey, devnet_key  # noqa: E402
from ledger.store import Store, build_block  # noqa: E402
from ledger.tx import sign_tx  # noqa: E402
from ledger.txkinds.transfer import Transfer  # noqa: E402

CHAIN = "bench-1"


def make_genesis(keys: list[PrivateKey], validator: PrivateKey) -> Genesis:
    return Genesis(chain_id=CHAIN, timestamp=1_700_000_000, params=Params(min_validator_stake=NMT),
                   accounts=tuple(GenesisAccount(k.address, 10**6 * NMT) for k in keys),
                   validators=(GenesisValidator(validator.address, 10 * NMT, "bench"),),
                   allocation_start=1_700_000_000)


def raw_verify_rates(items, seconds: float = 1.0) -> dict:
    out = {}
    n = len(items)
    t0 = time.perf_counter()
    done = 0
    while time.perf_counter() - t0 < seconds:
        for a, m, s in items:
            sigs.verify(a, m, s)
        done += n
    out["verify_per_s"] = done / (time.perf_counter() - t0)
    pubs = {a: Ed25519PublicKey.from_public_bytes(a) for a, _, _ in items}
    t0, done = time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds:
        for a, m, s in items:
            pubs[a].verify(s, m)
        done += n
    out["verify_per_s_cryptography"] = done / (time.perf_counter() - t0)
    t0, done = time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds:
        sigs.verify_many(items)
        done += n
    out["verify_per_s_parallel"] = done / (time.perf_counter() - t0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, default=4000)
    ap.add_argument("--txs", type=int, default=1000, help="transactions per block")
    ap.add_argument("--blocks", type=int, default=8)
    ap.add_argument("--no-sync", action="store_true", help="do not fsync each block's write batch")
    ap.add_argument("--profile", action="store_true", help="print a cProfile of the import to stderr")
    args = ap.parse_args()

    keys = [PrivateKey(hashlib.sha256(b"bench account %d" % i).digest()) for i in range(args.accounts)]
    validator = devnet_key(0)
    genesis = make_genesis(keys, validator)
    nonces = [0] * len(keys)
    with tempfile.TemporaryDirectory() as d:
        builder = Store.create(Path(d) / "build", genesis, sync=False)
        blocks: list[bytes] = []
        k = 0
        for _ in range(args.blocks):
            txs = []
            for _ in range(args.txs):
                i, j = k % len(keys), (k * 7 + 1) % len(keys)
                k += 1
                txs.append(sign_tx(keys[i], CHAIN, nonces[i], 1000, Transfer(to=keys[j].address, amount=12345)))
                nonces[i] += 1
            block = build_block(builder, validator, txs, builder.head.timestamp + 2000, 2)
            assert len(block.txs) == args.txs
            builder.import_block(block)
            blocks.append(block.encode())
        builder.close()

        target = Store.create(Path(d) / "import", genesis, sync=not args.no_sync)
        prof = cProfile.Profile() if args.profile else None
        t0, c0 = time.perf_counter(), time.process_time()
        if prof:
            prof.enable()
        for data in blocks:
            target.import_block(data)
        if prof:
            prof.disable()
        elapsed = time.perf_counter() - t0
        cpu = time.process_time() - c0
        assert target.height == args.blocks
        root = target.state_root.hex()
        target.close()

    sample = [(tx.sender, tx.signing_bytes(), tx.signature) for tx in txs[:500]]
    rates = raw_verify_rates(sample)
    n_tx = args.txs * args.blocks
    result = {
        "bench": "ledger_import",
        "accounts": args.accounts,
        "txs_per_block": args.txs,
        "blocks": args.blocks,
        "fsync_per_block": not args.no_sync,
        "import_seconds": round(elapsed, 3),
        "tx_per_s": round(n_tx / elapsed, 1),
        "import_cpu_seconds": round(cpu, 3),       # all threads; less sensitive to a busy machine
        "tx_per_cpu_s": round(n_tx / cpu, 1),
        "verify_per_s": round(rates["verify_per_s"], 1),
        "verify_per_s_cryptography": round(rates["verify_per_s_cryptography"], 1),
        "verify_per_s_parallel": round(rates["verify_per_s_parallel"], 1),
        "ratio_tx_to_verify": round(n_tx / elapsed / rates["verify_per_s"], 3),
        "block_bytes": len(blocks[-1]),
        "cpus": os.cpu_count(),
        "sig_workers": sigs.workers(),
        "final_state_root": root,
    }
    print(json.dumps(result))
    if prof:
        pstats.Stats(prof, stream=sys.stderr).sort_stats(os.environ.get("SORT", "cumulative")).print_stats(35)


if __name__ == "__main__":
    main()
