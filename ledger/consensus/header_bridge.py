"""The bridge between the block module's `Header` and the consensus rules' small views.

The rules work on `HeaderView` / `SealedHeader` so they stay independent of the header's exact
layout; this module is the one place that knows how a `ledger.block.Header` maps onto them, and
packages the calls the store and the daemon make on import.
"""

from __future__ import annotations

from collections.abc import Callable

from ledger.block import Header
from ledger.errors import DecodeError, InvalidBlock, LedgerError
from ledger.state import State

from . import slots
from .evidence import MAX_HEADER_BYTES, SealedHeader
from .header_rules import verify_header
from .slots import validator_set_from_rows  # noqa: F401  (re-exported: its home was here)
from .snapshot import ConsensusConfig, HeaderView, Snapshot
from .validators import epoch_of
from .votes import decode_extra


def header_view(header: Header) -> HeaderView:
    """The consensus view of a header; a malformed `extra` raises InvalidAttestation (an InvalidBlock)."""
    return HeaderView(height=header.height, hash=header.hash, parent_hash=header.parent_hash,
                      proposer=header.proposer, difficulty=header.difficulty, timestamp_ms=header.timestamp,
                      attestation=decode_extra(header.extra))


def open_sealed_header(data: bytes) -> SealedHeader:
    """Decode one encoded, sealed header for double-seal evidence (the `HeaderOpener` of this chain)."""
    try:
        h = Header.decode(data, max_size=MAX_HEADER_BYTES)
    except DecodeError as exc:
        raise LedgerError(f"not a header: {exc}") from None
    if h.height == 0 or len(h.seal) != 64:
        raise LedgerError("header carries no seal (genesis cannot be evidence)")
    return SealedHeader(chain_id=h.chain_id, height=h.height, hash=h.hash, parent_hash=h.parent_hash,
                        proposer=h.proposer,
                        signing_message=h.seal_bytes(), signature=h.seal)


def genesis_snapshot(genesis: Header, state: State) -> Snapshot:
    """The snapshot of the genesis block, its set read from the genesis state."""
    vs = slots.set_from_state(state, genesis.timestamp, None)
    return Snapshot.genesis(header_view(genesis), vs)


def snapshot_after(cfg: ConsensusConfig, parent: Snapshot, header: Header, state_after: State) -> Snapshot:
    """The snapshot after an imported block; reads the validator set from `state_after` (the state
    after executing `header`) exactly when the next height starts an epoch.

    The set is the one block execution recorded for the next epoch (`slots.epoch_set`, the same set
    the missed-slot counters use); a state without that record (written before the rule existed)
    gets the same selection computed here."""
    hv = header_view(header)
    nxt = None
    L = cfg.params.epoch_length
    nxt_epoch = epoch_of(hv.height + 1, L)
    if nxt_epoch != epoch_of(hv.height, L):
        rec = slots.epoch_set(state_after)
        if rec is not None and rec.epoch == nxt_epoch:
            nxt = rec.validators
        else:
            nxt = slots.set_from_state(state_after, hv.timestamp_ms, parent.next)
    return parent.apply(hv, cfg.params, next_validators=nxt)


def store_consensus_check(cfg: ConsensusConfig, snapshot_of: Callable[[bytes], Snapshot | None],
                          now_ms: Callable[[], int | None]) -> Callable[[Header, Header, State], None]:
    """A `Store.consensus_check` hook: verify_header against the parent's snapshot.

    `snapshot_of(block_hash)` returns the daemon's snapshot of a block (None if unknown); `now_ms()`
    returns the clock for the future check (None while re-importing stored blocks)."""

    def check(parent: Header, header: Header, state_before: State) -> None:
        snap = snapshot_of(parent.hash)
        if snap is None:
            raise InvalidBlock(f"no consensus snapshot for parent {parent.hash.hex()[:16]} of block {header.height}")
        verify_header(cfg, snap, header_view(parent), header_view(header), now_ms())

    return check
