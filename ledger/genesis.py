"""The parsed genesis: the chain's identity, its consensus parameters and its initial allocation.

This module is the contract between the genesis *file* (JSON, parsed and validated by
`ledger.genesis_file`) and the *state* built from it (`ledger.state` / `ledger.store`). All amounts
are integers in base units (1 NMT = 10**18); all times are integer unix seconds; durations are
integer seconds. Later issues add parameters here with defaults, so older genesis files still load.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ledger.jobs.params import JobParams

NMT = 10**18
#: A year is 365 days and a month is a twelfth of it (the white paper, section 7.1).
YEAR_S = 365 * 86400
MONTH_S = YEAR_S // 12  # 2,628,000 s exactly


@dataclass(frozen=True)
class HardwareClass:
    """A hardware class of the mining reward (white paper 7.2.1 "tiered by GPU model").

    `value_per_hour` is what one chain hour of this machine is worth, in integer micro-USD: it
    feeds the day's total VC. `weight` is the class's w in the per-machine share. The node's
    benchmark (jobs issue) decides which class a provider registers with.
    """

    name: str
    value_per_hour: int   # micro-USD per chain hour online
    weight: int           # relative computational weight (integer, > 0)


@dataclass(frozen=True)
class BandwidthTier:
    """Measured bandwidth at or above `min_kbps` scales the machine's weight by `factor_bps`/10000."""

    min_kbps: int
    factor_bps: int


#: Default hardware classes (micro-USD per hour roughly at market rental prices of 2024).
DEFAULT_HARDWARE_CLASSES: tuple[HardwareClass, ...] = (
    HardwareClass("cpu", 20_000, 1),
    HardwareClass("gpu-consumer", 150_000, 8),
    HardwareClass("gpu-high", 400_000, 20),
    HardwareClass("gpu-datacenter", 1_200_000, 60),
)

#: NetMind's bandwidth factor (shared/NETMIND-FACTS.md): above 100 Mbps 100%; 80-100 Mbps 95%;
#: 60-80 Mbps 85%; below 60 Mbps 70%. Tiers are tried from the top; the first met applies.
DEFAULT_BANDWIDTH_TIERS: tuple[BandwidthTier, ...] = (
    BandwidthTier(100_001, 10_000),
    BandwidthTier(80_000, 9_500),
    BandwidthTier(60_000, 8_500),
    BandwidthTier(0, 7_000),
)


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
    # --- economics (ledger/economics, ledger/ECONOMICS.md) ------------------------------------
    hardware_classes: tuple[HardwareClass, ...] = DEFAULT_HARDWARE_CLASSES
    bandwidth_tiers: tuple[BandwidthTier, ...] = DEFAULT_BANDWIDTH_TIERS
    balancing_coefficient_bps: int = 10_000  # B of 7.2.1 as B * 10_000 (10_000 means B = 1)
    price_oracle: bytes | None = None      # the only account whose price posts count
    genesis_price_micro_usd: int = 0       # NMT price used until the oracle has posted (0: none)
    price_window_days: int = 7             # average of the last N daily prices
    qualifying_hours: int = 5              # a provider must be online in MORE than this many hours
    failed_work_penalty_bps: int = 2_500   # p_i loses this much per work unit failing verification
    sync_provider_fee_bps: int = 5_000     # sync jobs: 50% to providers, rest to the mining pool
    async_provider_fee_bps: int = 2_000    # async jobs: 20% to providers, rest to the mining pool
    master_node_share_bps: int = 1_000     # 10% of the staking emission to the validator set
    stake_weight_long_term: int = 4
    stake_weight_flexible: int = 1
    stake_weight_liquidity: int = 2        # nothing creates liquidity stake yet (no trading pair)
    accrual_history_days: int = 30         # per-day reward history kept per address
    max_uptime_entries_per_block: int = 4_096
    # --- jobs (ledger/jobs, ledger/JOBS.md): one structured section, ledger.jobs.params ------
    jobs: JobParams = JobParams()


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
