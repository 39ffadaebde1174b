"""Keystore tests use a low scrypt cost (MINDNODE_SCRYPT_N, documented in mindnode.keystore) so
the suite stays fast; one test checks the real default separately."""

import pytest


@pytest.fixture(autouse=True)
def _cheap_scrypt_and_clean_env(monkeypatch):
    monkeypatch.setenv("MINDNODE_SCRYPT_N", "16")
    for var in ("MINDNODE_PASSWORD", "MINDNODE_DATADIR", "MINDNODE_DEBUG", "MINDNODE_LOG_LEVEL"):
        monkeypatch.delenv(var, raising=False)
