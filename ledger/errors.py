"""Domain exceptions of the ledger room.

Every error a user or a peer can cause raises a subclass of `LedgerError` whose message says what was
wrong in words a user can act on; the CLI prints it as one line. Nothing here ever leaks a traceback
to a user, and nothing is silently defaulted.
"""


class LedgerError(Exception):
    """Base class of every ledger error."""


class DecodeError(LedgerError):
    """Bytes are not a canonical encoding of the expected record (malformed, wrong type, unknown or
    missing field, trailing bytes, too large, or not in canonical form)."""


class InvalidKey(LedgerError):
    """A key, address or signature is malformed."""


class InvalidSignature(LedgerError):
    """A signature does not verify against the claimed signer."""


class InvalidTransaction(LedgerError):
    """A transaction breaks a ledger rule (chain id, nonce, balance, kind-specific rule)."""


class InvalidBlock(LedgerError):
    """A block breaks a ledger rule (header, seal, parent, roots, or one of its transactions)."""


class StoreError(LedgerError):
    """The database is missing, corrupt, or already initialised."""


class GenesisError(LedgerError):
    """A genesis file is malformed or inconsistent."""
