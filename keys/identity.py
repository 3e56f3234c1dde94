"""Agency identities and the partnership root key.

An agency holds two key pairs: Ed25519 for signing and X25519 for receiving
sealed keys. The partnership root holds one Ed25519 key that signs certificates
and revocation lists. Public halves are small immutable values compared in
constant time; private halves never leave this package except through
:mod:`keys.keystore`, which encrypts them.

Deterministic keys (``from_seed``) exist for known-answer test vectors. Each
private key is ``BLAKE2b-256(pae("safeguard:key-derivation:v1", purpose, seed))``
with ``purpose`` one of ``b"agency-ed25519"``, ``b"agency-x25519"``,
``b"root-ed25519"``; the same seed therefore never yields related keys.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

import nacl.exceptions
from nacl.bindings import sodium_memcmp
from nacl.public import PrivateKey, PublicKey, SealedBox
from nacl.signing import SigningKey, VerifyKey

from keys.fingerprint import fingerprint
from schemas.encoding import DOMAIN_KEY_DERIVATION, pae
from schemas.problems import BadSignature, DecryptionFailed

__all__ = [
    "KEY_SIZE",
    "SIGNATURE_SIZE",
    "AgencyIdentity",
    "AgencyPublicKeys",
    "RootKey",
    "verify_detached",
]

#: Size in bytes of every public key, private key and seed handled here.
KEY_SIZE = 32
#: Size in bytes of an Ed25519 detached signature.
SIGNATURE_SIZE = 64


def _require_bytes(value: object, size: int, name: str) -> bytes:
    if not isinstance(value, bytes):
        raise TypeError(f"{name} must be bytes")
    if len(value) != size:
        raise ValueError(f"{name} must be {size} bytes, not {len(value)}")
    return value


def _derive(seed: bytes, purpose: bytes) -> bytes:
    _require_bytes(seed, KEY_SIZE, "seed")
    return hashlib.blake2b(pae(DOMAIN_KEY_DERIVATION, purpose, seed), digest_size=32).digest()


def verify_detached(public_key: bytes, data: bytes, signature: bytes) -> bytes:
    """Verify an Ed25519 detached ``signature`` over ``data``; return ``data`` or raise.

    :raises BadSignature: when the signature is malformed or does not verify.
    :raises ValueError: when ``public_key`` is not 32 bytes.
    """
    _require_bytes(public_key, KEY_SIZE, "public_key")
    if not isinstance(data, bytes):
        raise TypeError("data must be bytes")
    if not isinstance(signature, bytes) or len(signature) != SIGNATURE_SIZE:
        raise BadSignature("signature must be 64 bytes")
    try:
        VerifyKey(public_key).verify(data, signature)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError):
        raise BadSignature("signature does not verify") from None
    return data


@dataclass(frozen=True, eq=False)
class AgencyPublicKeys:
    """An agency's public keys: Ed25519 ``signing`` and X25519 ``encryption`` (32 bytes each).

    ``bytes(keys)`` is ``signing || encryption``; equality is constant time.
    """

    signing: bytes
    encryption: bytes

    def __post_init__(self) -> None:
        _require_bytes(self.signing, KEY_SIZE, "signing key")
        _require_bytes(self.encryption, KEY_SIZE, "encryption key")

    @classmethod
    def from_bytes(cls, data: bytes) -> AgencyPublicKeys:
        """Rebuild from the 64-byte ``bytes(keys)`` form."""
        _require_bytes(data, 2 * KEY_SIZE, "public keys")
        return cls(signing=data[:KEY_SIZE], encryption=data[KEY_SIZE:])

    def __bytes__(self) -> bytes:
        return self.signing + self.encryption

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AgencyPublicKeys):
            return NotImplemented
        return bool(sodium_memcmp(bytes(self), bytes(other)))

    def __hash__(self) -> int:
        return hash(bytes(self))

    @property
    def fingerprint(self) -> str:
        """The agency fingerprint over both keys (``kind="agency"``)."""
        return fingerprint(bytes(self), kind="agency")

    def verify(self, data: bytes, signature: bytes) -> bytes:
        """Return ``data`` if ``signature`` is this agency's signature over it.

        :raises BadSignature: otherwise.
        """
        return verify_detached(self.signing, data, signature)

    def seal_to(self, data: bytes) -> bytes:
        """Encrypt ``data`` anonymously to this agency (libsodium sealed box)."""
        return bytes(SealedBox(PublicKey(self.encryption)).encrypt(data))


class AgencyIdentity:
    """An agency's private keys: Ed25519 signing key and X25519 decryption key."""

    __slots__ = ("_encryption_key", "_public_keys", "_signing_key")

    def __init__(self, signing_key: SigningKey, encryption_key: PrivateKey) -> None:
        """Wrap existing PyNaCl keys; prefer :meth:`generate` or :meth:`from_private_bytes`."""
        if not isinstance(signing_key, SigningKey) or not isinstance(encryption_key, PrivateKey):
            raise TypeError("expected a nacl.signing.SigningKey and a nacl.public.PrivateKey")
        self._signing_key = signing_key
        self._encryption_key = encryption_key
        self._public_keys = AgencyPublicKeys(
            signing=bytes(signing_key.verify_key), encryption=bytes(encryption_key.public_key)
        )

    @classmethod
    def generate(cls) -> AgencyIdentity:
        """Create a fresh identity from the operating system's random source."""
        return cls(SigningKey.generate(), PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> AgencyIdentity:
        """Derive an identity deterministically from a 32-byte ``seed`` (test vectors)."""
        return cls(
            SigningKey(_derive(seed, b"agency-ed25519")),
            PrivateKey(_derive(seed, b"agency-x25519")),
        )

    @classmethod
    def from_private_bytes(cls, data: bytes) -> AgencyIdentity:
        """Rebuild from :meth:`to_private_bytes` (Ed25519 seed || X25519 private key)."""
        _require_bytes(data, 2 * KEY_SIZE, "private key bytes")
        return cls(SigningKey(data[:KEY_SIZE]), PrivateKey(data[KEY_SIZE:]))

    def to_private_bytes(self) -> bytes:
        """The 64 secret bytes: Ed25519 seed followed by X25519 private key. Handle with care."""
        return bytes(self._signing_key) + bytes(self._encryption_key)

    @property
    def public_keys(self) -> AgencyPublicKeys:
        """The public half, as certified by the partnership root."""
        return self._public_keys

    @property
    def signing_key(self) -> SigningKey:
        """The Ed25519 signing key (for :mod:`keys.sealing`)."""
        return self._signing_key

    @property
    def encryption_key(self) -> PrivateKey:
        """The X25519 private key (for :mod:`keys.sealing`)."""
        return self._encryption_key

    def sign(self, data: bytes) -> bytes:
        """Return the 64-byte Ed25519 detached signature over ``data``."""
        return bytes(self._signing_key.sign(data).signature)

    def decrypt_sealed(self, box: bytes) -> bytes:
        """Open a sealed box addressed to this agency.

        :raises DecryptionFailed: when ``box`` was not sealed to this key or was altered.
        """
        try:
            return bytes(SealedBox(self._encryption_key).decrypt(box))
        except (nacl.exceptions.CryptoError, TypeError):
            raise DecryptionFailed("sealed box does not open with this agency's key") from None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AgencyIdentity):
            return NotImplemented
        return hmac.compare_digest(self.to_private_bytes(), other.to_private_bytes())

    def __hash__(self) -> int:
        return hash(self._public_keys)

    def __repr__(self) -> str:
        return f"AgencyIdentity(fingerprint={self._public_keys.fingerprint!r})"


