"""The blob store's budget on a real node (one-validator chain, libp2p host, hypercorn API) through
the CLI: `blob ls`, `blob gc`, `blob pin`, `blob unpin` (and `--json`, `--help`); an upload stays
pinned until unpinned; a blob streaming to a client is not evicted by a collection meanwhile."""

from __future__ import annotations

import json
import os

import httpx
import pytest
import trio
from click.testing import CliRunner
from test_node_blobs import start_node

from mindnode.cli import cli
from mindnode.errors import ConfigError
from mindnode.node.runner import _blob_setting

pytestmark = [pytest.mark.timeout(90)]

MiB = 1024 * 1024


async def run(args, ok=True):
    """The CLI in a thread (it talks to the node's API, which runs in this trio loop)."""
    r = await trio.to_thread.run_sync(lambda: CliRunner().invoke(cli, args, catch_exceptions=False))
    if ok:
        assert r.exit_code == 0, r.output
    return r


def test_blob_commands_have_help():
    for sub in ("ls", "gc", "pin", "unpin", "put", "get"):
        r = CliRunner().invoke(cli, ["blob", sub, "--help"])
        assert r.exit_code == 0 and "Usage:" in r.output and f"blob {sub}" in r.output
    assert all(c in CliRunner().invoke(cli, ["blob", "--help"]).output for c in ("ls", "gc", "pin", "unpin"))


def test_config_values_are_checked():
    class Cfg:
        tables = {"blobs": {"max_store_bytes": -1, "recent_seconds": 0}}

    with pytest.raises(ConfigError, match="blobs.max_store_bytes must be a positive integer"):
        _blob_setting(Cfg, "max_store_bytes", 1)
    assert _blob_setting(Cfg, "recent_seconds", 600, allow_zero=True) == 0
    assert _blob_setting(Cfg, "absent", 7) == 7


async def test_budget_pins_and_cli(tmp_path, nursery):
    svc = await start_node(tmp_path, nursery, max_blob_store_bytes=3 * MiB + 4096, blob_recent_s=0)
    store = svc.jobs.blobs.store
    rpc = ["--rpc", svc.rpc_url]
    upload = tmp_path / "upload.bin"
    upload.write_bytes(os.urandom(MiB))
    pinned = json.loads((await run(["blob", "put", str(upload), "--json", *rpc])).output)["cid"]
    own = svc.jobs.put(os.urandom(MiB))                # a checkpoint this node made (no job on chain)
    fetched = store.put(os.urandom(MiB))               # e.g. a prefetched dataset
    newest = store.put(os.urandom(MiB))
    for i, cid in enumerate((pinned, own, fetched, newest)):
        os.utime(store.path(cid), (1000 + i, 1000 + i))
    store._touched.clear()

    listing = json.loads((await run(["blob", "ls", "--json", *rpc])).output)
    assert listing["budget"] == 3 * MiB + 4096 and listing["used"] > 4 * MiB
    by_cid = {b["cid"]: b for b in listing["blobs"]}
    assert set(by_cid) == {pinned, own, fetched, newest}
    assert by_cid[pinned]["pinned"] and by_cid[pinned]["pin"] == "user" and not by_cid[own]["pinned"]
    assert by_cid[own]["own"] and by_cid[newest]["last_used"] == 1003 and by_cid[own]["size"] > MiB
    assert "blob store" in (await run(["blob", "ls", *rpc])).output

    # over budget by less than one blob: the least recently used unpinned one goes (the pinned
    # upload is older still)
    out = json.loads((await run(["blob", "gc", "--json", *rpc])).output)
    assert [b["cid"] for b in out["freed"]] == [own]
    assert out["after"] <= 3 * MiB + 4096 and not out["over_budget"] and out["freed_bytes"] > MiB
    assert {c for c, _, _ in store.entries()} == {pinned, fetched, newest}
    assert "freed 0 B in 0 blobs" in (await run(["blob", "gc", *rpc])).output   # within budget now

    # unpinned, the upload may go once the store is over budget again
    assert (await run(["blob", "unpin", pinned, *rpc])).output.strip() == f"unpinned {pinned}"
    r = await run(["blob", "unpin", pinned, *rpc], ok=False)
    assert r.exit_code != 0 and "is not pinned" in r.output and "Traceback" not in r.output
    r = await run(["blob", "pin", "not-a-cid", *rpc], ok=False)
    assert r.exit_code != 0 and "blob id" in r.output and "Traceback" not in r.output
    extra = store.put(os.urandom(MiB))
    store._touched.clear()
    out = json.loads((await run(["blob", "gc", "--json", *rpc])).output)
    assert [b["cid"] for b in out["freed"]] == [pinned] and out["after"] <= 3 * MiB + 4096
    assert {c for c, _, _ in store.entries()} == {fetched, newest, extra}
    assert json.loads((await run(["blob", "pin", newest, "--json", *rpc])).output) == {"cid": newest, "pinned": True}
    assert store.pins() == {newest: "user"}


async def test_a_blob_streaming_to_a_client_is_not_evicted(tmp_path, nursery):
    svc = await start_node(tmp_path, nursery, max_blob_store_bytes=MiB, blob_recent_s=0)
    store = svc.jobs.blobs.store
    data = os.urandom(24 * MiB)                      # more than the socket buffers take in at once
    cid = store.put(data)
    async with httpx.AsyncClient(base_url=svc.rpc_url, timeout=20) as c:
        async with c.stream("GET", f"/blobs/{cid}") as resp:
            pieces = resp.aiter_raw()
            got = bytearray(await pieces.__anext__())
            os.utime(store.path(cid), (1, 1))               # as if unused for ages: only the hold protects it
            store._touched.clear()
            r = (await c.post("/blobs/gc")).json()
            assert r["freed"] == [] and r["over_budget"] and store.has(cid)
            async for piece in pieces:
                got += piece
    assert bytes(got) == data
    store._touched.clear()
    os.utime(store.path(cid), (1, 1))
    async with httpx.AsyncClient(base_url=svc.rpc_url, timeout=20) as c:
        r = (await c.post("/blobs/gc")).json()
    assert [b["cid"] for b in r["freed"]] == [cid] and not store.has(cid)
