"""Fixtures of the economics tests (helpers live in econ_fixtures.py)."""

import pytest
from econ_fixtures import WHITE_PAPER_ROWS, make_genesis

from ledger.genesis import Genesis, Params


@pytest.fixture
def small_genesis() -> Genesis:
    return make_genesis()


@pytest.fixture
def white_paper_genesis() -> Genesis:
    return make_genesis(Params(), WHITE_PAPER_ROWS)
