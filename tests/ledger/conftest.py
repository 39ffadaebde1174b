"""Shared fixtures: a small genesis with devnet keys, and stores built from it."""
from __future__ import annotations

import pytest

from ledger.genesis import NMT, AllocationRow, Genesis, GenesisAccount, GenesisValidator, Params
from ledger.keys import devnet_key
from ledger.store import Store, build_block

CHAIN = "test-1"
T0 = 1_700_000_000          # genesis time (s)
KEYS = [devnet_key(i) for i in range(8)]
V0, V1, ALICE, BOB, CAROL, VESTER = KEYS[0], KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
PARAMS = Params(min_validator_stake=100 * NMT, unbonding_period_s=60, min_long_term_days=1,
                max_long_term_days=30, day_s=100, month_s=1000, max_validators=21)


def make_genesis(params: Params = PARAMS, **kw) -> Genesis:
    base = dict(
        chain_id=CHAIN, timestamp=T0, params=params,
        accounts=tuple(GenesisAccount(k.address, 1000 * NMT) for k in KEYS[:5]),
        validators=(GenesisValidator(V0.address, 200 * NMT, "v0"),),
        allocation_start=T0,
        allocation=(
            AllocationRow("team", 1200 * NMT, cliff_months=1, vesting_months=12, account=VESTER.address),
            AllocationRow("mining phase 1", 5000 * NMT, cliff_months=0, vesting_months=10, pool="mining"),
        ),
    )
    base.update(kw)
    return Genesis(**base)


@pytest.fixture
def genesis() -> Genesis:
    return make_genesis()


@pytest.fixture
def store(tmp_path, genesis):
    s = Store.create(tmp_path / "chain", genesis, sync=False)
    yield s
    s.close()


def next_block(store: Store, txs=(), *, dt_ms: int = 2000, proposer=V0, skipped=None, **kw):
    """Build (skipping invalid txs, collected in `skipped`) and import a block dt_ms after the head."""
    cb = (lambda tx, exc: skipped.append((tx, exc))) if skipped is not None else None
    block = build_block(store, proposer, list(txs), store.head.timestamp + dt_ms, 2, on_skip=cb, **kw)
    store.import_block(block)
    return block


def dump(store: Store) -> dict[bytes, bytes]:
    """Every key/value in the database (to prove a rejected import changed nothing)."""
    with store._db.iterator() as it:
        return dict(it)
