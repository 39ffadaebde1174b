"""Paying out of a job's escrow: the only place job tokens leave `JOB_ESCROW`.

* Earned fee of the work in `work` (provider, samples) at each worker's agreed price:
  ``fee = min(escrow, sum(price_i * samples_i) // WORK_UNIT_SAMPLES)`` (one floor).
* The fee goes through the economics' utilisation split (`settle_job_fee`): sync 50% / async 20% to
  the providers, shared by ``price_i * samples_i`` (their share of the fee), into their reward
  accounts (withdrawn with `withdraw_rewards`); the rest, with rounding dust, to the mining pool.
* Whatever the escrow still holds is refunded to the submitter.

So `escrow == fee + refund` exactly, and nothing else moves: total supply is untouched.
"""

from __future__ import annotations

import dataclasses

from ledger.economics import ledger_state as econ
from ledger.jobs import rules
from ledger.jobs.records import JOB_ESCROW, Job, Payment


def earned_fee(job: Job, work: list[tuple[bytes, int, int]]) -> int:
    """`work` = (provider, price per unit, samples)."""
    return min(job.escrow, sum(price * samples for _, price, samples in work) // rules.WORK_UNIT_SAMPLES)


def pay_and_refund(state, job: Job, fee: int, weights: list[tuple[bytes, int]]) -> Job:
    """Take `fee` (<= escrow) from the job's escrow through the utilisation split by `weights`,
    refund the rest to the submitter; returns the job with its escrow at 0."""
    assert 0 <= fee <= job.escrow
    payments: tuple = ()
    if fee:
        split = econ.settle_job_fee(state, JOB_ESCROW, fee, job.mode, [(p, w) for p, w in weights])
        payments = tuple(Payment(provider=p, amount=a) for p, a in split.payouts)
    refund = job.escrow - fee
    if refund:
        state.debit(JOB_ESCROW, refund, "the job refund")
        state.credit(job.submitter, refund)
    return dataclasses.replace(job, escrow=0, fee_paid=job.fee_paid + fee, refunded=job.refunded + refund,
                               payments=payments)


def settle_work(state, job: Job, work: list[tuple[bytes, int, int]]) -> Job:
    """Pay `work` = (provider, price, samples) at the agreed prices; refund the rest."""
    fee = earned_fee(job, work)
    return pay_and_refund(state, job, fee, [(p, price * samples) for p, price, samples in work])


def refund_all(state, job: Job) -> Job:
    return pay_and_refund(state, job, 0, [])
