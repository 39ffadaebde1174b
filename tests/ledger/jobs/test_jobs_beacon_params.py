"""The beacon drawn from the parent block's hash, and the jobs parameters from genesis.

Beacon: every block's seed is recomputed from the stored headers (so it is a function of the
chain, not of anything else), the proposer's own timestamp does not move its block's draws, and
a different parent (the one thing the previous proposer can grind) does. Params: the ``jobs``
section of a genesis file parses strictly, round-trips through the chain record, and the rules
read it at execution."""

import dataclasses
import json

import pytest
from jobs_fixtures import (
    PARAMS,
    PROVIDERS,
    SUB,
    V0,
    MemChain,
    make_genesis,
    register_body,
    registered_chain,
    submit_body,
)

from ledger.errors import GenesisError
from ledger.execution import BlockContext, begin_block
from ledger.genesis_file import genesis_from_json, genesis_to_json, load_genesis
from ledger.jobs import beacon, rules
from ledger.jobs.params import JobParams, job_params_from_plain
from ledger.state import State
from ledger.store import DBView, Store, build_block


@pytest.fixture
def chain(tmp_path):
    c = registered_chain(tmp_path / "a")
    yield c
    c.close()


def test_beacon_is_the_chain_of_parent_hashes(chain):
    chain.block(chain.tx(SUB, submit_body()))
    chain.blocks_until(6)
    seed = beacon.GENESIS_SEED
    for h in range(1, chain.store.height + 1):
        seed = beacon.next_seed(seed, h, chain.store.get_block(h).header.parent_hash)
    assert beacon.current(chain.state()) == seed


def _seed_after_begin(store, timestamp_ms: int, parent_hash: bytes, proposer: bytes = V0.address) -> bytes:
    state = State(DBView(store._db))
    ctx = BlockContext.for_state(state, store.height + 1, timestamp_ms, proposer, parent_hash)
    begin_block(state, ctx)
    return beacon.current(state)


def test_the_proposer_cannot_move_its_own_blocks_draws(chain):
    head = chain.store.head
    a = _seed_after_begin(chain.store, head.timestamp + 2000, head.hash)
    b = _seed_after_begin(chain.store, head.timestamp + 2999, head.hash, proposer=PROVIDERS[0].address)
    assert a == b                         # neither its timestamp nor its identity is an input
    assert _seed_after_begin(chain.store, head.timestamp + 2000, bytes(32)) != a   # the parent is


def test_the_previous_proposer_can_change_the_next_draws_by_its_blocks_hash(tmp_path):
    """Honest residue (ledger/JOBS.md): block 1's `extra` bytes change its hash, hence block 2's seed."""
    seeds = []
    for i, extra in enumerate((b"a", b"b")):
        s = Store.create(tmp_path / f"s{i}", make_genesis(), sync=False)
        try:
            for _ in range(2):
                s.import_block(build_block(s, V0, [], s.head.timestamp + 2000, 2, extra=extra if s.height == 0 else b""))
            seeds.append((beacon.current(s.state()), s.get_block(1).hash))
        finally:
            s.close()
    assert seeds[0][1] != seeds[1][1] and seeds[0][0] != seeds[1][0]


# -- params ------------------------------------------------------------------------------------------

def _doc(**jobs):
    doc = genesis_to_json(make_genesis())
    doc["params"]["jobs"] = jobs
    return doc


def test_genesis_jobs_section_parses_defaults_and_round_trips():
    g = genesis_from_json(_doc(job_retention_blocks=7, verifier_fee_bps=0))
    assert g.params.jobs == dataclasses.replace(JobParams(), job_retention_blocks=7, verifier_fee_bps=0)
    assert genesis_from_json(json.loads(json.dumps(genesis_to_json(g)))) == g
    dev = load_genesis("devnet").params.jobs
    assert dev.job_retention_blocks == 300 and dev.audit_bps == 2_500
    assert dataclasses.replace(dev, job_retention_blocks=1, audit_bps=1) == \
        dataclasses.replace(JobParams(), job_retention_blocks=1, audit_bps=1)
    assert load_genesis("mainnet").params.jobs == JobParams()


