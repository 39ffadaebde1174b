"""Content ids as the p2p blob store writes them: CIDv1, raw codec (0x55), sha2-256 multihash, in
multibase base32 lower case ('b' prefix), e.g. ``bafkrei...`` (59 characters). The ledger only
checks the form (the bytes are never on chain); the submitter checks downloaded bytes against it."""

from __future__ import annotations

import base64

from ledger.jobs.errors import JobError

_PREFIX = bytes([0x01, 0x55, 0x12, 0x20])
CID_LEN = 59


def cid_of(data: bytes) -> str:
    from hashlib import sha256

    return "b" + base64.b32encode(_PREFIX + sha256(data).digest()).decode().lower().rstrip("=")


def check_cid(text: str, what: str = "content id") -> None:
    if type(text) is not str or len(text) != CID_LEN or not text.startswith("b"):
        raise JobError(f"{what} {str(text)[:80]!r} is not a CIDv1 (raw, sha2-256, base32 'b...', "
                       f"{CID_LEN} characters)")
    try:
        raw = base64.b32decode(text[1:].upper() + "=" * (-len(text[1:]) % 8))
    except ValueError:
        raise JobError(f"{what} {text!r} is not valid base32") from None
    if len(raw) != 36 or raw[:4] != _PREFIX:
        raise JobError(f"{what} {text!r} is not a raw sha2-256 CIDv1")
