"""``mindnode blob put FILE`` and ``mindnode blob get CID -o FILE``: publish a file to the network
(a dataset, a base model to fine-tune) and fetch one by its content id; ``blob ls``, ``blob pin`` /
``unpin`` and ``blob gc`` manage the node's store under its budget (config.toml ``[blobs]
max_store_bytes``; the keep rule is in mindnode/node/blob_keep.py).

Why through the node's HTTP API: the node owns the blob store that its peers fetch from (the p2p
blob exchange), so ``put`` makes a file fetchable by every provider, and ``get`` lets the node find
the blob on any peer. Both stream in 1 MiB pieces (a multi-GB dataset never sits in memory), and
``get`` checks the bytes against the id before the file appears (`RpcClient.download_blob`).
The id is a CIDv1 (raw, sha2-256, ``bafkrei...``), the same one ``ipfs add --raw-leaves
--cid-version 1`` prints, and what a job spec's ``dataset`` / base model fields take.
"""

from __future__ import annotations

from pathlib import Path

import click

from mindnode.cli_common import datadir_option, json_option
from mindnode.commands.job_cmds import _client, _echo_json, rpc_option
from mindnode.errors import MindnodeError


@click.group()
def blob() -> None:
    """Content-addressed blobs: publish a file (dataset, base model), fetch one by its id, and
    manage the node's blob store (list, pin, unpin, collect)."""


def _check(cid: str) -> None:
    from ledger.jobs.cid import check_cid
    from ledger.jobs.errors import JobError

    try:
        check_cid(cid, "blob id")
    except JobError as exc:
        raise MindnodeError(str(exc)) from None


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


@blob.command("put")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path))
@click.option("--timeout", type=float, default=300.0, show_default=True,
              help="Seconds to wait for the node at each step of the upload.")
@rpc_option
@datadir_option
@json_option
def put(file: Path, timeout: float, rpc_url, datadir, as_json: bool) -> None:
    """Store FILE on the node as a blob its peers can fetch, and print its content id (CID).

    Use the id as a job spec's dataset or base model. Uploading the same bytes twice gives the
    same id and stores them once. The blob is pinned: it stays on the node, whatever the store's
    budget, until `mindnode blob unpin CID`."""
    with _client(rpc_url, datadir) as c:
        out = c.put_blob(file, timeout=timeout)
    if as_json:
        _echo_json({**out, "file": str(file)})
    else:
        click.echo(out["cid"])


@blob.command("get")
@click.argument("cid")
@click.option("-o", "--output", "out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="File to write the blob to (written only once it is complete and matches CID).")
@click.option("--force", is_flag=True, help="Replace OUTPUT if it exists.")
@click.option("--timeout", type=float, default=300.0, show_default=True,
              help="Seconds to wait for the node at each step (it may first fetch the blob from peers).")
@rpc_option
@datadir_option
@json_option
def get(cid: str, out: Path, force: bool, timeout: float, rpc_url, datadir, as_json: bool) -> None:
    """Download blob CID into OUTPUT through the node (which fetches it from any peer holding it)
    and check it against CID. A broken or mismatching download leaves no file behind."""
    _check(cid)
    if out.exists() and not force:
        raise MindnodeError(f"{out} exists; pass --force to replace it")
    if not out.parent.is_dir():
        raise MindnodeError(f"directory {out.parent} does not exist")
    with _client(rpc_url, datadir) as c:
        size = c.download_blob(cid, out, timeout=timeout)
    if as_json:
        _echo_json({"cid": cid, "size": size, "file": str(out)})
    else:
        click.echo(f"wrote {out} ({size} bytes, id {cid} checked)")


@blob.command("ls")
@rpc_option
@datadir_option
@json_option
def ls(rpc_url, datadir, as_json: bool) -> None:
    """List the blobs the node stores, most recently used first: id, size, pinned, the job that
    still needs it, last use; and the store's size against its budget."""
    import datetime

    with _client(rpc_url, datadir) as c:
        out = c.blobs()
    if as_json:
        _echo_json(out)
        return
    from mindnode.commands.tables import grid

    grid(f"blob store: {_size(out['used'])} of {_size(out['budget'])}", ("cid", "size", "pinned", "job", "last used"),
         [(b["cid"], _size(b["size"]), "yes" if b["pinned"] else "", "" if b["job"] is None else b["job"],
           datetime.datetime.fromtimestamp(b["last_used"]).strftime("%Y-%m-%d %H:%M:%S")) for b in out["blobs"]])


@blob.command("pin")
@click.argument("cid")
@rpc_option
@datadir_option
@json_option
def pin(cid: str, rpc_url, datadir, as_json: bool) -> None:
    """Pin blob CID on the node: it stays whatever the store's budget, until `blob unpin`."""
    _check(cid)
    with _client(rpc_url, datadir) as c:
        out = c.blob_pin(cid, True)
    _echo_json(out) if as_json else click.echo(f"pinned {cid}")


@blob.command("unpin")
@click.argument("cid")
@rpc_option
@datadir_option
@json_option
def unpin(cid: str, rpc_url, datadir, as_json: bool) -> None:
    """Unpin blob CID: the node may evict it once its store is over budget (least recently used
    first), unless one of its jobs still needs it. Fails if CID is not pinned."""
    _check(cid)
    with _client(rpc_url, datadir) as c:
        out = c.blob_pin(cid, False)
    _echo_json(out) if as_json else click.echo(f"unpinned {cid}")


@blob.command("gc")
@click.option("--timeout", type=float, default=300.0, show_default=True,
              help="Seconds to wait for the node to finish the collection.")
@rpc_option
@datadir_option
@json_option
def gc(timeout: float, rpc_url, datadir, as_json: bool) -> None:
    """Collect now: evict unpinned blobs no job of the node needs, least recently used first, until
    the store is within its budget (config.toml [blobs] max_store_bytes), and print what was freed."""
    with _client(rpc_url, datadir) as c:
        out = c.blob_gc(timeout=timeout)
    if as_json:
        _echo_json(out)
        return
    for b in out["freed"]:
        click.echo(f"freed {b['cid']} ({_size(b['size'])})")
    click.echo(f"freed {_size(out['freed_bytes'])} in {len(out['freed'])} blobs"
               + (f" and {_size(out['partial_freed_bytes'])} of abandoned downloads" if out["partial_freed_bytes"] else "")
               + f"; store holds {_size(out['after'])} of {_size(out['budget'])}")
    if out["over_budget"]:
        click.echo("still over budget: the rest is pinned, needed by jobs or in use "
                   "(`mindnode blob ls`, `mindnode blob unpin CID`)", err=True)
