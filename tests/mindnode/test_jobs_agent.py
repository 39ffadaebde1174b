"""Provider agents run a job on their own: five agents over one real LevelDB chain (blocks sealed
every 0.1 s in the same trio process), content-addressed blobs in memory, the trainer's in-memory
transport. The test only submits digits-mlp and waits: the agents offer, train (3 workers, sync),
publish the weights and checkpoints, post the result; a designated verifier agent replays the
drawn interval and posts its verdict; the chain settles.

The real daemon replaces the three ports with the node's mempool/gossip, the p2p blob exchange
and the p2p tensor transport (ledger/JOBS.md, "What a node does")."""

import pytest
import trio

from ledger.execution import BlockContext, check_tx
from ledger.genesis import NMT, AllocationRow, Genesis, GenesisAccount, GenesisValidator, Params
from ledger.jobs import records as R
from ledger.jobs.cid import cid_of
from ledger.jobs.views import audit_jobs
from ledger.keys import address_to_text, devnet_key
from ledger.store import Store, build_block
from ledger.tx import sign_tx
from ledger.txkinds.provider_register import ProviderRegister
from mindnode.jobs import examples
from mindnode.jobs.agent import ProviderAgent

CHAIN = "agent-test"
V0, SUB = devnet_key(0), devnet_key(1)
PROVIDERS = [devnet_key(i) for i in range(2, 7)]         # 4 that offer, the last verifies only


class LocalNet:
    """One store, a pool of pending transactions, a sealing task: a one-process devnet."""

    def __init__(self, path, providers=PROVIDERS, day_s=100, jobs=None):
        extra = {} if jobs is None else {"jobs": jobs}       # jobs: a JobParams (e.g. audits always on)
        g = Genesis(chain_id=CHAIN, timestamp=1_700_000_000,
                    params=Params(min_validator_stake=NMT, day_s=day_s, month_s=1000, **extra),
                    accounts=tuple(GenesisAccount(k.address, 1000 * NMT) for k in (SUB, *providers)),
                    validators=(GenesisValidator(V0.address, 10 * NMT),), allocation_start=1_700_000_000,
                    allocation=(AllocationRow("mining", 1000 * NMT, 0, 24, pool="mining"),
                                AllocationRow("staking", 100 * NMT, 0, 24, pool="staking")))
        self.store = Store.create(path, g, sync=False)
        self.pending = []
        self.skipped = []
        self.head = trio.Condition()

    async def seal_forever(self, every_s=0.1):
        while True:
            await trio.sleep(every_s)
            txs, self.pending = self.pending, []
            block = build_block(self.store, V0, txs, self.store.head.timestamp + 2000, 2,
                                on_skip=lambda tx, e: self.skipped.append((tx.body.kind, str(e))))
            self.store.import_block(block)
            async with self.head:
                self.head.notify_all()

    async def new_head(self):
        async with self.head:
            await self.head.wait()


class Port:
    """ChainPort of one key: signs at the next pending nonce and admits like a mempool."""

    def __init__(self, net, key):
        self.net, self.key = net, key

    def state(self):
        return self.net.store.state()

    async def submit(self, body):
        st = self.net.store.state()
        nonce = st.account(self.key.address).nonce + sum(1 for t in self.net.pending if t.sender == self.key.address)
        tx = sign_tx(self.key, CHAIN, nonce, 0, body)
        head = self.net.store.head
        ctx = BlockContext.for_state(st, head.height + 1, head.timestamp + 2000, V0.address)
        for t in self.net.pending:          # admission against the pool, as a mempool would
            if t.sender == self.key.address:
                check_tx(st, ctx, t)
                from ledger.execution import apply_tx

                apply_tx(st, ctx, t)
        check_tx(st, ctx, tx)
        self.net.pending.append(tx)

    def sign(self, message):
        """The node key's signature (sync workers sign gradient sketches, async workers their lists)."""
        return self.key.sign(message)


class Blobs:
    def __init__(self):
        self.data = {}

    def put(self, data):
        cid = cid_of(data)
        self.data[cid] = bytes(data)
        return cid

    async def get(self, cid):
        data = self.data[cid]
        assert cid_of(data) == cid
        return data


