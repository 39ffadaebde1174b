"""Genesis JSON: the devnet file's shape, strict rejection of malformed files (each error names its
JSON path), the canonical hash, and the packaged built-in files."""

import copy
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import keys
from ledger.errors import GenesisError
from ledger.genesis import AllocationRow, Genesis, GenesisAccount, GenesisValidator, Params
from ledger.genesis_file import (
    builtin_genesis_dir,
    genesis_from_json,
    genesis_hash,
    genesis_supply,
    genesis_to_json,
    load_genesis,
    parse_genesis_bytes,
    with_timestamp,
)

NMT = 10**18


@pytest.fixture(scope="module")
def devnet_doc():
    return json.loads((builtin_genesis_dir() / "devnet.json").read_text())


def test_devnet_shape():
    g = load_genesis("devnet")
    assert g.chain_id == "mindnode-devnet-1"
    assert [v.address for v in g.validators] == [keys.devnet_key(i).address for i in range(3)]
    assert all(v.stake >= g.params.min_validator_stake for v in g.validators)
    funded = {a.address for a in g.accounts}
    assert {keys.devnet_key(i).address for i in range(3, 10)} <= funded
    # Short periods: everything visible within minutes.
    p = g.params
    assert p.block_time_ms == 2000 and p.epoch_length == 10
    assert p.unbonding_period_s <= 60 and p.day_s <= 180 and p.month_s <= 60
    assert {r.pool for r in g.allocation if r.pool} == {"mining", "staking"}
    assert genesis_supply(g) == g.total_supply
    # Bootnodes: 127.0.0.1 tcp 30333-30335, peer ids from devnet keys 0-2.
    assert g.bootnodes == tuple(
        f"/ip4/127.0.0.1/tcp/{30333 + i}/p2p/{keys.peer_id_from_address(keys.devnet_key(i).address)}"
        for i in range(3))
    assert g.timestamp == 1767225600  # fixed: 2026-01-01, so the hash is reproducible


def test_hash_is_stable_and_sensitive(devnet_doc):
    g = genesis_from_json(devnet_doc)
    assert genesis_hash(g) == genesis_hash(load_genesis("devnet"))
    # Formatting, key order and comments do not matter ...
    reordered = dict(reversed(list(devnet_doc.items())))
    reordered["_comment"] = "different comment"
    assert genesis_hash(parse_genesis_bytes(json.dumps(reordered).encode())) == genesis_hash(g)
    # ... every value does.
    changed = copy.deepcopy(devnet_doc)
    changed["params"]["epoch_length"] = 11
    assert genesis_hash(genesis_from_json(changed)) != genesis_hash(g)
    assert genesis_hash(with_timestamp(g, g.timestamp + 1)) != genesis_hash(g)


def test_to_json_round_trip():
    for name in ("devnet", "mainnet"):
        g = load_genesis(name)
        again = genesis_from_json(json.loads(json.dumps(genesis_to_json(g))))
        assert again == g and genesis_hash(again) == genesis_hash(g)


def test_with_timestamp_moves_the_vesting_clock():
    g = load_genesis("devnet")
    r = with_timestamp(g, 2_000_000_000)
    assert r.timestamp == 2_000_000_000
    assert r.allocation_start - r.timestamp == g.allocation_start - g.timestamp


def _mutate(doc, path, value):
    """Set doc[path...] = value, or delete it when value is DELETE."""
    target = doc
    for step in path[:-1]:
        target = target[step]
    if value is DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value


DELETE = object()
ADDR = keys.address_to_text(keys.devnet_key(5).address)
BAD_CHECKSUM = ADDR[:-1] + ("0" if ADDR[-1] != "0" else "1")

