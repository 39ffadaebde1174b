"""The four rooms import without pulling in each other's heavy dependencies."""
import importlib
import subprocess
import sys

import pytest


@pytest.mark.parametrize("name", ["mindnode", "ledger", "p2p", "trainer"])
def test_package_imports(name):
    assert importlib.import_module(name).__name__ == name


def test_ledger_stays_free_of_network_and_torch():
    """ARCHITECTURE.md: ledger imports no network and no torch (arrows point inward)."""
    code = "import sys, ledger, pkgutil, importlib\n" \
           "for m in pkgutil.walk_packages(ledger.__path__, 'ledger.'): importlib.import_module(m.name)\n" \
           "bad = [m for m in ('torch', 'libp2p', 'trio', 'p2p', 'trainer', 'mindnode') if m in sys.modules]\n" \
           "print(','.join(bad))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
