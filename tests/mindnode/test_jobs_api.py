"""The jobs' HTTP routes (`mindnode.jobs.api.add_job_routes`) over a real LevelDB store."""

import pytest

from ledger.genesis import NMT, AllocationRow, Genesis, GenesisAccount, GenesisValidator, Params
from ledger.keys import address_to_text, devnet_key
from ledger.store import Store, build_block
from ledger.tx import sign_tx
from ledger.txkinds.provider_register import ProviderRegister
from mindnode.jobs import examples

fastapi = pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from mindnode.jobs.api import add_job_routes  # noqa: E402

SUB, PROV, V0 = devnet_key(1), devnet_key(2), devnet_key(0)


@pytest.fixture
def client(tmp_path):
    g = Genesis(chain_id="api-test", timestamp=1_700_000_000, params=Params(min_validator_stake=NMT),
                accounts=(GenesisAccount(SUB.address, 100 * NMT), GenesisAccount(PROV.address, NMT)),
                validators=(GenesisValidator(V0.address, NMT),), allocation_start=1_700_000_000,
                allocation=(AllocationRow("m", 10 * NMT, 0, 1, pool="mining"),))
    store = Store.create(tmp_path / "c", g, sync=False)
    t = store.head.timestamp + 2000
    submit = sign_tx(SUB, "api-test", 0, 0, examples.resolve("digits-mlp").submit_body(now_ms=t))
    reg = sign_tx(PROV, "api-test", 0, 0, ProviderRegister(hardware_class="cpu", score=50, price=NMT // 100,
                                                           capacity=1, zone="", bandwidth_kbps=1000))
    store.import_block(build_block(store, V0, [submit, reg], t, 2))
    app = fastapi.FastAPI()
    # FastAPI keeps route endpoints alive past the test (until interpreter exit); they must not
    # hold the store itself, or its LevelDB handle is torn down during shutdown.
    holder = [store]
    add_job_routes(app, lambda: holder[0].state())
    with TestClient(app) as c:
        c.submit_hash = submit.hash.hex()
        yield c
    holder.clear()
    store.close()


def test_job_routes(client):
    r = client.get("/jobs/1")
    assert r.status_code == 200 and r.json()["state"] == "open" and r.json()["workers"] == 3
    assert client.get(f"/jobs/by-tx/{client.submit_hash}").json()["id"] == 1
    assert client.get(f"/jobs/by-tx/{'00' * 32}").status_code == 404
    assert client.get("/jobs/by-tx/zz").status_code == 400
    assert client.get("/jobs/9").status_code == 404
    assert [j["id"] for j in client.get("/jobs", params={"state": "open"}).json()] == [1]
    assert client.get("/jobs", params={"submitter": address_to_text(PROV.address)}).json() == []
    assert client.get("/jobs", params={"submitter": "mnBAD"}).status_code == 400


def test_provider_routes(client):
    addr = address_to_text(PROV.address)
    p = client.get(f"/providers/{addr}").json()
    assert (p["hardware_class"], p["score"], p["reputation"]) == ("cpu", 50, 5_000)
    assert client.get(f"/providers/{address_to_text(SUB.address)}").status_code == 404
    assert client.get(f"/providers/{addr}/duties").json()["offerable"] == [1]


def test_a_pruned_job_still_answers_in_the_same_shape(tmp_path, capsys):
    """`GET /jobs/{id}` and `mindnode job status` read a pruned job from its summary."""
    import dataclasses

    from ledger.jobs.params import JobParams
    from ledger.txkinds.job_cancel import JobCancel
    from mindnode.commands.job_cmds import _print_job

    params = Params(min_validator_stake=NMT, jobs=dataclasses.replace(JobParams(), job_retention_blocks=2))
    g = Genesis(chain_id="api-prune", timestamp=1_700_000_000, params=params,
                accounts=(GenesisAccount(SUB.address, 100 * NMT),), validators=(GenesisValidator(V0.address, NMT),),
                allocation_start=1_700_000_000, allocation=(AllocationRow("m", 10 * NMT, 0, 1, pool="mining"),))
    store = Store.create(tmp_path / "p", g, sync=False)
    t = store.head.timestamp + 2000
    submit = sign_tx(SUB, "api-prune", 0, 0, examples.resolve("digits-mlp").submit_body(now_ms=t))
    store.import_block(build_block(store, V0, [submit], t, 2))
    app = fastapi.FastAPI()
    holder = [store]
    add_job_routes(app, lambda: holder[0].state())
    try:
        with TestClient(app) as c:
            live = c.get("/jobs/1").json()
            store.import_block(build_block(store, V0, [sign_tx(SUB, "api-prune", 1, 0, JobCancel(job_id=1))],
                                           store.head.timestamp + 2000, 2))
            for _ in range(3):
                store.import_block(build_block(store, V0, [], store.head.timestamp + 2000, 2))
            r = c.get("/jobs/1")
            assert r.status_code == 200
            v = r.json()
            assert v["pruned"] is True and v["state"] == "cancelled" and v["refunded"] == live["budget"]
            assert set(v) == set(live) and v["assigned"] == [] and v["result"] is None
            assert c.get(f"/jobs/by-tx/{submit.hash.hex()}").status_code == 404
            assert c.get("/jobs").json() == []
            _print_job(v)
            out = capsys.readouterr().out
            assert "cancelled" in out and "pruned" in out         # (rich may wrap the longer text)
    finally:
        holder.clear()
        store.close()
