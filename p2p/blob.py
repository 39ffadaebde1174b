"""Content-addressed blobs and their exchange over ``/mindnode/blob/1.0.0``.

Ids are CIDv1, codec ``raw`` (0x55), multihash sha2-256, base32 lower-case with the ``b``
multibase prefix ("bafkrei..."), exactly what ``ipfs add --raw-leaves --cid-version 1`` prints
for a single-block file, so an id means the same thing to IPFS.

Why a manifest: the id hashes the *whole* blob, so a chunk cannot be checked against it alone.
A peer that has the blob answers ``manifest`` with the size, the chunk size and the sha256 of
every chunk.  The fetcher verifies each chunk against that manifest as it arrives (a peer that
sends a bad chunk is set aside at once and another peer serves that chunk), and the assembled
blob against the id at the end.  If the end check fails the manifest lied: its source is
penalised and the fetch restarts from another peer's manifest.  Peers whose chunks disagreed
with a manifest that turned out right are penalised too (corrupt data).

Resumable: chunks land in ``partial/<cid>.part`` next to the manifest used; a later fetch re-hashes
the partial file against the manifest and only requests the chunks that are missing or wrong.

Bounded memory: nothing here holds a whole blob. `BlobWriter` streams a new blob to a temp file
under ``blobs/`` with the whole-blob sha256 and the chunk hashes computed as the bytes go by, then
fsyncs and renames it into place (a reader never sees half a blob; a crash leaves only a temp file
that the next start removes); `BlobStore.iter_chunks` reads a stored blob back in chunks, checking
the id before it yields the last one; a fetch writes chunks straight into ``partial/<cid>.part``
and advances the whole-blob hash as they arrive (`_PrefixHash`), one fetch per id at a time.

Wire (request/response frames, msgpack for the small control requests only):
``{"op": "manifest", "cid": str}`` -> ``{"size": int, "chunk": int, "hashes": bytes}``;
``{"op": "chunk", "cid": str, "i": int}`` -> the raw chunk bytes.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import logging
import os
import secrets
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import msgpack
import trio

from p2p.errors import (
    BlobCorrupt,
    BlobError,
    BlobNotFound,
    BlobTooLarge,
    InvalidContentId,
    P2PError,
    PeerTimeout,
    ProtocolViolation,
    RemoteError,
)
from p2p.scoring import PENALTY_CORRUPT_DATA, PENALTY_PROTOCOL

if TYPE_CHECKING:
    from p2p.node import Node

log = logging.getLogger("mindnode.p2p")

BLOB_PROTOCOL = "/mindnode/blob/1.0.0"
CHUNK_BYTES = 1024 * 1024
MAX_BLOB_BYTES = 64 * 1024**3
_CID_PREFIX = bytes([0x01, 0x55, 0x12, 0x20])  # CIDv1, raw, sha2-256, 32-byte digest
_MAX_MANIFEST = 8 * 1024 * 1024


def cid_for_digest(digest: bytes) -> str:
    return "b" + base64.b32encode(_CID_PREFIX + digest).decode().lower().rstrip("=")


def cid_of(data: bytes | bytearray | memoryview) -> str:
    """The CIDv1 raw sha2-256 id of ``data``."""
    return cid_for_digest(hashlib.sha256(data).digest())


def digest_of_cid(cid: str) -> bytes:
    """The sha256 digest inside a CIDv1 raw sha2-256 id; ``InvalidContentId`` otherwise."""
    if not isinstance(cid, str) or not cid.startswith("b") or len(cid) != 59:
        raise InvalidContentId(f"{cid!r} is not a CIDv1 raw sha2-256 id (bafkrei...)")
    body = cid[1:].upper()
    try:
        raw = base64.b32decode(body + "=" * (-len(body) % 8))
    except Exception as exc:
        raise InvalidContentId(f"{cid!r} is not valid base32") from exc
    if len(raw) != 36 or not raw.startswith(_CID_PREFIX):
        raise InvalidContentId(f"{cid!r} is not a CIDv1 raw sha2-256 id")
    return raw[4:]


def _chunk_hashes(path: Path, chunk: int) -> bytes:
    out = bytearray()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            out += hashlib.sha256(block).digest()
    return bytes(out)


class BlobWriter:
    """A new blob written in pieces: ``write`` any number of times, then ``commit`` (returns the id)
    or ``abort``. Hashes (whole blob and per chunk) are computed incrementally, so neither the
    caller nor the store ever holds the blob; more than ``max_bytes`` raises `BlobTooLarge` (and
    the temp file is gone). Use it as a context manager: leaving the block without ``commit`` aborts.
    ``write`` does blocking file I/O: from trio, call it through ``trio.to_thread.run_sync``."""

    def __init__(self, store: BlobStore, max_bytes: int = MAX_BLOB_BYTES) -> None:
        self.store = store
        self.max_bytes = max_bytes
        self.size = 0
        self.tmp = store.blobs / f".upload.{secrets.token_hex(8)}.tmp"
        self._f = open(self.tmp, "wb")  # noqa: SIM115 - closed by commit/abort
        self._whole = hashlib.sha256()
        self._chunk = hashlib.sha256()
        self._in_chunk = 0
        self._hashes = bytearray()
        self.cid: str | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._f.closed:
            raise BlobError("blob writer is already closed")
        if self.size + len(data) > self.max_bytes:
            self.abort()
            raise BlobTooLarge(f"blob is over the {self.max_bytes}-byte limit")
        view = memoryview(data)
        self._f.write(view)
        self._whole.update(view)
        self.size += len(view)
        cb = self.store.chunk_bytes
        while len(view):
            take = min(cb - self._in_chunk, len(view))
            self._chunk.update(view[:take])
            self._in_chunk += take
            view = view[take:]
            if self._in_chunk == cb:
                self._hashes += self._chunk.digest()
                self._chunk, self._in_chunk = hashlib.sha256(), 0

    def commit(self, pin: str | None = None) -> str:
        """fsync, rename into the store (atomic), write the chunk-hash sidecar; returns the id.
        ``pin`` (a reason, e.g. "user") pins the blob *before* it enters the store, so a garbage
        collection running meanwhile can never take a fresh upload (p2p/blob_gc.py)."""
        if self._in_chunk:
            self._hashes += self._chunk.digest()
            self._in_chunk = 0
        self._f.flush()
        os.fsync(self._f.fileno())
        self._f.close()
        cid = cid_for_digest(self._whole.digest())
        if pin is not None:
            self.store.pin(cid, pin)
        if self.store.keep_existing(cid):
            self.tmp.unlink(missing_ok=True)
        else:
            self.store._commit(self.tmp, cid, bytes(self._hashes))
        self.cid = cid
        return cid

    def abort(self) -> None:
        if not self._f.closed:
            self._f.close()
        self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.cid is None:
            self.abort()


#: A blob's last use (its file's mtime) is refreshed at most this often (seconds): serving a blob
#: chunk by chunk must not cost a utime per chunk.
TOUCH_EVERY_S = 30.0


class BlobStore:
    """Blobs under ``root/blobs/<cid>``, each with a ``.chunks`` sidecar (chunk hashes).

    Bookkeeping for garbage collection (p2p/blob_gc.py), all crash-safe without an index file:
    * last use = the blob file's mtime, set explicitly (`touch`) on put, get, fetch and serve;
    * pins = ``root/pins/<cid>`` (content: the reason, e.g. "user"); a pinned blob is never evicted;
    * own = ``root/own/<cid>``: blobs this node produced (checkpoints, weights, evidence); the node
      decides how long to keep them (mindnode/node/blob_keep.py);
    * holds = in-memory reference counts of blobs being served or handed out right now (`hold`).
    Eviction renames the blob to a ``.*.tmp`` name first (atomic: it leaves the store at once; a
    reader holding it open still reads the whole inode), then unlinks the sidecar and the file.
    A crash at any point leaves either the intact blob or a temp file that the next start removes;
    a sidecar whose blob is gone is removed at start too."""

    def __init__(self, root: str | os.PathLike, chunk_bytes: int = CHUNK_BYTES) -> None:
        self.root = Path(root)
        self.chunk_bytes = chunk_bytes
        self.blobs = self.root / "blobs"
        self.partial = self.root / "partial"
        self.pins_dir = self.root / "pins"
        self.own_dir = self.root / "own"
        for d in (self.blobs, self.partial, self.pins_dir, self.own_dir):
            d.mkdir(parents=True, exist_ok=True)
        for stale in (*self.blobs.glob(".*.tmp"), *self.pins_dir.glob(".*.tmp")):   # a crash mid-write/eviction
            stale.unlink(missing_ok=True)
        for side in self.blobs.glob("*.chunks"):    # an eviction cut short after the blob went
            if not (self.blobs / side.name[: -len(".chunks")]).exists():
                side.unlink(missing_ok=True)
        self.lock = threading.Lock()                # pins, holds and evictions (threads and trio)
        self._holds: dict[str, int] = {}
        self._touched: dict[str, float] = {}

    # ------------------------------------------------------------------ use, pins, holds
    def touch(self, cid: str, force: bool = False) -> None:
        """Record a use of ``cid`` now (its mtime), at most every TOUCH_EVERY_S unless ``force``."""
        now = time.monotonic()
        if not force and now - self._touched.get(cid, -1e18) < TOUCH_EVERY_S:
            return
        self._touched[cid] = now
        if len(self._touched) > 4096:
            self._touched.clear()
        try:
            os.utime(self.path(cid))
        except FileNotFoundError:
            pass

    def keep_existing(self, cid: str) -> bool:
        """If ``cid`` is stored, record a use now and return True, atomically with respect to an
        eviction (which re-checks the last use under the same lock): a caller told True can rely on
        the blob staying for at least the collector's recent-use window."""
        with self.lock:
            try:
                os.utime(self.path(cid))
            except FileNotFoundError:
                return False
            self._touched[cid] = time.monotonic()
            return True

    def pin(self, cid: str, reason: str = "user") -> None:
        """Keep ``cid`` whatever the budget until `unpin` (it need not be stored yet)."""
        digest_of_cid(cid)
        with self.lock:
            tmp = self.pins_dir / f".{cid}.{secrets.token_hex(4)}.tmp"
            tmp.write_text(reason[:64])
            os.replace(tmp, self.pins_dir / cid)

    def unpin(self, cid: str) -> bool:
        """Drop the pin on ``cid``; False if it was not pinned."""
        digest_of_cid(cid)
        with self.lock:
            try:
                (self.pins_dir / cid).unlink()
                return True
            except FileNotFoundError:
                return False

    def pins(self) -> dict[str, str]:
        """Pinned ids -> reason."""
        out = {}
        for p in self.pins_dir.iterdir():
            if not p.name.startswith("."):
                try:
                    out[p.name] = p.read_text()
                except FileNotFoundError:
                    continue
        return out

    def mark_own(self, cid: str) -> None:
        """Record that this node produced ``cid`` (kept while its jobs need it: mindnode decides)."""
        (self.own_dir / cid).touch()

    def own(self) -> set[str]:
        return {p.name for p in self.own_dir.iterdir() if not p.name.startswith(".")}

    @contextmanager
    def hold(self, cid: str):
        """While inside, ``cid`` is not evicted (a serve or a hand-out in progress)."""
        with self.lock:
            self._holds[cid] = self._holds.get(cid, 0) + 1
        try:
            yield
        finally:
            with self.lock:
                n = self._holds.pop(cid) - 1
                if n:
                    self._holds[cid] = n

    def held(self) -> set[str]:
        with self.lock:
            return set(self._holds)

    def entries(self) -> list[tuple[str, int, float]]:
        """Every stored blob as (cid, bytes on disk incl. its sidecar, last use as a unix time)."""
        sizes: dict[str, int] = {}
        found: dict[str, tuple[int, float]] = {}
        with os.scandir(self.blobs) as it:
            for e in it:
                if e.name.startswith("."):
                    continue
                try:
                    st = e.stat()
                except FileNotFoundError:
                    continue
                if e.name.endswith(".chunks"):
                    sizes[e.name[: -len(".chunks")]] = st.st_size
                elif len(e.name) == 59:
                    found[e.name] = (st.st_size, st.st_mtime)
        return [(c, size + sizes.get(c, 0), mtime) for c, (size, mtime) in found.items()]

    def evict(self, cid: str, *, unused_since: float | None = None, protect: frozenset[str] | set[str] = frozenset()
              ) -> bool:
        """Remove ``cid`` unless it is pinned, held, in ``protect``, or used after ``unused_since``
        (a unix time: the last use the caller chose it by). All checked under the lock, so a pin,
        hold or use that comes first wins. True if it went."""
        path = self.path(cid)
        with self.lock:
            if cid in protect or cid in self._holds or (self.pins_dir / cid).exists():
                return False
            if time.monotonic() - self._touched.get(cid, -1e18) < TOUCH_EVERY_S:
                return False
            try:
                if unused_since is not None and path.stat().st_mtime > unused_since:
                    return False
                tmp = self.blobs / f".{cid}.evict.tmp"
                os.replace(path, tmp)
            except FileNotFoundError:
                return False
        (self.blobs / f"{cid}.chunks").unlink(missing_ok=True)
        (self.own_dir / cid).unlink(missing_ok=True)
        tmp.unlink(missing_ok=True)
        self._touched.pop(cid, None)
        return True

    def writer(self, max_bytes: int = MAX_BLOB_BYTES) -> BlobWriter:
        """A `BlobWriter` for a new blob of at most ``max_bytes``."""
        return BlobWriter(self, max_bytes)

    def size(self, cid: str) -> int:
        try:
            return self.path(cid).stat().st_size
        except FileNotFoundError as exc:
            raise BlobNotFound(f"blob {cid} is not in the local store") from exc

    def iter_chunks(self, cid: str, chunk: int = CHUNK_BYTES):
        """The stored blob in pieces of ``chunk`` bytes (blocking reads: wrap in a thread from trio).
        The whole-blob hash is checked before the last piece is yielded, so a blob damaged on disk
        is never delivered complete: `BlobCorrupt` is raised instead (the caller aborts the
        transfer and the receiver sees a short body)."""
        want = digest_of_cid(cid)
        h = hashlib.sha256()
        try:
            f = open(self.path(cid), "rb")  # noqa: SIM115 - closed below
        except FileNotFoundError as exc:
            raise BlobNotFound(f"blob {cid} is not in the local store") from exc
        self.touch(cid)
        with f:
            prev = f.read(chunk)
            while prev:
                nxt = f.read(chunk)
                h.update(prev)
                if not nxt and h.digest() != want:
                    raise BlobCorrupt(f"stored blob {cid} does not match its id (damaged on disk)")
                yield prev
                prev = nxt
            if h.digest() != want:         # the empty blob
                raise BlobCorrupt(f"stored blob {cid} does not match its id (damaged on disk)")

    def path(self, cid: str) -> Path:
        digest_of_cid(cid)
        return self.blobs / cid

    def has(self, cid: str) -> bool:
        return self.path(cid).is_file()

    def put(self, data: bytes | bytearray | memoryview) -> str:
        """Store ``data`` atomically (temp file, fsync, rename); returns its id."""
        cid = cid_of(data)
        if self.keep_existing(cid):
            return cid
        tmp = self.blobs / f".{cid}.{secrets.token_hex(4)}.tmp"
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        self._commit(tmp, cid)
        return cid

    def _commit(self, tmp: Path, cid: str, hashes: bytes | None = None) -> None:
        """Rename a complete, fsynced temp file into place; ``hashes`` (its chunk hashes at
        ``chunk_bytes``) saves re-reading it when the caller already has them."""
        if hashes is None:
            hashes = _chunk_hashes(tmp, self.chunk_bytes)
        side = self.blobs / f".{cid}.chunks.tmp"
        side.write_bytes(hashes)
        os.replace(side, self.blobs / f"{cid}.chunks")
        os.replace(tmp, self.blobs / cid)

    def remove(self, cid: str) -> None:
        """Forget a blob (a copy found damaged): it and its sidecar go; absent is fine."""
        (self.blobs / f"{cid}.chunks").unlink(missing_ok=True)
        (self.own_dir / cid).unlink(missing_ok=True)
        self.path(cid).unlink(missing_ok=True)

    def get(self, cid: str) -> bytes:
        try:
            data = self.path(cid).read_bytes()
            self.touch(cid)
            return data
        except FileNotFoundError as exc:
            raise BlobNotFound(f"blob {cid} is not in the local store") from exc

    def manifest(self, cid: str) -> tuple[int, int, bytes]:
        path = self.path(cid)
        try:
            size = path.stat().st_size
        except FileNotFoundError as exc:
            raise BlobNotFound(f"blob {cid} is not in the local store") from exc
        side = self.blobs / f"{cid}.chunks"
        if not side.is_file():
            side.write_bytes(_chunk_hashes(path, self.chunk_bytes))
        return size, self.chunk_bytes, side.read_bytes()

    def read_chunk(self, cid: str, index: int) -> bytes:
        size, chunk, _ = self.manifest(cid)
        if index < 0 or index * chunk >= size:
            raise BlobNotFound(f"blob {cid} has no chunk {index}")
        self.touch(cid)
        with open(self.path(cid), "rb") as f:
            f.seek(index * chunk)
            return f.read(chunk)


