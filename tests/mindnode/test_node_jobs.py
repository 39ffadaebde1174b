"""The jobs side of the node service in-process (a real one-validator chain, libp2p host, HTTP API):
provider registration at start (and none with provide off), the progress gossip validator's
verdicts on bad input, the /jobs/{id}/progress and /blobs/{cid} routes with their errors."""

from __future__ import annotations

import dataclasses

import httpx
import msgpack
import pytest
import trio
from test_node_service import _port, one_validator_genesis

from ledger.keys import address_to_text, devnet_key, peer_id_from_address
from mindnode.node.chain import Chain
from mindnode.node.job_service import MAX_PROGRESS_BYTES
from mindnode.node.network import IGNORE, REJECT
from mindnode.node.service import NodeOptions, NodeService
from p2p.blob import cid_of

pytestmark = [pytest.mark.timeout(90)]
ADDR = address_to_text(devnet_key(0).address)


async def start_node(tmp_path, nursery, provide: bool) -> tuple[NodeService, httpx.AsyncClient]:
    chain = Chain.open(str(tmp_path / "chain"), one_validator_genesis())
    opts = NodeOptions(datadir=str(tmp_path), validator=True, listen=["/ip4/127.0.0.1/tcp/0"], bootnodes=[],
                       rpc_host="127.0.0.1", rpc_port=_port())
    svc = NodeService(chain, devnet_key(0), dataclasses.replace(opts, provide=provide))
    await nursery.start(svc.run)
    return svc, httpx.AsyncClient(base_url=svc.rpc_url, timeout=10)


async def wait_height(c: httpx.AsyncClient, h: int) -> None:
    while (await c.get("/status")).json()["height"] < h:
        await trio.sleep(0.1)


async def test_a_providing_node_registers_and_serves_progress_and_blobs(tmp_path, nursery):
    svc, c = await start_node(tmp_path, nursery, provide=True)
    async with c:
        with trio.fail_after(60):
            while (r := await c.get(f"/providers/{ADDR}")).status_code == 404:
                await trio.sleep(0.2)
        rec = r.json()
        assert rec["hardware_class"] == "cpu" and rec["score"] >= 1 and rec["capacity"] == 1

        # progress: nothing yet; the gossip validator refuses malformed and oversized messages and
        # ignores well-formed progress for a job that does not exist
        assert (await c.get("/jobs/7/progress")).json() == {"job_id": 7, "workers": {}, "step": 0,
                                                           "total_steps": 0, "loss": None, "samples_per_s": 0.0}
        me = peer_id_from_address(devnet_key(1).address)
        good = {"job": 7, "step": 3, "total_steps": 400, "loss": 0.5, "samples_per_s": 100.0, "peers": 2,
                "t_ms": 1}
        v = svc.jobs.validate_progress
        assert v(msgpack.packb(good), me) == IGNORE
        assert v(b"\xc1 not msgpack", me) == REJECT
        assert v(msgpack.packb({**good, "step": -1}), me) == REJECT
        assert v(msgpack.packb({**good, "step": "3"}), me) == REJECT
        assert v(msgpack.packb({k: x for k, x in good.items() if k != "loss"}), me) == REJECT
        assert v(msgpack.packb({**good, "pad": "x" * MAX_PROGRESS_BYTES}), me) == REJECT
        assert v(msgpack.packb(good), "not-a-peer-id") == REJECT
        assert (await c.get("/jobs/7/progress")).json()["workers"] == {}

        # blobs: what the node holds comes back byte for byte; bad ids and unknown blobs are errors
        data = b"weights " * 1000
        cid = svc.jobs.put(data)
        assert cid == cid_of(data)
        assert (await c.get(f"/blobs/{cid}")).content == data
        r = await c.get("/blobs/not-a-cid")
        assert r.status_code == 400 and r.json()["error"] == "BadRequest"
        r = await c.get(f"/blobs/{cid_of(b'nobody has it')}")
        assert r.status_code == 404 and r.json()["error"] == "NotFound"
        # the job routes are on the node's API too
        assert (await c.get("/jobs")).json() == []
        assert (await c.get(f"/providers/{ADDR}/duties")).json()["offerable"] == []


async def test_no_provide_means_no_registration(tmp_path, nursery):
    svc, c = await start_node(tmp_path, nursery, provide=False)
    async with c:
        await wait_height(c, 6)
        r = await c.get(f"/providers/{ADDR}")
        assert r.status_code == 404 and svc.jobs.agent is None