def provider_agents(net, keys, blobs, hub, tmp_path, offering: int) -> list:
    """One agent per key over the in-memory `hub` (every node "connected" from the start: the hub
    refuses unknown peers); the first `offering` of them offer on jobs, the rest verify."""
    for k in keys:
        hub.transport(address_to_text(k.address))
    return [ProviderAgent(k.address, Port(net, k), blobs, lambda job_id, me: hub.transport(me), tmp_path / f"a{i}",
                          offer=i < offering, zone="lab") for i, k in enumerate(keys)]


async def register_all(net, keys) -> None:
    """Register every key as the same cpu provider (0.1 NMT per work unit, capacity 1, zone lab)."""
    for k in keys:
        await Port(net, k).submit(ProviderRegister(hardware_class="cpu", score=100, price=NMT // 10, capacity=1,
                                                   zone="lab", bandwidth_kbps=100_000))


async def run_until_finished(net, agents, spec, timeout=200):
    """Seal blocks, run the agents, submit `spec` (as SUB) and return job 1 once it is finished."""
    async with trio.open_nursery() as n:
        n.start_soon(net.seal_forever)
        await net.new_head()
        for a in agents:
            n.start_soon(a.run, net.new_head)
        await Port(net, SUB).submit(spec.submit_body(now_ms=net.store.head.timestamp))
        with trio.fail_after(timeout):
            while (job := R.get_job(net.store.state(), 1)) is None or job.state not in R.TERMINAL:
                await net.new_head()
        n.cancel_scope.cancel()
    return job


