"""Range sync over ``/mindnode/sync/1.0.0``: how a node that is behind (joined late, restarted,
healed from a partition) catches up from its peers, verifying every block it imports.

Wire format (canonical msgpack via `ledger.codec.pack_plain`/`unpack_plain`, size-bounded):
* request  ``{"op": "head"}``                      -> ``{"height": int, "hash": bytes, "finalized": int}``
* request  ``{"op": "blocks", "from": h, "count": n}`` -> ``{"blocks": [encoded block, ...]}``
  (at most `MAX_BLOCKS_PER_REQUEST` blocks and `MAX_RESPONSE_BYTES` bytes, heights h, h+1, ...)
* request  ``{"op": "hash", "height": h}``           -> ``{"hash": bytes | None}``  (common-ancestor search)

A peer that answers garbage or a block that fails verification ends that sync round; the next
round (every second while behind) picks a peer again.
"""

from __future__ import annotations

from typing import Any

from ledger.codec import pack_plain, unpack_plain

PROTOCOL = "/mindnode/sync/1.0.0"
MAX_BLOCKS_PER_REQUEST = 64
MAX_RESPONSE_BYTES = 8 * 1024 * 1024


class SyncProtocolError(Exception):
    """A peer's sync answer is malformed."""


def encode_request(op: str, **fields: Any) -> bytes:
    return pack_plain({"op": op, **fields})


def decode(data: bytes, max_size: int = MAX_RESPONSE_BYTES + 65536) -> dict[str, Any]:
    try:
        obj = unpack_plain(data, max_size=max_size)
    except Exception as exc:
        raise SyncProtocolError(f"malformed sync message: {exc}") from None
    if not isinstance(obj, dict):
        raise SyncProtocolError("sync message is not a map")
    return obj


def want_int(obj: dict[str, Any], key: str, lo: int = 0, hi: int = 2**63) -> int:
    v = obj.get(key)
    if type(v) is not int or not lo <= v <= hi:
        raise SyncProtocolError(f"sync field {key!r} must be an integer in [{lo}, {hi}]")
    return v


def encode_blocks(blobs: list[bytes]) -> bytes:
    out: list[bytes] = []
    size = 0
    for b in blobs[:MAX_BLOCKS_PER_REQUEST]:
        if size + len(b) > MAX_RESPONSE_BYTES and out:
            break
        out.append(b)
        size += len(b)
    return pack_plain({"blocks": out})


def decode_blocks(data: bytes) -> list[bytes]:
    obj = decode(data)
    blocks = obj.get("blocks")
    if not isinstance(blocks, list) or len(blocks) > MAX_BLOCKS_PER_REQUEST or \
            any(type(b) is not bytes for b in blocks):
        raise SyncProtocolError("sync 'blocks' answer must be a list of at most "
                                f"{MAX_BLOCKS_PER_REQUEST} byte strings")
    return blocks
