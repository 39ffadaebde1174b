"""A lazy verifier is caught by the chain's audit (ledger/JOBS.md "Audits"), with provider agents
over one real LevelDB chain in this process (the LocalNet of test_jobs_agent.py), audits always on.

Three agents train digits-mlp (sync); the one that posts the result makes it up (`cheat-result`:
scaled weights, claimed accuracy 0.999). The three spare providers run the ``lazy-verifier``
fault: whichever the beacon draws first posts "clean" with the claimed metric, without fetching or
replaying anything. The audit draws one of the other two, which replays honestly and names the
poster; the third confirms. Outcome: the poster is not paid and is slashed, the honest co-workers
are paid, the lazy verifier loses its fee and `rep_false_clean`, the auditor and the decider are paid."""

import dataclasses

import pytest
from test_jobs_agent import Blobs, LocalNet, Port, register_all, run_until_finished

from ledger.genesis import NMT
from ledger.jobs import records as R
from ledger.jobs.params import JobParams
from ledger.jobs.views import audit_jobs, job_view
from ledger.keys import address_to_text, devnet_key
from ledger.txkinds.stake import StakeTx
from mindnode.jobs import examples
from mindnode.jobs.agent import ProviderAgent
from mindnode.node import faults

V0 = devnet_key(0)
PROVIDERS = [devnet_key(i) for i in range(2, 8)]       # 3 workers, 3 lazy spares
WORKERS, SPARES = PROVIDERS[:3], PROVIDERS[3:]
JP = dataclasses.replace(JobParams(), audit_bps=10_000)


@pytest.mark.slow
@pytest.mark.timeout(280)
async def test_a_lazy_verifier_of_a_cheating_job_is_caught_by_the_audit(tmp_path):
    from trainer.transport import InMemoryHub

    net = LocalNet(tmp_path / "chain", providers=PROVIDERS, jobs=JP)
    hub, blobs = InMemoryHub(), Blobs()
    for k in PROVIDERS:
        hub.transport(address_to_text(k.address))
    agents = {}
    for i, k in enumerate(PROVIDERS):
        a = ProviderAgent(k.address, Port(net, k), blobs, lambda job_id, me: hub.transport(me), tmp_path / f"a{i}",
                          offer=k in WORKERS, zone="lab")
        if k in WORKERS:
            a.result_hook = faults.make_up_result          # only the poster uses it
        else:
            a.lazy_verifier = True
        agents[k.address] = a
    await register_all(net, PROVIDERS)
    for k in WORKERS:
        await Port(net, k).submit(StakeTx(validator=V0.address, amount=100 * NMT, lock_days=0))
    balances0 = {k.address: net.store.state().account(k.address).balance for k in SPARES}
    job = await run_until_finished(net, list(agents.values()), examples.resolve("digits-mlp"), timeout=240)
    st = net.store.state()
    errors = {address_to_text(a)[:10]: ag.errors for a, ag in agents.items() if ag.errors}
    lazy, auditor, decider = job.tried_verifiers
    poster = job.result.poster
    assert job.state == R.FAILED and "failed the replay" in job.reason, (job.reason, errors, net.skipped)
    assert job.audit == R.A_DISPUTE and job.clean_by == lazy and job.accuser == auditor
    assert job.clean_metric_ppm == 999_000                     # the lazy verdict copied the made-up claim
    assert job.accused == (poster,)
    # the poster: not paid, -1,000, 10% of its stake slashed; its honest co-workers paid
    assert poster not in {p.provider for p in job.payments}
    assert {p.provider for p in job.payments} == {w.provider for w in job.assigned} - {poster}
    assert st.stake(poster, V0.address, b"F").amount == 90 * NMT
    # the lazy verifier: no fee, -rep_false_clean; the auditor and the decider are paid
    fee = job.verifier_payments[0].amount
    assert fee > 0 and [(p.provider, p.amount) for p in job.verifier_payments] == [(auditor, fee), (decider, fee)]
    assert st.account(lazy).balance == balances0[lazy]
    assert st.account(auditor).balance == balances0[auditor] + fee
    p = R.get_provider(st, lazy)
    assert p.reputation == 5_000 - JP.rep_false_clean + 20 * p.controls_passed - 200 * p.controls_failed
    view = job_view(st, job.id)["audit"]
    assert view["phase"] == "dispute" and view["clean_metric"] == 0.999
    st.audit()
    audit_jobs(st)
    net.store.close()
