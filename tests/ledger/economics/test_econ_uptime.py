"""Chain days and hours, heartbeats, uptime entries in blocks, and the >5-hour rule."""

import dataclasses

import pytest
from econ_fixtures import START

from ledger.economics.days import ChainClock
from ledger.economics.errors import EconomicsError, InvalidHeartbeat
from ledger.economics.uptime import (
    MAX_HEARTBEAT_BYTES,
    UptimeEntry,
    apply_uptime_entries,
    build_uptime_entries,
    check_heartbeat,
    decode_heartbeat,
    hours_in,
    hours_online,
    qualifies,
    sign_heartbeat,
)
from ledger.errors import InvalidBlock
from ledger.genesis import Params
from ledger.keys import devnet_key

CHAIN = "econ-test"
MAINNET = ChainClock(START, 86_400)
DEVNET = ChainClock(1_000, 120)         # 120 s days: 24 hours of 5 s
P = Params()


def test_mainnet_days_are_utc_days_and_hours_are_3600_s():
    assert MAINNET.day_of(START) == 0 and MAINNET.day_of(START - 1) == -1
    assert MAINNET.hour_of(START + 86_400 + 3 * 3600 + 59) == (1, 3)
    assert MAINNET.hour_start(1, 3) == START + 86_400 + 3 * 3600
    assert MAINNET.day_end(0) == MAINNET.day_start(1) == START + 86_400


def test_devnet_hours_scale_and_uneven_days_agree():
    assert DEVNET.hour_of(1_000 + 120 * 2 + 59) == (2, 11)       # 59 s into day 2 = hour 11 (5 s hours)
    clock = ChainClock(0, 100)   # 100 / 24 s hours: hour h starts at ceil(100 h / 24)
    for h in range(24):
        start = clock.hour_start(0, h)
        assert clock.hour_of(start) == (0, h)
        if h:
            assert clock.hour_of(start - 1) == (0, h - 1)
    with pytest.raises(EconomicsError):
        ChainClock(0, 23)
    with pytest.raises(EconomicsError):
        MAINNET.hour_start(0, 24)
    assert DEVNET.is_first_block_of_day(1_000 + 119, 1_000 + 120)
    assert not DEVNET.is_first_block_of_day(1_000 + 120, 1_000 + 121)


def test_qualifies_on_more_than_five_distinct_hours():
    assert hours_online(0b111111) == 6 and qualifies(0b111111, P)
    assert not qualifies(0b11111, P)
    assert qualifies(sum(1 << h for h in (0, 4, 9, 13, 18, 23)), P)   # non-consecutive hours count
    assert hours_in(0b1010) == (1, 3)


def test_heartbeat_sign_gossip_check_and_tamper():
    key = devnet_key(0)
    now = MAINNET.hour_start(5, 7) + 10
    hb = sign_heartbeat(key, CHAIN, 5, 7)
    again = decode_heartbeat(hb.encode())
    assert again == hb and len(hb.encode()) <= MAX_HEARTBEAT_BYTES
    check_heartbeat(again, CHAIN, MAINNET, now)
    for bad, why in [(dataclasses.replace(hb, hour=8), "signature"),          # signed hour 7, claims 8
                     (dataclasses.replace(hb, chain_id="other"), "chain"),
                     (sign_heartbeat(key, CHAIN, 5, 9), "not of the current"),  # a future hour
                     (sign_heartbeat(key, CHAIN, 4, 7), "not of the current"),  # yesterday
                     (dataclasses.replace(hb, provider=devnet_key(1).address), "signature")]:
        with pytest.raises(InvalidHeartbeat, match=why):
            check_heartbeat(bad, CHAIN, MAINNET, MAINNET.hour_start(5, 8) + 1)
    with pytest.raises(InvalidHeartbeat, match="malformed"):
        decode_heartbeat(hb.encode() + b"\x00")
    with pytest.raises(InvalidHeartbeat, match="malformed"):
        decode_heartbeat(b"\x81" * 300)
    with pytest.raises(InvalidHeartbeat):
        sign_heartbeat(key, CHAIN, 5, 24)


def test_proposer_builds_and_every_node_verifies_entries():
    k0, k1 = devnet_key(0), devnet_key(1)
    day = 3
    t = MAINNET.hour_start(day, 10) + 5
    seen = [sign_heartbeat(k0, CHAIN, day, h) for h in (1, 2, 5, 9, 10)]
    seen += [sign_heartbeat(k1, CHAIN, day, 4), sign_heartbeat(k1, CHAIN, day, 4)]      # duplicate gossip
    seen += [sign_heartbeat(k1, CHAIN, day, 11)]                                         # future: skipped
    seen += [dataclasses.replace(sign_heartbeat(k1, CHAIN, day, 6), hour=7)]             # forged: skipped
    recorded = {(k0.address, day): 1 << 2}                                               # hour 2 already on chain
    entries = build_uptime_entries(seen, chain_id=CHAIN, clock=MAINNET, block_time=t, recorded=recorded, params=P)
    by = {e.provider: e for e in entries}
    assert by[k0.address].mask == (1 << 1) | (1 << 5) | (1 << 9) | (1 << 10)
    assert by[k1.address].mask == 1 << 4
    masks = apply_uptime_entries(entries, chain_id=CHAIN, clock=MAINNET, block_time=t, recorded=recorded, params=P)
    assert masks[(k0.address, day)] == (1 << 1) | (1 << 2) | (1 << 5) | (1 << 9) | (1 << 10)
    assert masks[(k1.address, day)] == 1 << 4
    # entries survive the codec (they travel in blocks)
    assert all(UptimeEntry.decode(e.encode()) == e for e in entries)


def _apply(entries, t, recorded=None, params=P):
    return apply_uptime_entries(entries, chain_id=CHAIN, clock=MAINNET, block_time=t,
                                recorded=recorded or {}, params=params)


def test_block_with_bad_uptime_entries_is_invalid():
    k = devnet_key(2)
    day, t = 3, MAINNET.hour_start(3, 10)
    good = UptimeEntry(provider=k.address, day=day, mask=1 << 3,
                       signatures=(sign_heartbeat(k, CHAIN, day, 3).signature,))
    _apply([good], t)
    cases = [
        ([good, good], "second entry"),
        ([dataclasses.replace(good, day=2)], "not the block's day"),
        ([dataclasses.replace(good, mask=0, signatures=())], "empty"),
        ([dataclasses.replace(good, mask=1 << 11)], "after the block's hour"),
        ([dataclasses.replace(good, mask=0b11000)], "2 hours but 1 signatures"),
        ([dataclasses.replace(good, mask=1 << 4)], "signature of hour 4"),
        ([dataclasses.replace(good, provider=devnet_key(3).address)], "does not verify"),
    ]
    for entries, why in cases:
        with pytest.raises(InvalidHeartbeat, match=why) as err:
            _apply(entries, t)
        assert isinstance(err.value, InvalidBlock)
    with pytest.raises(InvalidHeartbeat, match="already on chain"):
        _apply([good], t, {(k.address, day): 1 << 3})
    with pytest.raises(InvalidHeartbeat, match="at most 0"):
        _apply([good], t, params=Params(max_uptime_entries_per_block=0))
