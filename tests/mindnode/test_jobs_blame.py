"""Sync-mode blame from signed gradient sketches: digits-mlp trained by three trainer workers over the
in-memory transport, each signing its sketches with its provider key (trainer/sketch.py); the
poster's sketch log published in the evidence bundle; the verifier names only the worker that sent
3x gradients (`cheat-gradients`), or only the poster of a made-up result (`cheat-result`), and the
chain pays the honest workers and slashes only the cheater."""

import dataclasses

import pytest
import torch
import trio
from test_jobs_work import KEY_OF, P1, P2, P3, SUB, VER, VER2, WORKERS, MiniChain

from ledger.economics import ledger_state as econ
from ledger.genesis import NMT
from ledger.jobs import records as R
from ledger.jobs.cid import cid_of
from ledger.keys import address_to_text, devnet_key
from ledger.txkinds.job_offer import JobOffer
from ledger.txkinds.provider_register import ProviderRegister
from ledger.txkinds.stake import StakeTx
from mindnode.jobs import evidence, examples, sketchlog, verify, work
from mindnode.node import faults

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]
SPEC = examples.resolve("digits-mlp")
IDS = sorted(address_to_text(k.address) for k in WORKERS)
ADDR = {address_to_text(k.address): k.address for k in WORKERS}


def _train(cheater: str | None, tmp, factor: float = faults.CHEAT_GRADIENT_FACTOR):
    """Train digits-mlp with signed sketches (`cheater` sends 3x gradients). Returns the poster's
    (rank 0's) weights, checkpoints, sketch log bytes, the dataset and rank 0's accuracy."""
    from trainer import checkpoint as ck
    from trainer.transport import InMemoryHub
    from trainer.worker import Worker

    threads = torch.get_num_threads()
    torch.set_num_threads(1)          # three workers in one process on a shared 2-core box
    ds = work.load_data(SPEC)
    hub = InMemoryHub()
    ws = {p: Worker(hub.transport(p), IDS, work.model_spec(SPEC), ds, work.train_config(SPEC), job_id="job-1-g",
                    checkpoint_dir=tmp / p[:12], signer=sketchlog.signer(KEY_OF[ADDR[p]].sign),
                    verify_peer=sketchlog.verify_peer) for p in IDS}
    if cheater:
        faults.scale_gradients(ws[cheater], factor)

    async def main():
        async with trio.open_nursery() as n:
            for w in ws.values():
                n.start_soon(w.run)

    try:
        trio.run(main)
    finally:
        torch.set_num_threads(threads)    # later tests' training (and their beacon draws) must not change
    w0 = ws[IDS[0]]
    return {"weights": work.weights_blob(w0.model), "ckpts": [p.read_bytes() for p in ck.list_checkpoints(tmp / IDS[0][:12])],
            "log": sketchlog.build(1, w0.sketch_log), "ds": ds, "acc": w0.evaluate()[1], "rows": w0.sketch_log}


@pytest.fixture(scope="module")
def honest(tmp_path_factory):
    return _train(None, tmp_path_factory.mktemp("honest"))


@pytest.fixture(scope="module")
def cheated(tmp_path_factory):
    return _train(IDS[1], tmp_path_factory.mktemp("cheat"))


@pytest.fixture(scope="module")
def subtle(tmp_path_factory):
    return _train(IDS[2], tmp_path_factory.mktemp("subtle"), 1.001)


def _blame(run, replay_from=120, weights=None, ckpts=None, log=b"keep", poster=IDS[0]):
    weights = run["weights"] if weights is None else weights
    ckpts = run["ckpts"] if ckpts is None else ckpts
    log = run["log"] if log == b"keep" else log
    v = verify.verify_result(SPEC, run["ds"], ckpts, weights, replay_from, 20)
    a = verify.attribute_sync(SPEC, run["ds"], ckpts, weights, v, log, job_id=1, workers=list(ADDR.values()),
                              poster=ADDR[poster])
    return v, a


def test_honest_run_blames_nobody(honest):
    v, a = _blame(honest)
    assert v.ok and a.bad == () and honest["acc"] >= 0.95


