"""Signed gradient sketches (trainer/sketch.py): the sketch itself, the message format and the
online check that names a rank lying about what it sent."""
import dataclasses

import numpy as np
import pytest
import trio
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from wkhelpers import run_all

from trainer import compression
from trainer import sketch as sk
from trainer.allreduce import Averager, part_bounds
from trainer.errors import RoundFailed
from trainer.transport import InMemoryHub
from trainer.worker import TrainConfig, Worker

IDS = ["w0", "w1", "w2"]


class Keys:
    """Fresh Ed25519 keys per peer id: the trainer only sees sign/verify callables."""

    def __init__(self, ids):
        self.priv = {p: Ed25519PrivateKey.generate() for p in ids}

    def signer(self, p):
        return self.priv[p].sign

    def verify(self, peer, msg, sig):
        try:
            self.priv[peer].public_key().verify(bytes(sig), bytes(msg))
            return True
        except (InvalidSignature, KeyError, ValueError):
            return False


def test_sketch_is_linear_and_piecewise():
    rng = np.random.default_rng(0)
    x, y = (rng.standard_normal(5000).astype(np.float32) for _ in range(2))
    seed = sk.sketch_seed("job", 3, b"d" * 32)
    sx, sy = sk.sketch(x, seed, 1), sk.sketch(y, seed, 1)
    assert sx.shape == (sk.K,) and sx.dtype == np.float64
    assert np.allclose(sk.sketch(2 * x + 3 * y, seed, 1), 2 * sx + 3 * sy, rtol=1e-5, atol=1e-3)
    # pieces (what a receiver holds, chunk by chunk) sketch like the whole, with or without whole rows
    # (float32 products of other shapes may round differently: far inside the online tolerance)
    assert sk.deviation(sk.sketch([x[:2048], x[2048:]], seed, 1), sx) < sk.ONLINE_RTOL / 10
    assert sk.deviation(sk.sketch([x[:1000], x[1000:]], seed, 1), sx) < sk.ONLINE_RTOL / 10
    # another part, step or digest draws other coefficients
    assert not np.allclose(sk.sketch(x, seed, 2), sx)
    assert not np.allclose(sk.sketch(x, sk.sketch_seed("job", 4, b"d" * 32), 1), sx)
    assert sk.deviation(3 * sx, sx) > 1.0 and sk.deviation(sx, sx) == 0.0


def test_a_perturbation_is_caught_unless_the_seed_is_known_before_sending():
    """Why the seed comes from the round's digest: knowing it, a sender can cancel its sketch."""
    rng = np.random.default_rng(1)
    g = rng.standard_normal(4096).astype(np.float32)
    seed = sk.sketch_seed("job", 1, b"x" * 32)
    bad = 3 * g
    assert sk.deviation(sk.sketch(bad, seed, 0), sk.sketch(g, seed, 0)) > 1.0
    # a cheater that knew the seed projects its perturbation onto the sketch's null space
    c, r, _ = sk._coefficients(seed, 0, g.size, sk.K)
    A = np.stack([np.outer(c[:, t], r[:, t]).reshape(-1) for t in range(sk.K)])  # K x 4096
    delta = (2 * g).astype(np.float64)
    delta -= A.T @ np.linalg.solve(A @ A.T, A @ delta)
    crafted = (g + delta).astype(np.float32)
    assert np.abs(crafted - g).max() > 0.5                   # a big change ...
    assert sk.deviation(sk.sketch(crafted, seed, 0), sk.sketch(g, seed, 0)) < 1e-4  # ... invisible
    other = sk.sketch_seed("job", 1, b"y" * 32)             # but the digest decides the seed after sending
    assert sk.deviation(sk.sketch(crafted, other, 0), sk.sketch(g, other, 0)) > 0.1


