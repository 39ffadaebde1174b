"""The trainer over real libp2p hosts (p2p.Node + BulkService) through mindnode.tensor_transport."""
from contextlib import AsyncExitStack

import numpy as np
import pytest
import trio

from mindnode.tensor_transport import transport_for
from trainer.allreduce import AG, Averager
from trainer.errors import PeerFailure, PeerTimeout, TrainerError
from trainer.worker import TrainConfig, Worker

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


async def _node(seed: int):
    from p2p.node import Node, NodeConfig

    return Node(NodeConfig(seed=bytes([seed]) * 32, enable_dht=False))


async def _mesh(stack, n, scopes=None):
    nodes = []
    for i in range(n):
        node = await _node(i + 1)
        if scopes is not None:
            # each node in its own task, so a test can kill one by cancelling its scope
            ready = trio.Event()

            async def serve(node=node, ready=ready, i=i):
                with trio.CancelScope() as scope:
                    scopes[i] = scope
                    async with node.started():
                        ready.set()
                        await trio.sleep_forever()

            stack.nursery.start_soon(serve)
            await ready.wait()
        else:
            await stack.enter_async_context(node.started())
        nodes.append(node)
    for i in range(n):
        for j in range(i + 1, n):
            await nodes[i].connect(nodes[j].addrs[0])
    return nodes


async def test_error_mapping_on_real_hosts():
    async with AsyncExitStack() as stack:
        a, b = await _mesh(stack, 2)
        ta = transport_for(a)
        with pytest.raises(PeerTimeout):
            await ta.recv(b.peer_id, "nothing", 0.2)
        stranger = (await _node(9)).peer_id
        with pytest.raises(PeerFailure):
            await ta.send(stranger, "x", b"hi", 2.0)
        with pytest.raises(PeerFailure):
            await ta.recv(stranger, "x", 2.0)
        await ta.send(b.peer_id, "x", b"hello", 5.0)
        assert await transport_for(b).recv(a.peer_id, "x", 5.0) == b"hello"


async def test_averaging_and_a_killed_host_over_real_hosts():
    async with trio.open_nursery() as nursery:
        stack = AsyncExitStack()
        stack.nursery = nursery
        scopes = {}
        nodes = await _mesh(stack, 3, scopes)
        ids = [n.peer_id for n in nodes]
        rng = np.random.default_rng(0)
        vecs = [rng.standard_normal(300_000).astype(np.float32) for _ in ids]
        out = {}

        async def one(i, round_id, transport):
            try:
                out[i] = await Averager(transport, timeout=3.0, chunk_elems=1 << 15).average(
                    round_id, ids, vecs[i], float(i + 1))
            except TrainerError as exc:
                out[i] = exc

        async with trio.open_nursery() as n:
            for i in range(3):
                n.start_soon(one, i, 0, transport_for(nodes[i]))
        exact = sum((i + 1) * vecs[i].astype(np.float64) for i in range(3)) / 6
        assert len({r.digest for r in out.values()}) == 1
        assert np.abs(out[0].vector - exact).max() < 1e-5

        # round 1: node 2's host is shut down when it starts its all-gather
        class KillOnAllGather:
            def __init__(self, inner):
                self.inner, self.self_id = inner, inner.self_id

            async def send(self, peer, channel, data, timeout):
                if bytes(data[1:2]) == bytes([AG]):
                    scopes[2].cancel()
                    await trio.sleep(0.5)
                    raise PeerFailure(peer, "host stopped")
                await self.inner.send(peer, channel, data, timeout)

            async def recv(self, peer, channel, timeout):
                return await self.inner.recv(peer, channel, timeout)

        out.clear()
        async with trio.open_nursery() as n:
            for i in range(3):
                t = transport_for(nodes[i])
                n.start_soon(one, i, 1, KillOnAllGather(t) if i == 2 else t)
        assert not isinstance(out[0], Exception) and not isinstance(out[1], Exception), out
        assert out[0].digest == out[1].digest and out[0].group == tuple(sorted(ids[:2]))
        exact2 = (vecs[0].astype(np.float64) + 2 * vecs[1]) / 3
        assert np.abs(out[0].vector - exact2).max() < 1e-5
        nursery.cancel_scope.cancel()


async def test_sync_training_over_real_hosts(digits, mlp_spec):
    async with AsyncExitStack() as stack:
        nodes = await _mesh(stack, 3)
        ids = [n.peer_id for n in nodes]
        cfg = TrainConfig(mode="sync", steps=15, batch_size=16, lr=3e-3, round_timeout=10.0)
        results = {}

        async def one(node):
            results[node.peer_id] = await Worker(transport_for(node), ids, mlp_spec, digits, cfg).run()

        async with trio.open_nursery() as n:
            for node in nodes:
                n.start_soon(one, node)
        assert len({r.params_digest for r in results.values()}) == 1
        assert all(r.bytes_sent > 0 and r.steps == 15 for r in results.values())


async def test_a_peer_joins_over_real_hosts(digits):
    from trainer.zoo import ModelSpec

    spec = ModelSpec("mlp", {"in_dim": 64, "hidden": [512, 512], "out_dim": 10})  # ~1 MB of state
    async with AsyncExitStack() as stack:
        nodes = await _mesh(stack, 3)
        ids = [n.peer_id for n in nodes]
        cfg = TrainConfig(mode="async", steps=30, batch_size=8, inner_steps=5, round_timeout=10.0)
        first = {p: Worker(transport_for(n), ids[:2], spec, digits, cfg) for p, n in zip(ids[:2], nodes[:2])}
        joiner = Worker(transport_for(nodes[2]), [ids[2]], spec, digits, cfg)
        donor = first[ids[0]]

        def admit(p):
            if p.step == 10 and ids[2] not in donor._pending_joiners and p.peers == 2:
                donor.admit(ids[2])

        donor.progress = admit
        results = {}

        async def one(p, w, join=False):
            results[p] = await (w.join(ids[0]) if join else w.run())

        async with trio.open_nursery() as n:
            for p, w in first.items():
                n.start_soon(one, p, w)
            n.start_soon(one, ids[2], joiner, True)
        assert {r.group for r in results.values()} == {tuple(sorted(ids))}
        assert len({r.params_digest for r in results.values()}) == 1
        assert results[ids[2]].bytes_recv > 1_000_000  # the state download
