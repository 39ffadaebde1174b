"""`mindnode start`: load the data directory, open the chain, run the node service under trio,
and stop cleanly on Ctrl-C / SIGTERM.

Why a separate module: the click command stays import-light, and the shutdown dance lives in one
place. SIGTERM and SIGINT both cancel the root nursery (trio.open_signal_receiver), so every task
unwinds through its `finally` blocks, the HTTP server drains, libp2p closes its listeners and the
LevelDB store is closed last -- no traceback, exit status 0. A second signal while stopping exits
at once (status 130).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from pathlib import Path

import trio

from mindnode.config import DEFAULT_MAX_STORE_BYTES, DataDir, load_config, load_key, load_node_genesis
from mindnode.node.errors import DatadirError

log = logging.getLogger("mindnode.node")


def _lock_datadir(dd: DataDir):
    """One node per data directory: an exclusive flock on DATADIR/node.lock (released by the OS
    even after SIGKILL, so a crashed node never leaves a stale lock)."""
    import fcntl

    f = open(dd.root / "node.lock", "a+")  # noqa: SIM115 - held for the process lifetime
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.close()
        raise DatadirError(f"{dd.root} is in use by another running mindnode (node.lock is held)") from None
    f.seek(0)
    f.truncate()
    f.write(f"{os.getpid()}\n")
    f.flush()
    return f


def run_node(dd: DataDir, *, validator: bool, listen: list[str], bootnodes: list[str] | None,
             rpc_host: str | None, rpc_port: int | None, log_format: str, password_file: Path | None,
             status_line: bool, provide: bool = True, hardware_class: str | None = None,
             bandwidth_kbps: int | None = None) -> None:
    from mindnode.node.chain import Chain
    from mindnode.node.service import NodeOptions, setup_logging

    setup_logging(log_format)
    cfg = load_config(dd)
    genesis = load_node_genesis(dd)
    classes = [c.name for c in genesis.params.hardware_classes]
    if hardware_class is not None and hardware_class not in classes:
        from mindnode.errors import ConfigError

        raise ConfigError(f"--hardware-class {hardware_class!r} is not a hardware class of {genesis.chain_id} "
                          f"(one of: {', '.join(classes)})")
    store_key = dd.keystore
    password = None
    if store_key.needs_password(cfg.node_key):
        from mindnode.cli_common import read_password

        password = read_password(password_file)
    key = load_key(dd, password)
    lock = _lock_datadir(dd)
    chain = Chain.open(str(dd.chain_dir), genesis)
    opts = NodeOptions(
        datadir=str(dd.root), validator=validator,
        listen=listen or list(cfg.p2p_listen),
        bootnodes=cfg.bootnodes if bootnodes is None else bootnodes,
        rpc_host=rpc_host or cfg.api_host, rpc_port=cfg.api_port if rpc_port is None else rpc_port,
        status_line=status_line, provide=provide, hardware_class=hardware_class, bandwidth_kbps=bandwidth_kbps,
        max_blob_upload_bytes=_max_upload(cfg),
        max_blob_store_bytes=_blob_setting(cfg, "max_store_bytes", DEFAULT_MAX_STORE_BYTES),
        blob_recent_s=float(_blob_setting(cfg, "recent_seconds", 600, allow_zero=True)),
    )
    try:
        trio.run(_main, chain, key, opts)
    except BaseExceptionGroup as group:
        raise _one_error(group, opts) from None
    finally:
        chain.close()
        lock.close()
    log.info("node stopped", extra={"event": "stopped"})


def _max_upload(cfg) -> int:
    """config.toml ``[blobs] max_upload_bytes`` (a positive integer), else the default."""
    from mindnode.errors import ConfigError
    from mindnode.node.service import DEFAULT_MAX_BLOB_UPLOAD

    value = cfg.tables.get("blobs", {}).get("max_upload_bytes", DEFAULT_MAX_BLOB_UPLOAD)
    if type(value) is not int or value <= 0:
        raise ConfigError(f"config.toml: blobs.max_upload_bytes must be a positive integer, got {value!r}")
    return value


def _blob_setting(cfg, name: str, default: int, allow_zero: bool = False) -> int:
    """config.toml ``[blobs] NAME`` (a non-negative integer; positive unless ``allow_zero``)."""
    from mindnode.errors import ConfigError

    value = cfg.tables.get("blobs", {}).get(name, default)
    if type(value) is not int or value < 0 or (value == 0 and not allow_zero):
        raise ConfigError(f"config.toml: blobs.{name} must be a {'non-negative' if allow_zero else 'positive'} "
                          f"integer, got {value!r}")
    return value


async def _main(chain, key, opts) -> None:
    from mindnode.node.service import NodeService

    node = NodeService(chain, key, opts)
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            async def _watch() -> None:
                async for sig in signals:
                    log.info("stopping on %s", signal.Signals(sig).name)
                    nursery.cancel_scope.cancel()
                    break
                async for _ in signals:  # a second signal: give up on graceful shutdown
                    sys.stderr.write("stopping now\n")
                    os._exit(130)

            nursery.start_soon(_watch)
            await nursery.start(node.run)


def _leaves(exc: BaseException):
    if isinstance(exc, BaseExceptionGroup):
        for e in exc.exceptions:
            yield from _leaves(e)
    else:
        yield exc


def _one_error(group: BaseExceptionGroup, opts) -> BaseException:
    """Turn what a task group raised into the one error the CLI prints: a port already in use is a
    user problem with a clear fix; anything else stays as it was (an internal error)."""
    leaves = list(_leaves(group))
    for exc in leaves:
        if isinstance(exc, KeyboardInterrupt):
            return exc
    for exc in leaves:
        text = str(exc)
        if isinstance(exc, OSError) or "Address already in use" in text or "address already in use" in text:
            return DatadirError(f"cannot listen (HTTP API {opts.rpc_host}:{opts.rpc_port}, p2p {', '.join(opts.listen)}): "
                                f"{exc.strerror if isinstance(exc, OSError) and exc.strerror else text}; "
                                "is another node running? choose other ports with --rpc / --listen")
    return leaves[0] if len(leaves) == 1 else group
