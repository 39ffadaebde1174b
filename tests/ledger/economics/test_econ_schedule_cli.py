"""`mindnode genesis schedule FILE --at DATE [--json]` as a user runs it."""

import json
import subprocess
import sys

from click.testing import CliRunner

from mindnode.cli import cli

MINING_PH3 = "13698630136986301369863"      # 10 * 10**24 // 730 (see test_econ_schedule.py)
STAKING_PH3 = "4109589041095890410958"      # 3 * 10**24 // 730


def run(*args):
    return CliRunner().invoke(cli, ["genesis", "schedule", *args])


def test_json_for_a_phase_3_date():
    r = run("mainnet", "--at", "2028-04-15", "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["day"] == 1460 and doc["day_start_utc"] == "2028-04-15T00:00:00Z"
    assert doc["caps"] == {"mining": MINING_PH3, "staking": STAKING_PH3}
    rows = {row["name"]: row for row in doc["rows"]}
    assert rows["Mining - Phase 3"]["unlocks"] == MINING_PH3
    assert rows["Mining - Phase 2"]["unlocks"] == "0" and rows["Mining - Phase 2"]["unlocked"] == str(15 * 10**24)
    assert all(isinstance(row[k], str) for row in doc["rows"] for k in ("amount", "unlocks", "unlocked"))
    assert int(doc["unlocks_total"]) == sum(int(row["unlocks"]) for row in doc["rows"])


def test_human_output_and_errors(tmp_path):
    r = run("mainnet", "--at", "2024-04-16")
    assert r.exit_code == 0 and "mining pool daily cap: 27,397.260273972602739726 NMT" in r.output
    r = run("mainnet", "--at", "2024-02-30")
    assert r.exit_code == 1 and r.output.count("\n") == 1 and "not a valid date" in r.output
    r = run(str(tmp_path / "missing.json"), "--at", "2024-04-16")
    assert r.exit_code == 1 and "not found" in r.output
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    r = run(str(bad), "--at", "2024-04-16")
    assert r.exit_code == 1 and "Traceback" not in r.output
    r = run("mainnet")
    assert r.exit_code == 2 and "--at" in r.output
    assert CliRunner().invoke(cli, ["genesis", "schedule", "--help"]).exit_code == 0


def test_real_process_devnet():
    out = subprocess.run([sys.executable, "-m", "mindnode", "genesis", "schedule", "devnet", "--at", "2026-01-01",
                          "--json"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["day"] == 0 and int(doc["caps"]["mining"]) > 0 and int(doc["caps"]["staking"]) > 0
