"""Blob upload and download through a real node's HTTP API (one-validator chain, libp2p host,
hypercorn): `POST /blobs` stores the body and answers its CID, the size cap is a 413 that keeps
nothing, `GET /blobs/{cid}` streams it back, a blob damaged on disk is never delivered whole,
and the RPC client's `download_blob` leaves no partial file when the bytes do not match."""

from __future__ import annotations

import dataclasses
import os

import httpx
import pytest
import trio
from test_node_service import _port, one_validator_genesis

from ledger.keys import devnet_key
from mindnode.node import errors
from mindnode.node.chain import Chain
from mindnode.node.rpc_client import RpcClient
from mindnode.node.service import NodeOptions, NodeService
from p2p.blob import cid_of

pytestmark = [pytest.mark.timeout(90)]


async def start_node(tmp_path, nursery, **opts) -> NodeService:
    chain = Chain.open(str(tmp_path / "chain"), one_validator_genesis())
    base = NodeOptions(datadir=str(tmp_path), validator=True, listen=["/ip4/127.0.0.1/tcp/0"], bootnodes=[],
                       rpc_host="127.0.0.1", rpc_port=_port(), provide=False)
    svc = NodeService(chain, devnet_key(0), dataclasses.replace(base, **opts))
    await nursery.start(svc.run)
    return svc


def _stored(svc: NodeService) -> list[str]:
    return sorted(p.name for p in svc.jobs.blobs.store.blobs.iterdir())


async def test_upload_download_cap_and_corruption(tmp_path, nursery):
    svc = await start_node(tmp_path, nursery, max_blob_upload_bytes=3 * 1024 * 1024)
    data = os.urandom(2 * 1024 * 1024 + 17)            # three 1 MiB chunks, the last one short
    async with httpx.AsyncClient(base_url=svc.rpc_url, timeout=10) as c:
        r = await c.post("/blobs", content=data)
        assert r.status_code == 200 and r.json() == {"cid": cid_of(data), "size": len(data)}
        cid = r.json()["cid"]
        # the sidecar of chunk hashes written while streaming is what the exchange serves
        assert svc.jobs.blobs.store.manifest(cid)[2] == b"".join(
            __import__("hashlib").sha256(data[i:i + 1024 * 1024]).digest() for i in range(0, len(data), 1024 * 1024))
        r = await c.get(f"/blobs/{cid}")
        assert r.content == data and r.headers["content-length"] == str(len(data))
        # the same bytes again: same id, stored once
        assert (await c.post("/blobs", content=data)).json()["cid"] == cid
        before = _stored(svc)

        # over the cap: declared (content-length) or streamed (chunked, no length) -> 413, nothing kept
        big = b"x" * (3 * 1024 * 1024 + 1)
        r = await c.post("/blobs", content=big)
        assert r.status_code == 413 and r.json()["error"] == "PayloadTooLarge"
        assert "max_upload_bytes" in r.json()["message"]

        async def chunked():
            for i in range(0, len(big), 256 * 1024):
                yield big[i:i + 256 * 1024]

        r = await c.post("/blobs", content=chunked())
        assert r.status_code == 413 and r.json()["error"] == "PayloadTooLarge"
        assert _stored(svc) == before                  # no temp file, no blob

        # an empty blob is a blob
        r = await c.post("/blobs", content=b"")
        assert r.json() == {"cid": cid_of(b""), "size": 0}
        assert (await c.get(f"/blobs/{cid_of(b'')}")).content == b""

        # a blob damaged on disk: the body ends short (the id check runs before the last piece),
        # and the damaged copy leaves the store (the next request would fetch it from a peer)
        store = svc.jobs.blobs.store

        def damage() -> None:
            with open(store.path(cid), "r+b") as f:
                f.seek(len(data) - 1)
                f.write(bytes([data[-1] ^ 1]))

        damage()
        with pytest.raises(httpx.HTTPError):
            await c.get(f"/blobs/{cid}")
        assert not store.has(cid)

        # a client that goes away mid-upload leaves nothing behind either
        before = _stored(svc)
        s = await trio.open_tcp_stream("127.0.0.1", int(svc.rpc_url.rsplit(":", 1)[1]))
        await s.send_all(b"POST /blobs HTTP/1.1\r\nHost: x\r\nContent-Length: 3000000\r\n\r\n" + b"x" * 1_500_000)
        await trio.sleep(0.3)
        await s.aclose()
        await trio.sleep(0.5)
        assert _stored(svc) == before
    # the CLI's client refuses a damaged blob and leaves nothing behind
    assert svc.jobs.put(data) == cid
    damage()
    out = tmp_path / "out.bin"
    with RpcClient(svc.rpc_url) as rpc:
        with pytest.raises(errors.NodeError, match="broke off|do not match"):
            await _in_thread(rpc.download_blob, cid, out)
        assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]
        with pytest.raises(errors.NotFound):
            await _in_thread(rpc.download_blob, cid_of(b"nobody has it"), out)
        with pytest.raises(errors.BadRequest):
            await _in_thread(rpc.download_blob, "not-a-cid", out)
        assert not out.exists()


async def _in_thread(fn, *args):
    """The RPC client is synchronous: run it off the loop that serves the node."""
    return await trio.to_thread.run_sync(lambda: fn(*args))
