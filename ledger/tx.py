"""Signed transactions: who (sender), which (chain id, nonce), what (kind + body), and the fee.

Encoding: a canonical map (see `ledger.codec`) with the fields ``body, chain_id, fee, kind, nonce,
sender, signature``; `body` is the kind's record as a nested map, decoded by looking `kind` up in
`ledger.registry.KINDS`. The signature is Ed25519 by `sender` (the address *is* the public key)
over ``b"mindnode/tx-sign\\x00"`` + the canonical encoding of the same map without `signature`.
The chain id in the signed bytes stops replays across chains; the per-account nonce (which must
equal the sender's account nonce exactly) stops replays within a chain and orders an account's
transactions. The transaction hash is a tagged SHA-256 of the full signed encoding.

Checks come in two layers: `check_stateless` (size, body rules, signature: needs no state, so a
mempool or a block importer can run them in parallel) and `ledger.execution.apply_tx` (chain id,
nonce, balances, kind rules: needs state).
"""

from __future__ import annotations

from typing import Any

import msgpack

from ledger import sigs
from ledger.codec import BigUInt, Bytes, Spec, Str, UInt, unpack_plain
from ledger.errors import DecodeError, InvalidTransaction
from ledger.genesis import Params
from ledger.hashing import tagged_hash
from ledger.keys import PrivateKey, address_to_text
from ledger.registry import TxBody, body_class

SIGN_TAG = b"mindnode/tx-sign\x00"
HASH_TAG = b"mindnode/tx"
_FIELDS = ("body", "chain_id", "fee", "kind", "nonce", "sender", "signature")
_FIELD_SET = frozenset(_FIELDS)
_CHAIN_ID = Str(64)
_NONCE = UInt(64)
_ADDR = Bytes(32)
_FEE = BigUInt(32)
_KIND = Str(32)
_SIG = Bytes(64)
SIGNATURE_LEN = 64
_MAP7, _MAP6 = 0x87, b"\x86"                    # msgpack fixmap headers of 7 and 6 entries
_SIG_ENTRY_HEAD = b"\xa9signature\xc4\x40"     # fixstr "signature", then bin8 of 64 bytes
_SIG_TAIL = len(_SIG_ENTRY_HEAD) + SIGNATURE_LEN


