"""`verify_header`: the consensus checks a header must pass before its block is executed.

What is checked here (turn, difficulty, recent signers, timing, validator membership, epoch set,
attestation) is everything that depends on the consensus snapshot. The seal signature itself is the
block module's job: it must verify the header's seal against ``header.proposer`` (the signer *is*
the proposer: an address is an Ed25519 public key) before or after this function, and reject the
block if it does not. Together they prove "an authorised validator, allowed to seal now, signed this".
"""

from __future__ import annotations

from ledger.errors import InvalidBlock

from .errors import FutureHeader
from .snapshot import DIFF_IN_TURN, ConsensusConfig, HeaderView, Snapshot
from .validators import epoch_of
from .votes import verify_attestation


def verify_header(cfg: ConsensusConfig, snapshot: Snapshot, parent: HeaderView, header: HeaderView,
                  now_ms: int | None = None) -> None:
    """Raise InvalidBlock (with the reason) unless `header` may follow `parent` under `snapshot`.

    `snapshot` is the snapshot after `parent`. `now_ms` is the importer's clock; pass None when
    re-verifying stored blocks (no future check). A header too far in the future raises
    `FutureHeader` (retry later), every other failure is final.
    """
    p = cfg.params
    if parent.hash != snapshot.hash or parent.height != snapshot.height:
        raise InvalidBlock(f"consensus snapshot is for block {snapshot.height}/{snapshot.hash.hex()[:12]}, "
                           f"not for the parent {parent.height}/{parent.hash.hex()[:12]}")
    if header.parent_hash != parent.hash:
        raise InvalidBlock(f"block {header.height} does not link to its parent {parent.hash.hex()[:12]}")
    if header.height != parent.height + 1:
        raise InvalidBlock(f"block height {header.height} does not follow parent height {parent.height}")
    who = header.proposer.hex()[:16]
    if header.proposer not in snapshot.next:
        raise InvalidBlock(f"proposer {who} is not a validator in epoch {epoch_of(header.height, p.epoch_length)}")
    if snapshot.recently_sealed(header.proposer):
        raise InvalidBlock(f"proposer {who} sealed one of the last {snapshot.next.recent_limit - 1} blocks "
                           f"and may not seal block {header.height}")
    want = snapshot.expected_difficulty(header.proposer)
    if header.difficulty != want:
        kind = "in turn" if want == DIFF_IN_TURN else "out of turn"
        raise InvalidBlock(f"block {header.height} by {who} ({kind}) must have difficulty {want}, "
                           f"has {header.difficulty}")
    earliest = snapshot.earliest_seal_ms(header.proposer, p)
    if header.timestamp_ms < earliest:
        raise InvalidBlock(f"block {header.height} by {who} is stamped {header.timestamp_ms} ms, earlier than its "
                           f"slot allows ({earliest} ms = parent + block time + back-off)")
    if now_ms is not None and header.timestamp_ms > now_ms + p.max_future_ms:
        raise FutureHeader(f"block {header.height} is stamped {header.timestamp_ms - now_ms} ms in the future "
                           f"(at most {p.max_future_ms} ms allowed); check the clocks",
                           retry_at_ms=header.timestamp_ms - p.max_future_ms)
    if header.attestation is not None:
        verify_attestation(header.attestation, cfg.chain_id, snapshot.current,
                           source=snapshot.justified, target=parent.checkpoint)
