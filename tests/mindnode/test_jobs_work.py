"""A chain job trained for real: digits-mlp (the bundled spec) on a real LevelDB chain, three
trainer workers (in-memory transport, in this process), the result and checkpoints by content id,
a verifier that replays the drawn interval and measures held-out accuracy, settlement with exact
payments; and a tampered checkpoint caught by the replay (not paid, slashed).

What this does not cover (the daemon's job, next): p2p transport between processes, blob
exchange, gossip of the job topic."""

import pytest
import trio

from ledger.economics import ledger_state as econ
from ledger.genesis import NMT, AllocationRow, Genesis, GenesisAccount, GenesisValidator, Params
from ledger.jobs import records as R
from ledger.keys import address_to_text, devnet_key
from ledger.store import Store, build_block
from ledger.tx import sign_tx
from ledger.txkinds.job_offer import JobOffer
from ledger.txkinds.provider_register import ProviderRegister
from ledger.txkinds.stake import StakeTx
from mindnode.jobs import examples, verify, work

CHAIN = "work-test"
V0, SUB, P1, P2, P3, VER, VER2 = (devnet_key(i) for i in range(7))
WORKERS = (P1, P2, P3)
KEY_OF = {k.address: k for k in (P1, P2, P3, VER, VER2)}


class MiniChain:
    def __init__(self, path):
        g = Genesis(chain_id=CHAIN, timestamp=1_700_000_000,
                    params=Params(min_validator_stake=NMT, day_s=100, month_s=1000),
                    accounts=tuple(GenesisAccount(k.address, 1000 * NMT) for k in (SUB, P1, P2, P3, VER, VER2)),
                    validators=(GenesisValidator(V0.address, 10 * NMT),), allocation_start=1_700_000_000,
                    allocation=(AllocationRow("mining", 1000 * NMT, 0, 24, pool="mining"),
                                AllocationRow("staking", 100 * NMT, 0, 24, pool="staking")))
        self.store = Store.create(path, g, sync=False)
        self.nonces = {}

    def send(self, *pairs):
        txs = []
        for key, body in pairs:
            n = self.nonces.get(key.address, 0)
            self.nonces[key.address] = n + 1
            txs.append(sign_tx(key, CHAIN, n, 0, body))
        skipped = []
        self.store.import_block(build_block(self.store, V0, txs, self.store.head.timestamp + 2000, 2,
                                            on_skip=lambda tx, e: skipped.append(str(e))))
        assert not skipped, skipped

    def until(self, height):
        while self.store.height < height:
            self.send()

    def job(self, jid):
        return R.get_job(self.store.state(), jid)


async def _train(spec, assigned, tmp_path):
    from trainer.transport import InMemoryHub
    from trainer.worker import Worker

    ds = work.load_data(spec)
    cfg = work.train_config(spec)
    ids = [address_to_text(a) for a in assigned]
    hub = InMemoryHub()
    workers = {p: Worker(hub.transport(p), ids, work.model_spec(spec), ds, cfg, job_id="job-1",
                         checkpoint_dir=tmp_path / p[:12]) for p in ids}
    results = {}

    async def one(p):
        results[p] = await workers[p].run()

    async with trio.open_nursery() as n:
        for p in ids:
            n.start_soon(one, p)
    return ds, workers, results