# (mutation path, new value, fragment the error must contain)
MALFORMED = [
    (("format",), 2, "$.format"),
    (("format",), True, "$.format"),
    (("chain_id",), DELETE, "missing field(s) chain_id"),
    (("chain_id",), "Has Spaces", "$.chain_id"),
    (("chain_id",), 7, "$.chain_id"),
    (("timestamp",), "2026-13-01", "$.timestamp"),
    (("timestamp",), "yesterday", "$.timestamp"),
    (("timestamp",), -5, "$.timestamp"),
    (("allocation_start",), [2026], "$.allocation_start"),
    (("params", "epoch_length"), "10", "$.params.epoch_length"),
    (("params", "epoch_length"), 0, "$.params.epoch_length"),
    (("params", "min_validator_stake"), 1000, "$.params.min_validator_stake"),
    (("params", "block_tme_ms"), 2000, "unknown field(s) block_tme_ms"),
    (("params", "min_long_term_days"), 99999, "$.params.min_long_term_days"),
    (("accounts", 0, "address"), BAD_CHECKSUM, "$.accounts[0].address"),
    (("accounts", 0, "address"), "0x1234", "$.accounts[0].address"),
    (("accounts", 1, "address"), keys.address_to_text(keys.devnet_key(0).address), "$.accounts[1].address"),
    (("accounts", 0, "balance"), 10, "$.accounts[0].balance"),
    (("accounts", 0, "balance"), "-10", "$.accounts[0].balance"),
    (("accounts", 0, "balance"), "1e18", "$.accounts[0].balance"),
    (("accounts", 0, "balance"), "0100", "$.accounts[0].balance"),
    (("accounts", 0, "balance"), "1.5", "$.accounts[0].balance"),
    (("accounts", 0, "nickname"), "x", "$.accounts[0]: unknown field(s) nickname"),
    (("accounts",), {}, "$.accounts"),
    (("validators", 0, "stake"), "1", "$.validators[0].stake"),
    (("validators", 2, "address"), keys.address_to_text(keys.devnet_key(0).address), "$.validators[2].address"),
    (("allocation", 0, "pool"), "burning", "$.allocation[0].pool"),
    (("allocation", 0, "account"), ADDR, "$.allocation[0]: give exactly one"),
    (("allocation", 2, "account"), DELETE, "$.allocation[2]: give exactly one"),
    (("allocation", 1, "name"), "Devnet mining pool", "$.allocation[1].name"),
    (("allocation", 0, "cliff_months"), -1, "$.allocation[0].cliff_months"),
    (("allocation", 0, "vesting_months"), 2.5, "floating-point"),
    (("allocation", 0, "amount"), DELETE, "$.allocation[0]: missing field(s) amount"),
    (("total_supply",), "1", "$.total_supply"),
    (("bootnodes", 0), "127.0.0.1:30333", "$.bootnodes[0]"),
    (("bootnodes", 0), "/ip4/127.0.0.1/tcp/30333/p2p/QmNotAnEd25519Id", "$.bootnodes[0]"),
    (("bootnodes", 0), "/ip4/127.0.0.1/tcp/70000/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN",
     "$.bootnodes[0]"),
    (("extra",), [], "$.extra"),
    (("surprise",), 1, "$: unknown field(s) surprise"),
]


@pytest.mark.parametrize("path,value,fragment", MALFORMED, ids=[f"{'.'.join(map(str, p))}={v!r}"[:60]
                                                              for p, v, _ in MALFORMED])
def test_malformed_fields_are_named(devnet_doc, path, value, fragment):
    doc = copy.deepcopy(devnet_doc)
    _mutate(doc, path, value)
    with pytest.raises(GenesisError) as err:
        parse_genesis_bytes(json.dumps(doc).encode(), source="my.json")
    msg = str(err.value)
    assert msg.startswith("my.json: ")
    assert fragment in msg, msg
    assert "\n" not in msg


def test_total_supply_mismatch_explains_the_difference(devnet_doc):
    doc = copy.deepcopy(devnet_doc)
    doc["accounts"][3]["balance"] = str(int(doc["accounts"][3]["balance"]) + 1)
    with pytest.raises(GenesisError, match=r"\$\.total_supply.*difference -1"):
        genesis_from_json(doc)
    del doc["total_supply"]  # without a stated total, nothing to check
    assert genesis_from_json(doc).total_supply is None


