"""Identities, certificates, key storage and the sealed envelope.

The only package that handles private keys. Pure apart from key files on disk.
"""

from keys.certificates import (
    Certificate,
    CertificateBody,
    RevocationList,
    RevocationListBody,
    RevokedEntry,
    Role,
    issue_certificate,
    issue_revocation_list,
)
from keys.directory import CertificateStatus, Directory
from keys.fingerprint import certificate_id, fingerprint, is_certificate_id, is_fingerprint
from keys.identity import AgencyIdentity, AgencyPublicKeys, RootKey, verify_detached
from keys.keystore import (
    KEY_FILE_FORMAT,
    load_identity,
    load_root_key,
    read_key_metadata,
    save_identity,
    save_root_key,
)

__all__ = [
    "KEY_FILE_FORMAT",
    "AgencyIdentity",
    "AgencyPublicKeys",
    "Certificate",
    "CertificateBody",
    "CertificateStatus",
    "Directory",
    "RevocationList",
    "RevocationListBody",
    "RevokedEntry",
    "Role",
    "RootKey",
    "certificate_id",
    "fingerprint",
    "is_certificate_id",
    "is_fingerprint",
    "issue_certificate",
    "issue_revocation_list",
    "load_identity",
    "load_root_key",
    "read_key_metadata",
    "save_identity",
    "save_root_key",
    "verify_detached",
]
