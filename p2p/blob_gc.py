"""Keep a `BlobStore` under a size budget: evict unpinned blobs, least recently used first.

Why here and not in the node: the mechanics (what is stored, when it was last used, what is pinned
or being served, removing a blob so that a crash never leaves half of it) are about bytes on disk.
*Which* blobs a node's jobs still need is the caller's business (mindnode/node/blob_keep.py passes
them in as ``keep``), so this module knows nothing of chains or jobs.

Never evicted: pinned blobs (``store.pin``), blobs held right now (``store.hold``: a serve in
progress), blobs in ``keep``, and blobs used within ``recent_s`` seconds (a fetch that just
returned a path, a blob just written: the window covers the moment between "it is here" and the
caller opening it). Blobs being downloaded live in ``partial/`` and are not in the store until
complete, so a collection cannot touch them; a partial download nobody is fetching and that has
not changed for ``partial_max_age_s`` is removed (an abandoned prefetch must not hold disk forever).

Cost: under budget, one ``scandir`` of the store (a stat per file) and nothing else; the caller's
``keep`` is only computed when the store is over budget (``keep`` may be a callable for that).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from p2p.blob import BlobStore

log = logging.getLogger("mindnode.p2p")

#: Blobs used within this many seconds are never evicted.
DEFAULT_RECENT_S = 600.0
#: An abandoned partial download is removed after this long without a change.
DEFAULT_PARTIAL_MAX_AGE_S = 24 * 3600.0


@dataclass
class GcReport:
    """What one collection did: ``freed`` = [(cid, bytes)], in eviction order."""

    budget: int
    before: int                      # bytes the store held when the collection started
    after: int                       # bytes it holds now
    freed: list[tuple[str, int]] = field(default_factory=list)
    partial_freed: int = 0           # bytes of abandoned partial downloads removed
    protected: int = 0               # bytes that could not go (pinned, needed, held, recent)

    @property
    def over_budget(self) -> bool:
        return self.after > self.budget

    def to_json(self) -> dict:
        return {"budget": self.budget, "before": self.before, "after": self.after,
                "freed_bytes": sum(n for _, n in self.freed), "freed": [{"cid": c, "size": n} for c, n in self.freed],
                "partial_freed_bytes": self.partial_freed, "protected_bytes": self.protected,
                "over_budget": self.over_budget}


def usage(store: BlobStore) -> int:
    """Bytes the stored blobs and their sidecars take."""
    return sum(size for _, size, _ in store.entries())


def collect(store: BlobStore, budget: int, *, keep: Iterable[str] | Callable[[], Iterable[str]] = (),
            recent_s: float = DEFAULT_RECENT_S, fetching: Iterable[str] = (),
            partial_max_age_s: float = DEFAULT_PARTIAL_MAX_AGE_S, now: float | None = None) -> GcReport:
    """Evict blobs until the store is within ``budget`` bytes (or nothing more may go).

    Blocking file I/O: from trio, run it in a worker thread. Eviction re-checks pins, holds and
    the last use of each blob under the store's lock (`BlobStore.evict`), so a blob pinned, served
    or used after the candidates were listed stays."""
    now = time.time() if now is None else now
    report = GcReport(budget=budget, before=0, after=0)
    report.partial_freed = _clean_partial(store, set(fetching), now - partial_max_age_s)
    entries = store.entries()
    total = sum(size for _, size, _ in entries)
    report.before = report.after = total
    if total <= budget:
        return report
    keep_set = frozenset(keep() if callable(keep) else keep)
    pins = store.pins()
    held = store.held()
    candidates = []
    for cid, size, last in entries:
        if cid in keep_set or cid in pins or cid in held or last > now - recent_s:
            report.protected += size
        else:
            candidates.append((last, cid, size))
    candidates.sort()
    for last, cid, size in candidates:
        if total <= budget:
            break
        if store.evict(cid, unused_since=last, protect=keep_set):
            total -= size
            report.freed.append((cid, size))
        else:
            report.protected += size
    report.after = total
    if report.freed:
        log.info("blob gc freed %d bytes (%d blobs); store now %d of %d bytes", sum(n for _, n in report.freed),
                 len(report.freed), total, budget)
    if report.over_budget:
        log.info("blob store holds %d bytes, over its %d-byte budget: the rest is pinned, needed by jobs "
                    "or in use (unpin blobs with `mindnode blob unpin`, or raise [blobs] max_store_bytes)",
                    total, budget)
    return report


def _clean_partial(store: BlobStore, fetching: set[str], older_than: float) -> int:
    """Remove partial downloads (``.part`` + ``.manifest``) of ids nobody fetches, untouched since
    ``older_than``; returns the bytes freed (allocated blocks: partial files are sparse)."""
    freed = 0
    with os.scandir(store.partial) as it:
        for e in it:
            cid = e.name.split(".", 1)[0]
            if cid in fetching:
                continue
            try:
                st = e.stat()
                if st.st_mtime >= older_than:
                    continue
                os.unlink(e.path)
                freed += st.st_blocks * 512
            except FileNotFoundError:
                continue
    return freed
