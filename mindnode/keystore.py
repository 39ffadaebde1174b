"""Keys at rest: one small JSON file per key, the seed encrypted with a password.

Why this shape: a node's 32-byte Ed25519 seed is its account *and* its libp2p identity
(`ledger.keys`), so losing it to a stolen disk image loses both. Each key file holds the seed
encrypted with AES-256-GCM under a key stretched from the password by scrypt, and is written
atomically with mode 0600 inside a 0700 directory. The address is stored in clear text so
`mindnode keys list` needs no password, and it is bound to the ciphertext as associated data, so
editing it makes decryption fail instead of showing a wrong address.

File format (version 1, encrypted)::

    {"version": 1, "kind": "encrypted", "address": "mn...",
     "kdf": {"name": "scrypt", "n": 32768, "r": 8, "p": 1, "salt": "<32 hex>"},
     "cipher": {"name": "aes-256-gcm", "nonce": "<24 hex>"},
     "ciphertext": "<hex of seed + 16-byte tag>"}

Devnet keys (``kind: "devnet"``) store only their index: their seeds are published
(``sha256("mindnode devnet key <i>")``), so encrypting them would protect nothing. They are
labelled INSECURE everywhere they are shown.

The scrypt cost is `DEFAULT_SCRYPT_N` (2**15, ~0.1 s and 32 MiB here); tests and scripts that
create many keys may lower it with the ``MINDNODE_SCRYPT_N`` environment variable or the
``scrypt_n`` argument. The cost used is stored in each file, so reading always uses the file's.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from ledger.errors import InvalidKey
from ledger.keys import PrivateKey, address_from_text, address_to_text, devnet_key
from mindnode.errors import KeystoreError, WrongPassword

VERSION = 1
DEFAULT_SCRYPT_N = 2**15
SCRYPT_R = 8
SCRYPT_P = 1
MIN_SCRYPT_N = 2**4           # tests only; documented above
MAX_SCRYPT_N = 2**20          # bounds the memory a (tampered) file can make us allocate: 1 GiB
MAX_FILE_BYTES = 64 * 1024
SALT_LEN = 16
NONCE_LEN = 12
INSECURE_LABEL = "INSECURE devnet key (published seed, anyone can derive it)"
_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}")


def scrypt_n_default() -> int:
    """`DEFAULT_SCRYPT_N`, or ``MINDNODE_SCRYPT_N`` when set (a power of two, for tests)."""
    raw = os.environ.get("MINDNODE_SCRYPT_N")
    if not raw:
        return DEFAULT_SCRYPT_N
    try:
        n = int(raw)
    except ValueError:
        raise KeystoreError(f"MINDNODE_SCRYPT_N={raw!r} is not an integer") from None
    _check_n(n, "MINDNODE_SCRYPT_N")
    return n


def _check_n(n: object, where: str) -> int:
    if type(n) is not int or n < MIN_SCRYPT_N or n > MAX_SCRYPT_N or n & (n - 1):
        raise KeystoreError(f"{where}: scrypt n must be a power of two in [{MIN_SCRYPT_N}, {MAX_SCRYPT_N}], got {n!r}")
    return n


def _derive(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(password.encode("utf-8"))


def _aad(doc: dict) -> bytes:
    """Everything but the ciphertext, canonically: tampering with any of it fails the tag."""
    header = {k: doc[k] for k in ("version", "kind", "address", "kdf", "cipher")}
    return json.dumps(header, sort_keys=True, separators=(",", ":")).encode()


def encrypt_key(key: PrivateKey, password: str, *, scrypt_n: int | None = None) -> dict:
    """The version-1 keystore document of `key` encrypted under `password`."""
    if not password:
        raise KeystoreError("the password must not be empty")
    n = _check_n(scrypt_n if scrypt_n is not None else scrypt_n_default(), "scrypt_n")
    salt, nonce = os.urandom(SALT_LEN), os.urandom(NONCE_LEN)
    doc = {"version": VERSION, "kind": "encrypted", "address": address_to_text(key.address),
           "kdf": {"name": "scrypt", "n": n, "r": SCRYPT_R, "p": SCRYPT_P, "salt": salt.hex()},
           "cipher": {"name": "aes-256-gcm", "nonce": nonce.hex()}}
    secret = _derive(password, salt, n, SCRYPT_R, SCRYPT_P)
    doc["ciphertext"] = AESGCM(secret).encrypt(nonce, key.seed, _aad(doc)).hex()
    return doc


def devnet_document(index: int) -> dict:
    """The keystore document of INSECURE devnet key `index` (no secret inside: the seed is public)."""
    if type(index) is not int or not 0 <= index < 1000:
        raise KeystoreError(f"devnet key index must be an integer in [0, 999], got {index!r}")
    return {"version": VERSION, "kind": "devnet", "devnet_index": index,
            "address": address_to_text(devnet_key(index).address), "warning": INSECURE_LABEL}


def _field(doc: dict, name: str, typ: type, where: str):
    value = doc.get(name)
    if type(value) is not typ:
        raise KeystoreError(f"{where}: field {name!r} is missing or not a {typ.__name__}")
    return value


def _hex(doc: dict, name: str, where: str, length: int | None = None) -> bytes:
    text = _field(doc, name, str, where)
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise KeystoreError(f"{where}: field {name!r} is not hex") from None
    if length is not None and len(raw) != length:
        raise KeystoreError(f"{where}: field {name!r} must be {length} bytes, got {len(raw)}")
    return raw


def document_address(doc: dict, where: str = "keystore") -> bytes:
    """The address a keystore document claims (no password needed); validates the document's shape."""
    if type(doc) is not dict:
        raise KeystoreError(f"{where}: not a keystore document (expected a JSON object)")
    if doc.get("version") != VERSION or type(doc.get("version")) is not int:
        raise KeystoreError(f"{where}: unsupported keystore version {doc.get('version')!r} (expected {VERSION})")
    kind = doc.get("kind")
    if kind not in ("encrypted", "devnet"):
        raise KeystoreError(f"{where}: unknown keystore kind {kind!r}")
    try:
        return address_from_text(_field(doc, "address", str, where))
    except InvalidKey as exc:
        raise KeystoreError(f"{where}: {exc}") from None


