"""Fork choice: which known chain tip is the head.

The rule, in order (see ledger/CONSENSUS.md for why each step is there):

1. never across finality: only tips that descend from (or are) the node's finalized block count;
2. the highest justified block of the tip's chain (as recorded by attestations in its headers);
3. the greater total difficulty (sum of 2 per in-turn and 1 per out-of-turn block);
4. the lower block hash (raw bytes), so every node breaks a full tie the same way.

Step 2 refines the issue's "then the greater total difficulty": without it, an honest validator that
already voted with a high source could be pulled onto a heavier chain with a lower justified block
on which the no-surround rule forbids it to vote, and finality could stall for good (Casper FFG's
"plausible liveness" needs justified-first). It never overrides step 1.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from .snapshot import Snapshot
from .votes import Checkpoint

#: ``ancestor_at(block_hash, height)`` -> hash of that block's ancestor at `height` (the block itself at its
#: own height), or None if unknown. The store answers it from its parent links.
AncestorAt = Callable[[bytes, int], "bytes | None"]


def head_key(snap: Snapshot) -> tuple:
    """Sort key: the smallest key is the best head (steps 2-4 of the rule)."""
    return (-snap.justified.height, -snap.total_difficulty, snap.hash)


def descends_from(snap: Snapshot, cp: Checkpoint, ancestor_at: AncestorAt) -> bool:
    if snap.height < cp.height:
        return False
    if snap.height == cp.height:
        return snap.hash == cp.hash
    return ancestor_at(snap.hash, cp.height) == cp.hash


def choose_head(candidates: Iterable[Snapshot], finalized: Checkpoint, ancestor_at: AncestorAt) -> Snapshot | None:
    """The best candidate that does not cross `finalized`, or None when no candidate descends from it."""
    eligible = [c for c in candidates if descends_from(c, finalized, ancestor_at)]
    return min(eligible, key=head_key) if eligible else None


def should_switch(current: Snapshot, candidate: Snapshot, finalized: Checkpoint, ancestor_at: AncestorAt) -> bool:
    """True when `candidate` beats the current head (the incremental form of `choose_head`)."""
    if candidate.hash == current.hash or not descends_from(candidate, finalized, ancestor_at):
        return False
    return head_key(candidate) < head_key(current)


def advance_finalized(node_finalized: Checkpoint, head: Snapshot) -> Checkpoint:
    """A node's finalized block only moves forward: to its head chain's finalized block if higher.

    The head always descends from `node_finalized` (step 1), so the result is on the head's chain."""
    return head.finalized if head.finalized.height > node_finalized.height else node_finalized


class BlockTree:
    """An in-memory tree of snapshots keyed by block hash: the daemon's view of recent forks, and the
    playground of the fork-choice tests. The root is a trusted block (genesis or the finalized one)."""

    def __init__(self, root: Snapshot):
        self.root = root
        self._snaps: dict[bytes, Snapshot] = {root.hash: root}
        self._parent: dict[bytes, bytes] = {}
        self._children: dict[bytes, set[bytes]] = {root.hash: set()}

    def __contains__(self, block_hash: object) -> bool:
        return block_hash in self._snaps

    def __len__(self) -> int:
        return len(self._snaps)

    def get(self, block_hash: bytes) -> Snapshot:
        return self._snaps[block_hash]

    def add(self, snap: Snapshot, parent_hash: bytes) -> None:
        if parent_hash not in self._snaps:
            raise KeyError(f"unknown parent {parent_hash.hex()[:12]}")
        if self._snaps[parent_hash].height + 1 != snap.height:
            raise ValueError("a child must be one block above its parent")
        if snap.hash in self._snaps:
            return
        self._snaps[snap.hash] = snap
        self._parent[snap.hash] = parent_hash
        self._children[snap.hash] = set()
        self._children[parent_hash].add(snap.hash)

    def parent_of(self, block_hash: bytes) -> bytes | None:
        return self._parent.get(block_hash)

    def ancestor_at(self, block_hash: bytes, height: int) -> bytes | None:
        snap = self._snaps.get(block_hash)
        if snap is None or height > snap.height or height < self.root.height:
            return None
        h = block_hash
        for _ in range(snap.height - height):
            h = self._parent[h]
        return h

    def tips(self) -> list[Snapshot]:
        return [self._snaps[h] for h, kids in self._children.items() if not kids]

    def head(self, finalized: Checkpoint) -> Snapshot | None:
        return choose_head(self.tips(), finalized, self.ancestor_at)

    def chain(self, block_hash: bytes) -> list[bytes]:
        """Hashes from the root to `block_hash`, inclusive."""
        out = [block_hash]
        while out[-1] != self.root.hash:
            out.append(self._parent[out[-1]])
        return out[::-1]

    def prune(self, finalized: Checkpoint) -> None:
        """Forget every block that is not `finalized` or one of its descendants; it becomes the root."""
        if finalized.hash not in self._snaps:
            raise KeyError("finalized block unknown to the tree")
        keep: set[bytes] = set()
        stack = [finalized.hash]
        while stack:
            h = stack.pop()
            keep.add(h)
            stack.extend(self._children[h])
        self._snaps = {h: s for h, s in self._snaps.items() if h in keep}
        self._parent = {h: p for h, p in self._parent.items() if h in keep and h != finalized.hash}
        self._children = {h: c for h, c in self._children.items() if h in keep}
        self.root = self._snaps[finalized.hash]