class BlobExchange:
    """Serve the local store and fetch missing blobs from peers (see the module docstring)."""

    def __init__(self, node: Node, root: str | os.PathLike, *, parallel: int = 4) -> None:
        self.node = node
        self.store = BlobStore(root)
        self.parallel = parallel
        self.chunks_served = 0
        self._fetching: dict[str, trio.Lock] = {}
        node.serve(BLOB_PROTOCOL, self._handle, max_request_bytes=256,
                   max_response_bytes=max(_MAX_MANIFEST, CHUNK_BYTES + 1024), request_timeout=10.0)

    # ------------------------------------------------------------------ server
    def _handle(self, request: bytes, from_peer: str) -> bytes:
        try:
            req = msgpack.unpackb(request, raw=False, strict_map_key=True)
            op, cid = req["op"], req["cid"]
        except Exception as exc:
            raise ProtocolViolation("malformed blob request") from exc
        if op == "manifest":
            size, chunk, hashes = self.store.manifest(cid)
            return msgpack.packb({"size": size, "chunk": chunk, "hashes": hashes})
        if op == "chunk":
            index = req.get("i")
            if not isinstance(index, int):
                raise ProtocolViolation("blob chunk request without an integer index")
            self.chunks_served += 1
            return self.store.read_chunk(cid, index)
        raise ProtocolViolation(f"unknown blob op {op!r}")

    # ------------------------------------------------------------------ client
    async def _manifest(self, peer: str, cid: str, timeout: float) -> tuple[int, int, bytes]:
        raw = await self.node.request(peer, BLOB_PROTOCOL, msgpack.packb({"op": "manifest", "cid": cid}),
                                      timeout)
        try:
            m = msgpack.unpackb(raw, raw=False)
            size, chunk, hashes = int(m["size"]), int(m["chunk"]), bytes(m["hashes"])
        except Exception as exc:
            self.node.report(peer, PENALTY_PROTOCOL, "malformed blob manifest")
            raise ProtocolViolation(f"{peer} sent a malformed manifest") from exc
        count = -(-size // chunk) if chunk > 0 else 0
        if not (0 <= size <= MAX_BLOB_BYTES and 4096 <= chunk <= 16 * 1024 * 1024 and len(hashes) == 32 * count):
            self.node.report(peer, PENALTY_PROTOCOL, "inconsistent blob manifest")
            raise ProtocolViolation(f"{peer} sent an inconsistent manifest for {cid}")
        return size, chunk, hashes

    async def fetch(self, cid: str, peers: list[str] | None = None, timeout: float = 120.0,
                    chunk_timeout: float = 10.0) -> Path:
        """Make ``cid`` available locally and return its path.

        Asks ``peers`` (default: every connected peer).  Raises ``InvalidContentId``,
        ``BlobNotFound`` (nobody reachable had it intact; a partial download is kept for the next
        attempt) or ``PeerTimeout`` (overall ``timeout``).
        """
        digest = digest_of_cid(cid)
        if self.store.keep_existing(cid):
            return self.store.path(cid)
        # one download per blob at a time: two writers of one partial file (a prefetch and a
        # training task asking for the same dataset) would rename it from under each other
        lock = self._fetching.setdefault(cid, trio.Lock())
        try:
            with trio.move_on_after(timeout) as waited:
                await lock.acquire()
            if waited.cancelled_caught:
                raise PeerTimeout(f"fetching {cid} did not finish within {timeout:g} s (another fetch holds it)")
            try:
                if self.store.keep_existing(cid):
                    return self.store.path(cid)
                return await self._fetch(cid, digest, peers, timeout, chunk_timeout)
            finally:
                lock.release()
        finally:
            if not lock.locked() and not lock.statistics().tasks_waiting:
                self._fetching.pop(cid, None)

    async def _fetch(self, cid: str, digest: bytes, peers: list[str] | None, timeout: float,
                     chunk_timeout: float) -> Path:
        candidates = [p for p in (peers if peers is not None else self.node.peers()) if p != self.node.peer_id]
        failures: list[str] = []
        with trio.move_on_after(timeout):
            manifest_sources = list(candidates)
            while manifest_sources:
                src = manifest_sources.pop(0)
                try:
                    manifest = await self._manifest(src, cid, chunk_timeout)
                except P2PError as exc:
                    failures.append(f"{src[-8:]}: {exc}")
                    continue
                try:
                    path = await self._download(cid, digest, manifest, src, candidates, chunk_timeout)
                    return path
                except BlobCorrupt as exc:
                    failures.append(f"{src[-8:]}: {exc}")
                    self.node.report(src, PENALTY_CORRUPT_DATA, f"manifest for {cid} does not match the id")
                    self._discard_partial(cid)
                except BlobNotFound as exc:
                    failures.append(str(exc))
            raise BlobNotFound(f"no reachable peer had blob {cid} intact ({'; '.join(failures) or 'no peers'})")
        raise PeerTimeout(f"fetching {cid} did not finish within {timeout:g} s (partial download kept)")

    def fetching(self) -> set[str]:
        """Ids being downloaded right now (their partial files must stay)."""
        return set(self._fetching)

    def _partial_paths(self, cid: str) -> tuple[Path, Path]:
        return self.store.partial / f"{cid}.part", self.store.partial / f"{cid}.manifest"

    def _discard_partial(self, cid: str) -> None:
        for p in self._partial_paths(cid):
            p.unlink(missing_ok=True)

    async def _download(self, cid: str, digest: bytes, manifest: tuple[int, int, bytes], src: str,
                        candidates: list[str], chunk_timeout: float) -> Path:
        part, mpath = self._partial_paths(cid)
        saved = mpath.read_bytes() if mpath.is_file() else None
        encoded = msgpack.packb(list(manifest))
        if saved is not None and saved != encoded:
            # a previous attempt used another manifest: keep its chunks only if they match ours
            log.info("blob %s: manifest changed since the partial download; re-verifying chunks", cid)
        size, chunk, hashes = manifest
        count = -(-size // chunk)
        fresh = not part.exists()
        if fresh:
            with open(part, "wb") as f:
                f.truncate(size)
        mpath.write_bytes(encoded)
        fd = os.open(part, os.O_RDWR)
        try:
            # a fresh partial file holds nothing: hashing its zeros would only cost a pass over it
            missing = list(range(count)) if fresh else [
                i for i in range(count) if not self._chunk_ok(fd, i, chunk, size, hashes)]
            log.info("blob %s: %d of %d chunks to fetch", cid, len(missing), count)
            whole = _PrefixHash(fd, count, chunk, size)
            whole.have(set(range(count)) - set(missing))
            suspects: set[str] = set()
            failed: dict[str, int] = {}
            pool = [p for p in candidates]
            todo = trio.open_memory_channel[int](count)
            for i in missing:
                todo[0].send_nowait(i)
            remaining = {"n": len(missing)}
            turn = itertools.count()
            errors: list[BlobNotFound] = []
            done = trio.Event()
            if not missing:
                done.set()

            async def worker(k: int) -> None:
                while not done.is_set():
                    try:
                        i = todo[1].receive_nowait()
                    except trio.WouldBlock:
                        return
                    while True:
                        live = [p for p in pool if p not in suspects]
                        if not live:
                            errors.append(BlobNotFound(f"every peer failed to serve chunk {i} of {cid}"))
                            done.set()
                            return
                        # round robin over one counter shared by the workers: with (i + k) the
                        # parity of chunk and worker lined up whenever trio ran the workers in
                        # reverse order, and every chunk went to the same peer
                        peer = live[next(turn) % len(live)]
                        try:
                            data = await self.node.request(
                                peer, BLOB_PROTOCOL, msgpack.packb({"op": "chunk", "cid": cid, "i": i}),
                                chunk_timeout)
                        except (RemoteError, P2PError) as exc:
                            log.warning("blob %s chunk %d from %s failed: %s", cid, i, peer, exc)
                            failed[peer] = failed.get(peer, 0) + 1
                            if (isinstance(exc, RemoteError) or failed[peer] >= 2) and peer in pool:
                                pool.remove(peer)  # it lacks the chunk, or failed twice: skip it
                            continue
                        want = min(chunk, size - i * chunk)
                        if len(data) != want or hashlib.sha256(data).digest() != hashes[32 * i : 32 * i + 32]:
                            log.warning("blob %s: chunk %d from %s does not match the manifest", cid, i, peer)
                            suspects.add(peer)
                            continue
                        os.pwrite(fd, data, i * chunk)
                        whole.have({i}, data)
                        remaining["n"] -= 1
                        if remaining["n"] == 0:
                            done.set()
                        break

            async with trio.open_nursery() as nursery:
                for k in range(self.parallel):
                    nursery.start_soon(worker, k)
            os.fsync(fd)
            if errors:
                raise errors[0]
        finally:
            os.close(fd)
        if whole.digest() != digest:
            raise BlobCorrupt(f"assembled blob does not hash to {cid}")
        for peer in suspects:
            self.node.report(peer, PENALTY_CORRUPT_DATA, f"served a corrupt chunk of {cid}")
        final = self.store.blobs / f".{cid}.{secrets.token_hex(4)}.tmp"
        os.replace(part, final)
        # every chunk was checked against the manifest and the whole against the id: its chunk
        # hashes are the sidecar when the chunk sizes agree (no third pass over the file)
        self.store._commit(final, cid, hashes if chunk == self.store.chunk_bytes else None)
        mpath.unlink(missing_ok=True)
        return self.store.path(cid)

    @staticmethod
    def _chunk_ok(fd: int, i: int, chunk: int, size: int, hashes: bytes) -> bool:
        want = min(chunk, size - i * chunk)
        data = os.pread(fd, want, i * chunk)
        return len(data) == want and hashlib.sha256(data).digest() == hashes[32 * i : 32 * i + 32]


class _PrefixHash:
    """The whole-blob sha256 of a download whose chunks land out of order, computed as they come:
    it advances over the longest run of chunks present from the start, hashing a chunk from the
    bytes just received when it is the next one, else re-reading it from the partial file (page
    cache) once the run reaches it. So the download needs no final pass over the whole file, and
    holds no chunk beyond the one in hand."""

    def __init__(self, fd: int, count: int, chunk: int, size: int) -> None:
        self.fd, self.count, self.chunk, self.size = fd, count, chunk, size
        self.present: set[int] = set()
        self.next = 0
        self.sha = hashlib.sha256()

    def have(self, indices: set[int], data: bytes | None = None) -> None:
        self.present |= indices
        while self.next < self.count and self.next in self.present:
            i = self.next
            if data is not None and indices == {i}:
                self.sha.update(data)
            else:
                self.sha.update(os.pread(self.fd, min(self.chunk, self.size - i * self.chunk), i * self.chunk))
            self.present.discard(i)
            self.next += 1

    def digest(self) -> bytes:
        if self.next != self.count:          # cannot happen once every chunk arrived
            raise BlobCorrupt(f"download ended with chunk {self.next} of {self.count} missing")
        return self.sha.digest()