def is_insecure(doc: dict) -> bool:
    return doc.get("kind") == "devnet"


def decrypt_key(doc: dict, password: str | None, where: str = "keystore") -> PrivateKey:
    """The key inside a keystore document; WrongPassword if `password` does not open it."""
    address = document_address(doc, where)
    if doc["kind"] == "devnet":
        index = _field(doc, "devnet_index", int, where)
        key = devnet_key(index)
    else:
        kdf = _field(doc, "kdf", dict, where)
        cipher = _field(doc, "cipher", dict, where)
        if kdf.get("name") != "scrypt" or cipher.get("name") != "aes-256-gcm":
            raise KeystoreError(f"{where}: unsupported kdf/cipher {kdf.get('name')!r}/{cipher.get('name')!r}")
        n = _check_n(kdf.get("n"), where)
        r, p = _field(kdf, "r", int, where), _field(kdf, "p", int, where)
        if not (1 <= r <= 32 and 1 <= p <= 16):
            raise KeystoreError(f"{where}: scrypt r/p out of range")
        salt = _hex(kdf, "salt", where)
        if not 8 <= len(salt) <= 64:
            raise KeystoreError(f"{where}: salt must be 8-64 bytes")
        nonce = _hex(cipher, "nonce", where, NONCE_LEN)
        ciphertext = _hex(doc, "ciphertext", where, 32 + 16)
        if password is None:
            raise KeystoreError(f"{where}: a password is needed to unlock this key")
        secret = _derive(password, salt, n, r, p)
        try:
            seed = AESGCM(secret).decrypt(nonce, ciphertext, _aad(doc))
        except InvalidTag:
            raise WrongPassword(f"{where}: wrong password (or the key file was modified)") from None
        key = PrivateKey(seed)
    if key.address != address:
        raise KeystoreError(f"{where}: the key inside does not match the address {doc['address']}")
    return key


# --------------------------------------------------------------------------------------------- files
def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):  # not every filesystem lets you fsync a directory
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def ensure_private_dir(directory: Path) -> Path:
    """Create `directory` (and parents) if needed and make it 0700."""
    directory = Path(directory)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    return directory