@pytest.mark.slow
@pytest.mark.timeout(280)
async def test_agents_run_digits_mlp_to_payment(tmp_path):
    from trainer.transport import InMemoryHub

    net = LocalNet(tmp_path / "chain")
    hub, blobs = InMemoryHub(), Blobs()
    agents = provider_agents(net, PROVIDERS, blobs, hub, tmp_path, offering=4)
    await register_all(net, PROVIDERS)
    spec = examples.resolve("digits-mlp")
    async with trio.open_nursery() as n:
        n.start_soon(net.seal_forever)
        await net.new_head()
        for a in agents:
            n.start_soon(a.run, net.new_head)
        await Port(net, SUB).submit(spec.submit_body(now_ms=net.store.head.timestamp))
        t0, phases, last = trio.current_time(), {}, None
        with trio.fail_after(240):
            while True:
                await net.new_head()
                job = R.get_job(net.store.state(), 1)
                if job is not None and job.state != last:
                    phases[job.state], last = round(trio.current_time() - t0, 2), job.state
                if job is not None and job.state in R.TERMINAL:
                    break
        n.cancel_scope.cancel()
    print("phases (s since submit):", phases)     # e.g. open 0.1, running 0.7, verifying 6.5, done 7.9
    assert job.state == R.DONE, (job.reason, [a.errors for a in agents], net.skipped)
    assert job.verified_metric_ppm >= 950_000
    workers = {w.provider for w in job.assigned}
    assert len(workers) == 3 and job.verifier == b"" and job.tried_verifiers[0] not in workers
    assert job.fee_paid == 3 * 12_800 * (NMT // 10) // 1000
    assert blobs.data[job.result.result_cid]
    st = net.store.state()
    for a in workers:     # +100 for the verified work, +20 per control task answered meanwhile (every 50 blocks)
        p = R.get_provider(st, a)
        assert p.reputation == 5_000 + 100 + 20 * p.controls_passed and p.controls_failed == 0 and p.jobs_done == 1
    st.audit()
    audit_jobs(st)
    assert not [e for a in agents for e in a.errors], [a.errors for a in agents]
    net.store.close()
    assert address_to_text(job.submitter) == address_to_text(SUB.address)


async def test_agent_does_not_offer_on_an_invalid_spec(tmp_path):
    net = LocalNet(tmp_path / "chain")
    k = PROVIDERS[0]
    agent = ProviderAgent(k.address, Port(net, k), Blobs(), lambda job_id, me: None, tmp_path / "a")
    await Port(net, k).submit(ProviderRegister(hardware_class="cpu", score=100, price=NMT // 10, capacity=1,
                                               zone="", bandwidth_kbps=1))
    good = examples.resolve("digits-mlp").submit_body(now_ms=net.store.head.timestamp + 10_000_000)
    import dataclasses

    await Port(net, SUB).submit(dataclasses.replace(good, spec=b'{"model": "rm -rf /"}'))
    await Port(net, SUB).submit(good)
    async with trio.open_nursery() as n:
        n.start_soon(net.seal_forever, 0.01)
        await net.new_head()
        await agent.poll()                     # offers on job 2 only
        await net.new_head()
        await net.new_head()
        n.cancel_scope.cancel()
    st = net.store.state()
    assert st.get(R.offer_key(1, k.address)) is None and st.get(R.offer_key(2, k.address)) is not None
    assert agent.errors == [] and net.skipped == []
    net.store.close()


@pytest.mark.slow
@pytest.mark.timeout(280)
@pytest.mark.parametrize("when", ["mid-training", "at-start"])
async def test_a_killed_worker_is_reported_replaced_and_the_job_still_pays(tmp_path, when):
    """P1..P4 offer (3 assigned, 1 spare), two more agents only verify. One assigned worker's node
    dies. Mid-training: the other two finish without it (the trainer drops it), report it, the chain
    marks it missing (reputation, that day's mining reward) and assigns the spare, which arrives
    too late to work; the dead worker is paid for the steps it took part in; verification skips the
    interval in which the group changed. At the start: the survivors' start handshake fails, they
    report it, and train again from scratch with the spare."""
    from ledger.economics import ledger_state as econ
    from trainer.transport import InMemoryHub

    providers = PROVIDERS + [devnet_key(7)]
    # a chain day longer than the test: the victim's forfeited day is settled (and its record
    # deleted) in the first block of the next day, which a loaded machine would otherwise reach
    net = LocalNet(tmp_path / "chain", providers, day_s=10**7)
    hub, blobs = InMemoryHub(), Blobs()
    for k in providers:
        hub.transport(address_to_text(k.address))
    agents = {k.address: ProviderAgent(k.address, Port(net, k), blobs, lambda job_id, me: hub.transport(me),
                                       tmp_path / f"a{i}", offer=i < 4, zone="lab")
              for i, k in enumerate(providers)}
    for k in providers:
        await Port(net, k).submit(ProviderRegister(hardware_class="cpu", score=100, price=NMT // 10, capacity=1,
                                                   zone="lab", bandwidth_kbps=100_000))
    scopes = {a: trio.CancelScope() for a in agents}

    async def run_agent(addr):
        with scopes[addr]:
            await agents[addr].run(net.new_head)

    spec = examples.resolve("digits-mlp")
    async with trio.open_nursery() as n:
        n.start_soon(net.seal_forever)
        await net.new_head()
        for a in agents:
            n.start_soon(run_agent, a)
        await Port(net, SUB).submit(spec.submit_body(now_ms=net.store.head.timestamp))
        with trio.fail_after(240):
            while (job := R.get_job(net.store.state(), 1)) is None or job.state != R.RUNNING:
                await net.new_head()
            victim = job.assigned[2].provider
            if when == "mid-training":        # after its checkpoint of step 100 of 400
                while not list(agents[victim].workdir.glob("job-1-*/ckpt-000000000100.safetensors")):
                    await trio.sleep(0.002)
            scopes[victim].cancel()           # its node dies
            hub.kill(address_to_text(victim))
            while (job := R.get_job(net.store.state(), 1)).state not in R.TERMINAL:
                await net.new_head()
        n.cancel_scope.cancel()
    st = net.store.state()
    assert job.state == R.DONE, (job.reason, {address_to_text(a)[:10]: ag.errors for a, ag in agents.items()})
    assert not job.worker(victim).active and job.replacements == 1 and len(job.assigned) == 4
    pv = R.get_provider(st, victim)       # a dead node also misses any control task it was given
    assert pv.reputation == 5_000 - 500 + 20 * pv.controls_passed - 200 * pv.controls_failed
    day = econ.clock_of(st).day_of(net.store.head.timestamp // 1000)
    assert econ._load(st, econ.jobs_key(day, victim), econ.JobsDay).dropped_job_failed
    work_of = {w.provider: w.samples for w in job.result.work}
    spare = job.assigned[3].provider
    assert [work_of[w.provider] for w in job.assigned[:2]] == [12_800] * 2
    if when == "mid-training":
        assert 100 * 32 <= work_of[victim] < 12_800 and work_of.get(spare, 0) == 0
        assert victim in {p.provider for p in job.payments}
    else:
        assert work_of.get(victim, 0) == 0 and work_of[spare] == 12_800
        assert R.get_provider(st, spare).jobs_done == 1
    assert job.fee_paid == sum(work_of.values()) * (NMT // 10) // 1000
    assert job.verified_metric_ppm >= 950_000
    st.audit()
    audit_jobs(st)
    net.store.close()
