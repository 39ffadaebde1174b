"""Finality votes and the attestations that carry a quorum of them inside a header's `extra`.

A vote says "I, validator V, link the justified block SOURCE to the block TARGET" (Casper FFG's
link, as in BSC's Parlia fast finality). The signed bytes are a domain-tagged hash of the canonical
encoding of `VoteData`, which includes the chain id, so a vote can never be replayed on another
chain nor confused with a transaction or a header seal.

Ed25519 signatures do not aggregate, so an attestation carries the voters as a bitset over the
target's validator set (bit i = ``set.addresses[i]``) plus their signatures in ascending bit order:
14 x 64 bytes for a full 21-validator set, small next to a block.
"""

from __future__ import annotations

from typing import Annotated

from ledger.codec import BigUInt, Bytes, ListOf, Record, Str, UInt, record
from ledger.errors import DecodeError
from ledger.hashing import HASH_LEN, tagged_hash
from ledger.keys import ADDRESS_LEN, SIGNATURE_LEN, PrivateKey, verify

from .errors import InvalidAttestation, InvalidVote
from .validators import MAX_SET_SIZE, ValidatorSet

VOTE_TAG = b"mindnode/vote"
#: Upper bound of one encoded `Vote` (gossip validators decode with ``Vote.decode(data, max_size=MAX_VOTE_BYTES)``).
MAX_VOTE_BYTES = 512
#: Upper bound of an encoded attestation (what `decode_extra` accepts).
MAX_EXTRA_BYTES = 512 + MAX_SET_SIZE * (SIGNATURE_LEN + 2)


@record
class Checkpoint(Record):
    """A block named by height and hash (a vote's source or target, a justified/finalized block)."""

    height: Annotated[int, UInt(64)]
    hash: Annotated[bytes, Bytes(HASH_LEN)]


@record
class VoteData(Record):
    """What a vote signs: the chain, the justified source and the target it links to."""

    chain_id: Annotated[str, Str(64)]
    source: Checkpoint
    target: Checkpoint

    def signing_message(self) -> bytes:
        return tagged_hash(VOTE_TAG, self.encode())


@record
class Vote(Record):
    """One validator's signed vote, as gossiped on the `vote` topic."""

    data: VoteData
    voter: Annotated[bytes, Bytes(ADDRESS_LEN)]
    signature: Annotated[bytes, Bytes(SIGNATURE_LEN)]

    @classmethod
    def sign(cls, key: PrivateKey, data: VoteData) -> Vote:
        return cls(data=data, voter=key.address, signature=key.sign(data.signing_message()))

    def check_signature(self) -> None:
        """Raise InvalidVote unless `signature` is `voter`'s signature of `data`."""
        if not verify(self.voter, self.data.signing_message(), self.signature):
            raise InvalidVote(f"vote for height {self.data.target.height} has a bad signature "
                              f"for voter {self.voter.hex()[:16]}")


def check_vote(vote: Vote, chain_id: str, voters: ValidatorSet) -> None:
    """Full stateless check of a gossiped vote against the target's validator set."""
    if vote.data.chain_id != chain_id:
        raise InvalidVote(f"vote is for chain {vote.data.chain_id!r}, this is {chain_id!r}")
    if vote.data.target.height <= vote.data.source.height:
        raise InvalidVote(f"vote target height {vote.data.target.height} is not above its source "
                          f"height {vote.data.source.height}")
    if vote.voter not in voters:
        raise InvalidVote(f"voter {vote.voter.hex()[:16]} is not a validator at height {vote.data.target.height}")
    vote.check_signature()


@record
class Attestation(Record):
    """A quorum of votes on one `VoteData`, carried in the `extra` of the target's child."""

    data: VoteData
    signers: Annotated[int, BigUInt(MAX_SET_SIZE // 8)]
    signatures: Annotated[tuple, ListOf(Bytes(SIGNATURE_LEN), MAX_SET_SIZE)]

    def signer_indices(self) -> list[int]:
        bits = self.signers
        return [i for i in range(bits.bit_length()) if bits >> i & 1]

    def voters(self, voters: ValidatorSet) -> list[bytes]:
        return [voters.addresses[i] for i in self.signer_indices() if i < voters.n]


def build_attestation(data: VoteData, votes: list[Vote], voters: ValidatorSet) -> Attestation:
    """Pack votes (all on `data`, from distinct members of `voters`) into an attestation."""
    by_index: dict[int, bytes] = {}
    for v in votes:
        if v.data != data:
            raise ValueError("all votes of an attestation must sign the same VoteData")
        by_index[voters.index(v.voter)] = v.signature
    bits = 0
    for i in by_index:
        bits |= 1 << i
    return Attestation(data=data, signers=bits, signatures=tuple(by_index[i] for i in sorted(by_index)))


def verify_attestation(att: Attestation, chain_id: str, voters: ValidatorSet,
                       source: Checkpoint, target: Checkpoint) -> None:
    """Raise InvalidAttestation unless `att` proves ceil(2n/3) of `voters` linked `source` -> `target`.

    `voters` is the validator set of the target's height; `source` must be the latest justified
    block of the target's chain and `target` the block the attestation's header builds on.
    """
    d = att.data
    if d.chain_id != chain_id:
        raise InvalidAttestation(f"attestation is for chain {d.chain_id!r}, this is {chain_id!r}")
    if d.target != target:
        raise InvalidAttestation(f"attestation targets block {d.target.height}/{d.target.hash.hex()[:12]}, "
                                 f"but must target the parent {target.height}/{target.hash.hex()[:12]}")
    if d.source != source:
        raise InvalidAttestation(f"attestation source {d.source.height}/{d.source.hash.hex()[:12]} is not the "
                                 f"latest justified block {source.height}/{source.hash.hex()[:12]}")
    if d.target.height <= d.source.height:
        raise InvalidAttestation("attestation target is not above its source")
    if att.signers >> voters.n:
        raise InvalidAttestation(f"attestation names signer bits beyond the {voters.n} validators")
    indices = att.signer_indices()
    if len(indices) != len(att.signatures):
        raise InvalidAttestation(f"attestation has {len(indices)} signer bits but {len(att.signatures)} signatures")
    if len(indices) < voters.quorum:
        raise InvalidAttestation(f"attestation has {len(indices)} votes, the quorum of {voters.n} validators "
                                 f"is {voters.quorum}")
    message = d.signing_message()
    for i, sig in zip(indices, att.signatures, strict=True):
        if not verify(voters.addresses[i], message, sig):
            raise InvalidAttestation(f"attestation signature of validator #{i} does not verify")


def encode_extra(att: Attestation | None) -> bytes:
    """A header's `extra`: empty, or the canonical encoding of one attestation."""
    return b"" if att is None else att.encode()


def decode_extra(extra: bytes) -> Attestation | None:
    """Inverse of `encode_extra`; malformed or oversized bytes raise InvalidAttestation."""
    if not extra:
        return None
    try:
        return Attestation.decode(extra, max_size=MAX_EXTRA_BYTES)
    except DecodeError as exc:
        raise InvalidAttestation(f"header extra is not a valid vote attestation: {exc}") from None
