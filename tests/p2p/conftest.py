"""p2p test fixtures (helpers live in p2phelpers.py)."""

import gc
import warnings

import pytest


@pytest.fixture(autouse=True)
def no_unclosed_sockets():
    """Trap 9: a test that leaves a socket open fails (ResourceWarning collected at teardown)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        yield
        gc.collect()
    leaks = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning) and "socket" in str(w.message)]
    assert not leaks, f"unclosed sockets: {leaks}"
