"""evidence: anyone submits proof that a validator sealed two blocks (or cast two conflicting votes)
at one height; the chain slashes and jails it.

Execution follows ledger/CONSENSUS.md section 9: `verify_evidence` proves the `Offense` from the
evidence bytes alone; an offence already punished (same `Offense.key()`, kept under state key
``o`` + key) is refused, so the same misbehaviour costs once however many nodes report it;
`penalty_for` gives the slash fraction and jail time. Every stake entry backing the offender
(its own and delegated, flexible and long-term) loses `split_slash` of its amount, each floored
on its own; the slashed units go to the staking reward pool's `returned` (supply is conserved),
and the candidate's `jailed_until_ms` is set, which keeps it out of the set from the next epoch.

Written by the node room (issue 4) because the daemon needs a kind to carry the evidence it
detects; the rules it applies are the consensus room's.
"""

from __future__ import annotations

import dataclasses

from ledger.consensus.errors import InvalidEvidence
from ledger.consensus.evidence import Evidence, verify_evidence
from ledger.consensus.header_bridge import open_sealed_header
from ledger.consensus.penalties import penalty_for, split_slash
from ledger.errors import InvalidTransaction
from ledger.keys import address_to_text
from ledger.registry import TxBody, tx_kind
from ledger.state import pool_key

OFFENSE_PREFIX = b"o"
SLASH_POOL = "staking"


@tx_kind("evidence")
class SubmitEvidence(TxBody):
    evidence: Evidence

    def apply(self, state, ctx, tx):
        try:
            offense = verify_evidence(self.evidence, ctx.chain_id, open_sealed_header, ctx.height, ctx.params)
        except InvalidEvidence as exc:
            raise InvalidTransaction(str(exc)) from None
        key = OFFENSE_PREFIX + offense.key()
        if state.get(key) is not None:
            raise InvalidTransaction(f"{offense.kind} by {address_to_text(offense.offender)} at height "
                                     f"{offense.height} was already punished")
        cand = state.candidate(offense.offender)
        if cand is None:
            raise InvalidTransaction(f"offender {address_to_text(offense.offender)} is not a validator candidate")
        penalty = penalty_for(offense, ctx.timestamp_ms, ctx.params, cand.jailed_until_ms)
        stakes = {(k[1:33], k[65:]): s.amount for k, s in state.iter_prefix(b"s")
                  if k[33:65] == offense.offender}
        total = 0
        for (staker, kind), cut in sorted(split_slash(stakes, penalty.slash_bps).items()):
            if cut:
                state.change_stake(staker, offense.offender, kind, -cut)
                total += cut
        if total:
            pool = state.pool(SLASH_POOL)
            if pool is None:
                raise InvalidTransaction(f"no {SLASH_POOL!r} pool to receive slashed stake")
            state.put(pool_key(SLASH_POOL), dataclasses.replace(pool, returned=pool.returned + total))
        cand = state.candidate(offense.offender)
        state.set_candidate(offense.offender, dataclasses.replace(cand, jailed_until_ms=penalty.jailed_until_ms))
        state.put(key, b"\x01")
