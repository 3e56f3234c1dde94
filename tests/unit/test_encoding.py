"""Canonical encoding, PAE and strict base64."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.encoding import b64decode, b64encode, canonical_json, digest, pae
from schemas.problems import InvalidEnvelope


def test_pae_layout_is_length_prefixed() -> None:
    assert pae("t", b"ab") == (
        b"SGX-PAE-v1"
        + (2).to_bytes(8, "little")
        + (1).to_bytes(8, "little")
        + b"t"
        + (2).to_bytes(8, "little")
        + b"ab"
    )


@given(st.lists(st.binary(max_size=20), max_size=4), st.lists(st.binary(max_size=20), max_size=4))
def test_pae_is_injective(a: list[bytes], b: list[bytes]) -> None:
    if a != b:
        assert pae("x", *a) != pae("x", *b)


def test_domain_separation_changes_digest() -> None:
    assert digest("a", b"m") != digest("b", b"m")
    assert len(digest("a", b"m")) == 32


def test_canonical_json_sorts_keys_and_strips_space() -> None:
    expected = '{"a":[true,null,"é"],"b":1}'.encode()
    assert canonical_json({"b": 1, "a": [True, None, "é"]}) == expected


def test_canonical_json_refuses_nan() -> None:
    with pytest.raises(InvalidEnvelope):
        canonical_json({"x": float("nan")})


@given(st.binary(max_size=64))
def test_base64_round_trip(data: bytes) -> None:
    assert b64decode(b64encode(data)) == data


@pytest.mark.parametrize("text", ["AB==", "QQ", "QQ=", "Q Q==", "QR==", "*", "QUJD\n"])
def test_base64_refuses_non_canonical(text: str) -> None:
    with pytest.raises(InvalidEnvelope):
        b64decode(text)
