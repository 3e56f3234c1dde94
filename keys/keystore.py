"""Private keys at rest: passphrase-encrypted key files.

A key file is JSON::

    {"format": "safeguard-key-v1", "kind": "agency" | "root",
     "kdf": {"alg": "argon2id", "opslimit": 3, "memlimit": 268435456, "salt": "<b64, 16 bytes>"},
     "nonce": "<b64, 24 bytes>", "ciphertext": "<b64>",
     "metadata": {"fingerprint": "...", ...}}

The key is ``Argon2id(passphrase, salt, opslimit, memlimit)`` and the
ciphertext is ``SecretBox`` (XSalsa20-Poly1305) over the canonical JSON
``{"kind", "metadata", "private_key"}``. The cleartext ``metadata`` (public keys,
fingerprint, whatever the caller adds, never anything secret) can be read with
:func:`read_key_metadata` without the passphrase; because a copy sits inside the
ciphertext, loading detects any edit to it.

Files are created with ``os.open(path, O_CREAT | O_EXCL | O_WRONLY, 0o600)``: an
existing file is never overwritten (:class:`~schemas.problems.KeyFileExists`) and
no other user can read the file at any moment. A missing parent directory is
created with mode ``0o700``.

**Cost** (``limits``), measured on a 2-core machine: ``"interactive"`` (64 MiB,
2 passes) about 0.07 s, for tests and demos only; ``"moderate"`` (256 MiB, 3
passes, the default) about 0.45 s; ``"sensitive"`` (1 GiB, 4 passes) several
seconds, suitable for the offline root key. The limits are stored in the file,
so loading costs what saving cost.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import nacl.exceptions
import nacl.utils
from nacl.pwhash import argon2id
from nacl.secret import SecretBox

from keys.identity import AgencyIdentity, RootKey
from schemas.encoding import b64decode, b64encode, canonical_json
from schemas.problems import InvalidEnvelope, KeyFileExists, KeystoreError, WrongPassphrase

__all__ = [
    "KEY_FILE_FORMAT",
    "Limits",
    "load_identity",
    "load_root_key",
    "read_key_metadata",
    "save_identity",
    "save_root_key",
]

#: The ``format`` value of every key file this module writes.
KEY_FILE_FORMAT = "safeguard-key-v1"

#: Argon2id cost presets (libsodium's).
Limits = Literal["interactive", "moderate", "sensitive"]

_LIMITS: dict[str, tuple[int, int]] = {
    "interactive": (argon2id.OPSLIMIT_INTERACTIVE, argon2id.MEMLIMIT_INTERACTIVE),
    "moderate": (argon2id.OPSLIMIT_MODERATE, argon2id.MEMLIMIT_MODERATE),
    "sensitive": (argon2id.OPSLIMIT_SENSITIVE, argon2id.MEMLIMIT_SENSITIVE),
}
# A file may ask for any cost between the cheapest and dearest preset, no more
# (an edited file must not make us allocate unbounded memory).
_OPS_RANGE = (argon2id.OPSLIMIT_INTERACTIVE, argon2id.OPSLIMIT_SENSITIVE)
_MEM_RANGE = (argon2id.MEMLIMIT_INTERACTIVE, argon2id.MEMLIMIT_SENSITIVE)
_MAX_FILE_BYTES = 1 << 20
_FILE_KEYS = frozenset({"format", "kind", "kdf", "nonce", "ciphertext", "metadata"})
_KDF_KEYS = frozenset({"alg", "opslimit", "memlimit", "salt"})
_INNER_KEYS = frozenset({"kind", "metadata", "private_key"})

_Kind = Literal["agency", "root"]
PathLike = str | os.PathLike[str]


def _check_passphrase(passphrase: object) -> bytes:
    if not isinstance(passphrase, bytes):
        raise TypeError("passphrase must be bytes (encode text as UTF-8)")
    return passphrase


def _derive_key(passphrase: bytes, salt: bytes, opslimit: int, memlimit: int) -> bytes:
    return bytes(
        argon2id.kdf(SecretBox.KEY_SIZE, passphrase, salt, opslimit=opslimit, memlimit=memlimit)
    )


def _build_metadata(
    automatic: dict[str, Any], kind: _Kind, extra: Mapping[str, Any] | None
) -> dict[str, Any]:
    metadata = {"kind": kind, **automatic}
    for key, value in (extra or {}).items():
        if not isinstance(key, str):
            raise TypeError("metadata keys must be strings")
        if key in metadata:
            raise ValueError(f"metadata key {key!r} is set automatically")
        metadata[key] = value
    try:
        canonical_json(metadata)
    except InvalidEnvelope as exc:
        raise ValueError(f"metadata must be plain JSON: {exc.detail}") from None
    return metadata


def _save(
    path: PathLike,
    kind: _Kind,
    secret: bytes,
    passphrase: bytes,
    metadata: dict[str, Any],
    limits: Limits,
) -> Path:
    _check_passphrase(passphrase)
    if not passphrase:
        raise ValueError("refusing to protect a key with an empty passphrase")
    if limits not in _LIMITS:
        raise ValueError(f"limits must be one of {sorted(_LIMITS)}")
    opslimit, memlimit = _LIMITS[limits]
    salt = nacl.utils.random(argon2id.SALTBYTES)
    nonce = nacl.utils.random(SecretBox.NONCE_SIZE)
    plaintext = canonical_json(
        {"kind": kind, "metadata": metadata, "private_key": b64encode(secret)}
    )
    box = SecretBox(_derive_key(passphrase, salt, opslimit, memlimit))
    ciphertext = box.encrypt(plaintext, nonce).ciphertext
    document = {
        "format": KEY_FILE_FORMAT,
        "kind": kind,
        "kdf": {
            "alg": "argon2id",
            "opslimit": opslimit,
            "memlimit": memlimit,
            "salt": b64encode(salt),
        },
        "nonce": b64encode(nonce),
        "ciphertext": b64encode(ciphertext),
        "metadata": metadata,
    }
    data = (json.dumps(document, indent=2, sort_keys=True) + "\n").encode("utf-8")
    return _write_new_file(Path(path), data)


def _write_new_file(path: Path, data: bytes) -> Path:
    """Create ``path`` (mode 0o600, never overwriting) and write ``data`` durably."""
    try:
        if not path.parent.exists():
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise KeystoreError(f"cannot create directory {path.parent}: {exc.strerror}") from None
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        raise KeyFileExists(f"refusing to overwrite existing key file {path}") from None
    except OSError as exc:
        raise KeystoreError(f"cannot create key file {path}: {exc.strerror}") from None
    try:
        os.fchmod(fd, 0o600)  # exactly 0o600 whatever the umask
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException as exc:
        path.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise KeystoreError(f"cannot write key file {path}: {exc.strerror}") from None
        raise
    return path


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _read_document(path: PathLike) -> tuple[Path, dict[str, Any]]:
    file = Path(path)
    try:
        with open(file, "rb") as handle:
            raw = handle.read(_MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise KeystoreError(f"no key file at {file}") from None
    except OSError as exc:
        raise KeystoreError(f"cannot read key file {file}: {exc.strerror}") from None
    if len(raw) > _MAX_FILE_BYTES:
        raise KeystoreError(f"{file} is too large to be a key file")
    try:
        document = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicate_keys)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise KeystoreError(f"{file} is not a key file (not JSON)") from None
    if not isinstance(document, dict) or document.get("format") != KEY_FILE_FORMAT:
        raise KeystoreError(f"{file} is not a {KEY_FILE_FORMAT} key file")
    if set(document) != _FILE_KEYS or not isinstance(document["metadata"], dict):
        raise KeystoreError(f"{file} is a corrupted key file (unexpected structure)")
    return file, document


def _int_in(value: object, bounds: tuple[int, int]) -> int:
    if type(value) is not int or not bounds[0] <= value <= bounds[1]:
        raise ValueError("argon2id limit out of range")
    return value


def _load(path: PathLike, passphrase: bytes, kind: _Kind) -> bytes:
    """Decrypt the file at ``path`` holding a key of ``kind``; return the secret bytes."""
    _check_passphrase(passphrase)
    file, document = _read_document(path)
    if document["kind"] != kind:
        raise KeystoreError(f"{file} holds a {document['kind']!r} key, expected {kind!r}")
    try:
        kdf = document["kdf"]
        if not isinstance(kdf, dict) or set(kdf) != _KDF_KEYS or kdf["alg"] != "argon2id":
            raise ValueError("unsupported key derivation")
        opslimit = _int_in(kdf["opslimit"], _OPS_RANGE)
        memlimit = _int_in(kdf["memlimit"], _MEM_RANGE)
        salt = b64decode(kdf["salt"], field="salt")
        nonce = b64decode(document["nonce"], field="nonce")
        ciphertext = b64decode(document["ciphertext"], field="ciphertext")
        if len(salt) != argon2id.SALTBYTES or len(nonce) != SecretBox.NONCE_SIZE:
            raise ValueError("bad salt or nonce length")
    except (ValueError, InvalidEnvelope) as exc:
        detail = exc.detail if isinstance(exc, InvalidEnvelope) else str(exc)
        raise KeystoreError(f"{file} is a corrupted key file ({detail})") from None
    box = SecretBox(_derive_key(passphrase, salt, opslimit, memlimit))
    try:
        plaintext = box.decrypt(ciphertext, nonce)
    except nacl.exceptions.CryptoError:
        raise WrongPassphrase(
            f"the passphrase does not unlock {file} (or the file was altered)"
        ) from None
    try:
        inner = json.loads(plaintext.decode("utf-8"))
        if not isinstance(inner, dict) or set(inner) != _INNER_KEYS:
            raise ValueError("unexpected content")
        secret = b64decode(inner["private_key"], field="private_key")
    except (UnicodeDecodeError, ValueError, InvalidEnvelope):
        raise KeystoreError(f"{file} is a corrupted key file (bad content)") from None
    if inner["kind"] != kind or inner["metadata"] != document["metadata"]:
        raise KeystoreError(f"{file} has been edited: its metadata does not match the key")
    return secret


def save_identity(
    path: PathLike,
    identity: AgencyIdentity,
    passphrase: bytes,
    *,
    metadata: Mapping[str, Any] | None = None,
    limits: Limits = "moderate",
) -> Path:
    """Encrypt ``identity`` under ``passphrase`` into a new file at ``path``.

    The metadata automatically records ``kind``, ``fingerprint``, ``signing_key`` and
    ``encryption_key`` (public, base64); ``metadata`` adds non-secret JSON values such
    as ``agency_id``.

    :returns: the path written.
    :raises KeyFileExists: when ``path`` already exists.
    :raises KeystoreError: when the file cannot be created or written.
    :raises ValueError: on an empty passphrase, unknown ``limits`` or bad metadata.
    """
    if not isinstance(identity, AgencyIdentity):
        raise TypeError("identity must be an AgencyIdentity")
    keys = identity.public_keys
    automatic = {
        "fingerprint": keys.fingerprint,
        "signing_key": b64encode(keys.signing),
        "encryption_key": b64encode(keys.encryption),
    }
    return _save(
        path,
        "agency",
        identity.to_private_bytes(),
        passphrase,
        _build_metadata(automatic, "agency", metadata),
        limits,
    )


def load_identity(path: PathLike, passphrase: bytes) -> AgencyIdentity:
    """Decrypt the agency identity stored at ``path``.

    :raises WrongPassphrase: when ``passphrase`` does not unlock the file.
    :raises KeystoreError: when the file is missing, corrupted, of another format or
        holds a root key.
    """
    secret = _load(path, passphrase, "agency")
    try:
        return AgencyIdentity.from_private_bytes(secret)
    except ValueError:
        raise KeystoreError(f"{path} is a corrupted key file (bad key length)") from None


def save_root_key(
    path: PathLike,
    root: RootKey,
    passphrase: bytes,
    *,
    metadata: Mapping[str, Any] | None = None,
    limits: Limits = "moderate",
) -> Path:
    """Encrypt the partnership ``root`` key under ``passphrase`` into a new file at ``path``.

    The metadata automatically records ``kind``, ``fingerprint`` and ``public_key``.
    Consider ``limits="sensitive"`` for a root key kept offline.

    :returns: the path written.
    :raises KeyFileExists: when ``path`` already exists.
    :raises KeystoreError: when the file cannot be created or written.
    :raises ValueError: on an empty passphrase, unknown ``limits`` or bad metadata.
    """
    if not isinstance(root, RootKey):
        raise TypeError("root must be a RootKey")
    automatic = {"fingerprint": root.fingerprint, "public_key": b64encode(root.public_key)}
    return _save(
        path,
        "root",
        root.to_private_bytes(),
        passphrase,
        _build_metadata(automatic, "root", metadata),
        limits,
    )


def load_root_key(path: PathLike, passphrase: bytes) -> RootKey:
    """Decrypt the partnership root key stored at ``path``.

    :raises WrongPassphrase: when ``passphrase`` does not unlock the file.
    :raises KeystoreError: when the file is missing, corrupted, of another format or
        holds an agency key.
    """
    secret = _load(path, passphrase, "root")
    try:
        return RootKey.from_private_bytes(secret)
    except ValueError:
        raise KeystoreError(f"{path} is a corrupted key file (bad key length)") from None


def read_key_metadata(path: PathLike) -> dict[str, Any]:
    """Return a key file's non-secret metadata without the passphrase.

    Unauthenticated until the file is loaded with its passphrase: use it for display
    and to pick the right file, not to make trust decisions.

    :raises KeystoreError: when the file is missing, corrupted or of another format.
    """
    _, document = _read_document(path)
    return dict(document["metadata"])
