"""Missed in-turn slots, counted by block execution: the liveness half of accountability.

The pure rules are in `penalties` (`after_missed`, `after_sealed_in_turn`, `rewards_withheld`,
`jail_until_ms`); this module applies them to the ledger state, once per block, so that every node
holding the same chain holds the same counters (they are committed by the state root).

Why the state keeps its own copy of the validator set and of the recent sealers: "who missed its
slot" depends on the set in force at the block's height and on the recent-signer limit (an in-turn
validator that sealed one of the last floor(n/2) blocks *could not* seal, so it missed nothing),
and block execution sees only the state and the block's context, not the consensus snapshots the
daemon keeps beside the store. So execution records both, deterministically:

* ``lset`` -- `EpochSet`: the validator set of the current epoch. The end-block hook of the last
  block of an epoch selects the next epoch's set from the state after everything else that block
  did (`set_from_state`, the one selection rule of `validators.select_validators`, with the
  block's own timestamp for the jail check), exactly what `header_bridge.snapshot_after` needs; the
  daemon's snapshots read the set from this record (single source). The epoch-0 set is recorded by
  the first block's begin hook from the untouched genesis state (genesis jails nobody, so the
  timestamp does not matter there).
* ``lrecent`` -- `RecentSeals`: the last ``min(max_validators, 128) // 2 + 1`` (height, proposer)
  pairs, as in `Snapshot.recents`.
* ``lm`` + address -- `MissedSlots`: a validator's counter (absent = 0).

Per block, first thing in the block (begin hook, before the day's settlement reads the counters):
the block's proposer, if in the set, takes one off its counter (floor 0), in turn or not; the
in-turn validator, if someone else sealed its height and it was not barred by the recent-signer
limit, missed its slot (counter + 1; at
`missed_blocks_withhold` its rewards are withheld while the counter stays there; at
`missed_blocks_jail` it is jailed for `jail_period_s` from the block's time and the counter resets).
Why any seal, not only an in-turn one, takes one off: with three validators the rotation can settle
*out of phase* for good (after an absence, the sealer of height h is the in-turn validator of h+1,
which is then barred at h+1 by the recent-signer limit, and so on). Then nobody ever seals in turn
and nobody misses a slot, so a returned validator's counter would never decay and its rewards would
stay withheld although it seals every third block.

A jailed validator keeps its slots until the epoch ends (the set is fixed within an epoch) and
leaves the set at the next boundary, like one jailed for evidence.

A block whose proposer is not in the set in force changes no counter: such a block can only exist in
a store run without the consensus hook (ledger tests); under the consensus rules it is invalid.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Annotated, Any

from ledger.codec import ListOf, Record, UInt, record
from ledger.genesis import Params
from ledger.state import State, register_state_prefix

from .penalties import JAIL, SlotOutcome, after_missed, after_sealed_in_turn, jail_until_ms, rewards_withheld
from .snapshot import RecentSeal
from .validators import MAX_SET_SIZE, Candidate, ValidatorSet, epoch_of, select_validators

PREFIX = b"l"
SET_KEY = b"lset"
RECENTS_KEY = b"lrecent"
MISSED_PREFIX = b"lm"

register_state_prefix(PREFIX, None)   # raw bytes: three record kinds share the prefix (decoded here)


@record
class EpochSet(Record):
    """The validator set in force for every height of `epoch`."""

    epoch: Annotated[int, UInt(64)]
    validators: ValidatorSet


@record
class RecentSeals(Record):
    seals: Annotated[tuple, ListOf(RecentSeal, MAX_SET_SIZE)]   # ascending heights


@record
class MissedSlots(Record):
    count: Annotated[int, UInt(64)]


def _load(state: State, key: bytes, cls: type[Record]) -> Any:
    raw = state.get(key)
    if raw is None or isinstance(raw, cls):
        return raw
    return cls.decode(raw)


def missed_key(address: bytes) -> bytes:
    return MISSED_PREFIX + address


def recents_kept(params: Params) -> int:
    """As many recent seals as `Snapshot.apply` keeps (enough for the largest set allowed)."""
    return min(params.max_validators, MAX_SET_SIZE) // 2 + 1


# ----- reading ----------------------------------------------------------------------------------

def validator_set_from_rows(rows: Iterable[tuple[bytes, int]], max_validators: int,
                            previous: ValidatorSet | None) -> ValidatorSet:
    """The set from `State.validator_set(at_ms)` rows ((address, total stake), jailed ones already
    skipped), through the one selection rule `select_validators` (same order, same empty fallback)."""
    return select_validators([Candidate(a, stake) for a, stake in rows], max_validators, 0, previous)


def set_from_state(state: State, at_ms: int, previous: ValidatorSet | None) -> ValidatorSet:
    """The set selected from `state` (jail checked at `at_ms`); ValueError if nobody is eligible and
    there is no `previous` set to keep. The one selection the hook and the snapshots share."""
    return validator_set_from_rows(state.validator_set(at_ms), state.params.max_validators, previous)


def epoch_set(state: State) -> EpochSet | None:
    return _load(state, SET_KEY, EpochSet)


def recent_seals(state: State) -> tuple[RecentSeal, ...]:
    rec = _load(state, RECENTS_KEY, RecentSeals)
    return () if rec is None else rec.seals


def missed_count(state: State, address: bytes) -> int:
    rec = _load(state, missed_key(address), MissedSlots)
    return 0 if rec is None else rec.count


def withheld(state: State, address: bytes) -> bool:
    """Does consensus withhold `address`'s rewards now (missed-slot counter at the threshold)?"""
    return rewards_withheld(missed_count(state, address), state.params)


