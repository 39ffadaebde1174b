"""The packaged genesis files build real chains: Store.create writes them, Store.open reads back the
same parameters (including amounts above 2**64 such as min_validator_stake) and supply."""

import pytest

from ledger.genesis_file import load_genesis
from ledger.state import params_from_bytes, params_to_bytes
from ledger.store import Store

NMT = 10**18


@pytest.mark.parametrize("name", ["devnet", "mainnet"])
def test_builtin_genesis_builds_a_store(tmp_path, name):
    g = load_genesis(name)
    assert g.params.min_validator_stake >= 2**64          # the case msgpack integers cannot hold
    with Store.create(tmp_path / "chain", g) as store:
        created = store.genesis_hash
    with Store.open(tmp_path / "chain") as store:
        assert store.genesis_hash == created and store.height == 0
        assert store.params == g.params
        assert store.chain_id == g.chain_id
        for account in g.accounts:
            assert store.account(account.address).balance == account.balance
    # Same genesis, same genesis block: the hash is a function of the file alone.
    with Store.create(tmp_path / "again", g) as store:
        assert store.genesis_hash == created


def test_params_bytes_round_trip_big_amounts():
    g = load_genesis("mainnet")
    assert params_from_bytes(params_to_bytes(g.params)) == g.params
