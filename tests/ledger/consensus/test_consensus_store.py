"""The rules wired to the real block module and LevelDB store through `header_bridge`: sealing by
plan, attestations in `extra`, the store's consensus hook rejecting a bad header, the epoch set read
from the state, and double-seal evidence built from two real sealed headers."""

from __future__ import annotations

import dataclasses

import pytest

from ledger.consensus import (
    DOUBLE_SEAL,
    ConsensusConfig,
    DoubleSealEvidence,
    DoubleSealWatch,
    Evidence,
    InvalidEvidence,
    VoteGuard,
    VotePool,
    decide_vote,
    encode_extra,
    verify_evidence,
)
from ledger.consensus.header_bridge import (
    genesis_snapshot,
    header_view,
    open_sealed_header,
    snapshot_after,
    store_consensus_check,
)
from ledger.errors import InvalidBlock
from ledger.genesis import NMT, Genesis, GenesisAccount, GenesisValidator, Params
from ledger.keys import devnet_key
from ledger.store import Store, build_block
from ledger.tx import sign_tx
from ledger.txkinds.register_validator import RegisterValidator

T0 = 1_700_000_000
KEYS = [devnet_key(i) for i in range(3)]
PARAMS = Params(min_validator_stake=100 * NMT, epoch_length=4)
GENESIS = Genesis(chain_id="bridge-1", timestamp=T0, params=PARAMS,
                  accounts=tuple(GenesisAccount(k.address, 1000 * NMT) for k in KEYS),
                  validators=tuple(GenesisValidator(k.address, (200 + i) * NMT, f"v{i}") for i, k in enumerate(KEYS)),
                  allocation_start=T0)
CFG = ConsensusConfig.from_genesis(GENESIS)
BY_ADDR = {k.address: k for k in KEYS}


class Node:
    """The minimum a daemon does per block: plan, seal with an attestation, import, snapshot, vote."""

    def __init__(self, path, genesis: Genesis = GENESIS):
        self.cfg = ConsensusConfig.from_genesis(genesis)
        self.store = Store.create(path, genesis, sync=False)
        self.snaps = {self.store.head.hash: genesis_snapshot(self.store.head, self.store.state())}
        self.now = self.store.head.timestamp
        self.store.consensus_check = store_consensus_check(self.cfg, self.snaps.get, lambda: self.now)
        self.pool = VotePool(self.cfg)
        self.guards = {a: VoteGuard() for a in BY_ADDR}

    @property
    def head_snap(self):
        return self.snaps[self.store.head.hash]

    def seal_next(self, proposer=None, difficulty=None, dt=0, txs=()):
        snap = self.head_snap
        addr = proposer or snap.in_turn_validator()
        plan = snap.plan_seal(addr, self.cfg.params)
        self.now = (plan.not_before_ms if plan else snap.timestamp_ms + PARAMS.block_time_ms) + dt
        att = self.pool.attestation(snap.justified, snap.checkpoint, snap.current)
        return build_block(self.store, BY_ADDR[addr], list(txs), self.now,
                           difficulty if difficulty is not None else plan.difficulty, extra=encode_extra(att))

    def import_(self, block):
        parent = self.head_snap
        self.store.import_block(block)
        self.snaps[block.hash] = snapshot_after(self.cfg, parent, block.header, self.store.state())
        head = self.head_snap
        for addr, key in BY_ADDR.items():  # every validator votes for the new head
            decided = decide_vote(self.cfg, self.guards.setdefault(addr, VoteGuard()), key, head)
            if decided:
                vote, self.guards[addr] = decided
                self.pool.add(vote, head.current, head.height)


def test_a_real_chain_seals_finalizes_and_rejects_a_bad_turn(tmp_path):
    node = Node(tmp_path / "db")
    for _ in range(6):
        node.import_(node.seal_next())
    head = node.head_snap
    assert head.height == 6 and head.finalized.height == 4 and head.justified.height == 5
    assert header_view(node.store.head).attestation is not None
    # an in-turn block claiming difficulty 1 is refused by the store's hook and changes nothing
    before = node.store.head.hash
    bad = node.seal_next(difficulty=1)
    with pytest.raises(InvalidBlock, match="must have difficulty 2"):
        node.store.import_block(bad)
    assert node.store.head.hash == before
    # a block from too far in the future is refused as FutureHeader (retry later)
    future = node.seal_next(dt=5000)
    node.now -= 5000
    with pytest.raises(InvalidBlock, match="in the future"):
        node.store.import_block(future)
    node.store.close()


