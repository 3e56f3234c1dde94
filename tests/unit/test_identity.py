"""Agency identities and the root key: derivation, signatures, sealed boxes, value semantics."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keys.identity import AgencyIdentity, AgencyPublicKeys, RootKey, verify_detached
from schemas.encoding import DOMAIN_KEY_DERIVATION, b64encode, pae
from schemas.problems import BadSignature, DecryptionFailed

SEED = bytes(range(32))
ALICE = AgencyIdentity.from_seed(SEED)
BOB = AgencyIdentity.from_seed(bytes(31) + b"\x01")


def _flip(data: bytes, index: int, mask: int) -> bytes:
    index %= len(data)
    return data[:index] + bytes([data[index] ^ mask]) + data[index + 1 :]


class TestDerivation:
    def test_known_answer(self) -> None:
        """Public keys for the fixed seed (published test vectors depend on these)."""
        keys = ALICE.public_keys
        assert b64encode(keys.signing) == "Adz5r89ykVkR92C1bS4D5lXqgfRh3FeRvno/mnam3uE="
        assert b64encode(keys.encryption) == "hBkb6P9ZsJDxGKE97YMtplXGRYNmsG45n1sLkRK3W3Y="

    def test_matches_the_specification(self) -> None:
        private = ALICE.to_private_bytes()

        def derive(purpose: bytes) -> bytes:
            data = pae(DOMAIN_KEY_DERIVATION, purpose, SEED)
            return hashlib.blake2b(data, digest_size=32).digest()

        assert private[:32] == derive(b"agency-ed25519")
        assert private[32:] == derive(b"agency-x25519")
        assert RootKey.from_seed(SEED).to_private_bytes() == derive(b"root-ed25519")

    def test_deterministic_and_seed_sensitive(self) -> None:
        assert AgencyIdentity.from_seed(SEED) == ALICE
        assert ALICE.public_keys != BOB.public_keys
        assert ALICE.public_keys.signing != ALICE.public_keys.encryption

    def test_root_and_agency_from_same_seed_differ(self) -> None:
        assert RootKey.from_seed(SEED).public_key != ALICE.public_keys.signing

    @pytest.mark.parametrize("seed", [b"", bytes(31), bytes(33)])
    def test_seed_length(self, seed: bytes) -> None:
        with pytest.raises(ValueError, match="32 bytes"):
            AgencyIdentity.from_seed(seed)
        with pytest.raises(ValueError, match="32 bytes"):
            RootKey.from_seed(seed)

    def test_generate_is_random(self) -> None:
        assert AgencyIdentity.generate().public_keys != AgencyIdentity.generate().public_keys
        assert RootKey.generate().public_key != RootKey.generate().public_key


class TestSignatures:
    def test_round_trip_returns_data(self) -> None:
        signature = ALICE.sign(b"referral")
        assert len(signature) == 64
        assert ALICE.public_keys.verify(b"referral", signature) == b"referral"

    @given(st.binary(min_size=1, max_size=64), st.integers(0, 63), st.integers(1, 255))
    def test_any_flipped_signature_byte_is_refused(
        self, data: bytes, index: int, mask: int
    ) -> None:
        signature = _flip(ALICE.sign(data), index, mask)
        with pytest.raises(BadSignature):
            ALICE.public_keys.verify(data, signature)

    @given(st.binary(min_size=1, max_size=64), st.integers(0, 1000), st.integers(1, 255))
    def test_any_flipped_data_byte_is_refused(self, data: bytes, index: int, mask: int) -> None:
        signature = ALICE.sign(data)
        with pytest.raises(BadSignature):
            ALICE.public_keys.verify(_flip(data, index, mask), signature)

    def test_other_key_refused(self) -> None:
        with pytest.raises(BadSignature):
            BOB.public_keys.verify(b"x", ALICE.sign(b"x"))

    @pytest.mark.parametrize("signature", [b"", bytes(63), bytes(65)])
    def test_malformed_signature_refused(self, signature: bytes) -> None:
        with pytest.raises(BadSignature):
            ALICE.public_keys.verify(b"x", signature)

    def test_root_signature(self) -> None:
        root = RootKey.from_seed(SEED)
        signature = root.sign(b"certificate")
        assert verify_detached(root.public_key, b"certificate", signature) == b"certificate"
        with pytest.raises(BadSignature):
            verify_detached(root.public_key, b"certificatE", signature)


class TestSealedBoxes:
    def test_round_trip(self) -> None:
        box = BOB.public_keys.seal_to(b"key material")
        assert box != b"key material"
        assert BOB.decrypt_sealed(box) == b"key material"

    def test_other_identity_cannot_open(self) -> None:
        with pytest.raises(DecryptionFailed):
            ALICE.decrypt_sealed(BOB.public_keys.seal_to(b"secret"))

    @given(st.integers(0, 1000), st.integers(1, 255))
    def test_altered_box_refused(self, index: int, mask: int) -> None:
        box = BOB.public_keys.seal_to(b"secret")
        with pytest.raises(DecryptionFailed):
            BOB.decrypt_sealed(_flip(box, index, mask))


class TestValues:
    def test_private_bytes_round_trip(self) -> None:
        assert AgencyIdentity.from_private_bytes(ALICE.to_private_bytes()) == ALICE
        root = RootKey.from_seed(SEED)
        assert RootKey.from_private_bytes(root.to_private_bytes()) == root
        assert RootKey.from_private_bytes(root.to_private_bytes()).public_key == root.public_key

    def test_private_bytes_length(self) -> None:
        with pytest.raises(ValueError, match="64 bytes"):
            AgencyIdentity.from_private_bytes(bytes(63))
        with pytest.raises(ValueError, match="32 bytes"):
            RootKey.from_private_bytes(bytes(64))

    def test_public_keys_value_semantics(self) -> None:
        keys = ALICE.public_keys
        copy = AgencyPublicKeys(signing=bytes(keys.signing), encryption=bytes(keys.encryption))
        assert copy == keys
        assert hash(copy) == hash(keys)
        assert bytes(copy) == keys.signing + keys.encryption
        assert AgencyPublicKeys.from_bytes(bytes(keys)) == keys
        swapped = AgencyPublicKeys(signing=keys.encryption, encryption=keys.signing)
        assert swapped != keys
        assert keys != bytes(keys)

    def test_public_keys_validation(self) -> None:
        with pytest.raises(ValueError, match="32 bytes"):
            AgencyPublicKeys(signing=bytes(31), encryption=bytes(32))
        with pytest.raises(TypeError):
            AgencyPublicKeys(signing="x" * 32, encryption=bytes(32))  # type: ignore[arg-type]

    def test_repr_hides_private_key(self) -> None:
        private = ALICE.to_private_bytes()
        text = repr(ALICE) + repr(RootKey.from_seed(SEED))
        for secret in (private[:32], private[32:]):
            assert secret.hex() not in text
            assert b64encode(secret) not in text
        assert ALICE.public_keys.fingerprint in repr(ALICE)