@pytest.mark.parametrize("jobs, msg", [
    ({"verifier_fee_bps": 10_001}, "$.params.jobs.verifier_fee_bps: expected an integer in 0..10000"),
    ({"max_verify_rounds": 9}, "$.params.jobs.max_verify_rounds: expected an integer in 1..8"),
    ({"verify_delay_blocks": 0}, "$.params.jobs.verify_delay_blocks"),
    ({"job_retention_blocks": "300"}, "got '300'"),
    ({"retention": 5}, "unknown job parameter(s) retention"),
    ({"rep_verifier": True}, "$.params.jobs.rep_verifier"),
])
def test_genesis_jobs_section_errors_name_the_field(jobs, msg):
    with pytest.raises(GenesisError) as exc:
        genesis_from_json(_doc(**jobs))
    assert msg in str(exc.value)
    with pytest.raises(GenesisError, match="expected an object"):
        job_params_from_plain([1], "$.params.jobs")


def test_chain_record_keeps_the_jobs_params(tmp_path):
    jp = dataclasses.replace(JobParams(), control_interval_blocks=7, job_retention_blocks=11)
    g = make_genesis(dataclasses.replace(PARAMS, jobs=jp))
    Store.create(tmp_path / "c", g, sync=False).close()
    s = Store.open(tmp_path / "c", sync=False)       # read back from the chain record in LevelDB
    try:
        assert s.params.jobs == jp and s.state().params.jobs == jp
    finally:
        s.close()


def test_rules_read_the_params_at_execution():
    jp = dataclasses.replace(JobParams(), reputation_start=1_234, max_provider_capacity=1, control_interval_blocks=7,
                             control_timeout_blocks=3, rep_control_fail_penalty=34, verify_delay_blocks=5)
    c = MemChain(make_genesis(dataclasses.replace(PARAMS, jobs=jp)))
    errs = c.block(*(c.tx(k, register_body(capacity=1)) for k in PROVIDERS[:4]),
                   c.tx(PROVIDERS[4], register_body(capacity=2)))
    assert errs == ["capacity must be 1..1 jobs, got 2"]
    assert c.provider(PROVIDERS[0]).reputation == 1_234
    c.blocks_until(7)
    tasks = list(c.state().iter_prefix(b"Jk"))
    assert len(tasks) == 1                         # issued at height 7, not 50
    c.blocks_until(11)                             # due at 10, unanswered -> -34
    assert sorted(c.provider(k).reputation for k in PROVIDERS[:4])[0] == 1_234 - 34
    assert rules.DEFAULTS.control_interval_blocks == 50    # the module defaults did not move


def test_an_accusation_in_the_last_verifier_round_refunds(tmp_path):
    """max_verify_rounds 1: an accusation has no round left for a confirmer -> failed, full refund,
    nobody slashed or paid (before, the last round's accusation could not even be recorded)."""
    from jobs_fixtures import NMT, P1, P2, P3, P4, Chain

    from ledger.jobs import records as R
    from ledger.jobs.cid import cid_of
    from ledger.txkinds.job_offer import JobOffer
    from ledger.txkinds.job_result import JobResult
    from ledger.txkinds.job_verify import JobVerify

    c = Chain(tmp_path / "r", make_genesis(dataclasses.replace(PARAMS, jobs=dataclasses.replace(
        JobParams(), max_verify_rounds=1))))
    try:
        c.block(*(c.tx(k, register_body()) for k in PROVIDERS))
        sub0 = c.balance(SUB)
        c.block(c.tx(SUB, submit_body()))
        c.block(*(c.tx(k, JobOffer(job_id=1, price=NMT, zone="")) for k in (P1, P2, P3)))
        c.blocks_until(c.job(1).window_close_height)
        c.block(c.tx(P1, JobResult(job_id=1, result_cid=cid_of(b"w"), checkpoints=(),
                                   metrics=(R.Metric(name="accuracy", value_ppm=990_000),),
                                   work=(R.Work(provider=P1.address, samples=100),))))
        c.blocks_until(c.job(1).challenge_height)
        job = c.job(1)
        key = next(k for k in PROVIDERS if k.address == job.verifier)
        assert key in (P4, PROVIDERS[4])
        c.block(c.tx(key, JobVerify(job_id=1, replay_from=job.replay_from, replay_steps=5,
                                    bad_workers=(P1.address,), metric_ppm=990_000)))
        job = c.job(1)
        assert job.state == R.FAILED and "no round to confirm" in job.reason
        assert c.balance(SUB) == sub0 and job.verifier_fees == 0 and c.provider(P1).reputation == 5_000
        c.audit()
    finally:
        c.close()
