"""``mindnode rewards [ADDR]`` and ``mindnode rewards withdraw``: see and take what an address earned.

The node's ``GET /rewards/{addr}`` returns `ledger.economics.ledger_state.rewards_view` (accrued
mining, staking and utilisation rewards, withdrawable and withdrawn, per-day history; amounts as
decimal strings of base units) plus the provider's mining profile and hours online today. The
withdrawal is a `withdraw_rewards` transaction signed locally with the keystore key and submitted
like every ``mindnode tx`` command (`node_cmds._send`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from mindnode.cli_common import datadir_option, json_option
from mindnode.commands.node_cmds import (
    _client,
    _print_json,
    _resolve_address,
    _send,
    _tx_options,
    fmt_amount,
    rpc_option,
)
from mindnode.commands.tables import kv_table
from mindnode.node.errors import NodeError

#: Days of history shown by default (the chain keeps `accrual_history_days`, 30 by default).
DEFAULT_DAYS = 7


class _ShowByDefault(click.Group):
    """``mindnode rewards [ADDR] [--json]`` runs ``show``; a subcommand name runs that one."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ctx.help_option_names):
            args = ["show", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_ShowByDefault, context_settings={"help_option_names": ["-h", "--help"]})
def rewards() -> None:
    """Accrued mining, staking and utilisation rewards, and their withdrawal.

    `mindnode rewards [ADDR] [--json]` shows an address's rewards (default: the node key's);
    `mindnode rewards withdraw [--wait]` moves everything withdrawable to the balance.
    """


def _node_address(datadir: Path | None, key_name: str | None = None) -> str:
    from ledger.keys import address_to_text
    from mindnode.cli_common import datadir_from
    from mindnode.config import load_config

    dd = datadir_from(datadir)
    name = key_name or load_config(dd).node_key
    return address_to_text(dd.keystore.info(name).address)


@rewards.command()
@click.argument("address", required=False)
@click.option("--days", type=click.IntRange(1, 366), default=DEFAULT_DAYS, show_default=True,
              help="Days of history to show (the table; --json prints all the chain keeps).")
@rpc_option
@datadir_option
@json_option
def show(address: str | None, days: int, rpc_url: str | None, datadir: Path | None, as_json: bool) -> None:
    """Show ADDRESS's rewards (mn..., or a keystore key name) [default: the node key's address]."""
    address = _resolve_address(address, datadir) if address else _node_address(datadir)
    with _client(rpc_url, datadir) as c:
        r = c.rewards(address)
    if as_json:
        _print_json(r)
        return
    _print_rewards(r, days)


def _print_rewards(r: dict[str, Any], days: int) -> None:
    from rich.console import Console
    from rich.table import Table

    profile = r.get("profile")
    prof = "none (not a provider: no mining reward)" if profile is None else (
        f"{profile['hardware_class']}, {profile['bandwidth_kbps']} kbit/s (self-declared)")
    kv_table("rewards", [
        ("address", r["address"]),
        ("chain day", f"{r['day']} (hour {r['hour']} of 24; a day is {r['day_s']} s) at height {r['height']}"),
        ("provider", prof),
        ("hours online today", f"{r['hours_today']} (a day qualifies with more than {r['qualifying_hours']})"),
        ("mining", fmt_amount(r["mining"])),
        ("staking", fmt_amount(r["staking"]) + (f" (of which {fmt_amount(r['staking_unrealised'])} unrealised)"
                                                 if int(r["staking_unrealised"]) else "")),
        ("utilisation", fmt_amount(r["utilisation"])),
        ("withdrawable", fmt_amount(r["withdrawable"])),
        ("withdrawn so far", fmt_amount(r["withdrawn"])),
    ])
    hist = sorted(r.get("days", []), key=lambda d: d["day"])[-days:]
    if not hist:
        click.echo("no rewards credited yet (days are settled in the first block of the next day)")
        return
    t = Table(title=f"credited per day (last {len(hist)})", title_justify="left")
    for col in ("day", "mining", "staking", "utilisation"):
        t.add_column(col, justify="right" if col != "day" else "left")
    for d in hist:
        t.add_row(str(d["day"]), fmt_amount(d["mining"]), fmt_amount(d["staking"]), fmt_amount(d["utilisation"]))
    Console().print(t)


@rewards.command()
@_tx_options
def withdraw(**kw) -> None:
    """Move every withdrawable reward of the signing key's address to its balance
    (a `withdraw_rewards` transaction; staking rewards not yet realised are included)."""
    address = _node_address(kw["datadir"], kw["key_name"])
    with _client(kw["rpc_url"], kw["datadir"]) as c:
        before = c.rewards(address)
    if int(before["withdrawable"]) == 0:
        raise NodeError(f"{address} has no rewards to withdraw yet (see 'mindnode rewards {address}')")
    as_json = kw.pop("as_json")
    res = _send("withdraw_rewards", {}, as_json=False, quiet=True, **kw)
    if res.get("status") == "included":
        with _client(kw["rpc_url"], kw["datadir"]) as c:
            after = c.rewards(address)
        res["amount"] = str(int(after["withdrawn"]) - int(before["withdrawn"]))
    if as_json:
        _print_json(res)
        return
    if "amount" in res:
        click.echo(f"withdrew {fmt_amount(res['amount'])} in block {res['height']} (tx {res['hash']})")
    else:
        click.echo(f"withdraw_rewards {res['hash']} (pending; about {fmt_amount(before['withdrawable'])})")

