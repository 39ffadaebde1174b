"""Domain exceptions of the mindnode room's CLI-side pieces (keystore, config, data directory).

The CLI group (`mindnode.cli`) turns any of these, like every other room's domain errors, into
one ``error: ...`` line and a non-zero exit, so messages must say what to do, not what crashed.
"""

from __future__ import annotations


class MindnodeError(Exception):
    """Base class of mindnode's own (non-ledger, non-network) errors."""


class KeystoreError(MindnodeError):
    """A keystore file is missing, unreadable, malformed, or a key name is invalid/taken."""


class WrongPassword(KeystoreError):
    """The password does not decrypt the keystore file (or the file was tampered with)."""


class ConfigError(MindnodeError):
    """The data directory or its config.toml is missing, malformed, or already initialised."""