@pytest.mark.parametrize("replay_from", [0, 120, 330])
def test_cheating_worker_is_named_alone(cheated, replay_from):
    v, a = _blame(cheated, replay_from)
    assert not v.ok and "differs" in v.reason
    assert a.bad == (ADDR[IDS[1]],), a
    assert a.step == v.start_step + 1       # caught at the first step of the failing interval
    assert "off by" in a.reason and a.worst_honest <= verify.SKETCH_RTOL / 10


def test_a_subtle_cheater_is_named_alone_or_not_at_all(subtle):
    """1.001x gradients: its sketch is 2e-3 off at its first step, where nothing else can differ.
    (With a 0.05 tolerance it was caught only steps later, after every rank drifted, and an honest
    rank was named; the replay of later intervals passes, and then nobody is named.)"""
    v, a = _blame(subtle, 0)
    assert not v.ok and a.bad == (ADDR[IDS[2]],) and a.step == 1, a
    v, a = _blame(subtle, 200)
    assert v.ok and a.bad == ()


def test_cheater_posting_its_own_result_is_still_named_alone(cheated):
    _, a = _blame(cheated, 200, poster=IDS[1])
    assert a.bad == (ADDR[IDS[1]],)


def test_made_up_weights_blame_the_poster_alone(honest):
    fake, metrics = faults.make_up_result(honest["weights"], {"accuracy": 0.9})
    assert metrics["accuracy"] > 0.99
    v, a = _blame(honest, weights=fake)
    assert not v.ok and a.bad == (ADDR[IDS[0]],) and "signed at the last step" in a.reason


def test_made_up_checkpoint_blames_the_poster_alone(honest):
    from trainer import checkpoint as ck

    blobs = list(honest["ckpts"])
    bad = ck.loads(blobs[2])                           # step 150: the end of the interval drawn at 120
    bad.model = {k: v * 1.01 for k, v in bad.model.items()}
    blobs[2] = ck.dumps(bad)
    v, a = _blame(honest, ckpts=blobs)
    assert not v.ok and a.bad == (ADDR[IDS[0]],) and "checkpoint at step 150" in a.reason


def test_missing_or_forged_log_blames_the_poster_alone(honest):
    assert _blame(honest, log=None)[1].bad == (ADDR[IDS[0]],)
    assert _blame(honest, log=b"\x93garbage")[1].bad == (ADDR[IDS[0]],)
    rows = [list(r) for r in honest["rows"]]
    # the poster rewrites another rank's sketch at one step: its signature no longer verifies
    s = rows[130][1]
    body = bytearray(s.body)
    body[-1] ^= 1
    rows[130][1] = dataclasses.replace(s, body=bytes(body))
    a = _blame(honest, log=sketchlog.build(1, rows))[1]
    assert a.bad == (ADDR[IDS[0]],) and "not signed" in a.reason
    # ... or leaves a step out
    a = _blame(honest, log=sketchlog.build(1, honest["rows"][:-1]))[1]
    assert a.bad == (ADDR[IDS[0]],)
    # ... or signs a log for another job
    assert "job" in _blame(honest, log=sketchlog.build(2, honest["rows"]))[1].reason


def test_sketch_log_refuses_oversized_and_foreign_signers(honest):
    with pytest.raises(sketchlog.SketchLogError):
        sketchlog.load(b"\0" * (sketchlog.MAX_LOG_BYTES + 1), 1, IDS)
    with pytest.raises(sketchlog.SketchLogError, match="not a worker"):
        sketchlog.load(honest["log"], 1, IDS[:2])
    outsider = address_to_text(devnet_key(9).address)
    assert not sketchlog.verify_peer(outsider, b"m", KEY_OF[ADDR[IDS[0]]].sign(sketchlog.SIG_DOMAIN + b"m"))
    assert sketchlog.verify_peer(IDS[0], b"m", KEY_OF[ADDR[IDS[0]]].sign(sketchlog.SIG_DOMAIN + b"m"))
    assert not sketchlog.verify_peer(IDS[0], b"m", KEY_OF[ADDR[IDS[0]]].sign(b"m"))   # domain-separated
    assert not sketchlog.verify_peer("not-an-address", b"m", b"s" * 64)


