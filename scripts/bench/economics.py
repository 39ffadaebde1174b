"""Daily staking settlement cost vs the number of stakers: F1 against naive per-staker payouts.

Builds a state (genesis with mining and staking pools, one validator) with N delegators, then times
the begin-block settlement of one day (`ledger.economics.ledger_state.settle_due_days`, F1: one
accumulator update per validator) and, as the baseline in the same run, a naive distribution that
computes and credits every staker's share (what F1 avoids). F1 should stay flat as N grows while
the baseline grows linearly; `ratio` = naive / F1.

Prints one JSON object. Timings on a shared 2-core machine are noisy; compare ratios.
"""

from __future__ import annotations

import bisect
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from ledger.economics import accrual  # noqa: E402
from ledger.economics import ledger_state as ls  # noqa: E402
from ledger.economics.schedule import STAKING, rows_daily_cap  # noqa: E402
from ledger.genesis import NMT, AllocationRow, Genesis, GenesisAccount, GenesisValidator, Params  # noqa: E402
from ledger.state import FLEXIBLE, MemoryView, State, genesis_state  # noqa: E402

T0 = 1_700_000_000
VALIDATOR = b"\x01" * 32


class SortedView(MemoryView):
    """MemoryView scans every key per prefix query; LevelDB (the real base) seeks. Seek here too,
    so the benchmark measures the economics, not the test double."""

    def __init__(self, data):
        super().__init__(data)
        self.keys = sorted(self.data)

    def iter_prefix(self, prefix: bytes):
        i = bisect.bisect_left(self.keys, prefix)
        while i < len(self.keys) and self.keys[i].startswith(prefix):
            yield self.keys[i], self.data[self.keys[i]]
            i += 1


def build(n: int) -> SortedView:
    stakers = [i.to_bytes(4, "big") * 8 for i in range(2, n + 2)]
    g = Genesis(chain_id="bench-econ", timestamp=T0, params=Params(min_validator_stake=NMT, day_s=100, month_s=1000),
                accounts=tuple(GenesisAccount(s, 10 * NMT) for s in stakers),
                validators=(GenesisValidator(VALIDATOR, 10 * NMT, "v"),), allocation_start=T0,
                allocation=(AllocationRow("m", 1000 * NMT, 0, 24, pool="mining"),
                            AllocationRow("s", 1000 * NMT, 0, 24, pool="staking")))
    state = genesis_state(g)
    ls.settle_due_days(state, T0 * 1000 + 1000)          # starts the settlement cursor on day 0
    for s in stakers:
        state.debit(s, NMT)
        state.change_stake(s, VALIDATOR, FLEXIBLE, NMT)
    base = MemoryView()
    base.apply(state.changes())
    return SortedView(base.data)


def time_f1(base: MemoryView, reps: int) -> float:
    best = float("inf")
    for _ in range(reps):
        state = State(base)
        t = time.perf_counter()
        ls.settle_due_days(state, T0 * 1000 + 100_500)   # first block of day 1: settles day 0
        state.changes()
        best = min(best, time.perf_counter() - t)
    return best


def time_naive(base: MemoryView, reps: int) -> float:
    """Baseline: pay each staker its pro-rata share now (iterate stakes, credit, encode)."""
    best = float("inf")
    for _ in range(reps):
        state = State(base)
        t = time.perf_counter()
        rows = ls._pool_rows(state, STAKING)
        e = rows_daily_cap(rows, T0, state.params.month_s, ls.clock_of(state), 0)
        stakes = [(k[1:33], st.amount) for k, st in state.iter_prefix(b"s") if k[33:65] == VALIDATOR]
        total = sum(a for _, a in stakes)
        for staker, amount in stakes:
            acct = accrual.credit(ls.reward_account(state, staker), 0, accrual.STAKING, e * amount // total, 30)
            state.put(ls.reward_account_key(staker), acct.encode())
        state.changes()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    out = {"benchmark": "economics_staking_settlement", "unit": "seconds per day settled (best of reps)", "runs": []}
    for n in (10, 1_000, 10_000):
        base = build(n)
        reps = 5 if n < 10_000 else 3
        f1, naive = time_f1(base, reps), time_naive(base, reps)
        out["runs"].append({"stakers": n, "f1_s": round(f1, 6), "naive_s": round(naive, 6),
                            "ratio_naive_over_f1": round(naive / f1, 1)})
    print(json.dumps(out))


if __name__ == "__main__":
    main()
