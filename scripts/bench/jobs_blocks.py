"""Block cost of the jobs rules: build + import of blocks on a real LevelDB store.

Measures, in one run: an empty block with the jobs hooks vs without them (the baseline: the
same chain with the jobs begin/end hooks unregistered), a block of N `job_submit`, the block
that closes N offer windows (4 offers each, 3 workers assigned per job), and, when the tree has
pruning (`ledger.jobs.params`), a block that prunes `max_prunes_per_block` finished jobs and
`provider_duties` through the state index vs a full scan of every job (the old way) with N
finished jobs in state. Then N more jobs run to a result and get a clean verdict each: the block
of N verdicts, and, on a tree with audits (`audit_bps`, ledger/JOBS.md "Audits"), the next block
(the audit draw: most settle, `audit_bps` of them get an auditor) and the block of the auditors'
verdicts; `verdict_phase_ms` sums the blocks a verdict costs in the tree measured.

`--tree PATH` imports the ledger from another checkout (e.g. /work/main) to measure "before".
Prints one JSON object. Times are CPU milliseconds of the whole process (`time.process_time`, all
threads: the signature checks run on both cores), which other processes on a shared 2-core machine
disturb less than wall-clock time; still noisy: compare ratios measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--jobs", type=int, default=200)
ap.add_argument("--empty", type=int, default=40, help="empty blocks timed (each way)")
ap.add_argument("--tree", default=str(Path(__file__).resolve().parents[2]))
ARGS = ap.parse_args()
sys.path.insert(0, ARGS.tree)

from ledger import registry  # noqa: E402
from ledger.genesis import NMT, AllocationRow, Genesis, GenesisAccount, GenesisValidator, Params  # noqa: E402
from ledger.jobs import records as R  # noqa: E402
from ledger.keys import devnet_key  # noqa: E402
from ledger.store import Store, build_block  # noqa: E402
from ledger.tx import sign_tx  # noqa: E402
from ledger.txkinds.job_cancel import JobCancel  # noqa: E402
from ledger.txkinds.job_offer import JobOffer  # noqa: E402
from ledger.txkinds.job_submit import JobSubmit  # noqa: E402
from ledger.txkinds.provider_register import ProviderRegister  # noqa: E402

try:
    from ledger.jobs.params import JobParams  # noqa: E402
except ImportError:          # a tree from before params.jobs / pruning
    JobParams = None

CHAIN, T0 = "bench-jobs", 1_700_000_000
V0, SUB = devnet_key(0), devnet_key(1)
N = ARGS.jobs
PROVIDERS = [devnet_key(100 + i) for i in range(N)]
RETAIN = 10


def genesis() -> Genesis:
    kw = dict(min_validator_stake=NMT, day_s=100, month_s=1000, max_block_txs=20_000)
    if JobParams is not None:
        kw["jobs"] = JobParams(job_retention_blocks=RETAIN)
    return Genesis(chain_id=CHAIN, timestamp=T0, params=Params(**kw),
                   accounts=(GenesisAccount(V0.address, 10**6 * NMT), GenesisAccount(SUB.address, 10**9 * NMT),
                             *(GenesisAccount(k.address, 100 * NMT) for k in PROVIDERS)),
                   validators=(GenesisValidator(V0.address, 10 * NMT, "v0"),), allocation_start=T0,
                   allocation=(AllocationRow("mining", 10**6 * NMT, 0, 24, pool="mining"),
                               AllocationRow("staking", 10**6 * NMT, 0, 24, pool="staking")))


class Bench:
    def __init__(self, path):
        self.store = Store.create(path, genesis(), sync=False)
        self.nonces: dict[bytes, int] = {}

    def tx(self, key, body):
        n = self.nonces.get(key.address, 0)
        self.nonces[key.address] = n + 1
        return sign_tx(key, CHAIN, n, 0, body)

    def block(self, txs=()) -> float:
        t0 = time.process_time()
        skipped = []
        blk = build_block(self.store, V0, list(txs), self.store.head.timestamp + 2000, 2,
                          on_skip=lambda tx, exc: skipped.append(str(exc)))
        self.store.import_block(blk)
        dt = time.process_time() - t0
        if skipped:
            raise SystemExit(f"skipped: {skipped[:3]}")
        return dt


def empty_ms(b: Bench, n: int) -> float:
    return statistics.median(b.block() for _ in range(n)) * 1000


def verdicts(b: Bench, body: dict, out: dict) -> None:
    """N jobs to a clean verdict each; time the verdict block and what follows it (see docstring)."""
    from ledger.jobs.cid import cid_of
    from ledger.txkinds.job_result import JobResult
    from ledger.txkinds.job_verify import JobVerify

    key_of = {k.address: k for k in PROVIDERS}
    first = R.load(b.store.state(), R.JOB_COUNTER_KEY, R.Counter).next
    b.block([b.tx(SUB, JobSubmit(**body)) for _ in range(N)])
    ids = range(first, first + N)
    close = b.store.height + body["offer_window"]
    offers = [b.tx(PROVIDERS[(j * 4 + i) % N], JobOffer(job_id=j, price=NMT, zone="z")) for j in ids for i in range(4)]
    for i in range(0, len(offers), 400):
        b.block(offers[i:i + 400])
    while b.store.height < close:
        b.block()
    results = []
    for j in ids:
        job = R.get_job(b.store.state(), j)
        results.append(b.tx(key_of[job.assigned[0].provider], JobResult(
            job_id=j, result_cid=cid_of(b"%d" % j), metrics=(R.Metric(name="accuracy", value_ppm=990_000),),
            work=tuple(R.Work(provider=w.provider, samples=1000) for w in job.assigned), checkpoints=())))
    b.block(results)
    challenge = R.get_job(b.store.state(), first).challenge_height
    while b.store.height < challenge:
        b.block()

    def verdict_txs():
        txs = []
        for j in ids:
            job = R.get_job(b.store.state(), j)
            if job.state == R.VERIFYING and job.verifier:
                txs.append(b.tx(key_of[job.verifier], JobVerify(job_id=j, replay_from=job.replay_from,
                                                                 replay_steps=job.replay_steps, bad_workers=(),
                                                                 metric_ppm=990_000)))
        return txs

    txs = verdict_txs()
    assert len(txs) == N
    out["block_of_verdicts_ms"] = b.block(txs) * 1000
    total = out["block_of_verdicts_ms"]
    audits = JobParams is not None and hasattr(JobParams(), "audit_bps")
    if audits:
        out["audit_bps"] = b.store.params.jobs.audit_bps
        out["block_audit_draw_ms"] = b.block() * 1000
        txs = verdict_txs()
        out["audited_jobs"] = len(txs)
        out["block_of_audit_verdicts_ms"] = b.block(txs) * 1000
        total += out["block_audit_draw_ms"] + out["block_of_audit_verdicts_ms"]
    out["verdict_phase_ms"] = total
    done = sum(1 for j in ids if R.get_job(b.store.state(), j).state == R.DONE)
    assert done == N, done


def main() -> None:
    out: dict = {"jobs": N, "tree": ARGS.tree, "has_pruning": JobParams is not None}
    with tempfile.TemporaryDirectory() as d:
        b = Bench(Path(d) / "s")
        b.block([b.tx(k, ProviderRegister(hardware_class="cpu", score=1000, price=NMT, capacity=8, zone="z",
                                          bandwidth_kbps=100_000)) for k in PROVIDERS])
        out["empty_block_ms"] = empty_ms(b, ARGS.empty)
        saved = {ph: dict(registry._HOOKS[ph]) for ph in ("begin", "end")}
        registry._HOOKS["begin"].pop("jobs_beacon")
        registry._HOOKS["end"].pop("jobs_tick")
        out["empty_block_ms_without_jobs_hooks"] = empty_ms(b, ARGS.empty)
        registry._HOOKS.update({ph: saved[ph] for ph in saved})
        window = 8
        body = dict(spec=b'{"name":"bench"}', mode="sync", workers=3, min_workers=3, min_class="cpu", min_score=1,
                    max_price=10 * NMT, max_samples=10_000, steps=100, replay_steps=5, metric="accuracy",
                    metric_op=">=", threshold_ppm=1, budget=10 * NMT, offer_window=window,
                    deadline_ms=(T0 + 10**6) * 1000, strategy="default")
        out["block_of_submits_ms"] = b.block([b.tx(SUB, JobSubmit(**body)) for _ in range(N)]) * 1000
        close = b.store.height + window
        ids = range(1, N + 1)
        offers = [b.tx(PROVIDERS[(j * 4 + i) % N], JobOffer(job_id=j, price=NMT, zone="z")) for j in ids
                  for i in range(4)]
        for i in range(0, len(offers), 400):
            b.block(offers[i:i + 400])
        while b.store.height < close - 1:
            b.block()
        out["block_closing_windows_ms"] = b.block() * 1000
        assert R.get_job(b.store.state(), 1).state == R.RUNNING
        out["empty_block_ms_with_running_jobs"] = empty_ms(b, 10)
        from ledger.jobs import views

        def scan_duties(state, addr):        # the pre-index way: decode every job
            found = []
            for job in views.iter_jobs(state):
                if job.state == R.RUNNING and job.worker(addr) is not None:
                    found.append(job.id)
            return found

        out["block_cancelling_ms"] = b.block([b.tx(SUB, JobCancel(job_id=j)) for j in ids]) * 1000
        b.block([b.tx(SUB, JobSubmit(**body))])        # one open job among N finished ones
        st = b.store.state()
        reps = 20
        t0 = time.process_time()
        for _ in range(reps):
            views.provider_duties(st, PROVIDERS[0].address)
        out["duties_ms"] = (time.process_time() - t0) / reps * 1000
        t0 = time.process_time()
        for _ in range(reps):
            scan_duties(st, PROVIDERS[0].address)
        out["duties_full_scan_ms"] = (time.process_time() - t0) / reps * 1000
        out["duties_ratio_scan_over_index"] = out["duties_full_scan_ms"] / out["duties_ms"]
        if JobParams is not None:
            settled = R.get_job(b.store.state(), 1).settled_height
            while b.store.height < settled + RETAIN:
                b.block()
            per = b.store.params.jobs.max_prunes_per_block
            times = []
            for _ in range(3):
                before = len(list(b.store.state().iter_prefix(b"Jx")))
                times.append(b.block())
                assert len(list(b.store.state().iter_prefix(b"Jx"))) == before + per
            out["max_prunes_per_block"] = per
            out["block_pruning_ms"] = statistics.median(times) * 1000
            while next(iter(b.store.state().iter_prefix(b"Jf")), None) is not None:
                b.block()
            out["empty_block_ms_after_pruning"] = empty_ms(b, 10)   # N summaries in state, no job records
        verdicts(b, body, out)
        b.store.close()
    out["ratio_empty_with_over_without_hooks"] = out["empty_block_ms"] / out["empty_block_ms_without_jobs_hooks"]
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in out.items()}))


if __name__ == "__main__":
    main()
