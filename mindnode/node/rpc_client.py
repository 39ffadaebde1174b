"""A small synchronous client of the node's HTTP API, used by the CLI, the devnet launcher,
benchmarks and end-to-end tests.

Why synchronous httpx: the CLI makes one or two requests and exits; an event loop buys nothing.
Errors come back as the same `NodeError` subclasses the server raised (by the ``error`` field), and a
node that does not answer is an `RpcUnavailable` with the URL in the message.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from mindnode.node import errors

#: Blobs move in pieces of this size (upload reads, download writes): memory stays bounded.
BLOB_PIECE = 1024 * 1024

_BY_NAME = {cls.__name__: cls for cls in (
    errors.NotFound, errors.BadRequest, errors.TxRejected, errors.PayloadTooLarge, errors.RpcUnavailable,
)}


class RpcClient:
    def __init__(self, url: str, timeout: float = 10.0):
        if "://" not in url:
            url = "http://" + url
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RpcClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        try:
            resp = self._http.request(method, path, **kw)
        except httpx.TransportError as exc:
            raise errors.RpcUnavailable(f"no mindnode answers at {self.url} ({type(exc).__name__}); "
                                        "is the node running? (mindnode start, or pass --rpc URL)") from None
        if resp.status_code >= 400:
            self._raise_for(resp, path)
        if path == "/metrics":
            return resp.text
        return resp.json()

    def get_bytes(self, path: str, timeout: float | None = None) -> bytes:
        """A binary GET (blobs); errors as for JSON calls."""
        try:
            resp = self._http.get(path, timeout=timeout if timeout is not None else self._http.timeout)
        except httpx.TransportError as exc:
            raise errors.RpcUnavailable(f"no mindnode answers at {self.url} ({type(exc).__name__})") from None
        if resp.status_code >= 400:
            return self._call("GET", path)     # raises the node's error
        return resp.content

    def put_blob(self, path: str | os.PathLike, timeout: float | None = None) -> dict[str, Any]:
        """Upload a file as a blob (streamed in pieces, never read whole); returns {cid, size}."""
        size = os.path.getsize(path)

        def pieces() -> Iterator[bytes]:
            with open(path, "rb") as f:
                while piece := f.read(BLOB_PIECE):
                    yield piece

        return self._call("POST", "/blobs", content=pieces(), timeout=timeout or self._http.timeout,
                          headers={"content-type": "application/octet-stream", "content-length": str(size)})

    def download_blob(self, cid: str, dest: str | os.PathLike, timeout: float | None = None) -> int:
        """Stream blob `cid` into `dest`, checking it against the id; returns its size.

        Written to a temp file beside `dest` and renamed only once every byte arrived and the hash
        matches, so `dest` is either the whole blob or untouched: a cut connection, a node that
        sent other bytes or a Ctrl-C leaves no partial file."""
        from p2p.blob import cid_for_digest

        dest = Path(dest)
        tmp = dest.parent / f".{dest.name}.{secrets.token_hex(4)}.part"
        try:
            with self._http.stream("GET", f"/blobs/{cid}", timeout=timeout or self._http.timeout) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    self._raise_for(resp, f"/blobs/{cid}")
                h, n = hashlib.sha256(), 0
                with open(tmp, "wb") as f:
                    for piece in resp.iter_bytes(BLOB_PIECE):
                        f.write(piece)
                        h.update(piece)
                        n += len(piece)
                    f.flush()
                    os.fsync(f.fileno())
            if cid_for_digest(h.digest()) != cid:
                raise errors.NodeError(f"the node sent {n} bytes that do not match {cid}: not written")
            os.replace(tmp, dest)
            return n
        except httpx.TransportError as exc:
            raise errors.NodeError(f"download of {cid} from {self.url} broke off ({type(exc).__name__}: {exc}); "
                                   "nothing was written") from None
        finally:
            tmp.unlink(missing_ok=True)

    def blobs(self) -> dict[str, Any]:
        """The node's stored blobs and its budget (`GET /blobs`)."""
        return self._call("GET", "/blobs")

    def blob_gc(self, timeout: float | None = None) -> dict[str, Any]:
        """Run the blob collection now (`POST /blobs/gc`); returns what was freed."""
        return self._call("POST", "/blobs/gc", timeout=timeout or self._http.timeout)

    def blob_pin(self, cid: str, pinned: bool = True) -> dict[str, Any]:
        """Pin (or unpin) a blob on the node."""
        return self._call("POST" if pinned else "DELETE", f"/blobs/{cid}/pin")

    def _raise_for(self, resp: httpx.Response, path: str) -> None:
        try:
            body = resp.json()
        except ValueError:
            raise errors.NodeError(f"{self.url}{path}: HTTP {resp.status_code}: {resp.text[:200]}") from None
        raise _BY_NAME.get(body.get("error"), errors.NodeError)(body.get("message") or resp.text)

    def status(self) -> dict[str, Any]:
        return self._call("GET", "/status")

    def block(self, ref: int | str) -> dict[str, Any]:
        return self._call("GET", f"/blocks/{ref}")

    def account(self, address: str) -> dict[str, Any]:
        return self._call("GET", f"/accounts/{address}")

    def validators(self) -> dict[str, Any]:
        return self._call("GET", "/validators")

    def rewards(self, address: str) -> dict[str, Any]:
        return self._call("GET", f"/rewards/{address}")

    def peers(self) -> list[dict[str, Any]]:
        return self._call("GET", "/peers")

    def submit_tx(self, raw: bytes) -> dict[str, Any]:
        return self._call("POST", "/txs", content=raw, headers={"content-type": "application/msgpack"})

    def tx(self, tx_hash: str) -> dict[str, Any]:
        return self._call("GET", f"/txs/{tx_hash}")

    def metrics(self) -> str:
        return self._call("GET", "/metrics")

    def debug(self, action: str, arg: str = "") -> dict[str, Any]:
        return self._call("POST", f"/debug/{action}", params={"arg": arg})

    def wait_tx(self, tx_hash: str, timeout: float = 30.0) -> dict[str, Any]:
        """Poll until the transaction is in a block; a timeout is a NodeError naming the hash."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                info = self.tx(tx_hash)
                if info.get("status") == "included":
                    return info
            except errors.NotFound:
                pass
            if time.monotonic() > deadline:
                raise errors.NodeError(f"transaction {tx_hash} not included within {timeout:.0f} s")
            time.sleep(0.2)
