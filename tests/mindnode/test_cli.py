"""The `mindnode` CLI through click's CliRunner: keys, genesis inspect, --help everywhere, and
errors as exactly one `error: ...` line with a non-zero exit."""

import json
import os
import stat

import click
import pytest
from click.testing import CliRunner

from ledger.keys import address_to_text, devnet_key, peer_id_from_address
from mindnode.cli import cli

NMT = 10**18


def run(args, input=None, env=None, ok=True):
    result = CliRunner().invoke(cli, args, input=input, env=env, catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, result.output
    return result


def assert_one_line_error(result, fragment, code=1):
    assert result.exit_code == code, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert fragment in lines[0], lines[0]
    assert "Traceback" not in result.output


def all_commands(group=cli, prefix=()):
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        yield (*prefix, name)
        if isinstance(cmd, click.Group):
            yield from all_commands(cmd, (*prefix, name))


def test_help_on_every_command():
    commands = list(all_commands())
    assert {("keys", "new"), ("keys", "list"), ("keys", "show"), ("keys", "import"), ("keys", "export"),
            ("genesis", "inspect"), ("init",)} <= set(commands)
    assert "Usage: mindnode" in run(["--help"]).output
    for path in commands:
        out = run([*path, "--help"]).output
        assert f"Usage: mindnode {' '.join(path)}" in out, path


def test_keys_new_list_show_export(tmp_path):
    dd = str(tmp_path / "dd")
    out = run(["keys", "new", "--datadir", dd, "--json"], input="pw\npw\n").stdout
    info = json.loads(out[out.index("{"):])
    keyfile = tmp_path / "dd" / "keys" / "node.json"
    assert info["file"] == str(keyfile) and stat.S_IMODE(os.stat(keyfile).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(keyfile.parent).st_mode) == 0o700
    # Confirmation on create: a mismatch re-prompts, end of input aborts with one line.
    bad = run(["keys", "new", "--name", "b", "--datadir", dd], input="one\ntwo\n", ok=False)
    assert bad.exit_code == 1 and "do not match" in bad.stderr
    assert bad.stderr.splitlines()[-1].startswith("error: a password is needed")
    assert not (tmp_path / "dd" / "keys" / "b.json").exists()
    listed = json.loads(run(["keys", "list", "--datadir", dd, "--json"]).stdout)
    assert [k["address"] for k in listed["keys"]] == [info["address"]]
    shown = run(["keys", "show", "--datadir", dd]).stdout
    assert info["address"] in shown and info["peer_id"] in shown and info["public_key"] in shown
    # Export the seed with the password from the environment, then from a file.
    seed = run(["keys", "export", "--format", "seed", "--datadir", dd], env={"MINDNODE_PASSWORD": "pw"}).stdout
    pwfile = tmp_path / "pw.txt"
    pwfile.write_text("pw\n")
    again = run(["keys", "export", "--format", "seed", "--datadir", dd, "--password-file", str(pwfile)]).stdout
    assert seed == again and len(seed.strip()) == 64
    # Re-import that seed under another name: same address.
    seedfile = tmp_path / "seed.hex"
    seedfile.write_text(seed)
    imported = json.loads(run(["keys", "import", "--name", "copy", "--seed-file", str(seedfile), "--datadir", dd,
                               "--password-file", str(pwfile), "--json"]).stdout)
    assert imported["address"] == info["address"]
    # Keystore export/import keeps the encryption.
    exported = tmp_path / "node-export.json"
    run(["keys", "export", "--output", str(exported), "--datadir", dd])
    assert stat.S_IMODE(os.stat(exported).st_mode) == 0o600
    run(["keys", "import", "--name", "moved", "--keystore-file", str(exported), "--datadir", str(tmp_path / "other")])
    seed3 = run(["keys", "export", "moved", "--format", "seed", "--datadir", str(tmp_path / "other")],
                env={"MINDNODE_PASSWORD": "pw"}).stdout
    assert seed3 == seed


def test_keys_import_devnet_is_labelled_insecure(tmp_path):
    dd = str(tmp_path / "dd")
    out = run(["keys", "import", "--devnet", "4", "--name", "dev4", "--datadir", dd]).stdout
    assert "INSECURE" in out and address_to_text(devnet_key(4).address) in out
    assert peer_id_from_address(devnet_key(4).address) in out
    assert "INSECURE" in run(["keys", "list", "--datadir", dd]).stdout
    assert run(["keys", "show", "dev4", "--datadir", dd, "--json"]).stdout.count('"insecure": true') == 1
    seed = run(["keys", "export", "dev4", "--format", "seed", "--datadir", dd]).stdout.strip()
    assert seed == devnet_key(4).seed.hex()


def test_cli_errors_are_one_line(tmp_path):
    dd = str(tmp_path / "dd")
    run(["keys", "new", "--datadir", dd], env={"MINDNODE_PASSWORD": "right"})
    r = run(["keys", "export", "--format", "seed", "--datadir", dd], env={"MINDNODE_PASSWORD": "wrong"}, ok=False)
    assert_one_line_error(r, "wrong password")
    assert_one_line_error(run(["keys", "new", "--datadir", dd], env={"MINDNODE_PASSWORD": "x"}, ok=False),
                          "already exists")
    assert_one_line_error(run(["keys", "show", "nobody", "--datadir", dd], ok=False), "no key named 'nobody'")
    assert_one_line_error(run(["keys", "import", "--datadir", dd], ok=False), "exactly one of", code=2)
    bad_seed = tmp_path / "bad.hex"
    bad_seed.write_text("abc")
    assert_one_line_error(run(["keys", "import", "--name", "z", "--seed-file", str(bad_seed), "--datadir", dd],
                              ok=False), "64 hex digits")
    assert_one_line_error(run(["keys", "new", "--name", "../x", "--datadir", dd], ok=False), "invalid key name")
    assert_one_line_error(run(["keys", "export", "--datadir", dd, "--format", "seed", "--password-file",
                               str(tmp_path / "nope")], ok=False), "cannot read password file")
    assert_one_line_error(run(["genesis", "inspect", str(tmp_path / "nope.json")], ok=False), "not found")
    assert_one_line_error(run(["genesis", "inspect", "mainnet", "--at", "2024-02-30"], ok=False), "--at")
    assert_one_line_error(run(["no-such-command"], ok=False), "No such command", code=2)
    assert_one_line_error(run(["keys", "list", "--bogus"], ok=False), "--bogus", code=2)
    broken = tmp_path / "broken.json"
    broken.write_text('{"format": 1, "chain_id": "x", "timestamp": 0, "accounts": [{"address": "mn00"}]}')
    assert_one_line_error(run(["genesis", "inspect", str(broken)], ok=False), "$.accounts[0]")


def test_unexpected_exceptions_are_one_line_too():
    @click.command()
    def boom():
        """Fail like a bug would."""
        raise RuntimeError("kaboom\nsecond line")

    cli.add_command(boom, "boom")
    try:
        r = run(["boom"], ok=False)
        assert_one_line_error(r, "internal error: RuntimeError: kaboom second line", code=70)
    finally:
        cli.commands.pop("boom")


def test_genesis_inspect_json(tmp_path):
    doc = json.loads(run(["genesis", "inspect", "mainnet", "--at", "2025-04-16", "--json"]).stdout)
    assert doc["total_supply"] == str(147_571_163 * NMT)
    assert len(doc["rows"]) == 20
    assert set(doc["rows"][0]) >= {"name", "amount", "cliff_months", "vesting_months", "unlocked"}
    by_name = {r["name"]: r for r in doc["rows"]}
    assert by_name["Mining - Phase 1"]["unlocked"] == str(10_000_000 * NMT)
    assert by_name["Team - Phase 1"]["unlocked"] == str(6_000_000 * NMT * 6 // 54)
    assert doc["unlocked_total"] == str(sum(int(r["unlocked"]) for r in doc["rows"]))
    everything = json.loads(run(["genesis", "inspect", "mainnet", "--at", "2034-04-16", "--json"]).stdout)
    assert everything["unlocked_total"] == str(113_000_000 * NMT)
    # Unix seconds work too, and a file path as well as a name.
    from ledger.genesis_file import builtin_genesis_dir
    same = json.loads(run(["genesis", "inspect", str(builtin_genesis_dir() / "mainnet.json"),
                           "--at", "1744761600", "--json"]).stdout)
    assert same["rows"] == doc["rows"]


def test_genesis_inspect_table():
    out = run(["genesis", "inspect", "mainnet", "--at", "2026-04-16"]).stdout
    assert "Early GPU Contributors (Locked)" in out
    assert "147,571,163" in out and "20,000,000" in out
    assert "validators: none" in out
    dev = run(["genesis", "inspect", "devnet", "--at", "2026-01-01"]).stdout
    assert "mindnode-devnet-1" in dev and "devnet-validator-0" in dev


def test_keys_list_survives_a_damaged_file(tmp_path):
    dd = tmp_path / "dd"
    run(["keys", "import", "--devnet", "3", "--name", "good", "--datadir", str(dd)])
    (dd / "keys" / "bad.json").write_text("{not json")
    r = run(["keys", "list", "--datadir", str(dd)])
    assert "good" in r.stdout and "skipping unreadable key file" in r.stderr
    doc = json.loads(run(["keys", "list", "--datadir", str(dd), "--json"]).stdout)
    assert [k["name"] for k in doc["keys"]] == ["good"] and doc["unreadable"][0]["name"] == "bad"


def test_unlock_node_key(tmp_path):
    from mindnode.cli_common import unlock_node_key
    from mindnode.errors import WrongPassword

    dev = tmp_path / "dev"
    run(["init", "--genesis", "devnet", "--datadir", str(dev), "--devnet-key", "2"])
    assert unlock_node_key(dev).address == devnet_key(2).address        # no password asked
    enc = tmp_path / "enc"
    run(["init", "--genesis", "devnet", "--datadir", str(enc)], env={"MINDNODE_PASSWORD": "pw"})
    pw = tmp_path / "pw"
    pw.write_text("pw\n")
    key = unlock_node_key(enc, pw)
    assert json.loads(run(["keys", "show", "--datadir", str(enc), "--json"]).stdout)["address"] \
        == address_to_text(key.address)
    pw.write_text("nope\n")
    with pytest.raises(WrongPassword):
        unlock_node_key(enc, pw)


def test_format_nmt():
    from mindnode.cli_genesis import format_nmt

    assert format_nmt(0) == "0"
    assert format_nmt(147_571_163 * NMT) == "147,571,163"
    assert format_nmt(NMT // 2) == "0.5"
    assert format_nmt(1) == "0.000000000000000001"
