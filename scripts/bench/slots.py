"""Cost of the missed-slot accounting (`ledger.consensus.slots`) inside real block imports.

Builds a chain of BLOCKS empty blocks on a store with 21 validators (the in-turn validator seals,
except every third height where its successor seals out of turn, so counters, recents and the epoch
record all move), then imports their bytes into a second store, timing the whole import (the
baseline: decode, seal check, execution, trie, fsynced write) and, inside it, the two liveness
hooks. Prints one JSON object; the ratio is the hooks' share of an empty block's import (the
largest share it can have: transactions only add to the baseline). Noisy on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from ledger.consensus import slots  # noqa: E402
from ledger.genesis import NMT, Genesis, GenesisValidator, Params  # noqa: E402
from ledger.keys import devnet_key  # noqa: E402
from ledger.store import Store, build_block  # noqa: E402

T0 = 1_700_000_000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--blocks", type=int, default=300)
    args = ap.parse_args()
    keys = [devnet_key(i) for i in range(21)]
    by_addr = {k.address: k for k in keys}
    params = Params(min_validator_stake=100 * NMT, epoch_length=30, missed_blocks_withhold=50,
                    missed_blocks_jail=150)
    genesis = Genesis(chain_id="bench-slots", timestamp=T0, params=params, accounts=(),
                      validators=tuple(GenesisValidator(k.address, 200 * NMT, f"v{i}") for i, k in enumerate(keys)),
                      allocation_start=T0)
    order = sorted(by_addr)
    with tempfile.TemporaryDirectory() as d:
        src = Store.create(Path(d) / "src", genesis, sync=False)
        raw = []
        for h in range(1, args.blocks + 1):
            sealer = order[(h + (1 if h % 3 == 0 else 0)) % len(order)]
            b = build_block(src, by_addr[sealer], [], (T0 + 2 * h) * 1000, 2 if h % 3 else 1)
            src.import_block(b)
            raw.append(src.get_block_bytes(h))
        src.close()
        spent = [0.0]
        begin, end = slots.begin_block, slots.end_block

        def timed(fn):
            def wrapper(*a, **kw):
                t = time.perf_counter()
                try:
                    return fn(*a, **kw)
                finally:
                    spent[0] += time.perf_counter() - t
            return wrapper

        slots.begin_block, slots.end_block = timed(begin), timed(end)
        dst = Store.create(Path(d) / "dst", genesis, sync=True)
        t = time.perf_counter()
        for data in raw:
            dst.import_block(data)
        total = time.perf_counter() - t
        missed = slots.liveness_view(dst.state())
        dst.close()
    n = args.blocks
    print(json.dumps({"bench": "slots", "blocks": n, "validators": len(keys),
                      "import_ms_per_block": round(1000 * total / n, 3),
                      "hooks_ms_per_block": round(1000 * spent[0] / n, 3),
                      "ratio_hooks_to_import": round(spent[0] / total, 4),
                      "validators_with_missed_slots": len(missed)}))


if __name__ == "__main__":
    main()