def test_message_roundtrip_and_malformed_inputs():
    m = sk.SketchMessage("job-1", b"g" * 32, 5, 4, 1, 3, 32.0, b"d" * 32, sk.NO_PARAMS,
                         np.arange(3 * sk.K, dtype=np.float64).reshape(3, sk.K))
    body = m.encode()
    back = sk.SketchMessage.decode(body)
    assert back.step == 5 and back.rank == 1 and np.array_equal(back.sketches, m.sketches)
    s = sk.SignedSketch("w1", body, b"s" * 64)
    assert sk.SignedSketch.decode(s.encode(), sk.max_message_bytes(3)) == s
    for bad in (b"", body[:-1], body + b"\0", b"xxxx" + body[4:]):
        with pytest.raises(sk.SketchError):
            sk.SketchMessage.decode(bad)
    with pytest.raises(sk.SketchError):     # oversized
        sk.SignedSketch.decode(s.encode() + b"\0" * 10_000, sk.max_message_bytes(3))
    nan = dataclasses.replace(m, sketches=np.full((3, sk.K), np.nan))
    with pytest.raises(sk.SketchError):
        sk.SketchMessage.decode(nan.encode())
    with pytest.raises(sk.SketchError):     # rank out of range
        sk.SketchMessage.decode(dataclasses.replace(m, rank=3).encode())


@pytest.mark.parametrize("codec,cancelling", [("none", False), ("fp16", False), ("int8", False), ("none", True)])
async def test_sketches_of_an_honest_round_agree_online(codec, cancelling):
    """Every rank's signed sketch of part j equals the sketch of what j received (tight), and the
    averaged parts match the weighted mean of the signed sketches (within the codec's error), also
    when the contributions nearly cancel (the mean's sketch is then tiny next to the rounding)."""
    keys = Keys(IDS)
    hub = InMemoryHub()
    vecs = {p: np.random.default_rng(i).standard_normal(10_000).astype(np.float32) for i, p in enumerate(IDS)}
    if cancelling:      # weights 1, 2, 3: 1*a + 2*(-a/2 + tiny) + 3*tiny ~ 0
        vecs["w1"] = (-vecs["w0"] / 2 + 1e-6 * vecs["w1"]).astype(np.float32)
        vecs["w2"] = (1e-6 * vecs["w2"]).astype(np.float32)
    rows = {}

    async def one(p):
        t = hub.transport(p)
        avg = Averager(t, timeout=5, chunk_elems=2048, compression_name=codec, keep_received=True)
        res = await avg.average(0, IDS, vecs[p], 1.0 + IDS.index(p))
        rows[p] = await sk.exchange(t, res, vecs[p], 1.0 + IDS.index(p), namespace="j", step=1,
                                    codec=compression.codec_id(codec), chunk_elems=2048, params=sk.NO_PARAMS,
                                    signer=keys.signer(p), verify_peer=keys.verify, timeout=5)

    async with trio.open_nursery() as n:
        for p in IDS:
            n.start_soon(one, p)
    assert all([s.body for s in rows[p]] == [s.body for s in rows["w0"]] for p in IDS)
    for s in rows["w0"]:
        assert keys.verify(s.peer, s.body, s.signature)


def _workers(hub, keys, mlp_spec, digits, cfg, **extra):
    return {p: Worker(hub.transport(p), IDS, mlp_spec, digits, cfg, job_id="j", signer=keys.signer(p),
                      verify_peer=keys.verify, **extra) for p in IDS}




@pytest.mark.timeout(60)
async def test_signed_training_logs_every_rank_every_step(digits, mlp_spec):
    keys = Keys(IDS)
    cfg = TrainConfig(mode="sync", steps=6, batch_size=8, lr=3e-3, checkpoint_every=3)
    ws = _workers(InMemoryHub(), keys, mlp_spec, digits, cfg)
    res = await run_all(ws)
    assert not any(isinstance(r, Exception) for r in res.values()), res
    log = ws["w1"].sketch_log
    assert len(log) == 6 and all([s.peer for s in row] == IDS for row in log)
    msgs = [[s.message() for s in row] for row in log]
    assert [m[0].step for m in msgs] == [1, 2, 3, 4, 5, 6]
    # parameter digests are signed at checkpoint steps and the last one, and agree among ranks
    with_params = [m[0].step for m in msgs if m[0].params != sk.NO_PARAMS]
    assert with_params == [3, 6] and all(len({x.params for x in m}) == 1 for m in msgs)
    assert [[s.body for s in row] for row in ws["w0"].sketch_log] == [[s.body for s in row] for row in log]


class _Liar(Worker):
    """Sends 3x its gradient but signs the sketch of the honest one."""

    def _local_step(self, average):
        out = super()._local_step(average)
        for p in self.params:
            p.grad.mul_(3.0)
        return out

    def _sketch_override(self, result, grads):
        parts = part_bounds(grads.size, len(result.group))
        me = result.group.index(self.self_id)
        seed = sk.sketch_seed(self.job_id, self.step, result.digest)
        honest = grads / np.float32(3.0)
        return np.stack([sk.sketch(sk.contribution(honest, parts, me, j, 0, self.cfg.chunk_elems), seed, j)
                         for j in range(len(result.group))])


