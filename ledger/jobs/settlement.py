"""Paying out of a job's escrow: the only place job tokens leave `JOB_ESCROW`.

In this order, each capped by what the escrow still holds:

1. The workers' earned fee, at each worker's agreed price:
   ``fee = min(escrow, sum(price_i * samples_i) // work_unit_samples)`` (one floor). It goes
   through the economics' utilisation split (`settle_job_fee`): sync 50% / async 20% to the
   providers, shared by ``price_i * samples_i``, into their reward accounts (withdrawn with
   `withdraw_rewards`); the rest, with rounding dust, to the mining pool.
2. A fee to each verifier whose verdict stood (`verifier_fee`): ``verifier_fee_bps`` of the
   *claimed* work value of the result (every worker's samples at its price, bad workers included),
   credited straight to the verifier's balance. Why the claimed value: it is fixed once the result
   is posted, so the fee does not depend on the verdict (a verifier earns the same for passing,
   failing or accusing: no reason to lie either way), and it scales with the size of the job, as
   the replay and evaluation work does. Why after the workers: the workers' pay is what the
   submitter agreed to; verification is the submitter's cost on top, so a budget that only just
   covers the work leaves the verifiers short rather than the workers.
3. Whatever the escrow still holds is refunded to the submitter.

So ``escrow == fee + verifier fees + refund`` exactly, and nothing else moves: total supply is
untouched. Per job: ``fee_paid + verifier_fees + refunded + escrow == budget`` (`views.audit_jobs`).
"""

from __future__ import annotations

import dataclasses

from ledger.economics import ledger_state as econ
from ledger.jobs.records import JOB_ESCROW, Job, Payment


def work_value(state, work: list[tuple[bytes, int, int]]) -> int:
    """Base units earned by `work` = (provider, price per unit, samples) at the agreed prices."""
    return sum(price * samples for _, price, samples in work) // state.params.jobs.work_unit_samples


def earned_fee(state, job: Job, work: list[tuple[bytes, int, int]]) -> int:
    return min(job.escrow, work_value(state, work))


def verifier_fee(state, job: Job) -> int:
    """What each verifier whose verdict stood is owed (before the escrow cap): a share of the
    claimed work value of the job's result."""
    if job.result is None:
        return 0
    prices = {w.provider: w.price for w in job.assigned}
    claimed = work_value(state, [(w.provider, prices.get(w.provider, 0), w.samples) for w in job.result.work])
    return claimed * state.params.jobs.verifier_fee_bps // 10_000


def pay_and_refund(state, job: Job, fee: int, weights: list[tuple[bytes, int]],
                   verifiers: tuple[bytes, ...] = (), fee_each: int = 0) -> Job:
    """Take `fee` (<= escrow) from the job's escrow through the utilisation split by `weights`,
    then pay each of `verifiers` `fee_each` (capped by what is left, in the given order), refund
    the rest to the submitter; returns the job with its escrow at 0."""
    assert 0 <= fee <= job.escrow
    payments: tuple = ()
    if fee:
        split = econ.settle_job_fee(state, JOB_ESCROW, fee, job.mode, [(p, w) for p, w in weights])
        payments = tuple(Payment(provider=p, amount=a) for p, a in split.payouts)
    left = job.escrow - fee
    vpay = []
    for v in verifiers:
        amount = min(fee_each, left)
        if amount:
            state.debit(JOB_ESCROW, amount, "the verifier fee")
            state.credit(v, amount)
            left -= amount
        vpay.append(Payment(provider=v, amount=amount))
    paid_verifiers = sum(p.amount for p in vpay)
    if left:
        state.debit(JOB_ESCROW, left, "the job refund")
        state.credit(job.submitter, left)
    return dataclasses.replace(job, escrow=0, fee_paid=job.fee_paid + fee, refunded=job.refunded + left,
                               payments=payments, verifier_fees=job.verifier_fees + paid_verifiers,
                               verifier_payments=job.verifier_payments + tuple(vpay))


def settle_work(state, job: Job, work: list[tuple[bytes, int, int]], verifiers: tuple[bytes, ...] = ()) -> Job:
    """Pay `work` = (provider, price, samples) at the agreed prices, then the `verifiers` whose
    verdict stood; refund the rest."""
    return pay_and_refund(state, job, earned_fee(state, job, work),
                          [(p, price * samples) for p, price, samples in work],
                          verifiers, verifier_fee(state, job))


def refund_all(state, job: Job) -> Job:
    return pay_and_refund(state, job, 0, [])
