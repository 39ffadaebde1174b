"""Missed in-turn slots counted by block execution on a real LevelDB store with the consensus hook.

Three validators; in the turn order (addresses ascending) they are A, B, C, so height h is the turn
of A if h % 3 == 0, B if h % 3 == 1, C if h % 3 == 2. Every block is sealed by the live validator
with the earliest allowed timestamp, as the network would. With C stopped (hand-worked):

    h   in turn  sealer  why                                   C's counter
    1   B        B       in turn                               0
    2   C        A       C absent; B barred (sealed 1)         1  (C missed)
    3   A        B       A barred (sealed 2): nobody missed    1
    4   B        A       B barred (sealed 3)                   1
    5   C        B       C absent, A barred                    2
    6   A        A       in turn (A sealed 4, not 5)           2
    7   B        B       in turn                               2
    8   C        A                                             3
so C misses exactly the heights h % 3 == 2 and nobody else is ever counted: after block 8 C has 3,
after block 14 it has 5. Every block is also cross-checked against the pure rules
(`penalties.slot_outcome` on the daemon-side snapshots) and the recorded set against the snapshot's.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import pytest

from ledger.consensus import ConsensusConfig, after_missed, after_sealed_in_turn, slot_outcome, slots
from ledger.consensus.header_bridge import (
    genesis_snapshot,
    header_view,
    snapshot_after,
    store_consensus_check,
)
from ledger.consensus.penalties import JAIL
from ledger.consensus.validators import epoch_of
from ledger.economics import ledger_state as ls
from ledger.genesis import NMT, AllocationRow, Genesis, GenesisAccount, GenesisValidator, Params
from ledger.keys import devnet_key
from ledger.registry import hooks
from ledger.store import Store, build_block

T0 = 1_700_000_000
KEYS = [devnet_key(i) for i in range(3)]
BY_ADDR = {k.address: k for k in KEYS}
A, B, C = sorted(BY_ADDR)
NAME = {A: "A", B: "B", C: "C"}
ADDR = {"A": A, "B": B, "C": C}
BASE = Params(min_validator_stake=100 * NMT, epoch_length=6, missed_blocks_withhold=3, missed_blocks_jail=5,
              jail_period_s=3600, day_s=100, month_s=1000, unbonding_period_s=60)


def make_genesis(params: Params) -> Genesis:
    # staking row 2,400 NMT over 24 months of 1,000 s = 240 days of 100 s: exactly 10 NMT a day
    return Genesis(chain_id="slots-1", timestamp=T0, params=params,
                   accounts=tuple(GenesisAccount(k.address, 1000 * NMT) for k in KEYS),
                   validators=tuple(GenesisValidator(k.address, 200 * NMT, f"v{i}") for i, k in enumerate(KEYS)),
                   allocation_start=T0, allocation=(AllocationRow("staking", 2_400 * NMT, 0, 24, pool="staking"),))


class Node:
    """A store driven by the consensus rules like the daemon's `Chain` (no votes: not needed here),
    which checks after every block that the state's counters follow the pure rules exactly."""

    def __init__(self, path, genesis: Genesis):
        self.cfg = ConsensusConfig.from_genesis(genesis)
        self.params = genesis.params
        self.store = Store.create(path, genesis, sync=False)
        self.snaps = {self.store.head.hash: genesis_snapshot(self.store.head, self.store.state())}
        self.store.consensus_check = store_consensus_check(self.cfg, self.snaps.get, lambda: None)
        self.model: dict[bytes, int] = {}
        self.jailed_at: dict[bytes, int] = {}

    @property
    def head_snap(self):
        return self.snaps[self.store.head.hash]

    def seal(self, live, dt_ms: int = 0):
        """The block the earliest allowed live validator seals on the head."""
        snap = self.head_snap
        plans = sorted((p.not_before_ms, a, p) for a in live if (p := snap.plan_seal(a, self.params)))
        t, addr, plan = plans[0]
        return build_block(self.store, BY_ADDR[addr], [], t + dt_ms, plan.difficulty)

    def import_(self, block) -> None:
        parent = self.head_snap
        self.store.import_block(block)
        snap = self.snaps[block.hash] = snapshot_after(self.cfg, parent, block.header, self.store.state())
        state = self.store.state()
        # the pure rules on the snapshots, applied to a model of the counters
        out = slot_outcome(parent, header_view(block.header))
        if block.header.proposer in parent.next and block.header.proposer in self.model:
            self.model[block.header.proposer] = after_sealed_in_turn(self.model[block.header.proposer])
        if out.missed is not None:
            self.model[out.missed], action = after_missed(self.model.get(out.missed, 0), self.params)
            if action == JAIL:
                self.jailed_at[out.missed] = block.header.timestamp
        assert slots.liveness_view(state) == {a: n for a, n in sorted(self.model.items()) if n}
        for a, ts in self.jailed_at.items():
            assert state.candidate(a).jailed_until_ms == ts + self.params.jail_period_s * 1000
        rec = slots.epoch_set(state)
        assert rec.validators == snap.next and rec.epoch == epoch_of(snap.height + 1, self.params.epoch_length)

    def run(self, n: int, live) -> None:
        for _ in range(n):
            self.import_(self.seal(live))

    def close(self):
        self.store.close()


