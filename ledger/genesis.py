"""The parsed genesis: the chain's identity, its consensus parameters and its initial allocation.

This module is the contract between the genesis *file* (JSON, parsed and validated by
`ledger.genesis_file`) and the *state* built from it (`ledger.state` / `ledger.store`). All amounts
are integers in base units (1 NMT = 10**18); all times are integer unix seconds; durations are
integer seconds. Later issues add parameters here with defaults, so older genesis files still load.
"""

from __future__ import annotations

from dataclasses import dataclass, field

NMT = 10**18
#: A year is 365 days and a month is a twelfth of it (the white paper, section 7.1).
YEAR_S = 365 * 86400
MONTH_S = YEAR_S // 12  # 2,628,000 s exactly


@dataclass(frozen=True)
class Params:
    """Consensus parameters. Every node must run with the same values (they are part of genesis)."""

    block_time_ms: int = 2000
    epoch_length: int = 30                 # blocks between validator-set recomputations
    max_validators: int = 21               # the white paper's 21 Master Nodes
    unbonding_period_s: int = 7 * 86400    # flexible stake unbonds after this long
    min_validator_stake: int = 10_000 * NMT  # self-stake needed to register as a candidate
    min_long_term_days: int = 30
    max_long_term_days: int = 4 * 365
    day_s: int = 86400                     # length of a chain "day" (rewards settle per day)
    month_s: int = MONTH_S                 # vesting month; the devnet shortens it
    max_block_txs: int = 10_000
    max_block_bytes: int = 8 * 1024 * 1024
    max_tx_bytes: int = 64 * 1024
    # --- consensus (ledger/consensus/, rules in ledger/CONSENSUS.md) ---
    out_of_turn_delay_ms: int = 1000       # extra wait of the first out-of-turn sealer (when the in-turn one may seal)
    out_of_turn_step_ms: int = 500         # further wait per rank among the out-of-turn sealers
    max_future_ms: int = 1000              # a header may be at most this far ahead of the importer's clock
    vote_window: int = 64                  # votes are kept for targets within this many blocks of the head
    slash_fraction_bps: int = 1000         # double seal / double vote: 10% of each of the offender's stakes
    jail_period_s: int = 2 * 86400         # jailed validators stay out of the set this long
    missed_blocks_withhold: int = 50       # missed in-turn slots before rewards are withheld (Parlia: 50)
    missed_blocks_jail: int = 150          # missed in-turn slots before the validator is jailed (Parlia: 150)
    evidence_max_age: int = 100_000        # evidence older than this many blocks is refused


@dataclass(frozen=True)
class GenesisAccount:
    address: bytes
    balance: int
    label: str = ""


@dataclass(frozen=True)
class GenesisValidator:
    """A validator candidate registered at genesis with `stake` of its own (taken from its balance
    being added on top: genesis stake is minted into the stake, not debited from an account)."""

    address: bytes
    stake: int
    name: str = ""


@dataclass(frozen=True)
class AllocationRow:
    """One row of the white paper's allocation table.

    Unlocks linearly from ``start + cliff_months`` to ``start + cliff_months + vesting_months``
    (months of `Params.month_s`). A row with a `pool` ("mining" or "staking") feeds that reward
    pool as it unlocks; a row with an `account` vests to that account.
    """

    name: str
    amount: int
    cliff_months: int
    vesting_months: int
    pool: str | None = None
    account: bytes | None = None


@dataclass(frozen=True)
class Genesis:
    chain_id: str
    timestamp: int                          # genesis block time, unix seconds
    params: Params
    accounts: tuple[GenesisAccount, ...]
    validators: tuple[GenesisValidator, ...]
    allocation_start: int                   # unix seconds the vesting clock starts (2024-04-16 on mainnet)
    allocation: tuple[AllocationRow, ...] = ()
    total_supply: int | None = None         # if given, must equal everything above summed
    bootnodes: tuple[str, ...] = ()
    extra: dict = field(default_factory=dict, compare=False)  # reserved for later issues
