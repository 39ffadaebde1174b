"""``mindnode genesis inspect``: a genesis file's allocation table and what has unlocked by a date.

``jobs`` (in --json) lists the jobs rules' parameters (`params.jobs`, defaults filled in).
``unlocked_total`` sums the allocation rows only; ``circulating`` adds what genesis minted
unlocked (accounts and validator stakes), which on mainnet is the 34,571,163 NMT already
circulating on 2024-04-16.
"""

from __future__ import annotations

import datetime as _dt

import click

from ledger.genesis import NMT, Genesis
from ledger.genesis_file import genesis_hash, genesis_supply, load_genesis, parse_time
from ledger.jobs.params import JobParams, job_params_to_plain
from ledger.keys import address_to_text
from ledger.vesting import unlocked
from mindnode.cli_common import json_option, print_json


def format_nmt(units: int) -> str:
    """Base units as NMT with thousands separators, trailing zero decimals dropped."""
    whole, frac = divmod(units, NMT)
    text = f"{whole:,}"
    if frac:
        text += "." + f"{frac:018d}".rstrip("0")
    return text


def _parse_at(at: str | None) -> int:
    if at is None:
        return int(_dt.datetime.now(_dt.UTC).timestamp())
    value: str | int = int(at) if at.isdigit() and len(at) > 8 else at
    return parse_time(value, "--at")


def inspect_genesis(genesis: Genesis, t: int) -> dict:
    """The ``--json`` document: totals and, per allocation row, what has unlocked at time `t`."""
    rows = []
    for row in genesis.allocation:
        got = unlocked(row, genesis.allocation_start, genesis.params.month_s, t)
        rows.append({"name": row.name, "amount": str(row.amount), "cliff_months": row.cliff_months,
                     "vesting_months": row.vesting_months, "unlocked": str(got),
                     "destination": f"pool:{row.pool}" if row.pool else address_to_text(row.account)})
    unlocked_total = sum(int(r["unlocked"]) for r in rows)
    minted_unlocked = sum(a.balance for a in genesis.accounts) + sum(v.stake for v in genesis.validators)
    total = genesis.total_supply if genesis.total_supply is not None else genesis_supply(genesis)
    return {
        "chain_id": genesis.chain_id,
        "genesis_hash": genesis_hash(genesis).hex(),
        "at": t,
        "at_utc": _dt.datetime.fromtimestamp(t, _dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "allocation_start": genesis.allocation_start,
        "total_supply": str(total),
        "genesis_unlocked": str(minted_unlocked),
        "unlocked_total": str(unlocked_total),
        "circulating": str(minted_unlocked + unlocked_total),
        "rows": rows,
        "accounts": [{"address": address_to_text(a.address), "balance": str(a.balance), "label": a.label}
                     for a in genesis.accounts],
        "validators": [{"address": address_to_text(v.address), "stake": str(v.stake), "name": v.name}
                       for v in genesis.validators],
        "bootnodes": list(genesis.bootnodes),
        "jobs": job_params_to_plain(genesis.params.jobs),
    }


@click.group()
def genesis() -> None:
    """Inspect genesis files (devnet, mainnet, or your own JSON)."""


@genesis.command("inspect")
@click.argument("source", metavar="FILE|devnet|mainnet")
@click.option("--at", metavar="YYYY-MM-DD", help="Date (UTC midnight) or unix seconds to evaluate unlocks at [default: now].")
@json_option
def genesis_inspect(source: str, at: str | None, as_json: bool) -> None:
    """Show the allocation table, total supply and what each row has unlocked at a date."""
    g = load_genesis(source)
    doc = inspect_genesis(g, _parse_at(at))
    if as_json:
        print_json(doc)
        return
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(140, Console().width))
    month_days = g.params.month_s / 86400
    console.print(f"[bold]{g.chain_id}[/]  genesis hash {doc['genesis_hash']}")
    console.print(f"vesting starts {_dt.datetime.fromtimestamp(g.allocation_start, _dt.UTC):%Y-%m-%d %H:%M:%S} UTC;"
                  f" a month is {month_days:g} days; unlocks evaluated at {doc['at_utc']}")
    table = Table(title="allocation (NMT)")
    for col, just in (("row", "left"), ("amount", "right"), ("cliff (mo)", "right"), ("vesting (mo)", "right"),
                      ("unlocked", "right"), ("%", "right"), ("to", "left")):
        table.add_column(col, justify=just, no_wrap=True)
    for row in doc["rows"]:
        amount, got = int(row["amount"]), int(row["unlocked"])
        dest = row["destination"]
        table.add_row(row["name"], format_nmt(amount), str(row["cliff_months"]), str(row["vesting_months"]),
                      format_nmt(got), f"{100 * got / amount:.1f}" if amount else "-",
                      dest if dest.startswith("pool:") else dest[:14] + "...")
    console.print(table)
    if g.accounts:
        accounts = Table(title="genesis accounts (unlocked at genesis)")
        for col in ("address", "balance (NMT)", "label"):
            accounts.add_column(col, overflow="fold")
        for a in g.accounts:
            accounts.add_row(address_to_text(a.address), format_nmt(a.balance), a.label)
        console.print(accounts)
    if g.validators:
        for v in g.validators:
            console.print(f"validator {v.name or '-'}: {address_to_text(v.address)} stake {format_nmt(v.stake)} NMT")
    else:
        console.print("validators: none announced yet (a validator node cannot start on this genesis)")
    console.print(f"total supply     {format_nmt(int(doc['total_supply']))} NMT")
    console.print(f"unlocked at genesis (accounts + stakes) {format_nmt(int(doc['genesis_unlocked']))} NMT")
    console.print(f"unlocked from rows {format_nmt(int(doc['unlocked_total']))} NMT")
    console.print(f"circulating      {format_nmt(int(doc['circulating']))} NMT")
    defaults = job_params_to_plain(JobParams())
    changed = {k: v for k, v in doc["jobs"].items() if v != defaults[k]}
    console.print("jobs parameters (params.jobs): " + (", ".join(f"{k}={v}" for k, v in changed.items())
                                                       + " (the rest default)" if changed else "all default")
                  + "; --json lists them all")


# `mindnode genesis schedule` lives with the economics (issue 6) in its own module.
from mindnode.commands.schedule import schedule as _schedule  # noqa: E402

genesis.add_command(_schedule)
