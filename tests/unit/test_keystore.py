"""Encrypted key files: round trips, file mode, no overwrite, wrong passphrase, corruption."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from keys.identity import AgencyIdentity, RootKey
from keys.keystore import (
    KEY_FILE_FORMAT,
    load_identity,
    load_root_key,
    read_key_metadata,
    save_identity,
    save_root_key,
)
from schemas.encoding import b64decode, b64encode
from schemas.problems import KeyFileExists, KeystoreError, WrongPassphrase

IDENTITY = AgencyIdentity.from_seed(bytes(range(32)))
ROOT = RootKey.from_seed(bytes(32))
PASSPHRASE = b"correct horse battery staple"


@pytest.fixture(name="key_file")
def _key_file(tmp_path: Path) -> Path:
    return save_identity(
        tmp_path / "agency.key",
        IDENTITY,
        PASSPHRASE,
        metadata={"agency_id": "oakfield-primary"},
        limits="interactive",
    )


def _rewrite(path: Path, change: Any) -> None:
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))


class TestRoundTrip:
    def test_identity(self, key_file: Path) -> None:
        loaded = load_identity(key_file, PASSPHRASE)
        assert loaded == IDENTITY
        assert loaded.public_keys == IDENTITY.public_keys

    def test_root_key(self, tmp_path: Path) -> None:
        path = save_root_key(tmp_path / "root.key", ROOT, PASSPHRASE, limits="interactive")
        assert load_root_key(path, PASSPHRASE) == ROOT
        assert read_key_metadata(path)["fingerprint"] == ROOT.fingerprint
        assert read_key_metadata(path)["public_key"] == b64encode(ROOT.public_key)

    def test_file_format(self, key_file: Path) -> None:
        document = json.loads(key_file.read_text())
        assert set(document) == {"format", "kind", "kdf", "nonce", "ciphertext", "metadata"}
        assert document["format"] == KEY_FILE_FORMAT
        assert document["kind"] == "agency"
        assert document["kdf"]["alg"] == "argon2id"
        assert len(b64decode(document["kdf"]["salt"])) == 16
        assert len(b64decode(document["nonce"])) == 24
        private = IDENTITY.to_private_bytes()
        text = key_file.read_text()
        assert b64encode(private) not in text
        assert b64encode(private[:32]) not in text
        assert private.hex() not in text

    def test_default_limits_are_moderate(self, tmp_path: Path) -> None:
        path = save_identity(tmp_path / "moderate.key", IDENTITY, PASSPHRASE)
        kdf = json.loads(path.read_text())["kdf"]
        assert (kdf["opslimit"], kdf["memlimit"]) == (3, 256 * 1024 * 1024)

    def test_metadata_without_passphrase(self, key_file: Path) -> None:
        metadata = read_key_metadata(key_file)
        assert metadata == {
            "kind": "agency",
            "agency_id": "oakfield-primary",
            "fingerprint": IDENTITY.public_keys.fingerprint,
            "signing_key": b64encode(IDENTITY.public_keys.signing),
            "encryption_key": b64encode(IDENTITY.public_keys.encryption),
        }


class TestFileCreation:
    def test_mode_is_0600(self, key_file: Path) -> None:
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600

    def test_mode_is_0600_even_with_a_permissive_umask(self, tmp_path: Path) -> None:
        previous = os.umask(0)
        try:
            path = save_root_key(tmp_path / "root.key", ROOT, PASSPHRASE, limits="interactive")
        finally:
            os.umask(previous)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600

    def test_missing_parent_created_0700(self, tmp_path: Path) -> None:
        path = tmp_path / "new" / "agency.key"
        save_identity(path, IDENTITY, PASSPHRASE, limits="interactive")
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert load_identity(path, PASSPHRASE) == IDENTITY

    def test_never_overwrites(self, key_file: Path) -> None:
        before = key_file.read_bytes()
        with pytest.raises(KeyFileExists):
            save_identity(key_file, AgencyIdentity.generate(), PASSPHRASE, limits="interactive")
        assert key_file.read_bytes() == before

    def test_does_not_follow_a_symlink(self, tmp_path: Path) -> None:
        target = tmp_path / "target"
        target.write_text("precious")
        link = tmp_path / "link.key"
        link.symlink_to(target)
        with pytest.raises(KeyFileExists):
            save_identity(link, IDENTITY, PASSPHRASE, limits="interactive")
        assert target.read_text() == "precious"
        dangling = tmp_path / "dangling.key"
        dangling.symlink_to(tmp_path / "nowhere")
        with pytest.raises(KeyFileExists):
            save_identity(dangling, IDENTITY, PASSPHRASE, limits="interactive")
        assert not (tmp_path / "nowhere").exists()

    def test_unwritable_location(self, tmp_path: Path) -> None:
        blocker = tmp_path / "file"
        blocker.write_text("")
        with pytest.raises(KeystoreError, match="cannot create"):
            save_identity(blocker / "agency.key", IDENTITY, PASSPHRASE, limits="interactive")

    def test_argument_checks(self, tmp_path: Path) -> None:
        path = tmp_path / "agency.key"
        with pytest.raises(ValueError, match="empty passphrase"):
            save_identity(path, IDENTITY, b"", limits="interactive")
        with pytest.raises(TypeError, match="bytes"):
            save_identity(path, IDENTITY, "text", limits="interactive")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="limits"):
            save_identity(path, IDENTITY, PASSPHRASE, limits="fast")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="automatically"):
            save_identity(path, IDENTITY, PASSPHRASE, metadata={"fingerprint": "x"})
        with pytest.raises(ValueError, match="JSON"):
            save_identity(path, IDENTITY, PASSPHRASE, metadata={"n": float("nan")})
        assert not path.exists()


class TestRefusals:
    def test_wrong_passphrase(self, key_file: Path) -> None:
        with pytest.raises(WrongPassphrase):
            load_identity(key_file, b"correct horse battery stapler")

    def test_missing_file(self, tmp_path: Path) -> None:
        with pytest.raises(KeystoreError, match="no key file"):
            load_identity(tmp_path / "absent.key", PASSPHRASE)
        with pytest.raises(KeystoreError, match="no key file"):
            read_key_metadata(tmp_path / "absent.key")

    def test_wrong_kind(self, key_file: Path, tmp_path: Path) -> None:
        with pytest.raises(KeystoreError, match="expected 'root'"):
            load_root_key(key_file, PASSPHRASE)
        root_file = save_root_key(tmp_path / "root.key", ROOT, PASSPHRASE, limits="interactive")
        with pytest.raises(KeystoreError, match="expected 'agency'"):
            load_identity(root_file, PASSPHRASE)

    @pytest.mark.parametrize(
        "content", [b"", b"not json", b"\xff\xfe", b"[]", b'{"format": "other"}']
    )
    def test_not_a_key_file(self, tmp_path: Path, content: bytes) -> None:
        path = tmp_path / "junk.key"
        path.write_bytes(content)
        with pytest.raises(KeystoreError) as info:
            load_identity(path, PASSPHRASE)
        assert not isinstance(info.value, WrongPassphrase)
        assert "\n" not in str(info.value)

    @pytest.mark.parametrize(
        "change",
        [
            lambda d: d.pop("nonce"),
            lambda d: d.update(extra=1),
            lambda d: d.update(nonce="AAAA"),
            lambda d: d.update(nonce="not base64"),
            lambda d: d["kdf"].update(alg="scrypt"),
            lambda d: d["kdf"].update(memlimit=1 << 40),
            lambda d: d["kdf"].update(opslimit=1),
            lambda d: d["kdf"].update(opslimit="2"),
            lambda d: d["kdf"].update(salt=b64encode(bytes(8))),
            lambda d: d.update(metadata=[]),
        ],
    )
    def test_corrupted_structure(self, key_file: Path, change: Any) -> None:
        _rewrite(key_file, change)
        with pytest.raises(KeystoreError) as info:
            load_identity(key_file, PASSPHRASE)
        assert not isinstance(info.value, WrongPassphrase)
        assert "\n" not in str(info.value)

    def test_altered_ciphertext(self, key_file: Path) -> None:
        def change(document: dict[str, Any]) -> None:
            raw = bytearray(b64decode(document["ciphertext"]))
            raw[0] ^= 1
            document["ciphertext"] = b64encode(bytes(raw))

        _rewrite(key_file, change)
        with pytest.raises(WrongPassphrase):
            load_identity(key_file, PASSPHRASE)

    def test_edited_metadata_detected(self, key_file: Path) -> None:
        _rewrite(key_file, lambda d: d["metadata"].update(agency_id="northshire-mash"))
        assert read_key_metadata(key_file)["agency_id"] == "northshire-mash"
        with pytest.raises(KeystoreError, match="edited") as info:
            load_identity(key_file, PASSPHRASE)
        assert not isinstance(info.value, WrongPassphrase)
