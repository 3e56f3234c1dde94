"""Fingerprints and certificate ids: format, stability, domain separation."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keys.fingerprint import certificate_id, fingerprint, is_certificate_id, is_fingerprint
from keys.identity import AgencyIdentity, RootKey
from schemas.encoding import DOMAIN_CERTIFICATE_ID, DOMAIN_FINGERPRINT, pae

FORMAT = re.compile(r"^[A-Z2-7]{4}(-[A-Z2-7]{4}){7}$")


class TestFingerprint:
    def test_known_answers(self) -> None:
        """Fixed inputs give fixed strings: another implementation can check itself here."""
        assert fingerprint(bytes(32)) == "QLQ5-Z4LG-HOBR-5MD3-BPN2-QL7R-L242-MZ5B"
        assert fingerprint(bytes(32), kind="root") == "CX5E-N4IU-X34U-UP5J-MDCQ-7GMF-A2MG-2DYG"
        assert RootKey.from_seed(bytes(32)).fingerprint == "RDTY-2SZH-YYTL-7KJW-TKWK-D2M7-KZNQ-SAC2"
        identity = AgencyIdentity.from_seed(bytes(range(32)))
        assert identity.public_keys.fingerprint == "BANM-MVRI-KL6A-W3WY-VNWI-E56G-AGG3-UOVR"

    def test_matches_the_specification(self) -> None:
        key = bytes(range(32))
        raw = hashlib.blake2b(pae(DOMAIN_FINGERPRINT, b"agency", key), digest_size=20).digest()
        text = base64.b32encode(raw).decode()
        assert "=" not in text
        assert fingerprint(key) == "-".join(text[i : i + 4] for i in range(0, 32, 4))

    @given(st.binary(min_size=1, max_size=96))
    def test_format(self, key: bytes) -> None:
        value = fingerprint(key)
        assert FORMAT.match(value)
        assert len(value.replace("-", "")) == 32
        assert is_fingerprint(value)

    @given(st.binary(min_size=32, max_size=32), st.binary(min_size=32, max_size=32))
    def test_distinct_keys_distinct_fingerprints(self, first: bytes, second: bytes) -> None:
        assert (fingerprint(first) == fingerprint(second)) == (first == second)

    def test_kind_separates_domains(self) -> None:
        key = bytes(range(32))
        assert fingerprint(key, kind="root") != fingerprint(key, kind="agency")
        assert fingerprint(key, kind="relay") != fingerprint(key, kind="root")

    @pytest.mark.parametrize("kind", ["", "Root", "root key", "x" * 40, "1root"])
    def test_bad_kind_refused(self, kind: str) -> None:
        with pytest.raises(ValueError, match="kind"):
            fingerprint(bytes(32), kind=kind)

    def test_empty_key_refused(self) -> None:
        with pytest.raises(ValueError, match="non-empty"):
            fingerprint(b"")

    @pytest.mark.parametrize(
        "text",
        [
            "QLQ5-Z4LG-HOBR-5MD3-BPN2-QL7R-L242-MZ5",
            "qlq5-z4lg-hobr-5md3-bpn2-ql7r-l242-mz5b",
            "QLQ5Z4LGHOBR5MD3BPN2QL7RL242MZ5B",
            "QLQ5-Z4LG-HOBR-5MD3-BPN2-QL7R-L242-MZ51",
            "QLQ5-Z4LG-HOBR-5MD3-BPN2-QL7R-L242-MZ5B\n",
            None,
        ],
    )
    def test_is_fingerprint_rejects(self, text: object) -> None:
        assert not is_fingerprint(text)


class TestCertificateId:
    def test_known_answer_and_specification(self) -> None:
        data = b'{"version":1}'
        value = certificate_id(data)
        assert value == hashlib.sha256(pae(DOMAIN_CERTIFICATE_ID, data)).hexdigest()
        assert value != hashlib.sha256(data).hexdigest()
        assert is_certificate_id(value)

    @given(st.binary(max_size=200))
    def test_format(self, data: bytes) -> None:
        value = certificate_id(data)
        assert re.fullmatch(r"[0-9a-f]{64}", value)

    def test_exact_bytes_matter(self) -> None:
        assert certificate_id(b'{"a":1}') != certificate_id(b'{"a": 1}')

    @pytest.mark.parametrize("text", ["A" * 64, "a" * 63, "g" * 64, 7])
    def test_is_certificate_id_rejects(self, text: object) -> None:
        assert not is_certificate_id(text)
