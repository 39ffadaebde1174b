"""Async (DiLoCo) jobs verified worker by worker: provider agents over one real LevelDB chain (the
harness of test_jobs_agent.py) run the bundled `digits-mlp-async` (3 workers, H = 20). Every worker
signs and sends its own checkpoint list to the poster, the poster publishes the evidence bundle,
and the verifier replays the drawn rounds of every worker from that worker's own checkpoints.

* honest: done, every worker paid;
* one worker (not the poster) with the `cheat-async` fault (3x local updates): named alone by
  both verifiers, not paid, -1,000 reputation, slashed; its two co-workers paid;
* a poster that leaves a worker's list out of the bundle (but still claims its samples): the
  poster is named, the left-out worker is paid."""

import json

import pytest
from test_jobs_agent import Blobs, LocalNet, Port, register_all, run_until_finished

from ledger.genesis import NMT
from ledger.jobs import records as R
from ledger.jobs.views import audit_jobs
from ledger.keys import address_to_text, devnet_key
from ledger.txkinds.stake import StakeTx
from mindnode.jobs import evidence, examples, verify_async, work
from mindnode.jobs import spec as job_spec
from mindnode.jobs.agent import ProviderAgent
from mindnode.jobs.errors import EvidenceError, JobSpecError
from mindnode.node import faults

V0 = devnet_key(0)
PROVIDERS = [devnet_key(i) for i in range(2, 7)]      # the first 3 offer (the workers), the last 2 verify
WORKERS = sorted(PROVIDERS[:3], key=lambda k: address_to_text(k.address))
POSTER, CHEATER = WORKERS[0], WORKERS[-1]           # the lowest id posts; the cheater is another one


class SigningPort(Port):
    def sign(self, message):
        return self.key.sign(message)


class OmittingAgent(ProviderAgent):
    """A poster that drops one co-worker's signed list from the bundle but keeps paying it."""

    def _async_result_evidence(self, job_id, body, entries, group):
        kept = {p: e for p, e in entries.items() if p != CHEATER.address}
        out = super()._async_result_evidence(job_id, body, kept, group)
        import dataclasses

        return dataclasses.replace(out, work=body.work)


async def _run_job(tmp_path, spec, *, cheat=None, agent_cls=None):
    from trainer.transport import InMemoryHub

    net = LocalNet(tmp_path / "chain", providers=PROVIDERS)
    hub, blobs = InMemoryHub(), Blobs()
    for k in PROVIDERS:
        hub.transport(address_to_text(k.address))

    async def cheating_run(worker):
        faults.scale_local_updates(worker)
        return await worker.run()

    agents = []
    for i, k in enumerate(PROVIDERS):
        cls = agent_cls if (agent_cls and k is POSTER) else ProviderAgent
        agents.append(cls(k.address, SigningPort(net, k), blobs, lambda job_id, me: hub.transport(me),
                          tmp_path / f"a{i}", offer=k in WORKERS, zone="lab",
                          run_worker=cheating_run if k is cheat else None))
    await register_all(net, PROVIDERS)
    for k in WORKERS:
        await Port(net, k).submit(StakeTx(validator=V0.address, amount=100 * NMT, lock_days=0))
    job = await run_until_finished(net, agents, spec)
    return net, blobs, agents, job


def _check_first_and_last_rounds(spec, job, blobs, lists):
    """Whatever round the chain draws passes for honest workers (the first from the rebuilt step 0,
    the last), and a worker whose recorded local state of one round is off by 1% is named alone."""
    from trainer import checkpoint as ck

    ds = work.load_data(spec)
    weights = blobs.data[job.result.result_cid]
    final = blobs.data[job.result.checkpoints[-1]]
    full = {p: [blobs.data[c] for c in cids] for p, cids in lists.items()}
    group = [address_to_text(k.address) for k in WORKERS]
    for start in (0, 380):
        v = verify_async.verify_async_workers(spec, ds, full, weights, start, 20, final_checkpoint=final,
                                              initial_group=group)
        assert v.ok and v.checked == 3 and v.max_abs_diff == 0.0, v.reason    # bitwise on one machine
    bad = ck.loads(full[CHEATER.address][0])            # its state at step 20
    bad.extra["local"] = bad.extra["local"] * 1.01
    full[CHEATER.address] = [ck.dumps(bad), *full[CHEATER.address][1:]]
    v = verify_async.verify_async_workers(spec, ds, full, weights, 0, 20, final_checkpoint=final, initial_group=group)
    assert v.bad == [CHEATER.address] and "differs" in v.reason


def _stake(st, k):
    return st.stake(k.address, V0.address, b"F").amount


