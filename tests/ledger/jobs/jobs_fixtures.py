"""A small chain for the jobs tests: one validator, a submitter, five providers, a mining and a
staking pool; blocks 2 s apart (day_s = 100 s). `Chain` drives a real LevelDB store through
`build_block` + `import_block` (so every block is executed twice, by the builder and the importer,
and the state roots must agree); `MemChain` runs the same rules on an in-memory state (property tests).
"""

from __future__ import annotations

import json

from ledger.economics import ledger_state as econ
from ledger.errors import LedgerError
from ledger.execution import BlockContext, apply_tx, begin_block, end_block
from ledger.genesis import NMT, AllocationRow, Genesis, GenesisAccount, GenesisValidator, Params
from ledger.hashing import sha256
from ledger.jobs import records as R
from ledger.jobs import views
from ledger.jobs.params import JobParams
from ledger.keys import devnet_key
from ledger.state import genesis_state
from ledger.store import Store, build_block
from ledger.tx import sign_tx
from ledger.txkinds.job_submit import JobSubmit
from ledger.txkinds.provider_register import ProviderRegister

CHAIN = "jobs-test"
T0 = 1_700_000_000
KEYS = [devnet_key(i) for i in range(10)]
V0, SUB, P1, P2, P3, P4, VER, OTHER = KEYS[0], KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
PROVIDERS = (P1, P2, P3, P4, VER)
# Audits off by default here: a verdict settles in its own block, as the lifecycle tests expect;
# test_jobs_audit.py and the conservation machine turn them on.
PARAMS = Params(min_validator_stake=100 * NMT, unbonding_period_s=60, min_long_term_days=1, max_long_term_days=30,
                day_s=100, month_s=1000, jobs=JobParams(audit_bps=0))
SPEC = json.dumps({"name": "test", "model": {"name": "mlp"}}, sort_keys=True).encode()


def make_genesis(params: Params = PARAMS) -> Genesis:
    return Genesis(chain_id=CHAIN, timestamp=T0, params=params,
                   accounts=tuple(GenesisAccount(k.address, (10_000 if k is SUB else 1_000) * NMT)
                                  for k in KEYS[1:8]) + (GenesisAccount(V0.address, 1_000 * NMT),),
                   validators=(GenesisValidator(V0.address, 200 * NMT, "v0"),), allocation_start=T0,
                   allocation=(AllocationRow("mining", 24_000 * NMT, 0, 24, pool="mining"),
                               AllocationRow("staking", 2_400 * NMT, 0, 24, pool="staking")))


def submit_body(**kw) -> JobSubmit:
    base = dict(spec=SPEC, mode="sync", workers=3, min_workers=2, min_class="cpu", min_score=100,
                max_price=10 * NMT, max_samples=10_000, steps=100, replay_steps=5, metric="accuracy",
                metric_op=">=", threshold_ppm=950_000, budget=100 * NMT, offer_window=3,
                deadline_ms=(T0 + 10_000) * 1000, strategy="default")
    base.update(kw)
    return JobSubmit(**base)


def register_body(hw="cpu", score=1000, price=NMT, capacity=2, zone="lab", bandwidth=100_000) -> ProviderRegister:
    return ProviderRegister(hardware_class=hw, score=score, price=price, capacity=capacity, zone=zone,
                            bandwidth_kbps=bandwidth)


class _Base:
    def __init__(self):
        self.nonces: dict[bytes, int] = {}

    def tx(self, key, body, fee: int = 0):
        n = self.nonces.get(key.address, 0)
        self.nonces[key.address] = n + 1
        return sign_tx(key, CHAIN, n, fee, body)

    # reads
    def job(self, job_id: int) -> R.Job:
        return R.get_job(self.state(), job_id)

    def provider(self, key) -> R.Provider:
        return R.get_provider(self.state(), key.address)

    def balance(self, key_or_addr) -> int:
        addr = key_or_addr if isinstance(key_or_addr, bytes) else key_or_addr.address
        return self.state().account(addr).balance

    def utilisation(self, key) -> int:
        return econ.reward_account(self.state(), key.address).utilisation

    def audit(self) -> None:
        s = self.state()
        s.audit()
        views.audit_jobs(s)
        econ.audit_economics(s)

    def blocks_until(self, height: int) -> None:
        while self.height < height:
            self.block()


class Chain(_Base):
    """A real LevelDB store; `block(*txs)` builds, imports, and raises if any tx was skipped."""

    def __init__(self, path, genesis=None):
        super().__init__()
        self.store = Store.create(path, genesis or make_genesis(), sync=False)

    def close(self):
        self.store.close()

    @property
    def height(self) -> int:
        return self.store.height

    def state(self):
        return self.store.state()

    def block(self, *txs, expect_fail: bool = False, dt_ms: int = 2000):
        skipped: list = []
        block = build_block(self.store, V0, list(txs), self.store.head.timestamp + dt_ms, 2,
                            on_skip=lambda tx, exc: skipped.append((tx, exc)))
        self.store.import_block(block)
        if skipped and not expect_fail:
            for tx, _ in skipped:       # a skipped tx did not use its nonce
                self.nonces[tx.sender] -= 1
            raise AssertionError(f"transactions skipped: {[str(e) for _, e in skipped]}")
        for tx, _ in skipped:
            self.nonces[tx.sender] -= 1
        return [str(e) for _, e in skipped]

    def reject(self, tx) -> str:
        """Put `tx` in a block, expect it rejected; returns the reason."""
        errs = self.block(tx, expect_fail=True)
        assert len(errs) == 1, errs
        return errs[0]


class MemChain(_Base):
    """The same rules on an in-memory state (no store): for property tests. Its "block hash" (the
    next block's `parent_hash`, which the jobs beacon mixes in) is a hash of the previous one,
    the height, the time and the transactions: like a real header, it changes with any of them."""

    def __init__(self, genesis=None):
        super().__init__()
        self._state = genesis_state(genesis or make_genesis())
        self.height = 0
        self.time_ms = T0 * 1000
        self.parent_hash = bytes(32)

    def state(self):
        return self._state

    def block(self, *txs, dt_ms: int = 2000) -> list[str]:
        self.height += 1
        self.time_ms += dt_ms
        ctx = BlockContext.for_state(self._state, self.height, self.time_ms, V0.address, self.parent_hash)
        begin_block(self._state, ctx)
        errors = []
        for tx in txs:
            try:
                apply_tx(self._state, ctx, tx)
            except LedgerError as exc:
                self.nonces[tx.sender] -= 1
                errors.append(str(exc))
        end_block(self._state, ctx)
        self.parent_hash = sha256(self.parent_hash + self.height.to_bytes(8, "big") + self.time_ms.to_bytes(8, "big")
                                  + b"".join(tx.hash for tx in txs))
        return errors


def registered_chain(path, genesis=None) -> Chain:
    """A `Chain` whose first block registers the five providers."""
    c = Chain(path, genesis)
    c.block(*(c.tx(k, register_body()) for k in PROVIDERS))
    return c
