"""Property test: whatever order jobs are submitted, offered on, assigned, reported, verified
(pass or fail, with slashing and verifier fees), aborted as untrainable, cancelled, left to expire, rated or pruned, every
base unit is accounted for: `State.audit()` (total supply), `audit_jobs` (escrow == what
unfinished jobs hold; each job's and each pruned summary's fee + verifier fees + refund + escrow ==
budget; the state index and pruning queue match the jobs) and `audit_economics` hold after every
block. The chain prunes finished jobs 4 blocks after they settle, at most one per block, so pruning
interleaves with everything else. Half of the clean verdicts are audited (`audit_bps` 5,000), and
verdicts name workers or measure metrics at random, so audits agree, accuse and dispute metrics
(deciders, false-clean penalties) among the rest."""

import dataclasses

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from jobs_fixtures import NMT, PARAMS, PROVIDERS, SUB, MemChain, make_genesis, register_body, submit_body

from ledger.jobs import records as R
from ledger.jobs.cid import cid_of
from ledger.jobs.params import JobParams
from ledger.jobs.views import iter_jobs, iter_summaries, job_view
from ledger.txkinds.job_abort import JobAbort
from ledger.txkinds.job_cancel import JobCancel
from ledger.txkinds.job_offer import JobOffer
from ledger.txkinds.job_rate import JobRate
from ledger.txkinds.job_report_missing import JobReportMissing
from ledger.txkinds.job_result import JobResult
from ledger.txkinds.job_verify import JobVerify
from ledger.txkinds.stake import StakeTx

KEY_OF = {k.address: k for k in PROVIDERS}
AUDIT_PHASES: set[str] = set()       # audit phases the machine reached (checked after the run)
GENESIS = make_genesis(dataclasses.replace(PARAMS, jobs=dataclasses.replace(
    JobParams(), job_retention_blocks=4, max_prunes_per_block=1, audit_bps=5_000)))


