"""The evidence transaction kind on a real store: a double seal is punished once (slash every stake
entry by the genesis fraction into the staking pool, jail), bad evidence changes nothing."""

from __future__ import annotations

import dataclasses

from ledger.block import make_header
from ledger.consensus import Evidence
from ledger.consensus.evidence import DoubleSealEvidence
from ledger.genesis import NMT, AllocationRow, Genesis, GenesisAccount, GenesisValidator, Params
from ledger.keys import devnet_key
from ledger.registry import body_class
from ledger.state import FLEXIBLE
from ledger.store import Store, build_block
from ledger.tx import sign_tx

CHAIN = "evidence-test"
T0 = 1_700_000_000
V0, V1, REPORTER, DELEGATOR = (devnet_key(i) for i in range(4))


def make_store(tmp_path) -> Store:
    g = Genesis(chain_id=CHAIN, timestamp=T0, params=Params(min_validator_stake=100 * NMT), allocation_start=T0,
                accounts=tuple(GenesisAccount(k.address, 1000 * NMT) for k in (V0, V1, REPORTER, DELEGATOR)),
                validators=(GenesisValidator(V0.address, 200 * NMT, "v0"), GenesisValidator(V1.address, 300 * NMT, "v1")),
                allocation=(AllocationRow("staking", 5000 * NMT, 0, 10, pool="staking"),))
    return Store.create(tmp_path / "chain", g, sync=False)


def tx(key, nonce, kind, **fields):
    return sign_tx(key, CHAIN, nonce, 0, body_class(kind)(**fields))


def step(store, txs, skipped=None):
    cb = (lambda t, exc: skipped.append((t, str(exc)))) if skipped is not None else None
    b = build_block(store, V0, txs, store.head.timestamp + 2000, 2, on_skip=cb)
    store.import_block(b)
    return b


def double_seal(store, key) -> DoubleSealEvidence:
    parent = store.head
    a = make_header(parent, parent.timestamp + 1000, key.address, 1, (), parent.state_root).sealed(key)
    b = dataclasses.replace(a, timestamp=a.timestamp + 1, seal=b"").sealed(key)
    return DoubleSealEvidence(header_a=a.encode(), header_b=b.encode())


def test_double_seal_slashes_once_and_jails(tmp_path):
    with make_store(tmp_path) as store:
        step(store, [tx(DELEGATOR, 0, "stake", validator=V1.address, amount=100 * NMT, lock_days=0)])
        ev = Evidence(double_seal=double_seal(store, V1))
        pool_before = store.state().pool("staking").returned
        step(store, [tx(REPORTER, 0, "evidence", evidence=ev)])
        st = store.state()
        cand = st.candidate(V1.address)
        assert cand.self_stake == 270 * NMT and cand.delegated == 90 * NMT  # 10% of each entry
        assert st.stake(DELEGATOR.address, V1.address, FLEXIBLE).amount == 90 * NMT
        assert st.pool("staking").returned == pool_before + 40 * NMT
        assert cand.jailed_until_ms > store.head.timestamp
        assert V1.address not in [a for a, _ in st.validator_set(store.head.timestamp)]
        st.audit()  # supply conserved
        # the same offence reported again (by anyone) is refused at execution
        skipped: list = []
        step(store, [tx(DELEGATOR, 1, "evidence", evidence=ev)], skipped)
        assert skipped and "already punished" in skipped[0][1]
        assert store.state().candidate(V1.address).self_stake == 270 * NMT


def test_bad_evidence_changes_nothing(tmp_path):
    with make_store(tmp_path) as store:
        good = double_seal(store, V1)
        other = double_seal(store, V0)
        mixed = DoubleSealEvidence(header_a=good.header_a, header_b=other.header_b)  # two proposers
        same = DoubleSealEvidence(header_a=good.header_a, header_b=good.header_a)    # one block
        skipped: list = []
        step(store, [tx(REPORTER, 0, "evidence", evidence=Evidence(double_seal=mixed)),
                     tx(REPORTER, 0, "evidence", evidence=Evidence(double_seal=same))], skipped)
        assert len(skipped) == 2
        assert "different proposers" in skipped[0][1] and "same block" in skipped[1][1]
        assert store.state().candidate(V1.address).self_stake == 300 * NMT
        assert store.state().candidate(V1.address).jailed_until_ms == 0


def test_double_vote_is_punished(tmp_path):
    from ledger.consensus import Checkpoint, Vote, VoteData
    from ledger.consensus.evidence import DoubleVoteEvidence

    with make_store(tmp_path) as store:
        src = Checkpoint(height=0, hash=store.get_header(0).hash)
        a = Vote.sign(V1, VoteData(chain_id=CHAIN, source=src, target=Checkpoint(height=1, hash=b"\x01" * 32)))
        b = Vote.sign(V1, VoteData(chain_id=CHAIN, source=src, target=Checkpoint(height=1, hash=b"\x02" * 32)))
        step(store, [tx(REPORTER, 0, "evidence", evidence=Evidence(double_vote=DoubleVoteEvidence(vote_a=a, vote_b=b)))])
        cand = store.state().candidate(V1.address)
        assert cand.self_stake == 270 * NMT and cand.jailed_until_ms > 0
