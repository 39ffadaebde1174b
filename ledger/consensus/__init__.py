"""Consensus rules of the mindnode chain: PoA among the top validators by stake, with vote finality.

Pure functions and records only: no network, no clock (time is an argument), no storage. The block
store calls them on import, the daemon calls them to decide when to seal and vote. The rules are
written out, with their fault bounds, in ledger/CONSENSUS.md.
"""

from .errors import FutureHeader, InvalidAttestation, InvalidEvidence, InvalidVote
from .evidence import (
    DOUBLE_SEAL,
    DOUBLE_VOTE_OFFENSE,
    DoubleSealEvidence,
    DoubleSealWatch,
    DoubleVoteEvidence,
    Evidence,
    HeaderOpener,
    Offense,
    SealedHeader,
    verify_double_seal,
    verify_double_vote,
    verify_evidence,
)
from .finality import DOUBLE_VOTE, SURROUND_VOTE, VoteGuard, decide_vote, votes_conflict
from .follower import Follower, HeadChange
from .fork_choice import BlockTree, advance_finalized, choose_head, descends_from, head_key, should_switch
from .header_rules import verify_header
from .penalties import (
    JAIL,
    NONE,
    WITHHOLD,
    Penalty,
    SlotOutcome,
    after_missed,
    after_sealed_in_turn,
    is_jailed,
    jail_until_ms,
    penalty_for,
    rewards_withheld,
    slash_amount,
    slot_outcome,
    split_slash,
)
from .seal_guard import SealedSlot, SealGuard
from .snapshot import DIFF_IN_TURN, DIFF_NO_TURN, ConsensusConfig, HeaderView, RecentSeal, SealPlan, Snapshot
from .validators import (
    Candidate,
    ValidatorSet,
    check_consensus_params,
    epoch_of,
    is_epoch_start,
    quorum,
    select_validators,
    set_source_height,
)
from .vote_pool import AddResult, VotePool
from .votes import (
    MAX_VOTE_BYTES,
    Attestation,
    Checkpoint,
    Vote,
    VoteData,
    build_attestation,
    check_vote,
    decode_extra,
    encode_extra,
    verify_attestation,
)

__all__ = [
    "MAX_VOTE_BYTES", "DIFF_IN_TURN", "DIFF_NO_TURN", "DOUBLE_SEAL", "DOUBLE_VOTE", "DOUBLE_VOTE_OFFENSE", "JAIL", "NONE",
    "SURROUND_VOTE", "WITHHOLD",
    "AddResult", "Attestation", "BlockTree", "Candidate", "Checkpoint", "ConsensusConfig",
    "DoubleSealEvidence", "DoubleSealWatch", "DoubleVoteEvidence", "Evidence", "Follower", "FutureHeader", "HeadChange",
    "HeaderOpener", "HeaderView", "InvalidAttestation", "InvalidEvidence", "InvalidVote", "Offense",
    "Penalty", "RecentSeal", "SealGuard", "SealPlan", "SealedHeader", "SealedSlot", "SlotOutcome", "Snapshot", "ValidatorSet", "Vote",
    "VoteData", "VoteGuard", "VotePool",
    "advance_finalized", "after_missed", "after_sealed_in_turn", "build_attestation", "check_consensus_params", "check_vote",
    "choose_head", "decide_vote", "decode_extra", "descends_from", "encode_extra", "epoch_of", "head_key",
    "is_epoch_start", "is_jailed", "jail_until_ms", "penalty_for", "quorum", "rewards_withheld",
    "select_validators", "set_source_height", "should_switch", "slash_amount", "slot_outcome",
    "split_slash", "verify_attestation", "verify_double_seal", "verify_double_vote", "verify_evidence",
    "verify_header", "votes_conflict",
]
