"""The economics Params travel through JSON (genesis files) and msgpack (the chain record) exactly."""

import json

import msgpack
import pytest

from ledger.economics.params_codec import params_from_plain, params_to_plain
from ledger.errors import GenesisError
from ledger.genesis import BandwidthTier, HardwareClass, Params
from ledger.keys import address_to_text


def test_round_trips():
    p = Params(price_oracle=b"\x07" * 32, hardware_classes=(HardwareClass("x", 5, 2),),
               bandwidth_tiers=(BandwidthTier(0, 10_000),), genesis_price_micro_usd=0)
    as_json = json.loads(json.dumps(params_to_plain(p, json=True)))
    assert as_json["price_oracle"] == address_to_text(b"\x07" * 32)
    assert as_json["min_validator_stake"] == str(p.min_validator_stake)
    assert params_from_plain(as_json, json=True) == p
    packed = msgpack.unpackb(msgpack.packb(params_to_plain(p)), raw=False)
    assert params_from_plain(packed) == p
    assert params_from_plain({}) == Params()


@pytest.mark.parametrize("field,value,why", [
    ("hardware_classes", [], "1..32"),
    ("hardware_classes", [{"name": "a", "value_per_hour": 1}], "exactly the fields"),
    ("hardware_classes", [{"name": "a", "value_per_hour": 1, "weight": 0}], "weight"),
    ("hardware_classes", [{"name": "a", "value_per_hour": 1, "weight": 1}] * 2, "unique"),
    ("bandwidth_tiers", [{"min_kbps": 5, "factor_bps": 1}], "start at min_kbps 0"),
    ("bandwidth_tiers", [{"min_kbps": 0, "factor_bps": 10_001}], "factor_bps"),
    ("price_oracle", "mn00", "price_oracle"),
    ("sync_provider_fee_bps", 10_001, "sync_provider_fee_bps"),
    ("balancing_coefficient_bps", 0, "balancing_coefficient_bps"),
    ("day_s", 23, "day_s"),
    ("min_validator_stake", "01", "decimal string"),
    ("no_such_param", 1, "unknown parameter"),
    ("price_window_days", 65, "price_window_days"),
    ("accrual_history_days", 367, "accrual_history_days"),
    ("qualifying_hours", 24, "qualifying_hours"),
])
def test_rejections_name_the_field(field, value, why):
    with pytest.raises(GenesisError, match=why):
        params_from_plain({field: value}, json=True)