def test_on_chain_only_the_cheater_is_unpaid_and_slashed(tmp_path, cheated):
    """The chain's confirmation by a second verifier, then settlement: the two honest workers are
    paid for their samples and keep their reputation; the cheater is not paid, -1,000, slashed 10%."""
    cheater_key = KEY_OF[ADDR[IDS[1]]]
    chain = MiniChain(tmp_path / "chain")
    chain.send(*((k, ProviderRegister(hardware_class="cpu", score=100, price=NMT // 10, capacity=1, zone="lab",
                                      bandwidth_kbps=100_000)) for k in (P1, P2, P3, VER, VER2)),
               *((k, StakeTx(validator=devnet_key(0).address, amount=100 * NMT, lock_days=0)) for k in WORKERS))
    chain.send((SUB, SPEC.submit_body(now_ms=chain.store.head.timestamp)))
    chain.send(*((k, JobOffer(job_id=1, price=NMT // 10, zone="lab")) for k in WORKERS))
    chain.until(chain.job(1).window_close_height)
    poster = KEY_OF[ADDR[IDS[0]]]
    ev = evidence.Evidence(version=evidence.VERSION, job_id=1, worker_checkpoints=(), sketch_logs=(
        evidence.SketchLogRef(provider=poster.address, rank=0, log=cid_of(cheated["log"])),))
    body = work.result_body(1, SPEC, cheated["weights"], {"accuracy": cheated["acc"], "loss": 0.1},
                            {a: work.full_run_samples(SPEC) for a in ADDR.values()}, cheated["ckpts"])
    chain.send((poster, dataclasses.replace(body, evidence=cid_of(ev.encode()))))
    rep0 = {k.address: R.get_provider(chain.store.state(), k.address).reputation for k in WORKERS}
    for _ in range(2):                                   # the accuser, then the confirmer
        chain.until(chain.job(1).challenge_height)
        job = chain.job(1)
        v, a = _blame(cheated, job.replay_from)
        assert a.bad == (cheater_key.address,)
        chain.send((KEY_OF[job.verifier], verify.attributed_verify_body(job, v, "accuracy", a)))
    job = chain.job(1)
    assert job.state == R.FAILED and job.accused == (cheater_key.address,)
    paid = {p.provider: p.amount for p in job.payments}
    s = chain.store.state()
    for k in WORKERS:
        prov = R.get_provider(s, k.address)
        stake = s.stake(k.address, devnet_key(0).address, b"F").amount
        if k is cheater_key:
            assert k.address not in paid and prov.reputation == rep0[k.address] - 1_000
            assert stake == 90 * NMT
        else:
            assert paid[k.address] > 0 and prov.reputation >= rep0[k.address] and stake == 100 * NMT
    s.audit()
    econ.audit_economics(s)
    chain.store.close()


async def test_the_verifier_fetches_only_the_posters_log_for_this_job(honest, tmp_path):
    from mindnode.jobs.agent import ProviderAgent

    class Blobs:
        def __init__(self):
            self.data = {}

        def put(self, data):
            self.data[cid_of(data)] = bytes(data)
            return cid_of(data)

        async def get(self, cid):
            return self.data[cid]

    blobs = Blobs()
    agent = ProviderAgent(VER.address, None, blobs, lambda *a: None, tmp_path)
    poster = ADDR[IDS[0]]
    log_cid = blobs.put(honest["log"])

    def result(job_id=1, provider=poster, ev=None):
        bundle = ev if ev is not None else evidence.Evidence(
            version=evidence.VERSION, job_id=job_id, worker_checkpoints=(),
            sketch_logs=(evidence.SketchLogRef(provider=provider, rank=0, log=log_cid),)).encode()
        return R.Result(result_cid="", metrics=(), work=(), checkpoints=(), poster=poster, height=1,
                        evidence=blobs.put(bundle))

    assert await agent._fetch_sketch_log(1, result()) == honest["log"]
    assert await agent._fetch_sketch_log(1, result(job_id=2)) is None             # another job's bundle
    assert await agent._fetch_sketch_log(1, result(provider=ADDR[IDS[1]])) is None  # not the poster's log
    assert await agent._fetch_sketch_log(1, result(ev=b"\x91\x01")) is None        # malformed bundle
    assert await agent._fetch_sketch_log(1, dataclasses.replace(result(), evidence="")) is None
    missing = dataclasses.replace(result(), evidence="bafkreiaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
    assert await agent._fetch_sketch_log(1, missing) is None                       # unfetchable
