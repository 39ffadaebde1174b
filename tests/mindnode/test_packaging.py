"""A normal (non-editable) install ships the genesis files: build the wheel, install it into a
target directory, and load the built-in genesis files from there, outside the source tree."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_wheel_ships_genesis_files(tmp_path):
    wheels = tmp_path / "wheels"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels), str(REPO)],
        capture_output=True, text=True, timeout=200, cwd=tmp_path)
    if build.returncode != 0 and "No module named pip" in build.stderr:  # pragma: no cover
        pytest.skip("pip is not available in this interpreter")
    assert build.returncode == 0, build.stderr[-2000:]
    [wheel] = wheels.glob("mindnode-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "mindnode/genesis/devnet.json" in names and "mindnode/genesis/mainnet.json" in names
    with zipfile.ZipFile(wheel) as zf:
        assert zf.read("mindnode/genesis/mainnet.json") == (REPO / "genesis" / "mainnet.json").read_bytes()
    target = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(target)   # what pip install does for a pure-Python wheel
    code = ("import ledger.genesis_file as gf, mindnode\n"
            f"assert mindnode.__file__.startswith({str(target)!r}), mindnode.__file__\n"
            "print(gf.builtin_genesis_dir()); print(gf.load_genesis('devnet').chain_id, "
            "gf.load_genesis('mainnet').total_supply)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path,
                       env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    where, values = r.stdout.splitlines()
    assert where.startswith(str(target))
    assert values == f"mindnode-devnet-1 {147_571_163 * 10**18}"
