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


def test_errors_are_top_level_error_and_message(client):
    """The node's RPC client re-raises `{"error": NAME, "message"}` as its own exception, so `mindnode job
    status 9` prints the message, not `{"detail": {...}}` raw JSON."""
    for path, status, name in (("/jobs/9", 404, "NotFound"), ("/jobs/by-tx/zz", 400, "BadRequest"),
                               (f"/providers/{address_to_text(SUB.address)}", 404, "NotFound")):
        r = client.get(path)
        assert r.status_code == status and r.json()["error"] == name and "detail" not in r.json(), r.json()
    assert "--no-provide" in client.get(f"/providers/{address_to_text(SUB.address)}").json()["message"]


def test_cancel_and_rate_are_checked_before_sending(client):
    """What the chain would refuse (and silently drop from the block) is a one-line error up front."""
    from mindnode.commands.job_cmds import check_can_cancel, check_can_rate
    from mindnode.errors import MindnodeError

    rec = client.get("/jobs/1").json()
    sub, other = address_to_text(SUB.address), address_to_text(PROV.address)
    check_can_cancel(rec, sub)                                   # open, by its submitter: fine
    with pytest.raises(MindnodeError, match=r"only the submitter \(mn.*\) can cancel job 1; you sign with mn.*--key"):
        check_can_cancel(rec, other)
    for state, why in (("verifying", "being verified"), ("done", "already done"), ("failed", "already failed")):
        with pytest.raises(MindnodeError, match=why):
            check_can_cancel({**rec, "state": state}, sub)
    with pytest.raises(MindnodeError, match="job 1 is open; only a finished"):
        check_can_rate(rec, sub)
    with pytest.raises(MindnodeError, match="only the submitter"):
        check_can_rate({**rec, "state": "done"}, other)
    with pytest.raises(MindnodeError, match="already rated"):
        check_can_rate({**rec, "state": "done", "rated": 4}, sub)
    check_can_rate({**rec, "state": "done"}, sub)


def test_status_shows_a_verified_metric_only_when_a_verdict_stood(client, capsys):
    from mindnode.commands.job_cmds import _print_job

    rec = client.get("/jobs/1").json()
    _print_job({**rec, "state": "failed", "reason": "no eligible verifier", "verified_metric": 0.0})
    assert "verified" not in capsys.readouterr().out
    _print_job({**rec, "state": "done", "verified_metric": 0.97})
    assert "verified accuracy" in capsys.readouterr().out


def test_eta_from_the_observed_step_rate():
    from mindnode.commands.job_cmds import EtaEstimate

    e = EtaEstimate()
    assert e.update(0.0, 0, 400, "open") is None
    assert e.update(1.0, 10, 400, "running") is None             # first reading of a running job
    assert e.update(3.0, 50, 400, "running") == 350 * 2.0 / 40   # 20 steps/s, 350 to go
    assert e.update(4.0, 50, 400, "running") == pytest.approx(350 * 3.0 / 40, abs=0.1)
    assert e.update(5.0, 400, 400, "verifying") == 0.0 and e.update(6.0, 400, 400, "done") == 0.0


def test_submitting_with_a_provider_key_warns(client):
    """The RPC client over these routes: a provider's key gets the warning (it cannot work on nor verify
    its own job), another key none; a missing job is the node's NotFound with the route's message."""
    from mindnode.commands.job_cmds import _job_record, provider_submitter_warning
    from mindnode.errors import MindnodeError
    from mindnode.node.rpc_client import RpcClient

    rpc = RpcClient("http://testserver")
    rpc._http = client                                          # the same httpx API, served in-process
    assert "is a registered provider" in provider_submitter_warning(rpc, address_to_text(PROV.address))
    assert provider_submitter_warning(rpc, address_to_text(SUB.address)) is None
    assert _job_record(rpc, 1)["id"] == 1
    with pytest.raises(MindnodeError, match="there is no job 9 on chain"):
        _job_record(rpc, 9)


def test_json_record_has_the_headline_figures_at_the_top(client):
    from mindnode.commands.job_cmds import final_record

    rec = client.get("/jobs/1").json()
    out = final_record(rec)
    assert out["metrics"] == {} and out["result_id"] is None and out["payments"] == [] and out["id"] == 1
    done = final_record({**rec, "result": {"result_id": "bafk", "metrics": {"accuracy": 0.97}}})
    assert done["metrics"]["accuracy"] == 0.97 and done["result_id"] == "bafk" and set(rec) <= set(done)