@pytest.mark.timeout(60)
@pytest.mark.parametrize("fault", ["lies-about-sketch", "bad-signature", "averages-own-part-wrongly", "silent"])
async def test_a_lying_rank_is_named_by_its_peers(digits, mlp_spec, fault, autojump_clock):
    keys = Keys(IDS)
    cfg = TrainConfig(mode="sync", steps=4, batch_size=8, lr=3e-3, round_timeout=5)
    hub = InMemoryHub()
    ws = _workers(hub, keys, mlp_spec, digits, cfg)
    if fault == "lies-about-sketch":
        ws["w1"] = _Liar(hub.transport("w1"), IDS, mlp_spec, digits, cfg, job_id="j", signer=keys.signer("w1"),
                         verify_peer=keys.verify)
    elif fault == "bad-signature":
        ws["w1"] = Worker(hub.transport("w1"), IDS, mlp_spec, digits, cfg, job_id="j",
                          signer=Ed25519PrivateKey.generate().sign, verify_peer=keys.verify)
    elif fault == "silent":              # never sends its sketch message (e.g. to hide a cheat)
        async def skip(result, grads, weight):
            return None

        ws["w1"]._exchange_sketches = skip
    else:
        # w1 owns part 1: it adds 3x its own gradient there (nobody receives that part from it) but
        # signs the honest sketch; only the average of part 1 gives it away (linearity check)
        liar = ws["w1"]
        honest_offer = Averager.average

        async def average(self, round_id, group, vector, weight, joiners=(), out=None):
            if self.self_id == "w1":
                a, b = part_bounds(vector.size, len(group))[1]
                vector = vector.copy()
                vector[a:b] *= 3
                return await honest_offer(self, round_id, group, vector, weight, joiners, out)
            return await honest_offer(self, round_id, group, vector, weight, joiners, out)

        liar.averager.average = average.__get__(liar.averager)   # the worker still sketches the honest vector
    res = await run_all(ws)
    for p in ("w0", "w2"):
        assert isinstance(res[p], RoundFailed), res
        assert res[p].suspects == frozenset({"w1"}), (p, res[p])
        assert "sketch check failed at step 1" in str(res[p])


@pytest.mark.timeout(60)
@pytest.mark.parametrize("codec", ["none", "int8"])
async def test_rank_replay_reproduces_the_group_and_its_sketches(digits, mlp_spec, codec, tmp_path):
    """What a verifier relies on: replaying rank by rank from a checkpoint gives every rank's
    signed sketch back (codec round trip included) and the group's parameters."""
    from trainer import checkpoint as ck
    from trainer.replay import SyncRankReplay
    from trainer.worker import flat_params

    keys = Keys(IDS)
    cfg = TrainConfig(mode="sync", steps=10, batch_size=8, lr=3e-3, checkpoint_every=5, compression=codec,
                      chunk_elems=300, keep_checkpoints=5)
    ws = _workers(InMemoryHub(), keys, mlp_spec, digits, cfg, checkpoint_dir=None)
    for p, w in ws.items():
        w.checkpoint_dir = tmp_path / p
    res = await run_all(ws)
    assert not any(isinstance(r, Exception) for r in res.values()), res
    start = next(c for c in map(ck.load, ck.list_checkpoints(tmp_path / "w0")) if c.step == 5)
    rep = SyncRankReplay(mlp_spec, digits, cfg, start, 3)
    worst = 0.0
    for row in ws["w0"].sketch_log[5:]:
        msgs = [s.message() for s in row]
        seed = sk.sketch_seed("j", msgs[0].step, msgs[0].digest)
        grads = rep.rank_gradients()
        parts = part_bounds(grads[0][0].size, 3)
        for i, m in enumerate(msgs):
            for j in range(3):
                honest = sk.sketch(sk.contribution(grads[i][0], parts, i, j, compression.codec_id(codec), 300), seed, j)
                worst = max(worst, sk.deviation(m.sketches[j], honest))
        rep.apply(grads)
    assert worst <= 1e-5, worst
    assert np.abs(rep.params() - flat_params(ws["w0"].params)).max() <= 1e-6