@dataclass(frozen=True)
class Step:
    blocks: int
    down: str                            # validators stopped during these blocks ("" = all live)
    missed: dict = field(default_factory=dict)   # expected non-zero counters after the step
    withheld: str = ""
    jailed: str = ""
    next_set: str = "ABC"                # the set of the next height after the step


SCENARIOS = {
    "stopped validator: withheld at 3, jailed at 5, out of the set at the next epoch": (BASE, [
        Step(7, "C", {"C": 2}),
        Step(1, "C", {"C": 3}, withheld="C"),                    # h = 8
        Step(5, "C", {"C": 4}, withheld="C"),                    # h = 11 counted, 12, 13 not
        Step(1, "C", {}, jailed="C"),                            # h = 14: 5 -> jailed, reset to 0
        Step(3, "C", {"C": 1}, jailed="C", next_set="AB"),       # h = 17 (last of epoch 2): missed again
        Step(12, "C", {"C": 1}, jailed="C", next_set="AB"),      # out of the set: no slots, no count
    ]),
    "recovered validator decays: every block it seals takes one off": (
        dataclasses.replace(BASE, missed_blocks_jail=100), [
            Step(8, "C", {"C": 3}, withheld="C"),
            # C back: the rotation stays out of phase (every block sealed out of turn, nobody
            # misses), C seals heights 10, 13, 16, each taking one off
            Step(3, "", {"C": 2}),
            Step(6, "", {}),
            Step(9, "C", {"C": 3}, withheld="C"),                # down again from 18: h 20, 23, 26 missed
        ]),
    "a jailed validator is eligible again after jail_period_s, at the next epoch boundary": (
        dataclasses.replace(BASE, jail_period_s=20), [
            Step(14, "C", {}, jailed="C"),                       # jailed in block 14 for 20 s
            Step(4, "", {}, jailed="C", next_set="AB"),          # back, but out of the set from 18
            Step(6, "", {}, next_set="AB"),                      # h = 24: jail over
            Step(6, "", {}, next_set="ABC"),                     # selected again at the boundary after 29
        ]),
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_missed_slot_scenarios(tmp_path, name):
    params, steps = SCENARIOS[name]
    node = Node(tmp_path / "db", make_genesis(params))
    try:
        h = 0
        for i, st in enumerate(steps):
            live = [a for a in (A, B, C) if NAME[a] not in st.down]
            node.run(st.blocks, live)
            h += st.blocks
            state = node.store.state()
            where = f"{name}, step {i} (height {h})"
            assert {NAME[a]: n for a, n in slots.liveness_view(state).items()} == st.missed, where
            assert "".join(NAME[a] for a in (A, B, C) if slots.withheld(state, a)) == st.withheld, where
            jailed = [a for a in (A, B, C) if state.candidate(a).jailed_until_ms > node.store.head.timestamp]
            assert "".join(NAME[a] for a in jailed) == st.jailed, where
            assert "".join(NAME[a] for a in node.head_snap.next.addresses) == st.next_set, where
    finally:
        node.close()


def test_withheld_validator_gets_no_master_share_until_it_recovers(tmp_path):
    """Day 0 settles in the first block of day 1 (day_s = 100 s) with C withheld (3 misses):
    E = 10 NMT, M = 1 NMT, each master node M // 3 = 333_333_333_333_333_333, paid to A and B only.
    Stakers: S = 9 NMT over W = 600 NMT (3 x 200 flexible, weight 1):
    r = (9e18 - 3) * 1e27 // 600e18 = 14_999_999_999_999_999_995_000_000, each validator's bucket
    ceil(r * 200e18 / 1e27) = 2_999_999_999_999_999_999 (C's delegators are not withheld).
    Emitted from the staking pool: 2 x 333_333_333_333_333_333 + 3 x 2_999_999_999_999_999_999.
    C comes back, its counter falls below 3, and day 1's settlement pays it its share."""
    node = Node(tmp_path / "db", make_genesis(dataclasses.replace(BASE, missed_blocks_jail=100)))
    try:
        node.run(8, [A, B])
        assert slots.withheld(node.store.state(), C) and node.store.head.timestamp < (T0 + 100) * 1000
        gap = (T0 + 100) * 1000 - node.store.head.timestamp
        node.import_(node.seal([A, B], dt_ms=gap))               # first block of day 1: settles day 0
        state = node.store.state()
        share = 333_333_333_333_333_333
        assert [ls.reward_account(state, a).staking for a in (A, B, C)] == [share, share, 0]
        assert state.pool("staking").emitted == 2 * share + 3 * 2_999_999_999_999_999_999
        assert ls._load(state, ls.validator_rewards_key(C), ls.ValidatorRewards).outstanding == 2_999_999_999_999_999_999
        state.audit()
        ls.audit_economics(state)

        node.run(6, [A, B, C])                                   # C seals again: 3 -> below the threshold
        assert not slots.withheld(node.store.state(), C)
        gap = (T0 + 200) * 1000 - node.store.head.timestamp
        node.import_(node.seal([A, B, C], dt_ms=gap))            # first block of day 2: settles day 1
        state = node.store.state()
        assert [ls.reward_account(state, a).staking for a in (A, B, C)] == [2 * share, 2 * share, share]
        state.audit()
        ls.audit_economics(state)
    finally:
        node.close()


def test_two_stores_fed_the_same_blocks_hold_the_same_root(tmp_path):
    genesis = make_genesis(BASE)
    first = Node(tmp_path / "a", genesis)
    second = Node(tmp_path / "b", genesis)
    try:
        first.run(20, [A, B])                                    # C withheld, jailed, out of the set
        first.run(4, [A, B, C])
        for h in range(1, first.store.height + 1):
            second.import_(first.store.get_block(h))
        s1, s2 = first.store.state(), second.store.state()
        assert first.store.state_root == second.store.state_root
        assert slots.liveness_view(s1) == slots.liveness_view(s2) == {C: 1}
        assert s1.candidate(C).jailed_until_ms == s2.candidate(C).jailed_until_ms > 0
        assert first.head_snap == second.head_snap and C not in second.head_snap.next
    finally:
        first.close()
        second.close()


def test_epoch_set_is_recorded_after_every_other_end_of_block_change():
    assert hooks("end")[-1] is __import__("ledger.txkinds.missed_slots", fromlist=["x"]).record_epoch_set
    names = [f.__name__ for f in hooks("begin")]
    assert names.index("count_slot") < names.index("settle_rewards")   # counters settle the day


def test_blocks_outside_the_consensus_rules_count_nothing(tmp_path):
    """A store without the consensus hook accepts a block by a non-validator: no counter moves (the
    rule is defined on consensus-valid blocks), but its seal is remembered as a recent one; a chain
    whose genesis has no validator records no set at all."""
    outsider = devnet_key(7)
    store = Store.create(tmp_path / "db", make_genesis(BASE), sync=False)
    try:
        store.import_block(build_block(store, outsider, [], (T0 + 2) * 1000, 1))
        state = store.state()
        assert slots.liveness_view(state) == {}
        assert [r.proposer for r in slots.recent_seals(state)] == [outsider.address]
        assert slots.epoch_set(state).validators.addresses == (A, B, C)
    finally:
        store.close()
    bare = dataclasses.replace(make_genesis(BASE), validators=())
    store = Store.create(tmp_path / "bare", bare, sync=False)
    try:
        store.import_block(build_block(store, outsider, [], (T0 + 2) * 1000, 1))
        assert slots.epoch_set(store.state()) is None and slots.liveness_view(store.state()) == {}
    finally:
        store.close()


def test_outcome_from_the_state_matches_the_snapshot_rule_when_barred(tmp_path):
    """Height 3 is A's turn, but A sealed 2 out of turn: B seals 3 and A missed nothing."""
    node = Node(tmp_path / "db", make_genesis(BASE))
    try:
        node.run(3, [A, B])
        hdr = node.store.get_header(3)
        parent = node.snaps[hdr.parent_hash]
        state = node.store.state()
        assert hdr.proposer == B and not parent.can_seal(A)
        recents = tuple(r for r in slots.recent_seals(state) if r.height < 3)
        assert slots.outcome_at(parent.next, 3, recents, B) == slot_outcome(parent, header_view(hdr))
        assert slots.outcome_at(parent.next, 3, recents, B).missed is None
        assert slots.outcome_at(parent.next, 2, (), A).missed == C
    finally:
        node.close()


def test_out_of_phase_rotation_seals_nothing_in_turn(tmp_path):
    """Why any seal decays the counter: after C's absence (heights 1-8) the three live validators seal
    heights 9-17 all out of turn (each in-turn validator sealed the block before), nobody misses a
    slot, and only C's out-of-turn seals (10, 13, 16) bring its counter from 3 back to 0."""
    node = Node(tmp_path / "db", make_genesis(dataclasses.replace(BASE, missed_blocks_jail=100)))
    try:
        node.run(8, [A, B])
        node.run(9, [A, B, C])
        headers = [node.store.get_header(h) for h in range(9, 18)]
        assert {h.difficulty for h in headers} == {1}
        assert [h.height for h in headers if h.proposer == C] == [10, 13, 16]
        assert slots.liveness_view(node.store.state()) == {}
    finally:
        node.close()


def test_rewinding_a_block_restores_counters_jail_and_set(tmp_path):
    """The counters are state: a reorganisation's rewind (undo log) takes a block's miss, its jail and
    its epoch-set record back exactly, and importing the block again gives the same root."""
    node = Node(tmp_path / "db", make_genesis(BASE))
    try:
        node.run(13, [A, B])
        root13, view13 = node.store.state_root, slots.liveness_view(node.store.state())
        node.run(5, [A, B])                                      # 14 jails C, 17 records the set {A, B}
        blocks = [node.store.get_block(h) for h in range(14, 19)]
        root18 = node.store.state_root
        for _ in blocks:
            node.store.rewind_head()
        state = node.store.state()
        assert node.store.state_root == root13 and slots.liveness_view(state) == view13 == {C: 4}
        assert state.candidate(C).jailed_until_ms == 0
        assert slots.epoch_set(state).validators.addresses == (A, B, C)
        for b in blocks:
            node.store.import_block(b)
        assert node.store.state_root == root18
        assert slots.epoch_set(node.store.state()).validators.addresses == (A, B)
    finally:
        node.close()
