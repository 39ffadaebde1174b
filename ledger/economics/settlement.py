"""One chain day's reward settlement, composed from the pure rules, for the state machine to apply.

The first block of day d+1 (see `ChainClock.is_first_block_of_day`) settles every day from its
parent's day up to d, each with `settle_day`, before its transactions run. Applying a
`DaySettlement` means, all in the block's write batch:

* mining pool:  += mining.cap (the day's unlock)  -= mining.paid   (so it keeps `retained`)
* staking pool: += staking.emission               -= staking.master_paid + staking.allocated
* each validator v in staking.allocations: outstanding_v += amount; A_v += staking.reward_per_weight
* each (address, kind, amount) in `credits`: accrual credit (ledger.economics.accrual), the
  amount moving into the reward escrow.

`check_conservation` states the invariant every settlement meets.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ledger.economics import accrual
from ledger.economics.mining import MiningSettlement, ProviderDay, settle_mining
from ledger.economics.prices import DailyPrice, price_average
from ledger.economics.schedule import MINING, STAKING, pool_daily_cap
from ledger.economics.staking import StakingSettlement, ValidatorDay, settle_staking
from ledger.genesis import Genesis, Params


@dataclass(frozen=True)
class DaySettlement:
    day: int
    mining: MiningSettlement
    staking: StakingSettlement
    credits: tuple[tuple[bytes, str, int], ...]   # (address, kind, amount), ascending address then kind

    @property
    def escrowed(self) -> int:
        """Base units moving from the pools into the reward escrow as accruals."""
        return sum(a for _, _, a in self.credits)


def settle_day(genesis: Genesis, day: int, prices: Iterable[DailyPrice], providers: Iterable[ProviderDay],
               validators: Iterable[ValidatorDay]) -> DaySettlement:
    """Mining and staking of `day` (providers' day records, the validator set at settlement)."""
    return settle_day_with_caps(genesis.params, day, pool_daily_cap(genesis, MINING, day),
                                pool_daily_cap(genesis, STAKING, day), prices, providers, validators)


def settle_day_with_caps(params: Params, day: int, mining_cap: int, staking_cap: int,
                         prices: Iterable[DailyPrice], providers: Iterable[ProviderDay],
                         validators: Iterable[ValidatorDay]) -> DaySettlement:
    """`settle_day` with the day's pool caps already computed (what the state machine calls)."""
    price_sum, price_count = price_average(prices, params, day)
    mining = settle_mining(params, day, mining_cap, price_sum, price_count, providers)
    staking = settle_staking(params, day, staking_cap, validators)
    credits = sorted([(a, accrual.MINING, x) for a, x in mining.payouts]
                     + [(a, accrual.STAKING, x) for a, x in staking.master_payouts])
    return DaySettlement(day=day, mining=mining, staking=staking, credits=tuple(credits))


def check_conservation(s: DaySettlement) -> None:
    """Raise AssertionError unless every base unit of the day's unlock is accounted for."""
    m, k = s.mining, s.staking
    assert m.cap == m.paid + m.retained and m.issued == m.paid + m.dust and m.dust >= 0 and m.retained >= 0
    assert m.paid == sum(a for _, a in m.payouts) and m.issued <= m.cap
    assert k.emission == k.master_paid + k.allocated + k.retained and k.retained >= 0
    assert k.master_total + k.stakers_total == k.emission and k.allocated <= k.stakers_total
    assert s.escrowed == m.paid + k.master_paid
