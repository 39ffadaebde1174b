"""The jobs rules' policy parameters: the ``jobs`` section of the genesis `Params`.

Why in genesis and not module constants: they are consensus values (every node must use the
same), and a network may want other numbers (a devnet prunes finished jobs after minutes, a
mainnet after weeks) without a code change. The defaults are the values the rules were built and
measured with (ledger/JOBS.md). The rules read them at execution from ``state.params.jobs``.

What stays a constant in `ledger.jobs.rules`: limits that size stored records or bound the work of
one block (MAX_WORKERS, MAX_SPEC_BYTES, MAX_OFFERS, VERIFY_ROUNDS_LIMIT, MAX_REPLAY_STEPS, the
offer-window range, the reputation scale, the control matrix size): changing them changes record
encodings or what a node must be able to compute, so they change with the code, not the genesis.

Genesis JSON (any subset; unknown names are errors)::

    "params": {"jobs": {"job_retention_blocks": 300, "verifier_fee_bps": 500, ...}}

Every field is a non-negative JSON integer with the range given in `RANGES`; an out-of-range
value stops `mindnode init` with a message naming ``$.params.jobs.<field>``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ledger.errors import GenesisError

#: Hard limit of `max_verify_rounds` (it sizes `Job.tried_verifiers`).
VERIFY_ROUNDS_LIMIT = 8
#: Hard limit of `max_replacements`: `Job.assigned` holds at most 64 workers (16 + 48 replacements).
REPLACEMENTS_LIMIT = 48


@dataclass(frozen=True)
class JobParams:
    """Policy numbers of the jobs rules (units: blocks, basis points, reputation points 0..10,000)."""

    work_unit_samples: int = 1_000          # providers price a work unit of this many samples
    max_offer_rounds: int = 3               # offer windows in all (a short one reopens, at most twice)
    max_replacements: int = 4               # missing workers replaced per job (bounded retries)
    max_provider_capacity: int = 8          # jobs at once a provider may declare
    verify_delay_blocks: int = 2            # challenge drawn this many blocks after the result
    verify_timeout_blocks: int = 30         # a designated verifier has this long to post its verdict
    max_verify_rounds: int = 4              # verifiers tried (confirmers included) before a refund
    verifier_fee_bps: int = 500             # each verifier whose verdict stood: this share of the claimed work value
    audit_bps: int = 1_000                  # chance that a clean verdict is audited by a second verifier (10%)
    audit_metric_tolerance_ppm: int = 5_000  # two verdicts' metrics agree within this (0.5 points of accuracy)
    cancel_running_fee_bps: int = 1_000     # cancelling an assigned job pays this share of the budget
    slash_fraction_bps: int = 1_000         # stake slashed from a worker whose work failed verification
    control_interval_blocks: int = 50       # a control task every this many blocks
    control_timeout_blocks: int = 20        # to answer it
    job_retention_blocks: int = 1_000_000   # a finished job is pruned to a summary this long after settling
    max_prunes_per_block: int = 16          # pruning work per block (the rest waits for the next block)
    reputation_start: int = 5_000
    rep_verified_work: int = 100            # each worker paid for a verified job (active at the end)
    rep_verifier: int = 20                  # a verifier whose verdict stood
    rep_control_pass: int = 20
    rep_rating_step: int = 50               # a rating r in 1..5 moves each paid worker by (r - 3) * step
    rep_failed_verification_penalty: int = 1_000
    rep_false_accusation_penalty: int = 1_000   # an accuser the confirming verifier contradicted
    rep_false_clean: int = 1_000            # a clean verdict a decider contradicted (lazy or lying verifier)
    rep_dropped_penalty: int = 500          # reported missing by its co-workers
    rep_expired_penalty: int = 100          # active worker of a job whose deadline passed without a result
    rep_silent_verifier_penalty: int = 100  # a designated verifier that posted no verdict in time
    rep_control_fail_penalty: int = 200


_REP = (0, 10_000)
_BPS = (0, 10_000)
#: Allowed range of each field (inclusive).
RANGES: dict[str, tuple[int, int]] = {
    "work_unit_samples": (1, 10**12),
    "max_offer_rounds": (1, 255),
    "max_replacements": (0, REPLACEMENTS_LIMIT),
    "max_provider_capacity": (1, 255),
    "verify_delay_blocks": (1, 10_000),      # >= 1: the range must come from a block after the result
    "verify_timeout_blocks": (1, 1_000_000),
    "max_verify_rounds": (1, VERIFY_ROUNDS_LIMIT),
    "verifier_fee_bps": _BPS,
    "audit_bps": _BPS,
    "audit_metric_tolerance_ppm": (0, 1_000_000),
    "cancel_running_fee_bps": _BPS,
    "slash_fraction_bps": _BPS,
    "control_interval_blocks": (1, 10**9),
    "control_timeout_blocks": (1, 10**9),
    "job_retention_blocks": (1, 10**12),
    "max_prunes_per_block": (1, 10_000),
    **{f.name: _REP for f in dataclasses.fields(JobParams) if f.name.startswith("rep")},
}
assert set(RANGES) == {f.name for f in dataclasses.fields(JobParams)}


def check_job_params(jp: JobParams, where: str = "params.jobs") -> None:
    for name, (lo, hi) in RANGES.items():
        v = getattr(jp, name)
        if type(v) is not int or not lo <= v <= hi:
            raise GenesisError(f"{where}.{name}: expected an integer in {lo}..{hi}, got {v!r}")


def job_params_to_plain(jp: JobParams) -> dict[str, int]:
    return {f.name: getattr(jp, f.name) for f in sorted(dataclasses.fields(JobParams), key=lambda f: f.name)}


def job_params_from_plain(value: Any, where: str = "params.jobs") -> JobParams:
    """A `JobParams` from a JSON/msgpack map (any subset; missing fields take their defaults)."""
    if type(value) is not dict:
        raise GenesisError(f"{where}: expected an object of job parameters")
    value = {k: v for k, v in value.items() if not (type(k) is str and k.startswith("_"))}
    unknown = sorted(str(k) for k in value if k not in RANGES)
    if unknown:
        raise GenesisError(f"{where}: unknown job parameter(s) {', '.join(unknown)} "
                           f"(known: {', '.join(sorted(RANGES))})")
    for name, v in value.items():
        lo, hi = RANGES[name]
        if type(v) is not int or not lo <= v <= hi:
            raise GenesisError(f"{where}.{name}: expected an integer in {lo}..{hi}, got {v!r}")
    jp = JobParams(**value)
    check_job_params(jp, where)
    return jp
