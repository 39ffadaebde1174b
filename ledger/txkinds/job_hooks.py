"""Block hooks of the jobs rules (no transaction kind here).

* begin (order 20): advance the jobs beacon (`ledger.jobs.beacon`, from the parent block's hash)
  before any transaction runs;
* end (order 50): `ledger.jobs.lifecycle.tick`: close offer windows and assign workers, draw
  verification challenges, time out verifiers, expire deadlines, run control tasks.
"""

from __future__ import annotations

from ledger.jobs import beacon, lifecycle
from ledger.registry import block_hook


@block_hook("begin", order=20, name="jobs_beacon")
def jobs_beacon(state, ctx) -> None:
    beacon.advance(state, ctx.height, ctx.parent_hash)


@block_hook("end", order=50, name="jobs_tick")
def jobs_tick(state, ctx) -> None:
    lifecycle.tick(state, ctx)
