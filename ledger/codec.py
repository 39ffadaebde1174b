"""The one canonical, strict codec for everything the ledger signs or hashes.

Why this shape: two nodes must turn the same record into the same bytes, and must both reject
the same malformed bytes, or their hashes and state roots drift apart. So:

* The wire format is msgpack. A record is a msgpack map whose keys are the field names, sorted;
  integers use msgpack's smallest encoding; amounts that can exceed 64 bits (`BigUInt`) travel
  as minimal big-endian byte strings; there are no floats, no ext types, no nil unless a field
  is declared `Optional`.
* Decoding is strict: bytes decode only if re-encoding the decoded value gives back the very
  same bytes (this rejects non-minimal integers, unsorted or duplicate keys, wrong string/binary
  families and trailing bytes), and the value then matches the record's schema exactly (types,
  bounds, lengths, no unknown and no missing fields). Every failure is a `DecodeError` that says
  which field was wrong.

Declaring a record::

    @record
    class Transfer(Record):
        to: Annotated[bytes, Bytes(32)]
        amount: Annotated[int, BigUInt()]

    data = encode(Transfer(to=b"..." * 32, amount=5))
    Transfer.decode(data)            # or decode(Transfer, data)
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, ClassVar

import msgpack

from ledger.errors import DecodeError

#: Hard ceiling on any single encoded record handed to `decode` (blocks included).
MAX_ENCODED_SIZE = 16 * 1024 * 1024


class Spec:
    """A field type: turns a Python value into a msgpack-able plain value and back, strictly."""

    def to_plain(self, value: Any, where: str) -> Any:  # pragma: no cover - interface
        raise NotImplementedError

    def from_plain(self, value: Any, where: str) -> Any:  # pragma: no cover - interface
        raise NotImplementedError


def _fail(where: str, msg: str) -> DecodeError:
    return DecodeError(f"{where}: {msg}")


class UInt(Spec):
    """An unsigned integer below 2**bits (bits <= 64, so msgpack holds it natively)."""

    def __init__(self, bits: int = 64):
        if not 1 <= bits <= 64:
            raise ValueError("UInt holds at most 64 bits; use BigUInt for more")
        self.limit = 1 << bits

    def to_plain(self, value, where):
        if type(value) is not int or not 0 <= value < self.limit:
            raise _fail(where, f"expected an unsigned integer below {self.limit}, got {value!r}")
        return value

    from_plain = to_plain


class BigUInt(Spec):
    """An unsigned integer of up to `max_bytes` bytes (token amounts in base units).

    Encoded as minimal big-endian bytes (zero is the empty string) so every value has exactly one
    encoding and no float or bignum extension is ever needed.
    """

    def __init__(self, max_bytes: int = 32):
        self.max_bytes = max_bytes
        self.limit = 1 << (8 * max_bytes)

    def to_plain(self, value, where):
        if type(value) is not int or not 0 <= value < self.limit:
            raise _fail(where, f"expected an unsigned integer below 2**{8 * self.max_bytes}, got {value!r}")
        return value.to_bytes((value.bit_length() + 7) // 8, "big")

    def from_plain(self, value, where):
        if type(value) is not bytes:
            raise _fail(where, f"expected an integer as bytes, got {type(value).__name__}")
        if len(value) > self.max_bytes:
            raise _fail(where, f"integer is {len(value)} bytes long, at most {self.max_bytes} allowed")
        if value[:1] == b"\x00":
            raise _fail(where, "integer has a leading zero byte (not canonical)")
        return int.from_bytes(value, "big")


class Bytes(Spec):
    """A byte string of exactly `length` bytes, or of at most `max_len` bytes."""

    def __init__(self, length: int | None = None, *, max_len: int | None = None):
        if (length is None) == (max_len is None):
            raise ValueError("give exactly one of length or max_len")
        self.length, self.max_len = length, max_len

    def to_plain(self, value, where):
        if type(value) is not bytes:
            raise _fail(where, f"expected bytes, got {type(value).__name__}")
        if self.length is not None and len(value) != self.length:
            raise _fail(where, f"expected {self.length} bytes, got {len(value)}")
        if self.max_len is not None and len(value) > self.max_len:
            raise _fail(where, f"{len(value)} bytes is over the limit of {self.max_len}")
        return value

    from_plain = to_plain


class Str(Spec):
    """A UTF-8 string of at most `max_len` characters."""

    def __init__(self, max_len: int = 256):
        self.max_len = max_len

    def to_plain(self, value, where):
        if type(value) is not str:
            raise _fail(where, f"expected a string, got {type(value).__name__}")
        if len(value) > self.max_len:
            raise _fail(where, f"string of {len(value)} characters is over the limit of {self.max_len}")
        return value

    from_plain = to_plain


class Bool(Spec):
    def to_plain(self, value, where):
        if type(value) is not bool:
            raise _fail(where, f"expected true/false, got {type(value).__name__}")
        return value

    from_plain = to_plain


class Optional(Spec):
    """The inner spec, or nil (None)."""

    def __init__(self, inner: Spec):
        self.inner = inner

    def to_plain(self, value, where):
        return None if value is None else self.inner.to_plain(value, where)

    def from_plain(self, value, where):
        return None if value is None else self.inner.from_plain(value, where)


class ListOf(Spec):
    """A list of at most `max_len` items of one spec (decoded as a tuple, so records stay hashable)."""

    def __init__(self, item: Spec | type, max_len: int):
        self.item = as_spec(item)
        self.max_len = max_len

    def to_plain(self, value, where):
        if not isinstance(value, (list, tuple)):
            raise _fail(where, f"expected a list, got {type(value).__name__}")
        if len(value) > self.max_len:
            raise _fail(where, f"list of {len(value)} items is over the limit of {self.max_len}")
        item = self.item
        try:
            return [item.to_plain(v, "") for v in value]
        except DecodeError:  # rare path: again, naming the item's index in the error
            return [item.to_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]

    def from_plain(self, value, where):
        if type(value) is not list:
            raise _fail(where, f"expected a list, got {type(value).__name__}")
        if len(value) > self.max_len:
            raise _fail(where, f"list of {len(value)} items is over the limit of {self.max_len}")
        item = self.item
        try:
            return tuple([item.from_plain(v, "") for v in value])
        except DecodeError:  # rare path: again, naming the item's index in the error
            return tuple(item.from_plain(v, f"{where}[{i}]") for i, v in enumerate(value))


class RecordSpec(Spec):
    """A nested record (a class decorated with `@record`)."""

    def __init__(self, cls: type):
        self.cls = cls

    def to_plain(self, value, where):
        if not isinstance(value, self.cls):
            raise _fail(where, f"expected {self.cls.__name__}, got {type(value).__name__}")
        return value.to_plain(where)

    def from_plain(self, value, where):
        return self.cls.from_plain(value, where)


def as_spec(t: Spec | type) -> Spec:
    if isinstance(t, Spec):
        return t
    if isinstance(t, type) and hasattr(t, "__record_fields__"):
        return RecordSpec(t)
    raise TypeError(f"{t!r} is not a codec spec or a @record class")


class Record:
    """Base class added by `@record`; gives encode/decode and plain conversion."""

    __record_fields__: ClassVar[tuple[tuple[str, Spec], ...]]
    __record_keys__: ClassVar[frozenset[str]]
    __record_key_order__: ClassVar[tuple[str, ...]]
    __record_plain_init__: ClassVar[bool]

    def to_plain(self, where: str = "") -> dict:
        try:  # hot path: no error-location strings (see from_plain)
            return {name: spec.to_plain(getattr(self, name), "") for name, spec in self.__record_fields__}
        except DecodeError:
            where = where or type(self).__name__
            return {name: spec.to_plain(getattr(self, name), f"{where}.{name}")
                    for name, spec in self.__record_fields__}

    @classmethod
    def from_plain(cls, value: Any, where: str = ""):
        where = where or cls.__name__
        if type(value) is not dict:
            raise _fail(where, f"expected a map, got {type(value).__name__}")
        keys = tuple(value)
        if keys != cls.__record_key_order__:
            cls._key_error(keys, where)
        try:
            fields = {name: spec.from_plain(value[name], "") for name, spec in cls.__record_fields__}
        except DecodeError:
            # Rare path: decode again naming each field, so the error says exactly where it is.
            fields = {name: spec.from_plain(value[name], f"{where}.{name}")
                      for name, spec in cls.__record_fields__}
        return cls._from_fields(fields)

    @classmethod
    def _from_fields(cls, fields: dict):
        """Build an instance from already-validated field values without the frozen dataclass
        `__init__` (which sets each field through `object.__setattr__`): records are decoded by
        the thousand per block, and every field was just checked by its spec. A record class with
        a `__post_init__` goes through `__init__` so its own checks still run."""
        if cls.__record_plain_init__:
            obj = object.__new__(cls)
            obj.__dict__.update(fields)
            return obj
        return cls(**fields)

    @classmethod
    def _key_error(cls, keys: tuple, where: str) -> None:
        """Explain why a map's keys are not exactly the record's field names in sorted order.
        (The happy path above is one tuple comparison: records are decoded by the thousand per block.)"""
        keys = list(keys)
        if any(type(k) is not str for k in keys):
            raise _fail(where, "map keys must be strings")
        if keys != sorted(keys):
            raise _fail(where, "map keys are not in canonical (sorted) order")
        if len(keys) != len(cls.__record_fields__) or set(keys) != cls.__record_keys__:
            unknown = sorted(set(keys) - cls.__record_keys__)
            missing = sorted(cls.__record_keys__ - set(keys))
            parts = []
            if unknown:
                parts.append(f"unknown field(s) {', '.join(map(str, unknown))}")
            if missing:
                parts.append(f"missing field(s) {', '.join(missing)}")
            raise _fail(where, "; ".join(parts) or "wrong fields")
        raise _fail(where, "wrong fields")  # pragma: no cover - the checks above cover every case

    def encode(self) -> bytes:
        return encode(self)

    @classmethod
    def decode(cls, data: bytes, *, max_size: int = MAX_ENCODED_SIZE):
        return decode(cls, data, max_size=max_size)


def record(cls: type) -> type:
    """Make `cls` (a subclass of `Record`) a frozen dataclass whose `Annotated[..., Spec]` fields define its encoding.

    Fields are encoded under their names, in sorted order. A field annotated with a `@record`
    class (not Annotated) nests that record.
    """
    if not issubclass(cls, Record):
        raise TypeError(f"@record class {cls.__name__} must subclass ledger.codec.Record")
    hints = typing.get_type_hints(cls, include_extras=True)
    own = {k: v for k, v in hints.items() if not k.startswith("_") and typing.get_origin(v) is not ClassVar}
    fields: list[tuple[str, Spec]] = []
    for name, hint in own.items():
        if typing.get_origin(hint) is typing.Annotated:
            spec = next((a for a in hint.__metadata__ if isinstance(a, Spec)), None)
            if spec is None:
                raise TypeError(f"{cls.__name__}.{name}: Annotated without a codec Spec")
        else:
            spec = as_spec(hint)
        fields.append((name, spec))
    fields.sort(key=lambda f: f[0])
    cls.__record_fields__ = tuple(fields)
    cls.__record_keys__ = frozenset(n for n, _ in fields)
    cls.__record_key_order__ = tuple(n for n, _ in fields)
    cls = dataclasses.dataclass(frozen=True)(cls)
    cls.__record_plain_init__ = not hasattr(cls, "__post_init__") and "__slots__" not in cls.__dict__
    return cls


def _reject_ext(code: int, data: bytes):
    raise DecodeError(f"msgpack extension type {code} is not allowed")


def pack_plain(value: Any) -> bytes:
    """msgpack-encode an already-plain value (what `Record.to_plain` returns)."""
    return msgpack.packb(value, use_bin_type=True)


def unpack_plain(data: bytes, *, max_size: int = MAX_ENCODED_SIZE) -> Any:
    """Decode msgpack bytes into a plain value, rejecting anything that is not canonical."""
    if type(data) is not bytes:
        data = bytes(data)
    if len(data) > max_size:
        raise DecodeError(f"input of {len(data)} bytes is over the limit of {max_size}")
    try:
        value = msgpack.unpackb(data, raw=False, use_list=True, strict_map_key=True,
                                ext_hook=_reject_ext)
    except DecodeError:
        raise
    except msgpack.ExtraData:
        raise DecodeError("trailing bytes after the encoded value") from None
    except (ValueError, TypeError, msgpack.UnpackException, UnicodeDecodeError) as exc:
        raise DecodeError(f"malformed msgpack: {exc}") from None
    try:
        again = msgpack.packb(value, use_bin_type=True)
    except (TypeError, ValueError, OverflowError) as exc:  # pragma: no cover - defensive
        raise DecodeError(f"value cannot be re-encoded: {exc}") from None
    if again != data:
        raise DecodeError("encoding is not canonical (non-minimal integer, float, duplicate keys or "
                          "wrong string/binary type)")
    return value


def encode(obj: Record) -> bytes:
    """The canonical bytes of a record."""
    return msgpack.packb(obj.to_plain(), use_bin_type=True)


def decode(cls: type, data: bytes, *, max_size: int = MAX_ENCODED_SIZE):
    """Decode canonical bytes into an instance of record class `cls`, or raise DecodeError."""
    return cls.from_plain(unpack_plain(data, max_size=max_size), cls.__name__)