class Transaction:
    """A signed transaction. Immutable; encoding, signing bytes and hash are computed once."""

    __slots__ = ("chain_id", "nonce", "sender", "fee", "kind", "body", "signature",
                 "_plain", "_encoded", "_hash")

    def __init__(self, chain_id: str, nonce: int, sender: bytes, fee: int, body: TxBody,
                 signature: bytes = bytes(64)):
        if not isinstance(body, TxBody):
            raise TypeError("body must be a registered transaction kind record")
        s = object.__setattr__
        s(self, "chain_id", chain_id)
        s(self, "nonce", nonce)
        s(self, "sender", sender)
        s(self, "fee", fee)
        s(self, "kind", body.kind)
        s(self, "body", body)
        s(self, "signature", signature)
        s(self, "_plain", None)
        s(self, "_encoded", None)
        s(self, "_hash", None)

    def __setattr__(self, name, value):
        raise AttributeError("Transaction is immutable")

    # -- encoding -------------------------------------------------------------------------------
    def to_plain(self, where: str = "tx") -> dict:
        if self._plain is None:
            plain = {
                "body": self.body.to_plain(f"{where}.body"),
                "chain_id": _CHAIN_ID.to_plain(self.chain_id, f"{where}.chain_id"),
                "fee": _FEE.to_plain(self.fee, f"{where}.fee"),
                "kind": _KIND.to_plain(self.kind, f"{where}.kind"),
                "nonce": _NONCE.to_plain(self.nonce, f"{where}.nonce"),
                "sender": _ADDR.to_plain(self.sender, f"{where}.sender"),
                "signature": _SIG.to_plain(self.signature, f"{where}.signature"),
            }
            object.__setattr__(self, "_plain", plain)
        return self._plain

    @classmethod
    def from_plain(cls, value: Any, where: str = "tx") -> Transaction:
        if type(value) is not dict:
            raise DecodeError(f"{where}: expected a map, got {type(value).__name__}")
        keys = tuple(value)
        if keys != _FIELDS:
            if set(keys) == _FIELD_SET:
                raise DecodeError(f"{where}: map keys are not in canonical (sorted) order")
            unknown = sorted(str(k) for k in set(keys) - _FIELD_SET)
            missing = sorted(_FIELD_SET - set(keys))
            parts = ([f"unknown field(s) {', '.join(unknown)}"] if unknown else []) + \
                    ([f"missing field(s) {', '.join(missing)}"] if missing else [])
            raise DecodeError(f"{where}: {'; '.join(parts)}")
        try:
            tx = cls._from_fields(value, "")
        except DecodeError:  # rare path: decode again naming each field in the error
            tx = cls._from_fields(value, where)
        object.__setattr__(tx, "_plain", value)
        return tx

    @classmethod
    def _from_fields(cls, value: dict, where: str) -> Transaction:
        """Check and convert each field. `where` = "" on the hot path: a block decodes thousands
        of transactions, and building seven error-location strings per transaction up front cost
        more than the checks themselves; on failure `from_plain` calls again with the location."""
        kind = _KIND.from_plain(value["kind"], f"{where}.kind" if where else "")
        body = body_class(kind).from_plain(value["body"], f"{where}.body" if where else "")
        if not where:
            return cls(_CHAIN_ID.from_plain(value["chain_id"], ""), _NONCE.from_plain(value["nonce"], ""),
                       _ADDR.from_plain(value["sender"], ""), _FEE.from_plain(value["fee"], ""), body,
                       _SIG.from_plain(value["signature"], ""))
        return cls(_CHAIN_ID.from_plain(value["chain_id"], f"{where}.chain_id"),
                   _NONCE.from_plain(value["nonce"], f"{where}.nonce"),
                   _ADDR.from_plain(value["sender"], f"{where}.sender"),
                   _FEE.from_plain(value["fee"], f"{where}.fee"),
                   body,
                   _SIG.from_plain(value["signature"], f"{where}.signature"))

    def encode(self) -> bytes:
        if self._encoded is None:
            object.__setattr__(self, "_encoded", msgpack.packb(self.to_plain(), use_bin_type=True))
        return self._encoded

    @classmethod
    def decode(cls, data: bytes, *, max_size: int = Params.max_tx_bytes) -> Transaction:
        """Decode one transaction (e.g. from gossip). The default size bound is the default
        Params.max_tx_bytes; pass the chain's own value."""
        tx = cls.from_plain(unpack_plain(data, max_size=max_size))
        object.__setattr__(tx, "_encoded", bytes(data))
        return tx

    def adopt_encoding(self, data: bytes) -> None:
        """Record `data` as this transaction's canonical encoding, for a caller that has just
        proven it is (`ledger.block.Block.decode` slicing a block it decoded strictly)."""
        if self._encoded is None:
            object.__setattr__(self, "_encoded", data)

    def signing_bytes(self) -> bytes:
        """SIGN_TAG + the canonical encoding of the map without `signature`.

        `signature` sorts last, and a msgpack map is its header followed by its entries in order,
        so that encoding is the full encoding with the 7-entry header turned into a 6-entry one
        and the final entry cut off: one slice of bytes the hash needs anyway, instead of a
        second dict and a second msgpack pass per transaction (thousands per block)."""
        enc = self.encode()
        if enc[0] == _MAP7 and enc[-_SIG_TAIL:-SIGNATURE_LEN] == _SIG_ENTRY_HEAD:
            return SIGN_TAG + _MAP6 + enc[1:-_SIG_TAIL]
        unsigned = {k: v for k, v in self.to_plain().items() if k != "signature"}  # pragma: no cover
        return SIGN_TAG + msgpack.packb(unsigned, use_bin_type=True)  # pragma: no cover

    @property
    def hash(self) -> bytes:
        if self._hash is None:
            object.__setattr__(self, "_hash", tagged_hash(HASH_TAG, self.encode()))
        return self._hash

    @property
    def size(self) -> int:
        return len(self.encode())

    def __eq__(self, other) -> bool:
        return isinstance(other, Transaction) and self.encode() == other.encode()

    def __hash__(self) -> int:
        return hash(self.hash)

    def __repr__(self) -> str:
        return (f"Transaction({self.kind} from {address_to_text(self.sender)[:14]}.. nonce={self.nonce} "
                f"fee={self.fee} hash={self.hash.hex()[:16]}..)")


class TxSpec(Spec):
    """Codec spec for a nested transaction (used by `ledger.block.Block`)."""

    def to_plain(self, value, where):
        if not isinstance(value, Transaction):
            raise DecodeError(f"{where}: expected Transaction, got {type(value).__name__}")
        return value.to_plain(where)

    def from_plain(self, value, where):
        return Transaction.from_plain(value, where)


def sign_tx(key: PrivateKey, chain_id: str, nonce: int, fee: int, body: TxBody) -> Transaction:
    """Build and sign a transaction from `key`'s account."""
    unsigned = Transaction(chain_id, nonce, key.address, fee, body)
    return Transaction(chain_id, nonce, key.address, fee, body, key.sign(unsigned.signing_bytes()))


def verify_signature(tx: Transaction) -> bool:
    return sigs.verify(tx.sender, tx.signing_bytes(), tx.signature)


def check_stateless(tx: Transaction, params: Params, *, signature: bool = True) -> None:
    """Rules that need no state: size, the body's own rules, and (unless told not to) the signature."""
    if tx.size > params.max_tx_bytes:
        raise InvalidTransaction(f"transaction is {tx.size} bytes, over the limit of {params.max_tx_bytes}")
    tx.body.check(params)
    if signature and not verify_signature(tx):
        raise InvalidTransaction(f"bad signature: not signed by sender {address_to_text(tx.sender)}")
