"""Keystore files: round trip, wrong password, tampering, permissions, atomic no-clobber writes."""

import json
import os
import stat

import pytest

from ledger.keys import PrivateKey, address_to_text, devnet_key
from mindnode import keystore
from mindnode.config import Config, DataDir, load_config, load_key, write_config
from mindnode.errors import ConfigError, KeystoreError, WrongPassword
from mindnode.keystore import Keystore


def test_round_trip_and_file_format(tmp_path):
    store = Keystore(tmp_path / "keys")
    key = PrivateKey.generate()
    info = store.add("alice", key, "correct horse")
    assert info.address == key.address and not info.insecure
    assert store.load("alice", "correct horse").seed == key.seed
    assert store.load(address_to_text(key.address), "correct horse").seed == key.seed
    doc = json.loads(info.path.read_text())
    assert doc["version"] == 1 and doc["kind"] == "encrypted"
    assert doc["address"] == address_to_text(key.address)
    assert doc["kdf"]["name"] == "scrypt" and doc["kdf"]["n"] == 16
    assert doc["cipher"]["name"] == "aes-256-gcm"
    assert key.seed.hex() not in info.path.read_text()
    assert store.names() == ["alice"]
    assert [e.address for e in store.entries()] == [key.address]


def test_default_cost_is_the_documented_one(tmp_path, monkeypatch):
    monkeypatch.delenv("MINDNODE_SCRYPT_N")
    doc = keystore.encrypt_key(devnet_key(1), "pw")
    assert doc["kdf"]["n"] == keystore.DEFAULT_SCRYPT_N == 2**15
    assert keystore.decrypt_key(doc, "pw").address == devnet_key(1).address


def test_wrong_password_is_one_clear_error(tmp_path):
    store = Keystore(tmp_path / "keys")
    store.add("k", PrivateKey.generate(), "right")
    with pytest.raises(WrongPassword, match="wrong password") as err:
        store.load("k", "wrong")
    assert "\n" not in str(err.value)
    with pytest.raises(KeystoreError, match="password is needed"):
        store.load("k", None)


def test_tampering_is_detected(tmp_path):
    store = Keystore(tmp_path / "keys")
    info = store.add("k", PrivateKey.generate(), "pw")
    doc = json.loads(info.path.read_text())
    # Swap in another valid address: the address is bound to the ciphertext (AEAD associated data).
    other = dict(doc, address=address_to_text(devnet_key(4).address))
    with pytest.raises(WrongPassword):
        keystore.decrypt_key(other, "pw")
    flipped = dict(doc, ciphertext=("0" if doc["ciphertext"][0] != "0" else "1") + doc["ciphertext"][1:])
    with pytest.raises(WrongPassword):
        keystore.decrypt_key(flipped, "pw")
    for bad, fragment in [
        (dict(doc, version=2), "unsupported keystore version"),
        (dict(doc, kind="plain"), "unknown keystore kind"),
        (dict(doc, kdf=dict(doc["kdf"], n=2**30)), "scrypt n"),
        (dict(doc, kdf=dict(doc["kdf"], n=1000)), "scrypt n"),
        (dict(doc, cipher=dict(doc["cipher"], nonce="zz")), "not hex"),
        (dict(doc, ciphertext="00"), "must be 48 bytes"),
        ({k: v for k, v in doc.items() if k != "address"}, "'address'"),
    ]:
        with pytest.raises(KeystoreError, match=fragment):
            keystore.decrypt_key(bad, "pw")
    info.path.write_text("not json")
    with pytest.raises(KeystoreError, match="not JSON"):
        store.load("k", "pw")


def test_permissions_0600_and_dir_0700(tmp_path):
    store = Keystore(tmp_path / "deep" / "keys")
    info = store.add("k", PrivateKey.generate(), "pw")
    assert stat.S_IMODE(os.stat(info.path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(store.directory).st_mode) == 0o700
    # No temp files left behind.
    assert sorted(os.listdir(store.directory)) == ["k.json"]


def test_never_clobbers_and_names_are_checked(tmp_path):
    store = Keystore(tmp_path / "keys")
    first = store.add("k", PrivateKey.generate(), "pw")
    before = first.path.read_bytes()
    with pytest.raises(KeystoreError, match="already exists"):
        store.add("k", PrivateKey.generate(), "pw")
    with pytest.raises(KeystoreError, match="already exists"):
        keystore.write_private_file(first.path, b"{}")
    assert first.path.read_bytes() == before
    for bad in ("", "../escape", "a/b", ".hidden", "x" * 65):
        with pytest.raises(KeystoreError, match="invalid key name"):
            store.add(bad, PrivateKey.generate(), "pw")
    with pytest.raises(KeystoreError, match="must not be empty"):
        store.add("empty", PrivateKey.generate(), "")


def test_devnet_keys_are_marked_insecure(tmp_path):
    store = Keystore(tmp_path / "keys")
    info = store.add_devnet("dev3", 3)
    assert info.insecure and info.address == devnet_key(3).address
    assert store.load("dev3", None).seed == devnet_key(3).seed
    assert "INSECURE" in info.path.read_text()
    assert not store.needs_password("dev3")


def test_config_round_trip_and_load_key(tmp_path):
    dd = DataDir(tmp_path / "node")
    with pytest.raises(ConfigError, match="mindnode init"):
        load_config(dd)
    dd.create_dirs()
    key = PrivateKey.generate()
    dd.keystore.add("node", key, "pw")
    cfg = Config(chain_id="c-1", genesis_hash="ab" * 32, bootnodes=['/ip4/1.2.3.4/tcp/1/p2p/x"y'],
                 tables={"trainer": {"device": "cpu", "threads": 2, "fast": True}})
    write_config(dd, cfg)
    assert stat.S_IMODE(os.stat(dd.config_path).st_mode) == 0o600
    assert load_config(dd) == cfg
    assert load_key(dd, "pw").seed == key.seed
    with pytest.raises(WrongPassword):
        load_key(dd, "nope")
    dd.config_path.write_text("[chain]\nid = 5\ngenesis_hash = 'x'\n")
    with pytest.raises(ConfigError, match="chain.id must be a str"):
        load_config(dd)
    dd.config_path.write_text("[chain\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(dd)


@pytest.mark.timeout(60)
def test_sigkill_mid_write_leaves_only_whole_key_files(tmp_path):
    """Kill a process that is writing key files as fast as it can: every key file left behind is
    complete and readable (temp files may remain, but never under a key's name)."""
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    code = ("import sys\n"
            "from ledger.keys import PrivateKey\n"
            "from mindnode.keystore import Keystore\n"
            "s = Keystore(sys.argv[1])\n"
            "i = 0\n"
            "while True:\n"
            "    s.add(f'k{i}', PrivateKey.generate(), 'pw', scrypt_n=16)\n"
            "    i += 1\n"
            "    if i == 20: print('go', flush=True)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "keys")], cwd=repo,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "go"
        time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    store = Keystore(tmp_path / "keys")
    names = store.names()
    assert len(names) >= 20
    for name in names:
        assert store.load(name, "pw").address == store.info(name).address
