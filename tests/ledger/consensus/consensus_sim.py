"""A rule-level network simulator for the consensus tests: nodes, a clock in ms, partitions.

Each `SimNode` runs exactly what the daemon will run (verify_header, Snapshot.apply, choose_head,
decide_vote, VotePool, plan_seal) over in-memory headers; the `SimNet` delivers blocks and votes
instantly within a partition group. No threads, no sockets, no wall clock: runs are exact.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ledger.codec import encode
from ledger.consensus import (
    BlockTree,
    Checkpoint,
    ConsensusConfig,
    HeaderView,
    Snapshot,
    ValidatorSet,
    Vote,
    VoteGuard,
    VotePool,
    advance_finalized,
    decide_vote,
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
    cfg: ConsensusConfig
    key: PrivateKey
    genesis: HeaderView
    root: Snapshot
    alive: bool = True
    headers: dict[bytes, HeaderView] = field(default_factory=dict)
    guard: VoteGuard = field(default_factory=VoteGuard)
    last_sealed: int | None = None
    finalized_history: list[Checkpoint] = field(default_factory=list)

    def __post_init__(self):
        self.tree = BlockTree(self.root)
        self.headers[self.genesis.hash] = self.genesis
        self.pool = VotePool(self.cfg)
        self.head = self.root
        self.finalized = self.root.finalized
        self.finalized_history.append(self.finalized)
        self.rejected: list[str] = []

    @property
    def address(self) -> bytes:
        return self.key.address

    def import_block(self, header: HeaderView, now_ms: int) -> list[Vote]:
        """Verify and add a block; returns the votes this node casts as a result (0 or 1)."""
        if header.hash in self.tree or header.parent_hash not in self.tree:
            return []
        parent_snap = self.tree.get(header.parent_hash)
        try:
            verify_header(self.cfg, parent_snap, self.headers[header.parent_hash], header, now_ms)
        except Exception as exc:  # the daemon logs and drops; tests inspect `rejected`
            self.rejected.append(str(exc))
            return []
        snap = parent_snap.apply(header, self.cfg.params)
        self.tree.add(snap, header.parent_hash)
        self.headers[header.hash] = header
        return self._update_head()

    def _update_head(self) -> list[Vote]:
        new = self.tree.head(self.finalized)
        assert new is not None
        votes: list[Vote] = []
        if new.hash != self.head.hash:
            self.head = new
            fin = advance_finalized(self.finalized, new)
            if fin != self.finalized:
                self.finalized = fin
                self.finalized_history.append(fin)
            decided = decide_vote(self.cfg, self.guard, self.key, new)
            if decided is not None:
                vote, self.guard = decided
                votes.append(vote)
        return votes

    def add_vote(self, vote: Vote) -> None:
        snap = self.tree.get(vote.data.target.hash) if vote.data.target.hash in self.tree else self.head
        self.pool.add(vote, snap.current, self.head.height)

    def try_seal(self, now_ms: int) -> HeaderView | None:
        plan = self.head.plan_seal(self.address, self.cfg.params, self.last_sealed)
        if plan is None or now_ms < plan.not_before_ms:
            return None
        att = self.pool.attestation(self.head.justified, self.head.checkpoint, self.head.current)
        hv = make_header(self.cfg, self.head, self.address, ts=now_ms, att=att)
        self.last_sealed = plan.height
        return hv


class SimNet:
    """Validators 0..n-1 on a shared clock; `groups` partitions who hears whom."""

    def __init__(self, n: int, tick_ms: int = 100, **param_overrides):
        self.cfg = config(**param_overrides)
        g, root = genesis(vset(*range(n)))
        self.nodes = [SimNode(self.cfg, k, g, root) for k in keys(n)]
        self.now = GENESIS_TS
        self.tick_ms = tick_ms
        self.groups: list[set[int]] = [set(range(n))]
        self.sealed: list[tuple[int, HeaderView]] = []

    def partition(self, *groups: set[int]) -> None:
        self.groups = [set(g) for g in groups]

    def heal(self) -> None:
        """Reconnect everyone and let them sync: every node receives every block and vote it lacks."""
        self.groups = [set(range(len(self.nodes)))]
        all_headers = sorted({h.hash: h for n in self.nodes for h in n.headers.values()}.values(),
                             key=lambda h: h.height)
        for i, node in enumerate(self.nodes):
            if node.alive:
                for h in all_headers:
                    self._deliver_block(i, h)

    def _peers(self, i: int) -> list[int]:
        group = next(g for g in self.groups if i in g)
        return [j for j in sorted(group) if self.nodes[j].alive]

    def _deliver_block(self, to: int, header: HeaderView) -> None:
        for vote in self.nodes[to].import_block(header, self.now):
            self._broadcast_vote(to, vote)

    def _broadcast_vote(self, frm: int, vote: Vote) -> None:
        for j in self._peers(frm):
            self.nodes[j].add_vote(vote)

    def step(self) -> None:
        self.now += self.tick_ms
        for i, node in enumerate(self.nodes):
            if not node.alive:
                continue
            hv = node.try_seal(self.now)
            if hv is not None:
                self.sealed.append((i, hv))
                for j in self._peers(i):
                    self._deliver_block(j, hv)

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
