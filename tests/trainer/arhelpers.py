"""Run one averaging round among in-memory peers and check the all-or-nothing invariant."""
from __future__ import annotations

import numpy as np
import trio

from trainer.allreduce import Averager
from trainer.errors import TrainerError


async def run_round(hub, ids, vecs, weights, round_id=0, **kw):
    """Returns {peer: RoundResult or the TrainerError it raised}."""
    out = {}

    async def one(i, pid):
        av = Averager(hub.transport(pid), **kw)
        try:
            out[pid] = await av.average(round_id, ids, vecs[i], weights[i])
        except TrainerError as exc:
            out[pid] = exc

    async with trio.open_nursery() as n:
        for i, pid in enumerate(ids):
            n.start_soon(one, i, pid)
    return out


def expected(ids, vecs, weights, group):
    idx = [ids.index(p) for p in group]
    w = np.array([weights[i] for i in idx], dtype=np.float64)
    return sum(w[k] * vecs[i].astype(np.float64) for k, i in enumerate(idx)) / w.sum()


def check_all_or_nothing(out, ids, vecs, weights, atol):
    """Every success holds the same vector, which is the whole average over its group."""
    ok = {p: r for p, r in out.items() if not isinstance(r, Exception)}
    digests = {r.digest for r in ok.values()}
    assert len(digests) <= 1, f"survivors disagree: {digests}"
    for r in ok.values():
        assert r.vector.dtype == np.float32
        np.testing.assert_allclose(r.vector, expected(ids, vecs, weights, r.group), atol=atol, rtol=0)
        assert np.array_equal(r.vector, next(iter(ok.values())).vector)
    return ok