def test_epoch_set_comes_from_the_state(tmp_path):
    """max_validators 3, epoch length 4: a fourth candidate registering with more stake than v0 in block 1
    enters the set at height 4 (the state after block 3 is read) and v0, the lowest stake, leaves it."""
    newcomer = devnet_key(3)
    genesis = dataclasses.replace(GENESIS, params=dataclasses.replace(PARAMS, max_validators=3),
                                  accounts=GENESIS.accounts + (GenesisAccount(newcomer.address, 1000 * NMT),))
    node = Node(tmp_path / "db", genesis)
    g = node.head_snap
    assert g.next.addresses == tuple(sorted(BY_ADDR))
    tx = sign_tx(newcomer, genesis.chain_id, 0, 0, RegisterValidator(name="v3", stake=500 * NMT))
    node.import_(node.seal_next(txs=[tx]))
    assert node.head_snap.next == g.next          # mid-epoch: the set does not move
    for _ in range(2):
        node.import_(node.seal_next())
    s3 = node.head_snap
    assert s3.height == 3 and s3.current == g.current
    assert s3.next.addresses == tuple(sorted([KEYS[1].address, KEYS[2].address, newcomer.address]))
    # v0 (stake 200, the lowest) may not seal height 4 any more
    assert s3.plan_seal(KEYS[0].address, node.cfg.params) is None
    with pytest.raises(InvalidBlock, match="not a validator in epoch 1"):
        node.store.import_block(node.seal_next(proposer=KEYS[0].address, difficulty=1, dt=3000))
    BY_ADDR[newcomer.address] = newcomer
    try:
        node.import_(node.seal_next())
        assert node.store.head.height == 4 and node.head_snap.current == s3.next
    finally:
        del BY_ADDR[newcomer.address]
    node.store.close()


def test_double_seal_evidence_from_real_headers(tmp_path):
    node = Node(tmp_path / "db")
    a = node.seal_next()
    b = node.seal_next(dt=1)  # same proposer, same height, other timestamp: a second block
    watch = DoubleSealWatch()
    def observe(blk):
        return watch.observe(blk.height, blk.header.parent_hash, blk.header.proposer, blk.hash, blk.header.encode())
    assert observe(a) is None
    assert observe(a) is None  # the same block again
    ev = observe(b)
    assert isinstance(ev, DoubleSealEvidence)
    envelope = Evidence(double_seal=ev)
    offense = verify_evidence(Evidence.decode(envelope.encode()), CFG.chain_id, open_sealed_header, 1, PARAMS)
    assert offense.kind == DOUBLE_SEAL and offense.offender == a.header.proposer and offense.height == 1
    # the same header twice, or a header whose seal was tampered with, proves nothing
    with pytest.raises(InvalidEvidence, match="same block"):
        verify_evidence(Evidence(double_seal=DoubleSealEvidence(header_a=ev.header_a, header_b=ev.header_a)),
                        CFG.chain_id, open_sealed_header, 1, PARAMS)
    forged = bytearray(ev.header_b)
    forged[-5] ^= 1  # inside the seal signature
    with pytest.raises(InvalidEvidence, match="does not verify"):
        verify_evidence(Evidence(double_seal=DoubleSealEvidence(header_a=ev.header_a, header_b=bytes(forged))),
                        CFG.chain_id, open_sealed_header, 1, PARAMS)
    with pytest.raises(InvalidEvidence, match="malformed header"):
        verify_evidence(Evidence(double_seal=DoubleSealEvidence(header_a=ev.header_a, header_b=b"\x01")),
                        CFG.chain_id, open_sealed_header, 1, PARAMS)
    with pytest.raises(InvalidEvidence, match="chain"):
        verify_evidence(envelope, "other-chain", open_sealed_header, 1, PARAMS)
    node.store.close()
