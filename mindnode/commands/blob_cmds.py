"""``mindnode blob put FILE`` and ``mindnode blob get CID -o FILE``: publish a file to the network
(a dataset, a base model to fine-tune) and fetch one by its content id.

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
    """Content-addressed blobs: publish a file (dataset, base model) and fetch one by its id."""


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
    same id and stores them once."""
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
    from ledger.jobs.cid import check_cid
    from ledger.jobs.errors import JobError

    try:
        check_cid(cid, "blob id")
    except JobError as exc:
        raise MindnodeError(str(exc)) from None
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