@pytest.mark.slow
@pytest.mark.timeout(240)
@pytest.mark.parametrize("tamper", [False, True], ids=["honest", "tampered-checkpoint"])
async def test_digits_mlp_trained_verified_and_paid(tmp_path, tamper):
    from trainer import checkpoint as ck

    chain = MiniChain(tmp_path / "chain")
    chain.send(*((k, ProviderRegister(hardware_class="cpu", score=100, price=NMT // 10, capacity=1, zone="lab",
                                      bandwidth_kbps=100_000)) for k in (P1, P2, P3, VER, VER2)),
               (P2, StakeTx(validator=V0.address, amount=100 * NMT, lock_days=0)))
    spec = examples.resolve("digits-mlp")
    chain.send((SUB, spec.submit_body(now_ms=chain.store.head.timestamp)))
    chain.send(*((k, JobOffer(job_id=1, price=NMT // 10, zone="lab")) for k in WORKERS))
    chain.until(chain.job(1).window_close_height)
    job = chain.job(1)
    assert job.state == R.RUNNING and {w.provider for w in job.assigned} == {k.address for k in WORKERS}

    ds, workers, results = await _train(spec, [w.provider for w in job.assigned], tmp_path)
    rank0 = workers[address_to_text(job.assigned[0].provider)]
    weights = work.weights_blob(rank0.model)
    ckpt_dir = rank0.checkpoint_dir
    blobs = [p.read_bytes() for p in ck.list_checkpoints(ckpt_dir)]
    assert [ck.loads(b).step for b in blobs] == list(range(50, 401, 50))
    if tamper:     # the workers claim states they did not compute: every checkpoint before the last scaled,
        for i in range(len(blobs) - 1):    # so whatever interval the chain draws, its replay disagrees
            bad = ck.loads(blobs[i])
            bad.model = {k: v * 1.01 for k, v in bad.model.items()}
            blobs[i] = ck.dumps(bad)
    _, acc = rank0.evaluate()
    assert acc >= 0.95
    body = work.result_body(1, spec, weights, {"accuracy": acc, "loss": results[address_to_text(
        job.assigned[0].provider)].eval_loss}, {w.provider: work.full_run_samples(spec) for w in job.assigned},
        blobs)
    chain.send((KEY_OF[job.assigned[0].provider], body))
    chain.until(chain.job(1).challenge_height)
    job = chain.job(1)
    assert job.verifier in (VER.address, VER2.address)       # providers that did not train it
    verdict = verify.verify_result(spec, ds, blobs, weights, job.replay_from, job.replay_steps)   # world from ckpt
    # the interval that decided starts at or before the draw; a failing verdict stops at the first failing
    # interval, which may end inside a draw that straddles a checkpoint (the draw follows the beacon,
    # hence the block hashes, hence the checkpoint bytes: any change to training moves it)
    assert verdict.start_step <= job.replay_from < verdict.end_step
    assert not verdict.ok or verdict.end_step >= job.replay_from + job.replay_steps
    assert verdict.metrics["accuracy"] == pytest.approx(acc)
    sub0 = chain.store.account(SUB.address).balance
    if not tamper:
        assert verdict.ok, verdict.reason
        early = verify.verify_result(spec, ds, blobs, weights, 10, 5, initial_world=3)   # before the 1st ckpt
        assert early.ok and (early.start_step, early.end_step) == (0, 50), early
        chain.send((KEY_OF[job.verifier], verify.verify_body(job, verdict, "accuracy")))
        chain.send()                  # the next block's beacon decides on an audit (audit_bps, 10%)
        job = chain.job(1)
        if job.audit == R.A_AUDIT:    # the other verifier replays the same steps: the same verdict
            chain.send((KEY_OF[job.verifier], verify.verify_body(job, verdict, "accuracy")))
            job = chain.job(1)
        assert job.state == R.DONE and job.verified_metric_ppm >= 950_000
        # fee = 3 workers x 12,800 samples x 0.1 NMT / 1,000 = 3.84 NMT; 50% shared equally
        assert job.fee_paid == 3 * 12_800 * (NMT // 10) // 1000 == 3_840_000_000_000_000_000
        assert [p.amount for p in job.payments] == [640_000_000_000_000_000] * 3
        # the verifier: 5% (verifier_fee_bps) of the claimed work value 3.84 NMT
        assert job.verifier_fees == len(job.verifier_payments) * job.fee_paid * 500 // 10_000
        assert chain.store.account(SUB.address).balance == sub0 + 50 * NMT - job.fee_paid - job.verifier_fees
    else:
        assert not verdict.ok and "differs" in verdict.reason
        chain.send((KEY_OF[job.verifier], verify.verify_body(job, verdict, "accuracy")))
        chain.send()                # the confirmer is drawn from the next block's beacon
        job = chain.job(1)          # the accusation is confirmed by the other verifier, on the same steps
        assert job.state == R.VERIFYING and len(job.accused) == 3
        again = verify.verify_result(spec, ds, blobs, weights, job.replay_from, job.replay_steps)
        assert not again.ok
        chain.send((KEY_OF[job.verifier], verify.verify_body(job, again, "accuracy")))
        job = chain.job(1)
        # the workers are not paid; both verifiers (accuser confirmed) are, 5% of the claimed 3.84 NMT each
        assert job.state == R.FAILED and job.fee_paid == 0 and job.verifier_fees == 2 * 192_000_000_000_000_000
        assert job.refunded == 50 * NMT - job.verifier_fees
        assert R.get_provider(chain.store.state(), P2.address).reputation == 4_000
        assert chain.store.state().stake(P2.address, V0.address, b"F").amount == 90 * NMT
    s = chain.store.state()
    s.audit()
    econ.audit_economics(s)
    chain.store.close()