def write_private_file(path: Path, data: bytes, *, overwrite: bool = False) -> Path:
    """Write `data` to `path` atomically with mode 0600 (temp file + fsync + rename/link).

    Without `overwrite`, an existing file is never replaced (the final step is a hard link,
    which fails if the name exists), so two concurrent writers cannot clobber each other.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise KeystoreError(f"{path} already exists (refusing to overwrite it)") from None
            os.unlink(tmp)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    _fsync_dir(path.parent)
    return path


def read_document(path: Path) -> dict:
    path = Path(path)
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise KeystoreError(f"key file {path} not found") from None
    except OSError as exc:
        raise KeystoreError(f"cannot read key file {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_FILE_BYTES:
        raise KeystoreError(f"{path}: too large for a key file")
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise KeystoreError(f"{path}: not a keystore file (not JSON)") from None
    document_address(doc, str(path))
    return doc


def write_document(path: Path, doc: dict, *, overwrite: bool = False) -> Path:
    data = (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()
    return write_private_file(path, data, overwrite=overwrite)


@dataclass(frozen=True)
class KeyInfo:
    """What can be known about a stored key without its password."""

    name: str
    address: bytes
    insecure: bool
    path: Path

    @property
    def address_text(self) -> str:
        return address_to_text(self.address)


class Keystore:
    """A directory (``DATADIR/keys``) of key files named ``<name>.json``."""

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)

    @staticmethod
    def check_name(name: str) -> str:
        if not _NAME.fullmatch(name or ""):
            raise KeystoreError(f"invalid key name {name!r}: use 1-64 letters, digits, '_', '-' or '.'")
        return name

    def path(self, name: str) -> Path:
        return self.directory / f"{self.check_name(name)}.json"

    def exists(self, name: str) -> bool:
        return self.path(name).exists()

    def names(self) -> list[str]:
        if not self.directory.is_dir():
            return []
        return sorted(p.stem for p in self.directory.glob("*.json") if _NAME.fullmatch(p.stem))

    def info(self, name: str) -> KeyInfo:
        path = self.path(name)
        doc = read_document(path)
        return KeyInfo(name, document_address(doc, str(path)), is_insecure(doc), path)

    def entries(self) -> list[KeyInfo]:
        return [self.info(n) for n in self.names()]

    def find(self, name_or_address: str) -> KeyInfo:
        """A key by name, or by its ``mn...`` address."""
        if name_or_address.startswith("mn") and len(name_or_address) == 74:
            for name in self.names():
                try:
                    info = self.info(name)
                except KeystoreError:
                    continue  # a damaged file elsewhere must not hide the key asked for
                if info.address_text == name_or_address:
                    return info
            raise KeystoreError(f"no key with address {name_or_address} in {self.directory}")
        path = self.path(name_or_address)
        if not path.exists():
            have = ", ".join(self.names()) or "none"
            raise KeystoreError(f"no key named {name_or_address!r} in {self.directory} (keys: {have})")
        return self.info(name_or_address)

    def _prepare(self, name: str) -> Path:
        path = self.path(name)
        ensure_private_dir(self.directory)
        return path

    def add(self, name: str, key: PrivateKey, password: str, *, scrypt_n: int | None = None,
            overwrite: bool = False) -> KeyInfo:
        """Encrypt and store `key` under `name`."""
        path = self._prepare(name)
        if path.exists() and not overwrite:
            raise KeystoreError(f"a key named {name!r} already exists in {self.directory}")
        write_document(path, encrypt_key(key, password, scrypt_n=scrypt_n), overwrite=overwrite)
        return KeyInfo(name, key.address, False, path)

    def add_devnet(self, name: str, index: int, *, overwrite: bool = False) -> KeyInfo:
        """Store INSECURE devnet key `index` under `name` (no password: its seed is public)."""
        path = self._prepare(name)
        if path.exists() and not overwrite:
            raise KeystoreError(f"a key named {name!r} already exists in {self.directory}")
        doc = devnet_document(index)
        write_document(path, doc, overwrite=overwrite)
        return KeyInfo(name, address_from_text(doc["address"]), True, path)

    def add_document(self, name: str, doc: dict, *, overwrite: bool = False) -> KeyInfo:
        """Import a keystore document as-is (it stays encrypted under its own password)."""
        address = document_address(doc, "imported key file")
        path = self._prepare(name)
        if path.exists() and not overwrite:
            raise KeystoreError(f"a key named {name!r} already exists in {self.directory}")
        write_document(path, doc, overwrite=overwrite)
        return KeyInfo(name, address, is_insecure(doc), path)

    def document(self, name: str) -> dict:
        return read_document(self.path(name))

    def load(self, name: str, password: str | None) -> PrivateKey:
        """Decrypt key `name`; `password` may be None for devnet keys."""
        path = self.find(name).path
        return decrypt_key(read_document(path), password, str(path))

    def needs_password(self, name: str) -> bool:
        return not is_insecure(self.document(name))
