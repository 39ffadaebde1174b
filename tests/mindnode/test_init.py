"""`mindnode init`: a real data directory with a real LevelDB chain holding the genesis block."""

import json
import os
import stat

import pytest
from click.testing import CliRunner

from ledger.genesis_file import builtin_genesis_dir, genesis_hash, load_genesis
from ledger.keys import devnet_key
from ledger.store import Store
from mindnode.cli import cli
from mindnode.config import DataDir, load_config, load_key, load_node_genesis

NMT = 10**18


def run(args, env=None, input=None):
    return CliRunner().invoke(cli, args, env=env, input=input, catch_exceptions=False)


def one_line_error(result, fragment):
    assert result.exit_code == 1, result.output
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith("error: "), result.stderr
    assert fragment in result.stderr, result.stderr


def test_init_devnet_node(tmp_path):
    dd = DataDir(tmp_path / "node0")
    r = run(["init", "--genesis", "devnet", "--datadir", str(dd.root), "--devnet-key", "0", "--json"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary["insecure_key"] is True and summary["chain_id"] == "mindnode-devnet-1"
    for path in (dd.root, dd.keys_dir, dd.blobs_dir):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o700, path
    for path in (dd.config_path, dd.genesis_path, dd.keystore.path("node")):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path
    assert dd.genesis_path.read_bytes() == (builtin_genesis_dir() / "devnet.json").read_bytes()
    cfg = load_config(dd)
    assert cfg.chain_id == "mindnode-devnet-1" and cfg.node_key == "node"
    assert cfg.genesis_hash == genesis_hash(load_genesis("devnet")).hex() == summary["genesis_hash"]
    assert cfg.bootnodes == list(load_genesis("devnet").bootnodes)
    assert load_key(dd).address == devnet_key(0).address          # devnet keys need no password
    assert load_node_genesis(dd) == load_genesis("devnet")
    with Store.open(dd.chain_dir) as store:
        assert store.height == 0 and store.chain_id == "mindnode-devnet-1"
        assert store.genesis_hash.hex() == cfg.genesis_block == summary["genesis_block"]
        assert store.account(devnet_key(5).address).balance == 1_000_000 * NMT
        assert {a for a, _ in store.validator_set()} == {devnet_key(i).address for i in range(3)}


def test_init_refuses_existing_and_force_keeps_the_key(tmp_path):
    root = str(tmp_path / "n")
    assert run(["init", "--genesis", "devnet", "--datadir", root, "--devnet-key", "1"]).exit_code == 0
    config_before = (tmp_path / "n" / "config.toml").read_bytes()
    one_line_error(run(["init", "--genesis", "devnet", "--datadir", root, "--devnet-key", "1"]),
                   "already initialised")
    assert (tmp_path / "n" / "config.toml").read_bytes() == config_before
    # A different devnet key than the stored node key is refused, even with --force.
    one_line_error(run(["init", "--genesis", "devnet", "--datadir", root, "--devnet-key", "2", "--force"]),
                   "different key")
    r = run(["init", "--genesis", "devnet", "--datadir", root, "--force", "--genesis-time", "2030-01-01"])
    assert r.exit_code == 0, r.output
    assert "existing key" in r.stdout
    dd = DataDir(tmp_path / "n")
    assert load_key(dd).address == devnet_key(1).address
    rebased = load_node_genesis(dd)
    assert rebased.timestamp == 1893456000 and rebased.chain_id == "mindnode-devnet-1"
    with Store.open(dd.chain_dir) as store:
        assert store.head.timestamp == 1893456000 * 1000        # block timestamps are milliseconds
        assert store.genesis_hash.hex() == load_config(dd).genesis_block
    # Editing genesis.json afterwards is detected.
    dd.genesis_path.write_text(dd.genesis_path.read_text().replace('"epoch_length": 10', '"epoch_length": 12'))
    with pytest.raises(Exception, match="does not match the genesis hash"):
        load_node_genesis(dd)


def test_init_mainnet_with_a_new_encrypted_key(tmp_path):
    root = tmp_path / "main"
    r = run(["init", "--genesis", "mainnet", "--datadir", str(root), "--json"], env={"MINDNODE_PASSWORD": "pw"})
    assert r.exit_code == 0, r.output
    dd = DataDir(root)
    assert not dd.keystore.info("node").insecure
    with pytest.raises(Exception, match="wrong password"):
        load_key(dd, "not it")
    assert load_key(dd, "pw").address == dd.keystore.info("node").address
    assert json.loads(r.stdout)["address"] == dd.keystore.info("node").address_text
    g = load_genesis("mainnet")
    with Store.open(dd.chain_dir) as store:
        assert store.chain_id == "mindnode-mainnet-1"
        assert store.account(g.accounts[0].address).balance == 34_571_163 * NMT
        assert store.validator_set() == []


def test_init_errors_leave_nothing_behind(tmp_path):
    one_line_error(run(["init", "--genesis", "mainnet", "--datadir", str(tmp_path / "x"), "--devnet-key", "0"]),
                   "refusing to use a published devnet key")
    one_line_error(run(["init", "--genesis", "mainnet", "--datadir", str(tmp_path / "x"), "--genesis-time", "now"]),
                   "refusing to re-base")
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": 1, "chain_id": "c", "timestamp": 0, "accounts": [], "total_supply": "5"}')
    one_line_error(run(["init", "--genesis", str(bad), "--datadir", str(tmp_path / "y")]), "$.total_supply")
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
    # No password available (end of input at the prompt): clear error, nothing created.
    r = run(["init", "--genesis", "devnet", "--datadir", str(tmp_path / "z")], input="")
    assert r.exit_code == 1 and r.stderr.splitlines()[-1].startswith("error: a password is needed")
    assert not (tmp_path / "z").exists()


def test_init_says_when_the_reward_pools_are_over(tmp_path):
    """The packaged devnet genesis has a fixed date: its pools finished vesting long ago, so init
    points at --genesis-time now; re-based, the note goes away and allocation_start moves too."""
    r = run(["init", "--genesis", "devnet", "--datadir", str(tmp_path / "a"), "--devnet-key", "0"])
    assert r.exit_code == 0 and "reward pools stopped unlocking" in r.stdout and "--genesis-time now" in r.stdout
    r = run(["init", "--genesis", "devnet", "--datadir", str(tmp_path / "b"), "--devnet-key", "0",
             "--genesis-time", "now"])
    assert r.exit_code == 0 and "reward pools" not in r.stdout
    g = load_node_genesis(DataDir(tmp_path / "b"))
    assert g.allocation_start == g.timestamp and g.params.genesis_price_micro_usd == 1_000_000
