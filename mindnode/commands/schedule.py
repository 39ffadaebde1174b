"""``mindnode genesis schedule FILE --at YYYY-MM-DD``: a day of the reward schedule.

For the chain day containing the date's midnight UTC (on mainnet, chain days are UTC days; on a
devnet with short days it is the short day containing that instant), it shows each reward pool's
daily cap (mining, staking: what the pool's rows unlock that day, `ledger.economics.schedule`) and
what every allocation row unlocks that day and has unlocked by its end. ``--json`` prints amounts
as decimal strings of base units (1 NMT = 10**18), so scripts never meet a rounded float.
"""

from __future__ import annotations

import datetime as _dt

import click

from ledger.economics.days import ChainClock
from ledger.economics.schedule import POOLS, DaySchedule, day_schedule
from ledger.genesis import NMT, Genesis
from ledger.keys import address_to_text


def _utc(t: int) -> str:
    return _dt.datetime.fromtimestamp(t, _dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _nmt(units: int) -> str:
    whole, frac = divmod(units, NMT)
    return f"{whole:,}" + ("." + f"{frac:018d}".rstrip("0") if frac else "")


def schedule_document(genesis: Genesis, t: int) -> dict:
    """The ``--json`` object for the chain day containing unix time `t`."""
    day = ChainClock.of(genesis).day_of(t)
    s: DaySchedule = day_schedule(genesis, day)
    return {
        "chain_id": genesis.chain_id,
        "at": t,
        "day": day,
        "day_start": s.day_start,
        "day_end": s.day_end,
        "day_start_utc": _utc(s.day_start),
        "day_end_utc": _utc(s.day_end),
        "caps": {p: str(s.caps[p]) for p in POOLS},
        "unlocks_total": str(sum(r.unlocks for r in s.rows)),
        "rows": [{"name": r.name,
                  "destination": f"pool:{r.pool}" if r.pool else address_to_text(r.account),
                  "amount": str(r.amount), "unlocks": str(r.unlocks), "unlocked": str(r.unlocked)}
                 for r in s.rows],
    }


@click.command("schedule")
@click.argument("source", metavar="FILE|devnet|mainnet")
@click.option("--at", "at", required=True, metavar="YYYY-MM-DD",
              help="The date (its midnight UTC; or integer unix seconds) whose chain day to show.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
def schedule(source: str, at: str, as_json: bool) -> None:
    """Show, for one day, each reward pool's daily cap and what every allocation row unlocks."""
    from ledger.genesis_file import load_genesis, parse_time

    g = load_genesis(source)
    t = parse_time(int(at) if at.isdigit() and len(at) > 8 else at, "--at")
    doc = schedule_document(g, t)
    if as_json:
        import json

        click.echo(json.dumps(doc, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(150, Console().width))
    console.print(f"[bold]{g.chain_id}[/] day {doc['day']}: {doc['day_start_utc']} .. {doc['day_end_utc']}")
    for pool in POOLS:
        console.print(f"{pool} pool daily cap: {_nmt(int(doc['caps'][pool]))} NMT")
    table = Table(title="unlocks this day (NMT)")
    for col, just in (("row", "left"), ("to", "left"), ("unlocks today", "right"), ("unlocked by day end", "right"),
                      ("amount", "right")):
        table.add_column(col, justify=just, no_wrap=True)
    for r in doc["rows"]:
        dest = r["destination"]
        table.add_row(r["name"], dest if dest.startswith("pool:") else dest[:14] + "...", _nmt(int(r["unlocks"])),
                      _nmt(int(r["unlocked"])), _nmt(int(r["amount"])))
    console.print(table)
    console.print(f"total unlocked this day: {_nmt(int(doc['unlocks_total']))} NMT")
