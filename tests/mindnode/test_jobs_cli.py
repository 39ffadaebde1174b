"""`mindnode bench`, `mindnode job examples|show` and the job commands' offline errors."""

import json

from click.testing import CliRunner

from mindnode.cli import cli


def run(args, ok=True):
    r = CliRunner().invoke(cli, args, catch_exceptions=False)
    if ok:
        assert r.exit_code == 0, r.output
    return r


def test_bench_json_and_table():
    out = json.loads(run(["bench", "--json", "--seconds", "0.05", "--size", "64"]).output)
    assert out["hardware_class"] in ("cpu", "gpu-consumer", "gpu-high", "gpu-datacenter")
    assert out["score"] >= 1 and out["cpu"]["gflops"] > 0 and out["cpu"]["runs"] >= 3
    assert out["memory_bytes"] > 0 and out["cpu"]["matmul_n"] == 64
    assert "hardware class" in run(["bench", "--seconds", "0.05", "--size", "64"]).output


def test_bench_bad_arguments_are_one_line_errors():
    r = run(["bench", "--size", "4"], ok=False)
    assert r.exit_code == 1 and r.stderr.strip() == "error: matrix size must be 16..16384"


def test_classify():
    from mindnode.jobs.benchmark import GIB, DeviceResult, classify

    def gpu(mem, gf=1000.0):
        return DeviceResult("cuda:0", "x", gf, 2048, 3, mem)

    assert classify([]) == "cpu"
    assert classify([gpu(8 * GIB)]) == "gpu-consumer"
    assert classify([gpu(24 * GIB)]) == "gpu-high"
    assert classify([gpu(8 * GIB, 50_000)]) == "gpu-high"
    assert classify([gpu(80 * GIB)]) == "gpu-datacenter"


def test_job_examples_and_show():
    rows = json.loads(run(["job", "examples", "--json"]).output)
    assert [r["name"] for r in rows] == ["digits-mlp", "digits-mlp-async", "text-lora"]
    assert rows[0]["workers"] == 3 and rows[1]["mode"] == "async"
    shown = json.loads(run(["job", "show", "digits-mlp-async", "--json"]).output)
    assert shown["terms"]["mode"] == "async" and shown["trainer"]["train"]["inner_steps"] == 20
    assert "valid" in run(["job", "show", "text-lora"]).output


def test_job_show_invalid_spec_is_one_line(tmp_path):
    p = tmp_path / "bad.json"
    p.write_text(json.dumps({"model": {"zoo": "mlp"}}))
    r = run(["job", "show", str(p)], ok=False)
    assert r.exit_code == 1 and len(r.stderr.splitlines()) == 1
    assert "field 'dataset': is required" in r.stderr


def test_job_status_needs_an_id_or_tx():
    r = run(["job", "status"], ok=False)
    assert r.exit_code == 2 and "JOB_ID or --tx" in r.stderr


def test_job_submit_without_a_node_is_one_line(tmp_path):
    r = run(["job", "submit", "digits-mlp", "--rpc", "http://127.0.0.1:9", "--datadir", str(tmp_path)], ok=False)
    assert r.exit_code == 1 and len(r.stderr.splitlines()) == 1 and r.stderr.startswith("error: ")
    assert "Traceback" not in r.output


def test_provider_body_comes_from_the_benchmark():
    from mindnode.commands.job_cmds import _provider_body
    from mindnode.jobs.errors import JobSpecError

    body = _provider_body(False, "0.5", 2, "eu", 1000, 0.05)
    assert body.kind == "provider_register" and body.hardware_class == "cpu" and body.score >= 1
    assert (body.price, body.capacity, body.zone, body.bandwidth_kbps) == (5 * 10**17, 2, "eu", 1000)
    assert _provider_body(True, "1", 1, "", 0, 0.05).kind == "provider_update"
    import pytest

    with pytest.raises(JobSpecError, match="--price"):
        _provider_body(False, "cheap", 1, "", 0, 0.05)


def test_genesis_inspect_shows_the_jobs_parameters(tmp_path):
    doc = json.loads(run(["genesis", "inspect", "devnet", "--json"]).output)
    assert doc["jobs"]["job_retention_blocks"] == 300 and doc["jobs"]["verifier_fee_bps"] == 500
    assert "job_retention_blocks=300 (the rest default)" in run(["genesis", "inspect", "devnet"]).output
    from ledger.genesis_file import genesis_to_json, load_genesis

    bad = genesis_to_json(load_genesis("devnet"))
    bad["params"]["jobs"] = {"verify_timeout_blocks": 0}
    path = tmp_path / "g.json"
    path.write_text(json.dumps(bad))
    r = run(["genesis", "inspect", str(path)], ok=False)
    assert r.exit_code == 1 and "$.params.jobs.verify_timeout_blocks: expected an integer in 1..1000000, got 0" \
        in r.stderr and r.stderr.count("\n") == 1


def test_job_examples_name_prints_the_spec_file_to_edit(tmp_path):
    from mindnode.jobs import examples as ex

    out = run(["job", "examples", "digits-mlp"]).output
    assert out == ex.text("digits-mlp").decode() and json.loads(out)["workers"] == 3
    doc = json.loads(out)
    doc["workers"] = 2
    (tmp_path / "my.json").write_text(json.dumps(doc))
    assert json.loads(run(["job", "show", str(tmp_path / "my.json"), "--json"]).output)["terms"]["workers"] == 2
    r = run(["job", "examples", "nosuch"], ok=False)
    assert r.exit_code == 1 and r.stderr.startswith("error: no bundled example 'nosuch'") and "digits-mlp" in r.stderr


def test_job_group_help_is_a_quick_start():
    out = run(["job", "--help"]).output
    assert "job submit digits-mlp --key client --wait" in out and "--devnet 9" in out


def test_audit_line_reads_the_job_view_audit_record():
    from mindnode.commands.job_cmds import _audit_line

    a = {"phase": "audit", "draw_height": 41, "clean_verifier": "mnAAA", "clean_metric": 0.999,
         "auditor": "mnBBB", "audit_metric": None}
    assert _audit_line(a) == "audit (drawn at height 41): clean verdict by mnAAA (0.999); auditor mnBBB (pending)"
    assert _audit_line({**a, "audit_metric": 0.62}).endswith("auditor mnBBB (0.62)")
    assert "auditor" not in _audit_line({**a, "phase": "draw", "auditor": ""})
