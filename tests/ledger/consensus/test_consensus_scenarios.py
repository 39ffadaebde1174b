"""End-to-end at the rule level: a validator double-seals; every node spots it, the evidence proves
it, the penalty slashes and jails it, the next epoch's set leaves it out, and blocks and finality
carry on with the two honest validators. (The e2e test of the node issue does the same with real
processes; this pins down what the rules must produce.)"""

from __future__ import annotations

from typing import Annotated

from consensus_sim import ADDR, KEYS, SimNet, make_header

from ledger.codec import Bytes, Record, UInt, record
from ledger.consensus import (
    DOUBLE_SEAL,
    Candidate,
    DoubleSealWatch,
    Evidence,
    SealedHeader,
    is_epoch_start,
    penalty_for,
    select_validators,
    split_slash,
    verify_evidence,
)

L = 10  # epoch length


@record
class WireHeader(Record):
    """The sim's stand-in for an encoded, sealed header: its hash and parent, signed by the proposer."""

    height: Annotated[int, UInt(64)]
    hash: Annotated[bytes, Bytes(32)]
    parent: Annotated[bytes, Bytes(32)]
    proposer: Annotated[bytes, Bytes(32)]
    seal: Annotated[bytes, Bytes(64)]


def wire(hv, key) -> bytes:
    return WireHeader(height=hv.height, hash=hv.hash, parent=hv.parent_hash, proposer=hv.proposer,
                      seal=key.sign(b"seal" + hv.hash)).encode()


def open_wire(data: bytes) -> SealedHeader:
    w = WireHeader.decode(data)
    return SealedHeader(chain_id="sim-chain", height=w.height, hash=w.hash, parent_hash=w.parent,
                        proposer=w.proposer, signing_message=b"seal" + w.hash, signature=w.seal)


def test_double_sealer_is_slashed_jailed_and_dropped_at_the_next_epoch():
    stakes = {ADDR[i]: {ADDR[i]: 1000, b"delegator-%d" % i: 333} for i in range(3)}
    jailed: dict[bytes, int] = {}

    def next_set(parent_snap, header):
        if not is_epoch_start(header.height + 1, L):
            return None
        cands = [Candidate(a, sum(s.values()), jailed.get(a, 0)) for a, s in stakes.items()]
        return select_validators(cands, 21, header.timestamp_ms, previous=parent_snap.next)

    net = SimNet(3, next_set=next_set, epoch_length=L)
    net.run(5_000)
    # the in-turn validator of the next height equivocates: block A to node 0, block B to node 1
    head = net.nodes[0].head
    bad = net.nodes[0].head.in_turn_validator()
    culprit = ADDR.index(bad)
    honest = [i for i in range(3) if i != culprit]
    a = make_header(net.cfg, head, bad, salt=b"A")
    b = make_header(net.cfg, head, bad, salt=b"B")
    net.now = a.timestamp_ms
    watches = [DoubleSealWatch() for _ in range(3)]
    evidence = []
    for i, blocks in ((honest[0], (a, b)), (honest[1], (b, a))):  # gossip relays both to everyone
        for hv in blocks:
            net._deliver(i, hv)
            found = watches[i].observe(hv.height, hv.parent_hash, hv.proposer, hv.hash, wire(hv, KEYS[culprit]))
            if found:
                evidence.append(found)
    assert len(evidence) == 2  # each honest node holds the proof
    # both honest nodes settle on the same one of the two (lower hash: equal TD and justification)
    assert net.nodes[honest[0]].head.hash == net.nodes[honest[1]].head.hash == min(a.hash, b.hash)

    # the evidence transaction, included in the next block, proves the offence ...
    offense = verify_evidence(Evidence(double_seal=evidence[0]), "sim-chain", open_wire, head.height + 2,
                              net.cfg.params)
    assert (offense.kind, offense.offender, offense.height) == (DOUBLE_SEAL, bad, head.height + 1)
    assert offense.key() == verify_evidence(Evidence(double_seal=evidence[1]), "sim-chain", open_wire,
                                            head.height + 2, net.cfg.params).key()
    # ... and the state applies the penalty: 10% of each stake entry to the pool, jail for the period
    pen = penalty_for(offense, a.timestamp_ms + 2000, net.cfg.params)
    cut = split_slash(stakes[bad], pen.slash_bps)
    assert cut == {bad: 100, b"delegator-%d" % culprit: 33}
    before = sum(stakes[bad].values())
    stakes[bad] = {k: v - cut[k] for k, v in stakes[bad].items()}
    pool = sum(cut.values())
    assert sum(stakes[bad].values()) + pool == before  # supply conserved
    jailed[bad] = pen.jailed_until_ms

    # the culprit is stopped (the e2e switch), the others run on
    net.nodes[culprit].alive = False
    net.run(40_000)
    live = [net.nodes[i] for i in honest]
    h = live[0].head
    assert live[1].head.hash == h.hash
    assert h.height >= 2 * L and bad not in h.current and h.current.n == 2
    assert h.finalized.height >= h.height - 3       # finality carries on with 2 of 2
    assert not any(n.rejected for n in live)
