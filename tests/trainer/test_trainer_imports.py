"""The trainer room stays in its lane: no chain, no p2p, and torch only where tensors are needed."""
import subprocess
import sys

import pytest


def _modules_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys; print(','.join(sorted(sys.modules)))"],
                         capture_output=True, text=True, check=True)
    return set(out.stdout.strip().split(","))


def test_light_modules_do_not_import_torch():
    mods = _modules_after("import trainer, trainer.transport, trainer.allreduce, trainer.compression, "
                          "trainer.data, trainer.job, trainer.errors")
    assert "torch" not in mods


@pytest.mark.slow
def test_trainer_never_imports_the_chain_or_the_network():
    mods = _modules_after("import pkgutil, importlib, trainer\n"
                          "for m in pkgutil.walk_packages(trainer.__path__, 'trainer.'): importlib.import_module(m.name)")
    assert not {"ledger", "p2p", "mindnode", "libp2p"} & mods