@pytest.mark.slow
@pytest.mark.timeout(280)
@pytest.mark.parametrize("case", ["honest", "cheat-async", "poster-omits"])
async def test_async_job_blames_only_the_worker_whose_rounds_fail(tmp_path, case):
    spec = examples.resolve("digits-mlp-async")
    net, blobs, agents, job = await _run_job(tmp_path, spec, cheat=CHEATER if case == "cheat-async" else None,
                                             agent_cls=OmittingAgent if case == "poster-omits" else None)
    st = net.store.state()
    paid = {p.provider: p.amount for p in job.payments}
    assert {w.provider for w in job.assigned} == {k.address for k in WORKERS}
    ev = evidence.load(blobs.data[job.result.evidence], 1)
    lists = {e.provider: e.checkpoints for e in ev.worker_checkpoints}
    if case == "honest":
        assert job.state == R.DONE, (job.reason, [a.errors for a in agents], net.skipped)
        assert job.verified_metric_ppm >= 940_000
        assert set(lists) == {k.address for k in WORKERS}
        # each worker's own list: a checkpoint per round (400 / 20), its own blobs (per-worker optimizer state)
        assert all(len(c) == 20 for c in lists.values()) and len({c[0] for c in lists.values()}) == 3
        assert set(paid) == {k.address for k in WORKERS} and len(set(paid.values())) == 1
        assert not [e for a in agents for e in a.errors], [a.errors for a in agents]
        _check_first_and_last_rounds(spec, job, blobs, lists)
    else:
        culprit = CHEATER if case == "cheat-async" else POSTER
        honest = [k for k in WORKERS if k is not culprit]
        assert job.state == R.FAILED, (job.reason, [a.errors for a in agents])
        assert job.accused == (culprit.address,), [address_to_text(a) for a in job.accused]
        assert set(paid) == {k.address for k in honest}      # the honest ones are paid for their samples
        assert R.get_provider(st, culprit.address).reputation <= 4_000
        assert _stake(st, culprit) == 90 * NMT and all(_stake(st, k) == 100 * NMT for k in honest)
        if case == "poster-omits":
            assert CHEATER.address not in lists
    st.audit()
    audit_jobs(st)
    net.store.close()


def test_evidence_bundle_bounds_and_errors():
    k, other = WORKERS[0], WORKERS[1]
    e = evidence.sign_worker_checkpoints(7, k.address, ["bafy1", "bafy2"], k.sign)
    raw = evidence.encode_worker_entry(e)
    assert evidence.decode_worker_entry(raw, 7, k.address) == e
    with pytest.raises(EvidenceError, match="another provider"):
        evidence.decode_worker_entry(raw, 7, other.address)
    with pytest.raises(EvidenceError, match="signature"):
        evidence.decode_worker_entry(raw, 8, k.address)           # signed for another job
    with pytest.raises(EvidenceError, match="malformed"):
        evidence.decode_worker_entry(raw[:-3], 7, k.address)
    with pytest.raises(EvidenceError, match="over the"):
        evidence.decode_worker_entry(b"\x00" * (evidence.MAX_WORKER_ENTRY_BYTES + 1), 7, k.address)
    forged = evidence.WorkerCheckpoints(provider=other.address, checkpoints=("x",), signature=e.signature)
    bundle = evidence.build(7, [forged, e])
    ev = evidence.load(bundle, 7)
    assert [x.provider for x in ev.worker_checkpoints] == sorted([k.address, other.address])
    assert evidence.missing_lists(ev, 7, [k.address, other.address]) == [other.address]   # forged = missing
    assert evidence.missing_lists(None, 7, [k.address]) == [k.address]
    with pytest.raises(EvidenceError, match="not job 8"):
        evidence.load(bundle, 8)
    with pytest.raises(EvidenceError, match="two checkpoint lists"):
        evidence.build(7, [e, e])
    with pytest.raises(EvidenceError, match="malformed"):
        evidence.load(b"\x81\xa1x\x01", 7)
    with pytest.raises(EvidenceError, match="over the"):
        evidence.load(b"\x00" * (evidence.MAX_EVIDENCE_BYTES + 1), 7)


def test_the_poster_pays_only_workers_whose_signed_list_arrived(tmp_path):
    """A worker that never sent its list is left out of `work` (unpaid, not accused); a former
    worker (dropped mid-job, not in the final group) keeps its samples; the bundle is published."""
    blobs = Blobs()
    spec = examples.resolve("digits-mlp-async")
    poster, silent = WORKERS[0], WORKERS[1]
    former = devnet_key(9)
    agent = ProviderAgent(poster.address, None, blobs, None, tmp_path)
    body = work.result_body(1, spec, b"weights", {"accuracy": 0.9}, {poster.address: 100, silent.address: 100,
                                                                      former.address: 40}, [b"c1"])
    entry = evidence.sign_worker_checkpoints(1, poster.address, ["bafyx"], poster.sign)
    out = agent._async_result_evidence(1, body, {poster.address: entry},
                                       [address_to_text(k.address) for k in (poster, silent)])
    assert {w.provider for w in out.work} == {poster.address, former.address}
    ev = evidence.load(blobs.data[out.evidence], 1)
    assert [e.provider for e in ev.worker_checkpoints] == [poster.address]


def test_an_async_spec_with_too_many_rounds_is_refused():
    d = json.loads(examples.text("digits-mlp-async"))
    d["limits"] = {"steps": 20 * 256}
    with pytest.raises(JobSpecError, match=r"256 averaging rounds; at most 255.*raise H to at least 21"):
        job_spec.validate(d)
    d["H"] = 21
    job_spec.validate(d)


def test_the_verifier_fetches_only_the_checkpoints_of_the_drawn_rounds():
    from mindnode.jobs import verify_async

    d = json.loads(examples.text("digits-mlp-async"))
    d["limits"] = {"steps": 50}                  # rounds 0..20, 20..40, 40..50 (a short last round)
    spec = job_spec.validate(d)
    assert verify_async.covering_rounds(spec, 15, 10) == [(0, 20), (20, 40)]
    assert verify_async.needed_list_positions(spec, 15, 10) == {20: 0, 40: 1}     # step 0 is rebuilt
    assert verify_async.needed_list_positions(spec, 45, 5) == {40: 1, 50: 2}
