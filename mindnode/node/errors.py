"""Domain exceptions of the node service (daemon, mempool, sync, HTTP API, RPC client).

Each carries a message a user can act on; the CLI prints it as one line. The HTTP API maps them
to status codes (`status` attribute) so the RPC client can re-raise the same class on the other side.
"""

from __future__ import annotations


class NodeError(Exception):
    """Base class of every node-service error."""

    status = 500


class NotFound(NodeError):
    """A block, transaction or account the caller asked for does not exist here."""

    status = 404


class BadRequest(NodeError):
    """The request itself is malformed (not hex, not msgpack, wrong parameter)."""

    status = 400


class TxRejected(NodeError):
    """The mempool refused a transaction (ledger rule, duplicate, low fee for a replacement, full)."""

    status = 422


class PayloadTooLarge(NodeError):
    """A request body or a network message is over its size bound."""

    status = 413


class RpcUnavailable(NodeError):
    """No node answers at the RPC URL (not started, wrong port, or shutting down)."""

    status = 503


class DatadirError(NodeError):
    """The data directory is missing, not initialised, or locked by another running node."""