def liveness_view(state: State) -> dict[bytes, int]:
    """Every non-zero missed-slot counter, by address (ascending)."""
    return {k[len(MISSED_PREFIX):]: _load(state, k, MissedSlots).count
            for k, _ in state.iter_prefix(MISSED_PREFIX)}


# ----- the rule on one block ----------------------------------------------------------------------

def outcome_at(vset: ValidatorSet, height: int, recents: tuple[RecentSeal, ...], proposer: bytes) -> SlotOutcome:
    """`penalties.slot_outcome` computed from the set in force at `height` and the seals before it.

    The in-turn validator sealed its slot, or missed it unless it sealed one of the previous
    ``recent_limit - 1`` blocks (`Snapshot.missed_in_turn`). A proposer outside the set: nothing."""
    if proposer not in vset:
        return SlotOutcome(missed=None, sealed_in_turn=None)
    v = vset.in_turn_validator(height)
    if proposer == v:
        return SlotOutcome(missed=None, sealed_in_turn=v)
    lowest = height + 1 - vset.recent_limit
    barred = any(r.proposer == v and lowest <= r.height < height for r in recents)
    return SlotOutcome(missed=None if barred else v, sealed_in_turn=None)


def _set_count(state: State, address: bytes, count: int) -> None:
    if count:
        state.put(missed_key(address), MissedSlots(count=count))
    elif state.get(missed_key(address)) is not None:
        state.delete(missed_key(address))


def begin_block(state: State, height: int, timestamp_ms: int, proposer: bytes) -> SlotOutcome | None:
    """Count the block's slot (see the module docstring). None when no validator set exists (a chain
    whose genesis has no validator candidates: nobody has slots)."""
    params = state.params
    epoch = epoch_of(height, params.epoch_length)
    rec = epoch_set(state)
    if rec is None or rec.epoch != epoch:
        # first block of the chain (or a database written before this rule): the set from the state
        # as the parent left it, which for block 1 is the genesis state
        try:
            vs = set_from_state(state, timestamp_ms, rec.validators if rec else None)
        except ValueError:
            return None
        rec = EpochSet(epoch=epoch, validators=vs)
        state.put(SET_KEY, rec)
    recents = recent_seals(state)
    out = outcome_at(rec.validators, height, recents, proposer)
    if proposer in rec.validators:
        # any block its validator seals, in turn or not, counts as a sign of life (see the docstring)
        count = missed_count(state, proposer)
        if count:
            _set_count(state, proposer, after_sealed_in_turn(count))
    if out.missed is not None:
        count, action = after_missed(missed_count(state, out.missed), params)
        _set_count(state, out.missed, count)
        cand = state.candidate(out.missed)
        if action == JAIL and cand is not None:
            state.set_candidate(out.missed, dataclasses.replace(
                cand, jailed_until_ms=jail_until_ms(timestamp_ms, params, cand.jailed_until_ms)))
    seals = (*recents, RecentSeal(height=height, proposer=proposer))[-recents_kept(params):]
    state.put(RECENTS_KEY, RecentSeals(seals=seals))
    return out


def end_block(state: State, height: int, timestamp_ms: int) -> EpochSet | None:
    """At the last block of an epoch, record the next epoch's set from the state after this block.

    Must run after every other state change of the block (the last end-block hook)."""
    L = state.params.epoch_length
    if epoch_of(height + 1, L) == epoch_of(height, L):
        return None
    cur = epoch_set(state)
    try:
        vs = set_from_state(state, timestamp_ms, cur.validators if cur else None)
    except ValueError:
        return None
    rec = EpochSet(epoch=epoch_of(height + 1, L), validators=vs)
    state.put(SET_KEY, rec)
    return rec
