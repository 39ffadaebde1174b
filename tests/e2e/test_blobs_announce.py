"""Blobs and job announcements on a real 3-node devnet (`mindnode start` processes, 1 s blocks):

* `mindnode blob put` on node 0 prints the CID; `mindnode blob get` through node 2 fetches it from
  node 0 over the p2p blob exchange, checks it and writes the file; bad ids, an existing output
  file, an unknown blob and an upload over a node's `[blobs] max_upload_bytes` are one-line errors
  that leave no file behind.
* `mindnode job submit` of a spec whose dataset is a blob on node 0: the other two nodes (providers
  whose hardware meets the spec) fetch the blob from the announcement on the `job` topic, before
  any of them is assigned; jobs whose hardware floor no node meets, or that pay less than the
  nodes ask, are announced too, and nobody prefetches their datasets.
"""

from __future__ import annotations

import json
import os
import time

import pytest

from ledger.jobs.cid import cid_of
from ledger.keys import address_to_text, devnet_key
from mindnode.jobs import examples
from mindnode.node.devnet import Devnet
from mindnode.node.rpc_client import RpcClient

from .conftest import running_devnet, wait_for, write_test_genesis
from .test_jobs_devnet import cli

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(300)]

SMALL_CAP = 1024 * 1024
STORE_BUDGET = 64 * 1024 * 1024


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    d = tmp_path_factory.mktemp("blobnet")

    def prepare(net: Devnet) -> None:
        with open(net.nodes[1].datadir / "config.toml", "a") as f:       # node 1 takes small uploads only
            f.write(f"\n[blobs]\nmax_upload_bytes = {SMALL_CAP}\nmax_store_bytes = {STORE_BUDGET}\n")
        r = cli("keys", "import", "--devnet", "3", "--name", "client", "--datadir", str(net.nodes[0].datadir))
        assert r.returncode == 0, r.stderr

    with running_devnet(d, write_test_genesis(d / "genesis-test.json"), prepare=prepare) as net:
        yield net


def stored(node, cid: str) -> bool:
    return (node.datadir / "blobs" / "blobs" / cid).is_file()


def test_blob_put_and_get_through_the_cli(net, tmp_path):
    n0, n1, n2 = net.nodes
    data = os.urandom(3 * 1024 * 1024 + 11)
    src = tmp_path / "dataset.bin"
    src.write_bytes(data)
    r = cli("blob", "put", str(src), "--json", "--rpc", n0.rpc)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["cid"] == cid_of(data) and out["size"] == len(data)
    r = cli("blob", "put", str(src), "--rpc", n0.rpc)                  # plain output: the id alone
    assert r.stdout.strip() == out["cid"]
    assert not stored(n2, out["cid"])

    dest = tmp_path / "got.bin"
    r = cli("blob", "get", out["cid"], "-o", str(dest), "--rpc", n2.rpc)   # node 2 fetches it from node 0
    assert r.returncode == 0, r.stderr
    assert dest.read_bytes() == data and stored(n2, out["cid"])

    r = cli("blob", "get", out["cid"], "-o", str(dest), "--rpc", n2.rpc)
    assert r.returncode == 1 and "exists" in r.stderr and "--force" in r.stderr
    r = cli("blob", "get", "bafkreinot-a-cid", "-o", str(tmp_path / "x"), "--rpc", n2.rpc)
    assert r.returncode == 1 and r.stderr.startswith("error:") and "Traceback" not in r.stderr
    missing = cid_of(b"nobody has this")
    r = cli("blob", "get", missing, "-o", str(tmp_path / "x"), "--rpc", n2.rpc, timeout=200)
    assert r.returncode == 1 and missing in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dataset.bin", "got.bin"]   # no partial files

    # over node 1's limit: a clear 413, nothing kept
    r = cli("blob", "put", str(src), "--rpc", n1.rpc)
    assert r.returncode == 1 and "upload limit" in r.stderr and "max_upload_bytes" in r.stderr, r.stderr
    assert not stored(n1, out["cid"])
    small = tmp_path / "small.bin"
    small.write_bytes(data[:SMALL_CAP])
    assert cli("blob", "put", str(small), "--rpc", n1.rpc).stdout.strip() == cid_of(data[:SMALL_CAP])
    # node 1's store budget comes from its config.toml; the upload is pinned (mindnode/node/blob_keep.py)
    listing = json.loads(cli("blob", "ls", "--json", "--rpc", n1.rpc).stdout)
    assert listing["budget"] == STORE_BUDGET
    assert any(b["cid"] == cid_of(data[:SMALL_CAP]) and b["pinned"] for b in listing["blobs"])
    r = cli("blob", "gc", "--json", "--rpc", n1.rpc)
    assert r.returncode == 0 and json.loads(r.stdout)["over_budget"] is False, r.stderr


def test_announced_job_dataset_is_prefetched_by_providers(net, tmp_path):
    n0, n1, n2 = net.nodes
    for i in range(3):
        a = address_to_text(devnet_key(i).address)
        wait_for(f"provider {a[:12]} registered", lambda a=a: _provider(n0, a), timeout=60)
    blobs = {}
    for name in ("hardware", "price", "met"):
        p = tmp_path / f"{name}.bin"
        p.write_bytes(os.urandom(2 * 1024 * 1024) + name.encode())
        blobs[name] = json.loads(cli("blob", "put", str(p), "--json", "--rpc", n0.rpc).stdout)["cid"]
    doc = json.loads(examples.text("digits-mlp"))
    # 4 workers on a 3-provider devnet: the job is announced and offered on but never assigned
    doc.update(workers=4, min_workers=4)
    specs = {"hardware": {**doc, "hardware": {"class": "cpu", "min_score": 10**15}},   # no node meets it
             "price": {**doc, "max_price": "0.001"},            # below every node's asking price (0.01)
             "met": doc}
    for name, spec in specs.items():
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps({**spec, "dataset": {"artifact": blobs[name]}}))
        r = cli("job", "submit", str(path), "--json", "--rpc", n0.rpc, "--datadir", str(n0.datadir), "--key", "client")
        assert r.returncode == 0, r.stderr
    wait_for("the announced dataset on nodes 1 and 2", lambda: stored(n1, blobs["met"]) and stored(n2, blobs["met"]),
             timeout=30)
    time.sleep(1.0)
    for name in ("hardware", "price"):
        assert not stored(n1, blobs[name]) and not stored(n2, blobs[name]), name
    logs = [n.log_path.read_text(errors="replace") for n in (n1, n2)]
    assert all("job announced" in log for log in logs)


def _provider(node, address: str):
    try:
        with RpcClient(node.rpc, timeout=10) as c:
            return c._call("GET", f"/providers/{address}")
    except Exception:
        return None
