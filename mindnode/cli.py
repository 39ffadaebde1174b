"""The ``mindnode`` command line: one click group, subcommands loaded lazily, errors as one line.

Why lazy: ``mindnode keys list`` must not pay for importing torch or libp2p, so the group only
knows each subcommand's *import path* (`COMMANDS`) and imports the module when that command
runs (or when ``--help`` lists it). Command modules keep heavy imports inside their functions.

Adding a command (other rooms): write ``mindnode/cli_<name>.py`` (or ``mindnode/commands/...``)
with a ``@click.command()`` or ``@click.group()`` object and add one line to `COMMANDS`::

    "start": "mindnode.cli_node:start",

Errors: raise your room's domain exception (any subclass of the bases in `DOMAIN_ERRORS`, or a
``click.ClickException``). `MindnodeGroup.main` prints it as ONE line ``error: <message>`` on
stderr and exits 1 (usage errors 2, Ctrl-C 130); anything unexpected is an internal error, still
one line, with the traceback only when ``MINDNODE_DEBUG=1``.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys

import click

#: name -> "module:attribute" of a click command or group; imported only when needed.
COMMANDS: dict[str, str] = {
    "keys": "mindnode.cli_keys:keys",
    "genesis": "mindnode.cli_genesis:genesis",
    "init": "mindnode.cli_init:init",
    **{c: f"mindnode.commands.node_cmds:{c}" for c in ("start", "status", "block", "account", "tx", "devnet")},
    "rewards": "mindnode.commands.rewards_cmds:rewards",
    "job": "mindnode.commands.job_cmds:job",
    "provider": "mindnode.commands.job_cmds:provider",
    "bench": "mindnode.commands.bench_cmd:bench",
    "blob": "mindnode.commands.blob_cmds:blob",
}

#: Base classes of the rooms' domain errors, by dotted name. A module that was never imported
#: cannot have raised, so only already-imported modules are consulted (no import cost here).
DOMAIN_ERRORS: tuple[str, ...] = (
    "mindnode.errors:MindnodeError",
    "ledger.errors:LedgerError",
    "mindnode.node.errors:NodeError",
    "p2p.errors:P2PError",
    "trainer.errors:TrainerError",
)


def _domain_error_types() -> tuple[type, ...]:
    types = []
    for ref in DOMAIN_ERRORS:
        module_name, attr = ref.split(":")
        module = sys.modules.get(module_name)
        if module is not None and isinstance(getattr(module, attr, None), type):
            types.append(getattr(module, attr))
    return tuple(types)


def _one_line(text: str) -> str:
    return " ".join(str(text).split()) or "(no message)"


def _fail(message: str, code: int) -> None:
    click.echo(f"error: {_one_line(message)}", err=True)
    sys.exit(code)


class MindnodeGroup(click.Group):
    """A click group whose subcommands are imported on first use and whose errors are one line."""

    def __init__(self, *args, lazy: dict[str, str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self.lazy))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.lazy and name not in self.commands:
            module_name, attr = self.lazy[name].split(":")
            command = getattr(importlib.import_module(module_name), attr)
            self.add_command(command, name)
        return super().get_command(ctx, name)

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.NoArgsIsHelpError as exc:  # bare `mindnode keys`: show the help
            click.echo(exc.format_message())
            sys.exit(0)
        except click.UsageError as exc:
            hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
            _fail(exc.format_message() + hint, exc.exit_code)
        except click.ClickException as exc:
            _fail(exc.format_message(), exc.exit_code)
        except click.Abort:
            _fail("aborted", 1)
        except KeyboardInterrupt:
            _fail("interrupted", 130)
        except _domain_error_types() as exc:
            _fail(str(exc), 1)
        except OSError as exc:
            where = f": {exc.filename}" if exc.filename else ""
            _fail(f"{exc.strerror or exc}{where}", 1)
        except Exception as exc:  # a bug: still one line, traceback on request
            if os.environ.get("MINDNODE_DEBUG"):
                raise
            _fail(f"internal error: {type(exc).__name__}: {exc} (set MINDNODE_DEBUG=1 for a traceback)", 70)
        sys.exit(rv if isinstance(rv, int) else 0)


@click.group(name="mindnode", cls=MindnodeGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="warning",
              show_default=True, envvar="MINDNODE_LOG_LEVEL", help="Logging verbosity (stderr).")
@click.version_option(package_name="mindnode", prog_name="mindnode")
def cli(log_level: str) -> None:
    """mindnode: a peer-to-peer node that pools idle GPUs/CPUs for AI training, with its own
    Proof-of-Authority ledger.

    Start with `mindnode init --genesis devnet --datadir DIR`, then see each command's --help.
    """
    logging.basicConfig(level=getattr(logging, log_level.upper()),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point (``mindnode``)."""
    cli.main(args=argv, prog_name="mindnode")


if __name__ == "__main__":
    main()