class RootKey:
    """The partnership root: one Ed25519 key that signs certificates and revocation lists."""

    __slots__ = ("_signing_key",)

    def __init__(self, signing_key: SigningKey) -> None:
        """Wrap an existing PyNaCl signing key; prefer :meth:`generate`."""
        if not isinstance(signing_key, SigningKey):
            raise TypeError("expected a nacl.signing.SigningKey")
        self._signing_key = signing_key

    @classmethod
    def generate(cls) -> RootKey:
        """Create a fresh root key from the operating system's random source."""
        return cls(SigningKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> RootKey:
        """Derive a root key deterministically from a 32-byte ``seed`` (test vectors)."""
        return cls(SigningKey(_derive(seed, b"root-ed25519")))

    @classmethod
    def from_private_bytes(cls, data: bytes) -> RootKey:
        """Rebuild from :meth:`to_private_bytes` (the 32-byte Ed25519 seed)."""
        return cls(SigningKey(_require_bytes(data, KEY_SIZE, "private key bytes")))

    def to_private_bytes(self) -> bytes:
        """The 32-byte Ed25519 seed. Handle with care."""
        return bytes(self._signing_key)

    @property
    def public_key(self) -> bytes:
        """The 32-byte Ed25519 public key every client pins."""
        return bytes(self._signing_key.verify_key)

    @property
    def fingerprint(self) -> str:
        """The root fingerprint (``kind="root"``); certificates name it as ``issuer``."""
        return fingerprint(self.public_key, kind="root")

    def sign(self, data: bytes) -> bytes:
        """Return the 64-byte Ed25519 detached signature over ``data``."""
        return bytes(self._signing_key.sign(data).signature)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RootKey):
            return NotImplemented
        return hmac.compare_digest(self.to_private_bytes(), other.to_private_bytes())

    def __hash__(self) -> int:
        return hash(self.public_key)

    def __repr__(self) -> str:
        return f"RootKey(fingerprint={self.fingerprint!r})"
