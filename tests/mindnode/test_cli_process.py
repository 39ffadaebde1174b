"""The CLI as users run it: real processes (``python -m mindnode`` and the ``mindnode`` console
script), one-line errors on stderr, and no heavy imports on the CLI path."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = Path(sys.executable).parent / "mindnode"


def _env(**extra):
    # PYTHONPATH first: this checkout's packages win over any editable install of another checkout.
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINDNODE_")}
    env.update(PYTHONPATH=str(REPO), MINDNODE_SCRYPT_N="16", **extra)
    return env


def _run(argv, **extra):
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, env=_env(**extra), cwd=REPO,
                          stdin=subprocess.DEVNULL)


@pytest.mark.timeout(120)
def test_python_dash_m_mindnode(tmp_path):
    dd = str(tmp_path / "dd")
    r = _run([sys.executable, "-m", "mindnode", "keys", "new", "--datadir", dd, "--json"],
             MINDNODE_PASSWORD="secret")
    assert r.returncode == 0, r.stderr
    address = json.loads(r.stdout)["address"]
    r = _run([sys.executable, "-m", "mindnode", "keys", "export", "--format", "seed", "--datadir", dd],
             MINDNODE_PASSWORD="not the password")
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [r.stderr.strip()]
    assert r.stderr.startswith("error: ") and "wrong password" in r.stderr and "Traceback" not in r.stderr
    assert r.stdout == ""
    r = _run([sys.executable, "-m", "mindnode", "keys", "list", "--datadir", dd])
    assert r.returncode == 0 and address in r.stdout


@pytest.mark.timeout(120)
@pytest.mark.skipif(not SCRIPT.exists(), reason="the mindnode console script is not installed in this venv")
def test_console_script(tmp_path):
    r = _run([str(SCRIPT), "--help"])
    assert r.returncode == 0 and "Usage: mindnode" in r.stdout
    r = _run([str(SCRIPT), "genesis", "inspect", "mainnet", "--at", "2034-04-16", "--json"])
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["unlocked_total"] == str(113_000_000 * 10**18)
    r = _run([str(SCRIPT), "genesis", "inspect", str(tmp_path / "missing.json")])
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and r.stderr.startswith("error: ")


@pytest.mark.timeout(120)
def test_cli_path_stays_light(tmp_path):
    """`mindnode keys ...`/`genesis inspect` must not import torch, libp2p or trio (lazy imports)."""
    code = (
        "import sys\n"
        "from mindnode.cli import main\n"
        "for argv in (['--help'], ['keys', 'list', '--datadir', sys.argv[1]], ['genesis', 'inspect', 'devnet'],\n"
        "             ['init', '--help']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit as e:\n"
        "        assert not e.code, (argv, e.code)\n"
        "print('HEAVY', ','.join(m for m in ('torch', 'libp2p', 'trio', 'trainer.zoo') if m in sys.modules))\n"
    )
    r = _run([sys.executable, "-c", code, str(tmp_path / "dd")])
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1] == "HEAVY "


@pytest.mark.timeout(120)
def test_init_in_a_real_process(tmp_path):
    dd = tmp_path / "node1"
    r = _run([sys.executable, "-m", "mindnode", "init", "--genesis", "devnet", "--datadir", str(dd),
              "--devnet-key", "1", "--p2p-port", "30334", "--api-port", "8646"])
    assert r.returncode == 0, r.stderr
    assert "INSECURE" in r.stdout and "mindnode-devnet-1" in r.stdout
    assert (dd / "chain" / "CURRENT").exists()           # a real LevelDB
    r = _run([sys.executable, "-m", "mindnode", "init", "--genesis", "devnet", "--datadir", str(dd)])
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "already initialised" in r.stderr
    r = _run([sys.executable, "-m", "mindnode", "init", "--genesis", "mainnet", "--datadir", str(tmp_path / "m")])
    # No password source and nothing on stdin: one clear line, nothing created.
    assert r.returncode == 1 and r.stderr.splitlines()[-1].startswith("error: a password is needed")
    assert not (tmp_path / "m").exists()
