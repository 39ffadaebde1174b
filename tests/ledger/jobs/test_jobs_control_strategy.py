"""Control tasks (issued from the beacon, known answer computed by the chain) and the pluggable,
deterministic assignment strategy."""

import dataclasses

import pytest
from jobs_fixtures import NMT, P1, PROVIDERS, Chain, MemChain, register_body

from ledger.jobs import beacon, control, rules
from ledger.jobs import records as R
from ledger.jobs.strategy import Candidate, choose, offer_score
from ledger.txkinds.provider_control import ProviderControl

KEY_OF = {k.address: k for k in PROVIDERS}


@pytest.fixture
def chain(tmp_path):
    c = Chain(tmp_path / "chain")
    c.block(*(c.tx(k, register_body()) for k in PROVIDERS))
    yield c
    c.close()


def _open_tasks(chain):
    return [(k[2:], R.ControlTask.decode(v)) for k, v in chain.state().iter_prefix(b"Jk")]


def test_control_answer_is_exact_integer_matmul():
    import numpy as np

    seed = bytes(range(32))
    a = np.array(control._matrix(seed, b"A", 16), dtype=np.uint64)
    b = np.array(control._matrix(seed, b"B", 16), dtype=np.uint64)
    c = np.zeros((16, 16), dtype=np.uint64)      # exact: products < 2**64, sum mod 2**32 per step
    for k in range(16):
        c = (c + (a[:, k:k + 1] * b[k:k + 1, :]) % 2**32) % 2**32
    import hashlib

    assert control.control_answer(seed) == hashlib.sha256(c.astype(">u4").tobytes()).digest()
    assert control.control_answer(seed) != control.control_answer(bytes(32))


def test_control_task_pass_fail_and_timeout(chain):
    chain.blocks_until(rules.DEFAULTS.control_interval_blocks)
    (addr, task), = _open_tasks(chain)
    assert task.issued_height == rules.DEFAULTS.control_interval_blocks
    key = KEY_OF[addr]
    chain.block(chain.tx(key, ProviderControl(task_id=task.task_id, answer=control.control_answer(task.seed))))
    assert chain.provider(key).reputation == 5_000 + rules.DEFAULTS.rep_control_pass
    assert chain.provider(key).controls_passed == 1 and _open_tasks(chain) == []
    assert "no open control task" in chain.reject(chain.tx(key, ProviderControl(task_id=task.task_id,
                                                                                  answer=bytes(32))))
    chain.blocks_until(2 * rules.DEFAULTS.control_interval_blocks)
    (addr2, task2), = _open_tasks(chain)
    chain.block(chain.tx(KEY_OF[addr2], ProviderControl(task_id=task2.task_id, answer=bytes(32))))
    assert chain.provider(KEY_OF[addr2]).controls_failed == 1
    chain.blocks_until(3 * rules.DEFAULTS.control_interval_blocks)
    (addr3, task3), = _open_tasks(chain)
    before = chain.provider(KEY_OF[addr3]).reputation
    chain.blocks_until(task3.due_height + 1)
    assert _open_tasks(chain) == []
    assert chain.provider(KEY_OF[addr3]).reputation == max(0, before - rules.DEFAULTS.rep_control_fail_penalty)


def test_control_issue_is_deterministic_from_the_beacon():
    a, b = MemChain(), MemChain()
    for c in (a, b):
        c.block(*(c.tx(k, register_body()) for k in PROVIDERS))
        c.blocks_until(rules.DEFAULTS.control_interval_blocks)
    assert list(a.state().iter_prefix(b"Jk")) == list(b.state().iter_prefix(b"Jk"))
    assert beacon.current(a.state()) == beacon.current(b.state())
    c = MemChain()            # another block time history -> another beacon
    c.block(*(c.tx(k, register_body()) for k in PROVIDERS), dt_ms=3000)
    c.blocks_until(rules.DEFAULTS.control_interval_blocks)
    assert beacon.current(c.state()) != beacon.current(a.state())


def _cand(i, price=NMT, rep=5_000, hw="cpu", zone="lab"):
    rec = R.Provider(hardware_class=hw, score=1000, price=price, capacity=1, zone=zone, bandwidth_kbps=0,
                     reputation=rep, active_jobs=0, jobs_done=0, jobs_failed=0, controls_passed=0,
                     controls_failed=0, registered_height=0)
    return Candidate(bytes([i]) * 32, R.Offer(price=price, zone=zone, height=0), rec)


def test_default_strategy_weighs_fit_reputation_price_and_zone():
    from ledger.genesis import Params

    params, seed = Params(), bytes(32)
    # reputation beats a slightly lower price
    c = [_cand(1, price=100, rep=2_000), _cand(2, price=110, rep=9_000)]
    assert choose("default", params, 1, "cpu", c, 1, seed) == [bytes([2]) * 32]
    # an overkill GPU loses to a fitting CPU at the same price and reputation
    c = [_cand(1, hw="gpu-datacenter"), _cand(2)]
    assert choose("default", params, 1, "cpu", c, 1, seed) == [bytes([2]) * 32]
    assert offer_score(params, "cpu", c[0], NMT, []) < offer_score(params, "cpu", c[1], NMT, [])
    # after the first pick, a worker in the same zone is preferred
    c = [_cand(1, zone="eu", rep=6_000), _cand(2, zone="us"), _cand(3, zone="eu")]
    assert choose("default", params, 1, "cpu", c, 2, seed) == [bytes([1]) * 32, bytes([3]) * 32]
    # exact ties: decided by the beacon draw, the same for every node, and input order does not matter
    c = [_cand(i) for i in range(1, 6)]
    picks = choose("default", params, 7, "cpu", c, 3, seed)
    assert picks == choose("default", params, 7, "cpu", list(reversed(c)), 3, seed)
    assert len(set(picks)) == 3
    assert choose("cheapest", params, 1, "cpu", [_cand(1, price=5), _cand(2, price=3)], 1, seed) == [bytes([2]) * 32]


def test_reputation_is_bounded(chain):
    from ledger.jobs.providers import adjust_reputation

    s = chain.state()
    adjust_reputation(s, P1.address, 10**6)
    assert R.get_provider(s, P1.address).reputation == rules.REPUTATION_MAX
    adjust_reputation(s, P1.address, -10**6)
    assert R.get_provider(s, P1.address).reputation == rules.REPUTATION_MIN
    assert dataclasses.replace(R.get_provider(s, P1.address)).reputation == 0