@pytest.mark.parametrize("data,fragment", [
    (b"{", "not valid JSON"),
    (b"\xff\xfe", "not UTF-8"),
    (b'{"format": 1, "format": 1}', "duplicate key 'format'"),
    (b'{"format": NaN}', "NaN is not allowed"),
    (b'[]', "$: expected a JSON object"),
])
def test_not_json_objects(data, fragment):
    with pytest.raises(GenesisError) as err:
        parse_genesis_bytes(data, source="g.json")
    assert fragment in str(err.value)


def test_files_and_names(tmp_path):
    with pytest.raises(GenesisError, match="not found"):
        load_genesis(tmp_path / "missing.json")
    with pytest.raises(GenesisError, match="not found.*devnet, mainnet"):
        load_genesis("testnet")
    big = tmp_path / "big.json"
    big.write_bytes(b" " * (4 * 1024 * 1024 + 1))
    with pytest.raises(GenesisError, match="larger than"):
        load_genesis(big)
    path = tmp_path / "mine.json"
    path.write_text((builtin_genesis_dir() / "devnet.json").read_text())
    assert load_genesis(path) == load_genesis("devnet")
    assert load_genesis(str(path)) == load_genesis("devnet")


def test_builtin_files_are_the_repo_files():
    """The packaged copy (mindnode/genesis) is the repository's top-level genesis/ directory."""
    from pathlib import Path

    repo_genesis = Path(__file__).resolve().parents[2] / "genesis"
    for name in ("devnet.json", "mainnet.json"):
        assert (builtin_genesis_dir() / name).read_bytes() == (repo_genesis / name).read_bytes()


# --------------------------------------------------------------------------------------------- property

_addresses = st.integers(0, 40).map(lambda i: keys.devnet_key(i).address)
_amounts = st.integers(0, 10**30)


@st.composite
def genesis_values(draw):
    params = Params(epoch_length=draw(st.integers(1, 1000)), month_s=draw(st.integers(1, 10**7)),
                    min_validator_stake=draw(st.integers(0, 10**24)))
    accounts = draw(st.lists(st.builds(GenesisAccount, _addresses, _amounts, st.text(max_size=20)),
                             max_size=5, unique_by=lambda a: a.address))
    validators = draw(st.lists(st.builds(GenesisValidator, _addresses,
                                         st.integers(params.min_validator_stake, 10**30), st.text(max_size=10)),
                               max_size=4, unique_by=lambda v: v.address))
    rows = draw(st.lists(st.builds(AllocationRow, st.text(min_size=1, max_size=20).filter(str.strip), _amounts,
                                   st.integers(0, 200), st.integers(0, 200),
                                   st.sampled_from(["mining", "staking"])),
                         max_size=5, unique_by=lambda r: r.name))
    total = sum(a.balance for a in accounts) + sum(v.stake for v in validators) + sum(r.amount for r in rows)
    ts = draw(st.integers(0, 2**40))
    return Genesis(chain_id=draw(st.from_regex(r"[a-z0-9][a-z0-9._-]{0,20}", fullmatch=True)), timestamp=ts,
                   params=params, accounts=tuple(accounts), validators=tuple(validators),
                   allocation_start=draw(st.integers(0, 2**40)), allocation=tuple(rows),
                   total_supply=draw(st.sampled_from([None, total])), bootnodes=(),
                   extra=draw(st.dictionaries(st.text(max_size=5).filter(lambda k: not k.startswith("_")),
                                              st.integers(0, 10), max_size=3)))


@settings(max_examples=60, deadline=None)
@given(genesis_values())
def test_any_valid_genesis_round_trips_through_json(g):
    again = parse_genesis_bytes(json.dumps(genesis_to_json(g)).encode())
    assert again == g and again.extra == g.extra
    assert genesis_hash(again) == genesis_hash(g)
