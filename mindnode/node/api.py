"""The node's HTTP API: FastAPI (automatic OpenAPI at /openapi.json) served by hypercorn on trio.

Why this stack: the daemon is trio throughout, and hypercorn is the well-kept ASGI server with a
trio worker, so the API runs in the node's own event loop and reads its state directly (no
threads, no locks). FastAPI gives typed routes and the OpenAPI document for free.

The API is a thin view: every route calls one method of a `NodeView` (the node service implements
it) and returns what it returns. Errors are `mindnode.node.errors.NodeError`s mapped to status
codes, with a JSON body ``{"error": kind, "message": text}`` the RPC client turns back into the same
exception. Request bodies are bounded (`MAX_BODY`) before they are parsed; the server binds to
127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import trio
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from mindnode.node import errors
from mindnode.node.metrics import CONTENT_TYPE, NodeMetrics

log = logging.getLogger("mindnode.node")

#: A signed transaction is bounded by the ledger (64 KiB); hex doubles it, JSON adds a little.
MAX_BODY = 256 * 1024


class NodeView(Protocol):
    """What the HTTP API needs from a running node. Every method returns JSON-ready data."""

    metrics: NodeMetrics

    def status(self) -> dict[str, Any]: ...
    def block(self, ref: str) -> dict[str, Any]: ...
    def account(self, address: str) -> dict[str, Any]: ...
    def validators(self) -> dict[str, Any]: ...
    def peers(self) -> list[dict[str, Any]]: ...
    async def submit_tx(self, raw: bytes) -> dict[str, Any]: ...
    def tx(self, tx_hash: str) -> dict[str, Any]: ...
    def debug_action(self, action: str, arg: str) -> dict[str, Any]: ...
    def rewards(self, address: str) -> dict[str, Any]: ...


async def _read_body(request: Request) -> bytes:
    """Read at most MAX_BODY bytes; more is a 413 before anything is parsed."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > MAX_BODY:
                raise errors.PayloadTooLarge(f"request body of {declared} bytes is over the {MAX_BODY}-byte limit")
        except ValueError:
            raise errors.BadRequest("content-length is not a number") from None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise errors.PayloadTooLarge(f"request body is over the {MAX_BODY}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


def decode_tx_body(body: bytes, content_type: str) -> bytes:
    """A signed transaction arrives as raw msgpack (application/msgpack), as hex text, or as
    JSON ``{"tx": "<hex>"}``; all three give the canonical bytes the ledger decodes."""
    import json

    ctype = content_type.split(";")[0].strip().lower()
    if ctype in ("application/msgpack", "application/x-msgpack", "application/octet-stream"):
        if not body:
            raise errors.BadRequest("empty transaction body")
        return body
    text = body.decode("ascii", errors="replace").strip()
    if ctype == "application/json":
        try:
            obj = json.loads(text)
        except ValueError:
            raise errors.BadRequest("body is not JSON; send {\"tx\": \"<hex>\"}") from None
        if not isinstance(obj, dict) or not isinstance(obj.get("tx"), str):
            raise errors.BadRequest("JSON body must be {\"tx\": \"<hex of the signed transaction>\"}")
        text = obj["tx"]
    if text.startswith("0x"):
        text = text[2:]
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise errors.BadRequest("transaction is not hex (or send raw msgpack as application/msgpack)") from None
    if not raw:
        raise errors.BadRequest("empty transaction body")
    return raw


def create_app(node: NodeView, *, debug_routes: bool = False) -> FastAPI:
    """The ASGI app over `node`. `debug_routes` adds the test-only fault routes (see faults.py)."""
    app = FastAPI(
        title="mindnode",
        description="HTTP API of a Mind Node: chain status, blocks, accounts, validators, peers, transactions.",
        version="1",
    )

    @app.exception_handler(errors.NodeError)
    async def _node_error(_request: Request, exc: errors.NodeError) -> JSONResponse:
        # An oversized body is left unread: tell the client this connection is done.
        headers = {"connection": "close"} if isinstance(exc, errors.PayloadTooLarge) else None
        return JSONResponse({"error": type(exc).__name__, "message": str(exc)}, status_code=exc.status,
                            headers=headers)

    @app.get("/status", summary="Chain head, finality, peers and this node's identity")
    async def status() -> dict[str, Any]:
        return node.status()

    @app.get("/blocks/{ref}", summary="A block by height, by 0x-hash, or 'head' / 'finalized'")
    async def block(ref: str) -> dict[str, Any]:
        return node.block(ref)

    @app.get("/accounts/{address}", summary="Balance, nonce and stake of an account (mn... address)")
    async def account(address: str) -> dict[str, Any]:
        return node.account(address)

    @app.get("/validators", summary="The active validator set (top by stake) and candidates")
    async def validators() -> dict[str, Any]:
        return node.validators()

    @app.get("/peers", summary="Connected peers")
    async def peers() -> list[dict[str, Any]]:
        return node.peers()

    @app.get("/rewards/{address}", summary="Accrued mining, staking and utilisation rewards of an address, "
             "per recent day, and what is withdrawable (amounts: decimal strings of base units)")
    async def rewards(address: str) -> dict[str, Any]:
        return node.rewards(address)

    @app.post("/txs", summary="Submit a signed transaction (msgpack body, hex text, or JSON {tx: hex})")
    async def submit(request: Request) -> dict[str, Any]:
        body = await _read_body(request)
        raw = decode_tx_body(body, request.headers.get("content-type", "text/plain"))
        return await node.submit_tx(raw)

    @app.get("/txs/{tx_hash}", summary="A transaction by hash: pending in the mempool or included in a block")
    async def tx(tx_hash: str) -> dict[str, Any]:
        return node.tx(tx_hash)

    @app.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def metrics() -> Response:
        return Response(node.metrics.render(), media_type=CONTENT_TYPE)

    if debug_routes:
        # TEST-ONLY (MINDNODE_TEST_FAULTS set): lets e2e tests cut links to simulate partitions.
        @app.post("/debug/{action}", include_in_schema=False)
        async def debug(action: str, arg: str = "") -> dict[str, Any]:
            return node.debug_action(action, arg)

    return app


async def serve_api(
    node: NodeView,
    host: str,
    port: int,
    *,
    debug_routes: bool = False,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
    shutdown_trigger: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Serve the API until cancelled; `task_status.started` gets the bound URLs."""
    from hypercorn.config import Config
    from hypercorn.trio import serve

    config = Config()
    config.bind = [f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = logging.getLogger("mindnode.node.http")
    config.h11_max_incomplete_size = 16 * 1024   # request line + headers
    config.keep_alive_timeout = 30
    config.graceful_timeout = 1.0
    config.startup_timeout = 10
    app = create_app(node, debug_routes=debug_routes)
    extend = getattr(node, "extend_app", None)     # further rooms' routes (jobs), if the node has them
    if extend is not None:
        extend(app)
    await serve(app, config, shutdown_trigger=shutdown_trigger or trio.sleep_forever, task_status=task_status)