class JobFlows(RuleBasedStateMachine):
    @initialize()
    def setup(self):
        self.c = MemChain(GENESIS)
        self.submitted = 0
        self.paid_verifiers = 0
        self.supply = self.c.state().chain.total_supply
        validator = next(iter(self.c.state().iter_prefix(b"c")))[0][1:]
        self.c.block(*(self.c.tx(k, register_body(capacity=2)) for k in PROVIDERS),
                     *(self.c.tx(k, StakeTx(validator=validator, amount=(i + 1) * 7 * NMT + i, lock_days=0))
                       for i, k in enumerate(PROVIDERS)))

    def _jobs(self, states=None):
        return [j for j in iter_jobs(self.c.state()) if states is None or j.state in states]

    @rule(workers=st.integers(1, 3), short=st.integers(0, 2),
          budget=st.integers(1, 10**20) | st.integers(10**20, 3 * 10**20),      # short and ample budgets
          window=st.integers(2, 6), life=st.integers(5, 60), mode=st.sampled_from(["sync", "async"]),
          offerers=st.lists(st.sampled_from(PROVIDERS), max_size=5, unique=True),
          prices=st.lists(st.integers(0, 10**19), min_size=5, max_size=5))
    def submit(self, workers, short, budget, window, life, mode, offerers, prices):
        deadline = self.c.time_ms + life * 2000
        self.c.block(self.c.tx(SUB, submit_body(workers=workers, min_workers=max(1, workers - short), budget=budget,
                                                offer_window=window, deadline_ms=deadline, mode=mode,
                                                max_price=10**19)))
        counter = R.load(self.c.state(), R.JOB_COUNTER_KEY, R.Counter)
        self.submitted = job_id = counter.next - 1 if counter else 0
        self.c.block(*(self.c.tx(k, JobOffer(job_id=job_id, price=p, zone=""))
                       for k, p in zip(offerers, prices, strict=False)))

    @rule(data=st.data())
    def offers(self, data):
        jobs = self._jobs((R.OPEN,))
        if not jobs:
            return
        job = data.draw(st.sampled_from(jobs))
        who = data.draw(st.lists(st.sampled_from(PROVIDERS), max_size=4, unique=True))
        self.c.block(*(self.c.tx(k, JobOffer(job_id=job.id, price=data.draw(st.integers(0, 10**19)), zone=""))
                       for k in who))

    @rule(n=st.integers(1, 6))
    def advance(self, n):
        for _ in range(n):
            self.c.block()

    @rule(data=st.data())
    def result(self, data):
        jobs = self._jobs((R.RUNNING,))
        if not jobs:
            return
        job = data.draw(st.sampled_from(jobs))
        work = tuple(R.Work(provider=w.provider, samples=data.draw(st.integers(1, 10_000))) for w in job.assigned)
        poster = KEY_OF[job.active_workers[0].provider]
        self.c.block(self.c.tx(poster, JobResult(job_id=job.id, result_cid=cid_of(b"%d" % job.id),
                                                 metrics=(R.Metric(name="accuracy", value_ppm=990_000),),
                                                 work=work, checkpoints=())))

    @rule(data=st.data())
    def result_then_verify(self, data):
        """The whole tail in one rule (random rules alone rarely line it up before a deadline)."""
        self.result(data)
        for _ in range(3):
            self.c.block()
        for _ in range(data.draw(st.integers(1, 3))):     # then an auditor's / a decider's verdict
            self.verify(data)
            self.c.block()

    @rule(data=st.data())
    def verify(self, data):
        jobs = [j for j in self._jobs((R.VERIFYING,)) if j.verifier]
        if not jobs:
            return
        job = data.draw(st.sampled_from(jobs))
        bad = data.draw(st.lists(st.sampled_from([w.provider for w in job.result.work]), unique=True, max_size=1))
        self.c.block(self.c.tx(KEY_OF[job.verifier], JobVerify(
            job_id=job.id, replay_from=job.replay_from, replay_steps=job.replay_steps, bad_workers=tuple(bad),
            metric_ppm=data.draw(st.sampled_from([990_000, 900_000, 950_000])))))

    @rule(data=st.data())
    def report(self, data):
        jobs = [j for j in self._jobs((R.RUNNING,)) if len(j.active_workers) >= 2]
        if not jobs:
            return
        job = data.draw(st.sampled_from(jobs))
        a, b = data.draw(st.lists(st.sampled_from(job.active_workers), min_size=2, max_size=2, unique=True))
        self.c.block(self.c.tx(KEY_OF[a.provider], JobReportMissing(job_id=job.id, worker=b.provider)))

    @rule(data=st.data())
    def abort(self, data):
        """Some active workers (or a worker of a verifying job: refused) declare a job untrainable;
        a majority fails it with a full refund."""
        jobs = self._jobs((R.RUNNING, R.VERIFYING))
        if not jobs:
            return
        job = data.draw(st.sampled_from(jobs))
        who = data.draw(st.lists(st.sampled_from(job.active_workers), min_size=1, unique=True))
        code = data.draw(st.sampled_from(R.ABORT_CODES))
        errs = self.c.block(*(self.c.tx(KEY_OF[w.provider], JobAbort(job_id=job.id, code=code, reason="bad"))
                              for w in who))
        if job.state == R.VERIFYING:
            assert len(errs) == len(who)
        after = self.c.job(job.id)
        if after.state == R.FAILED and after.reason.startswith("untrainable"):
            assert after.refunded == after.budget and after.fee_paid == 0 and not after.payments

    @rule(data=st.data())
    def rate(self, data):
        """Rate a done job, or try to rate a pruned one (refused: nothing moves)."""
        done = [j.id for j in self._jobs((R.DONE,)) if not j.rated]
        pruned = [s.id for s in iter_summaries(self.c.state())]
        if done or pruned:
            jid = data.draw(st.sampled_from(done + pruned))
            errs = self.c.block(self.c.tx(SUB, JobRate(job_id=jid, score=data.draw(st.integers(1, 5)))))
            assert bool(errs) == (jid in pruned and jid not in done), errs

    @rule(data=st.data())
    def cancel(self, data):
        jobs = self._jobs((R.OPEN, R.RUNNING))
        if jobs:
            self.c.block(self.c.tx(SUB, JobCancel(job_id=data.draw(st.sampled_from(jobs)).id)))

    @invariant()
    def conserved(self):
        if not hasattr(self, "c"):
            return
        state = self.c.state()
        parts = state.audit()
        assert parts["total"] == self.supply
        self.c.audit()
        # every job is either a full record or a pruned summary, and its view answers
        live = {j.id for j in iter_jobs(state)}
        pruned = {s.id for s in iter_summaries(state)}
        assert not live & pruned and live | pruned == set(range(1, self.submitted + 1))
        for jid in live | pruned:
            v = job_view(state, jid)
            assert v["pruned"] == (jid in pruned)
            assert sum(int(p["amount"]) for p in v["verifier_payments"]) == int(v["verifier_fees"])
            if v["audit"] is not None and v["state"] == R.VERIFYING and v["audit"]["phase"] != R.A_DRAW:
                # an audit or a dispute waits on someone, or on the next block's draw of the decider
                assert v["verifier"] or R.get_job(state, jid).challenge_height == self.c.height + 1
        for s in iter_summaries(state):
            assert s.pruned_height - s.settled_height >= 5      # later when the per-block bound is reached
        for j in iter_jobs(state):
            if j.audit:
                AUDIT_PHASES.add(j.audit)
                # a clean verdict under audit is one verifier; never paid twice, at most 3 verdicts stood
                assert len(j.verifier_payments) <= 3 and len({p.provider for p in j.verifier_payments}) == len(
                    j.verifier_payments)
        for p in PROVIDERS:
            prov = self.c.provider(p)
            assert prov.active_jobs == sum(1 for j in self._jobs((R.RUNNING, R.VERIFYING))
                                           for w in j.active_workers if w.provider == p.address)


TestJobFlows = JobFlows.TestCase
TestJobFlows.settings = settings(max_examples=60, stateful_step_count=25, deadline=None,
                                 suppress_health_check=[HealthCheck.too_slow])


def test_the_machine_reaches_every_audit_phase():
    """The random flows do exercise audits: a derandomized run (the same every time, so this cannot
    flake) reaches every phase: drawn, audited, disputed."""
    from hypothesis.stateful import run_state_machine_as_test

    AUDIT_PHASES.clear()
    run_state_machine_as_test(JobFlows, settings=settings(
        max_examples=60, stateful_step_count=40, deadline=None, derandomize=True, database=None,
        suppress_health_check=[HealthCheck.too_slow]))
    assert {R.A_DRAW, R.A_AUDIT, R.A_DISPUTE} <= AUDIT_PHASES, AUDIT_PHASES
