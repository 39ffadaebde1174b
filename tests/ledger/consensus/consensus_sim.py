"""A rule-level network simulator for the consensus tests: nodes, a clock in ms, partitions.

Each `SimNode` runs exactly what the daemon will run (verify_header, Snapshot.apply, choose_head,
decide_vote, VotePool, plan_seal) over in-memory headers; the `SimNet` delivers blocks and votes
instantly within a partition group. No threads, no sockets, no wall clock: runs are exact.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass

from ledger.codec import encode
from ledger.consensus import (
    BlockTree,
    Checkpoint,
    ConsensusConfig,
    Follower,
    HeaderView,
    Snapshot,
    ValidatorSet,
    Vote,
    VotePool,
    verify_header,
)
from ledger.consensus.votes import Attestation
from ledger.genesis import Params
from ledger.hashing import sha256
from ledger.keys import PrivateKey, devnet_key

CHAIN = "sim-chain"
GENESIS_TS = 1_700_000_000_000
KEYS = sorted((devnet_key(i) for i in range(8)), key=lambda k: k.address)
ADDR = [k.address for k in KEYS]  # ascending: ADDR[i] is validator #i of any prefix set


def keys(n: int) -> list[PrivateKey]:
    return KEYS[:n]


def vset(*idx: int) -> ValidatorSet:
    return ValidatorSet.of(ADDR[i] for i in idx)


def params(**kw) -> Params:
    base = dict(block_time_ms=2000, epoch_length=1000, out_of_turn_delay_ms=1000, out_of_turn_step_ms=500,
                max_future_ms=1000, vote_window=64)
    base.update(kw)
    return Params(**base)


def config(**kw) -> ConsensusConfig:
    return ConsensusConfig(chain_id=CHAIN, params=params(**kw))


def header_hash(height: int, parent: bytes, proposer: bytes, difficulty: int, ts: int,
                att: Attestation | None, salt: bytes = b"") -> bytes:
    body = b"|".join([height.to_bytes(8, "big"), parent, proposer, bytes([difficulty]), ts.to_bytes(8, "big"),
                      encode(att) if att else b"", salt])
    return sha256(body)


def genesis(validators: ValidatorSet) -> tuple[HeaderView, Snapshot]:
    g = HeaderView(height=0, hash=sha256(b"genesis"), parent_hash=bytes(32), proposer=bytes(32),
                   difficulty=1, timestamp_ms=GENESIS_TS)
    return g, Snapshot.genesis(g, validators)


def make_header(cfg: ConsensusConfig, snap: Snapshot, proposer: bytes, *, ts: int | None = None,
                difficulty: int | None = None, att: Attestation | None = None, salt: bytes = b"") -> HeaderView:
    """A header on top of `snap` by `proposer`; by default exactly at its earliest slot, right difficulty."""
    if ts is None:
        ts = snap.earliest_seal_ms(proposer, cfg.params)
    if difficulty is None:
        difficulty = snap.expected_difficulty(proposer)
    h = snap.height + 1
    return HeaderView(height=h, hash=header_hash(h, snap.hash, proposer, difficulty, ts, att, salt),
                      parent_hash=snap.hash, proposer=proposer, difficulty=difficulty, timestamp_ms=ts,
                      attestation=att)


@dataclass
class SimNode:
    """One node: verify + apply each header (what the store's hook and `snapshot_after` do), then hand
    it to the library's `Follower`, which does fork choice, finality, voting and seal planning."""

    cfg: ConsensusConfig
    key: PrivateKey
    genesis: HeaderView
    root: Snapshot
    alive: bool = True
    #: (parent snapshot, header) -> the validator set read from "the state" at an epoch's last block
    next_set: Callable[[Snapshot, HeaderView], ValidatorSet | None] | None = None

    def __post_init__(self):
        self.follower = Follower(self.cfg, self.root, key=self.key)
        self.headers: dict[bytes, HeaderView] = {self.genesis.hash: self.genesis}
        self.finalized_history: list[Checkpoint] = [self.follower.finalized]
        self.rejected: list[str] = []
        self.orphans: dict[bytes, list[HeaderView]] = {}

    @property
    def address(self) -> bytes:
        return self.key.address

    @property
    def tree(self) -> BlockTree:
        return self.follower.tree

    @property
    def head(self) -> Snapshot:
        return self.follower.head

    @property
    def finalized(self) -> Checkpoint:
        return self.follower.finalized

    @property
    def pool(self) -> VotePool:
        return self.follower.pool

    def import_block(self, header: HeaderView, now_ms: int) -> list[Vote]:
        """Verify and add a block (holding it until its parent arrives); returns the votes this node casts."""
        if header.hash in self.tree:
            return []
        if header.parent_hash not in self.tree:
            self.orphans.setdefault(header.parent_hash, []).append(header)
            return []
        parent_snap = self.tree.get(header.parent_hash)
        try:
            verify_header(self.cfg, parent_snap, self.headers[header.parent_hash], header, now_ms)
        except Exception as exc:  # the daemon logs and drops; tests inspect `rejected`
            self.rejected.append(str(exc))
            return []
        nxt = self.next_set(parent_snap, header) if self.next_set else None
        snap = parent_snap.apply(header, self.cfg.params, next_validators=nxt)
        self.headers[header.hash] = header
        change = self.follower.add_block(header.parent_hash, snap)
        if change.finalized_changed:
            self.finalized_history.append(self.follower.finalized)
        votes = [change.vote] if change.vote else []
        for child in self.orphans.pop(header.hash, []):
            votes += self.import_block(child, now_ms)
        return votes

    def add_vote(self, vote: Vote) -> None:
        self.follower.add_vote(vote)

    def try_seal(self, now_ms: int) -> HeaderView | None:
        plan = self.follower.seal_plan()
        if plan is None or now_ms < plan.not_before_ms:
            return None
        hv = make_header(self.cfg, self.head, self.address, ts=now_ms, att=self.follower.attestation())
        self.follower.sealing(plan)
        return hv


class SimNet:
    """Validators 0..n-1 on a shared clock; `groups` partitions who hears whom.

    `delay(frm, to)` (ms) delays each block and vote between two different nodes; None delivers at once.
    Messages already in flight when a partition starts still arrive."""

    def __init__(self, n: int, tick_ms: int = 100, delay: Callable[[int, int], int] | None = None,
                 next_set: Callable[[Snapshot, HeaderView], ValidatorSet | None] | None = None,
                 **param_overrides):
        self.cfg = config(**param_overrides)
        g, root = genesis(vset(*range(n)))
        self.nodes = [SimNode(self.cfg, k, g, root, next_set=next_set) for k in keys(n)]
        self.now = GENESIS_TS
        self.tick_ms = tick_ms
        self.delay = delay
        self.groups: list[set[int]] = [set(range(n))]
        self.sealed: list[tuple[int, HeaderView]] = []
        self._queue: list[tuple[int, int, int, object]] = []
        self._seq = 0

    def partition(self, *groups: set[int]) -> None:
        self.groups = [set(g) for g in groups]

    def heal(self) -> None:
        """Reconnect everyone and let them sync: every node receives every block it lacks."""
        self.groups = [set(range(len(self.nodes)))]
        all_headers = sorted({h.hash: h for n in self.nodes for h in n.headers.values()}.values(),
                             key=lambda h: h.height)
        for i, node in enumerate(self.nodes):
            if node.alive:
                for h in all_headers:
                    self._deliver(i, h)

    def _peers(self, i: int) -> list[int]:
        group = next(g for g in self.groups if i in g)
        return [j for j in sorted(group) if self.nodes[j].alive]

    def _deliver(self, to: int, msg: object) -> None:
        node = self.nodes[to]
        if not node.alive:
            return
        if isinstance(msg, Vote):
            node.add_vote(msg)
        else:
            for vote in node.import_block(msg, self.now):
                self._broadcast(to, vote)

    def _broadcast(self, frm: int, msg: object) -> None:
        for j in self._peers(frm):
            if j == frm or self.delay is None:
                self._deliver(j, msg)
            else:
                self._seq += 1
                heapq.heappush(self._queue, (self.now + self.delay(frm, j), self._seq, j, msg))

    def step(self) -> None:
        self.now += self.tick_ms
        while self._queue and self._queue[0][0] <= self.now:
            _, _, to, msg = heapq.heappop(self._queue)
            self._deliver(to, msg)
        for i, node in enumerate(self.nodes):
            if not node.alive:
                continue
            hv = node.try_seal(self.now)
            if hv is not None:
                self.sealed.append((i, hv))
                self._broadcast(i, hv)

    def run(self, ms: int) -> None:
        for _ in range(ms // self.tick_ms):
            self.step()


def attest(cfg: ConsensusConfig, target: Snapshot, signers: list[int], source: Checkpoint | None = None) -> Attestation:
    """An attestation for `target` (linked from its chain's justified block) signed by KEYS[i] for i in signers."""
    from ledger.consensus import VoteData, build_attestation

    data = VoteData(chain_id=cfg.chain_id, source=source or target.justified, target=target.checkpoint)
    votes = [Vote.sign(KEYS[i], data) for i in signers]
    return build_attestation(data, votes, target.current)


class Chain:
    """Build named blocks on a tree without network: `add(name, parent, signer, att_signers)`."""

    def __init__(self, cfg: ConsensusConfig, n: int):
        self.cfg = cfg
        g, root = genesis(vset(*range(n)))
        self.views = {"G": g}
        self.snaps = {"G": root}
        self.tree = BlockTree(root)

    def add(self, name: str, parent: str, signer: int, att: list[int] | None = None, salt: bytes = b"") -> Snapshot:
        ps = self.snaps[parent]
        a = attest(self.cfg, ps, att) if att else None
        hv = make_header(self.cfg, ps, ADDR[signer], att=a, salt=salt)
        verify_header(self.cfg, ps, self.views[parent], hv)
        s = ps.apply(hv, self.cfg.params)
        self.views[name], self.snaps[name] = hv, s
        self.tree.add(s, ps.hash)
        return s

    def name_of(self, snap: Snapshot | None) -> str | None:
        if snap is None:
            return None
        return next(k for k, v in self.snaps.items() if v.hash == snap.hash)
